//! [`Jitter`]: timeouts spread at random, so that entries written together
//! do not all expire together.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Spreads lifetimes uniformly by up to ± a percentage, so that entries
/// written at the same moment (a deploy, a warm-up script, a burst of misses)
/// expire over a window instead of all at once, and their recomputation does
/// not land on the backend in one herd.
///
/// A `u8` converts into a `Jitter` of that percentage, so both of these work
/// wherever a jitter is asked for:
///
/// ```
/// use std::time::Duration;
/// use tower_cache::Jitter;
///
/// let jitter = Jitter::percent(10);
/// let spread = jitter.spread(Duration::from_secs(300));
/// assert!(spread >= Duration::from_secs(270) && spread <= Duration::from_secs(330));
///
/// // Zero is "do not keep" and is never spread.
/// assert_eq!(jitter.spread(Duration::ZERO), Duration::ZERO);
///
/// // Seeded: the same sequence on every run, for tests.
/// let (a, b) = (Jitter::seeded(10, 7), Jitter::seeded(10, 7));
/// for _ in 0..5 {
///     assert_eq!(a.spread(Duration::from_secs(60)), b.spread(Duration::from_secs(60)));
/// }
/// assert_eq!(Jitter::from(10), Jitter::percent(10));
/// ```
///
/// The default is no jitter. Cloning is cheap; clones of a seeded jitter
/// share its sequence.
///
/// # Guarantees
///
/// A spread lifetime lies within `lifetime × (1 ± percent / 100)`, to the
/// nanosecond, and is never zero unless the lifetime is: as the percentage is
/// at most 50, an entry lives at least half its lifetime.
#[derive(Clone, Default)]
pub struct Jitter {
    percent: u8,
    /// `None`: the thread's own generator (no lock, not reproducible).
    seeded: Option<Arc<Mutex<fastrand::Rng>>>,
}

/// The largest spread, in percent.
const MOST: u8 = 50;

impl Jitter {
    /// No jitter: lifetimes are kept as they are (the default).
    pub fn none() -> Jitter {
        Jitter::default()
    }

    /// Spreads lifetimes by up to ± `percent` (at most 50).
    ///
    /// # Panics
    ///
    /// When `percent` is over 50: a wider spread would let entries expire
    /// almost as soon as they are written.
    pub fn percent(percent: u8) -> Jitter {
        assert!(
            percent <= MOST,
            "a TTL jitter is at most {MOST} percent, not {percent}: pass a smaller percentage"
        );
        Jitter {
            percent,
            seeded: None,
        }
    }

    /// [`percent`](Jitter::percent) with a generator seeded by `seed`: the
    /// same spreads, in the same order, on every run (for tests).
    ///
    /// # Panics
    ///
    /// When `percent` is over 50.
    pub fn seeded(percent: u8, seed: u64) -> Jitter {
        Jitter {
            seeded: Some(Arc::new(Mutex::new(fastrand::Rng::with_seed(seed)))),
            ..Jitter::percent(percent)
        }
    }

    /// The largest spread, in percent (0: none).
    pub fn percentage(&self) -> u8 {
        self.percent
    }

    /// `lifetime` moved by a uniform random amount within ± the percentage.
    /// Zero stays zero.
    pub fn spread(&self, lifetime: Duration) -> Duration {
        let nanos = lifetime.as_nanos();
        // At most half of `nanos`, rounded down: the result stays positive.
        let span = nanos * u128::from(self.percent) / 100;
        if span == 0 {
            return lifetime;
        }
        let offset = match &self.seeded {
            Some(rng) => rng
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .u128(0..=2 * span),
            None => fastrand::u128(0..=2 * span),
        };
        from_nanos(nanos - span + offset)
    }
}

/// A `Duration` of `nanos`, saturating at the largest one.
fn from_nanos(nanos: u128) -> Duration {
    const PER_SEC: u128 = 1_000_000_000;
    match u64::try_from(nanos / PER_SEC) {
        // The remainder is below one second: it fits.
        Ok(secs) => Duration::new(secs, (nanos % PER_SEC) as u32),
        Err(_) => Duration::MAX,
    }
}

impl From<u8> for Jitter {
    /// [`Jitter::percent`].
    fn from(percent: u8) -> Jitter {
        Jitter::percent(percent)
    }
}

/// Equal when they spread by the same percentage (the generators are not
/// compared).
impl PartialEq for Jitter {
    fn eq(&self, other: &Jitter) -> bool {
        self.percent == other.percent
    }
}

impl fmt::Debug for Jitter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Jitter")
            .field("percent", &self.percent)
            .field("seeded", &self.seeded.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spreads_stay_within_the_bounds_and_differ() {
        let jitter = Jitter::seeded(20, 1);
        let lifetime = Duration::from_secs(100);
        let spreads: Vec<Duration> = (0..200).map(|_| jitter.spread(lifetime)).collect();
        for spread in &spreads {
            assert!(
                (Duration::from_secs(80)..=Duration::from_secs(120)).contains(spread),
                "{spread:?}"
            );
        }
        let below = spreads.iter().filter(|s| **s < lifetime).count();
        assert!(
            (50..150).contains(&below),
            "uniform around the lifetime: {below} of 200 below"
        );
        assert!(spreads.windows(2).any(|w| w[0] != w[1]));
    }

    #[test]
    fn zero_percent_zero_lifetime_and_tiny_lifetimes_are_kept() {
        assert_eq!(
            Jitter::none().spread(Duration::from_secs(9)),
            Duration::from_secs(9)
        );
        let jitter = Jitter::seeded(50, 3);
        assert_eq!(jitter.spread(Duration::ZERO), Duration::ZERO);
        for nanos in 1..50 {
            assert!(jitter.spread(Duration::from_nanos(nanos)) > Duration::ZERO);
        }
    }

    #[test]
    fn huge_lifetimes_saturate_instead_of_overflowing() {
        let jitter = Jitter::seeded(50, 5);
        for _ in 0..20 {
            assert!(jitter.spread(Duration::MAX) >= Duration::MAX / 2);
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_sequence() {
        let (a, b) = (Jitter::seeded(10, 42), Jitter::seeded(10, 42));
        let c = Jitter::seeded(10, 43);
        let run = |j: &Jitter| -> Vec<Duration> {
            (0..10).map(|_| j.spread(Duration::from_secs(60))).collect()
        };
        let first = run(&a);
        assert_eq!(first, run(&b));
        assert_ne!(first, run(&c));
    }

    #[test]
    #[should_panic(expected = "at most 50 percent")]
    fn over_fifty_percent_panics() {
        let _ = Jitter::percent(51);
    }
}
