//! How long an entry is kept: Django's `timeout` argument as a type.

use std::time::Duration;

/// How long a cache entry lives, with Django's meanings.
///
/// | Django | tower-cache | meaning |
/// |---|---|---|
/// | `timeout=DEFAULT_TIMEOUT` (omitted) | [`Timeout::Default`] | the cache's default (300 s unless configured) |
/// | `timeout=None` | [`Timeout::Forever`] | never expires |
/// | `timeout=60` | `Timeout::After(Duration::from_secs(60))` | expires after 60 s |
/// | `timeout=0` or negative | `Timeout::After(Duration::ZERO)` ([`Timeout::ZERO`]) | do not keep: `set` deletes the key |
///
/// A [`Duration`] converts into a `Timeout`, so `cache.set("k", &v, Duration::from_secs(60))`
/// works wherever a `Timeout` is expected.
///
/// ```
/// use std::time::Duration;
/// use tower_cache::Timeout;
///
/// assert_eq!(Timeout::from(Duration::from_secs(5)), Timeout::After(Duration::from_secs(5)));
/// assert_eq!(Timeout::from_secs_f64(-3.0), Timeout::ZERO);
/// assert_eq!(Timeout::from_secs_f64(100.2), Timeout::After(Duration::from_secs_f64(100.2)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Timeout {
    /// The cache's configured default timeout.
    #[default]
    Default,
    /// The entry never expires.
    Forever,
    /// The entry expires after this long; zero means it is not kept at all.
    After(Duration),
}

impl Timeout {
    /// Do not keep the entry: Django's `timeout=0` (a `set` with it deletes
    /// the key). Not Django's `timeout=None`, which is [`Timeout::Forever`].
    pub const ZERO: Timeout = Timeout::After(Duration::ZERO);

    /// Django's default timeout: five minutes.
    pub const DJANGO_DEFAULT: Duration = Duration::from_secs(300);

    /// A timeout in (possibly fractional, possibly negative) seconds, as
    /// Django accepts them: zero, negative or NaN means "do not keep".
    pub fn from_secs_f64(secs: f64) -> Timeout {
        if secs.is_nan() || secs <= 0.0 {
            Timeout::ZERO
        } else {
            Timeout::After(Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX))
        }
    }

    /// A timeout in whole seconds; zero or negative means "do not keep".
    pub fn from_secs(secs: i64) -> Timeout {
        Timeout::After(Duration::from_secs(secs.max(0) as u64))
    }

    /// Resolves [`Timeout::Default`] against the cache's default, giving
    /// what a backend is told: `None` for "never expires", `Some(d)` for
    /// "expires after `d`" (zero means "do not keep").
    pub(crate) fn resolve(self, default: Option<Duration>) -> Option<Duration> {
        match self {
            Timeout::Default => default,
            Timeout::Forever => None,
            Timeout::After(d) => Some(d),
        }
    }
}

impl From<Duration> for Timeout {
    fn from(d: Duration) -> Timeout {
        Timeout::After(d)
    }
}
