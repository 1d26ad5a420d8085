//! [`Clock`]: the time the layers judge freshness and `Age` by.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The time the layers judge freshness and `Age` by: the system's, or, for
/// tests of freshness, the system's moved forward by hand.
///
/// The backends keep entries by real time; an adjustable clock moves only
/// the layers' decisions (fresh, stale, expired), so a test can step over a
/// lifetime without sleeping through it.
///
/// ```
/// use std::time::Duration;
/// use tower_cache::middleware::Clock;
///
/// let clock = Clock::adjustable();
/// let before = clock.now();
/// clock.advance(Duration::from_secs(60));
/// assert!(clock.now() >= before + 60);
/// ```
#[derive(Debug, Clone, Default)]
pub struct Clock {
    /// Seconds added to the system's time; `None` for the system's clock.
    offset: Option<Arc<AtomicU64>>,
}

impl Clock {
    /// The system's clock (the default).
    pub fn system() -> Clock {
        Clock::default()
    }

    /// The system's clock, which [`advance`](Clock::advance) moves forward
    /// (for every clone).
    pub fn adjustable() -> Clock {
        Clock {
            offset: Some(Arc::new(AtomicU64::new(0))),
        }
    }

    /// Moves an [adjustable](Clock::adjustable) clock forward; does nothing
    /// to the system's.
    pub fn advance(&self, by: Duration) {
        if let Some(offset) = &self.offset {
            offset.fetch_add(by.as_secs(), Ordering::Relaxed);
        }
    }

    /// Now, in Unix seconds.
    pub fn now(&self) -> u64 {
        self.at(crate::clock::unix_secs())
    }

    /// This clock's time when the system's is `system` (Unix seconds).
    pub(crate) fn at(&self, system: u64) -> u64 {
        match &self.offset {
            None => system,
            Some(offset) => system.saturating_add(offset.load(Ordering::Relaxed)),
        }
    }
}
