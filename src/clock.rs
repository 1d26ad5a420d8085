//! The wall clock, read in one place: expiry times that several processes
//! (or a database and its clients) must agree on are times since the Unix
//! epoch.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Now, as time since the Unix epoch (zero if the clock is before 1970).
pub(crate) fn since_epoch() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
}

/// Now, in whole seconds since the Unix epoch.
pub(crate) fn unix_secs() -> u64 {
    since_epoch().as_secs()
}

/// `since` (a time since the Unix epoch) in whole microseconds.
pub(crate) fn micros(since: Duration) -> u64 {
    u64::try_from(since.as_micros()).unwrap_or(u64::MAX)
}
