//! What the database and file backends share: Django's culling settings and
//! absolute, wall-clock expiry times.

use std::time::Duration;

use crate::backend::Expiry;
use crate::clock::since_epoch;

/// Django's `MAX_ENTRIES` and `CULL_FREQUENCY` for the backends that cull
/// (database and file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Culling {
    /// The most entries kept before a write culls.
    pub(crate) max_entries: u64,
    /// A cull removes `1 / cull_frequency` of the entries; 0 removes them all.
    pub(crate) cull_frequency: u64,
}

impl Default for Culling {
    fn default() -> Culling {
        Culling {
            max_entries: 300,
            cull_frequency: 3,
        }
    }
}

impl Culling {
    /// Sets `max_entries` and `cull_frequency` where the options give them.
    pub(crate) fn override_with(&mut self, max_entries: Option<u64>, cull_frequency: Option<u64>) {
        self.max_entries = max_entries.unwrap_or(self.max_entries);
        self.cull_frequency = cull_frequency.unwrap_or(self.cull_frequency);
    }

    /// How many of `count` entries a cull removes: `count / cull_frequency`,
    /// or all of them when `cull_frequency` is 0.
    pub(crate) fn cull_count(&self, count: u64) -> u64 {
        count.checked_div(self.cull_frequency).unwrap_or(count)
    }
}

/// When an entry written now with `expiry` expires, as time since the Unix
/// epoch; `None` never expires. Wall-clock time, so that every process (and
/// database client) sharing the store agrees.
pub(crate) fn deadline(expiry: Expiry) -> Option<Duration> {
    expiry.map(|lifetime| since_epoch().saturating_add(lifetime))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cull_count_follows_django() {
        let culling = Culling::default();
        assert_eq!(culling.cull_count(31), 10);
        assert_eq!(culling.cull_count(2), 0);
        let zero = Culling {
            cull_frequency: 0,
            ..Culling::default()
        };
        assert_eq!(zero.cull_count(31), 31);
    }

    #[test]
    fn deadlines_are_absolute_and_saturate() {
        assert_eq!(deadline(None), None);
        let soon = deadline(Some(Duration::from_secs(10))).unwrap();
        assert!(soon > since_epoch());
        assert_eq!(deadline(Some(Duration::MAX)), Some(Duration::MAX));
    }
}
