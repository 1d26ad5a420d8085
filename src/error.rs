//! The one error type of the crate.

use std::fmt;
use std::time::Duration;

/// A boxed error from a backend's client library, kept as the source of
/// [`CacheError::Backend`] so that the whole chain stays inspectable.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `Result<T, CacheError>`.
pub type Result<T, E = CacheError> = std::result::Result<T, E>;

/// Everything that can go wrong when using a cache.
///
/// Every variant names what failed and, where there is one, what to do about
/// it. Errors from client libraries are kept as a [`source`](std::error::Error::source),
/// never flattened into a string.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CacheError {
    /// The backend (its server, its client library, its storage) failed.
    #[error("{backend} cache backend failed during {operation}")]
    Backend {
        /// The backend's name, e.g. `"redis"`.
        backend: &'static str,
        /// The operation that failed, e.g. `"get"`.
        operation: &'static str,
        /// What the client library reported.
        #[source]
        source: BoxError,
    },

    /// A value could not be turned into bytes, or bytes back into the
    /// requested type.
    #[error("cache value for key {key:?} could not be {direction}")]
    Codec {
        /// The user's key.
        key: String,
        /// `"encoded"` or `"decoded"`.
        direction: &'static str,
        /// What serde reported.
        #[source]
        source: serde_json::Error,
    },

    /// The made key would break on memcached (and so is rejected everywhere,
    /// so that code that works on one backend works on all of them).
    #[error(
        "cache key {key:?} {reason}; use a shorter key, or opt in to \
         `KeyFunction::hashed()` to hash long keys"
    )]
    InvalidKey {
        /// The key after making (prefix, version, key).
        key: String,
        /// Why it is rejected.
        reason: InvalidKeyReason,
    },

    /// `incr`/`decr` found a value that is not a decimal integer.
    #[error("cache value for key {key:?} is not an integer, so it cannot be incremented")]
    NotAnInteger {
        /// The user's key.
        key: String,
    },

    /// `incr`, `decr` or `incr_version` on a key that is not in the cache.
    #[error("Key {key:?} not found")]
    MissingKey {
        /// The user's key.
        key: String,
    },

    /// An increment went past the range of `i64`.
    #[error("incrementing cache key {key:?} overflows a 64-bit integer")]
    Overflow {
        /// The user's key.
        key: String,
    },

    /// The backend refused to store a value (memcached's item size limit,
    /// for one).
    #[error("cache backend did not store key {key:?}")]
    NotStored {
        /// The user's key.
        key: String,
    },

    /// The backend did not answer in time.
    #[error("{backend} cache backend did not answer within {after:?}")]
    Timeout {
        /// The backend's name.
        backend: &'static str,
        /// How long it was given.
        after: Duration,
    },

    /// The backend cannot do this at all.
    #[error("{backend} cache backend does not support {operation}")]
    Unsupported {
        /// The backend's name.
        backend: &'static str,
        /// The operation.
        operation: &'static str,
    },

    /// A cache URL or configuration is wrong; the message names the part.
    #[error("cache configuration error: {0}")]
    Config(#[from] ConfigError),
}

impl CacheError {
    /// Wraps a client library's error as a [`CacheError::Backend`].
    pub fn backend(
        backend: &'static str,
        operation: &'static str,
        source: impl Into<BoxError>,
    ) -> Self {
        CacheError::Backend {
            backend,
            operation,
            source: source.into(),
        }
    }
}

/// Why a key is rejected by key validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidKeyReason {
    /// Longer than [`MAX_KEY_LENGTH`](crate::MAX_KEY_LENGTH) bytes.
    TooLong {
        /// The key's length in bytes.
        len: usize,
    },
    /// Contains a control character or white space.
    BadCharacter {
        /// The first offending character.
        character: char,
    },
}

impl std::fmt::Display for InvalidKeyReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InvalidKeyReason::TooLong { len } => write!(
                f,
                "is {len} bytes long, longer than {} (memcached's limit)",
                crate::MAX_KEY_LENGTH
            ),
            InvalidKeyReason::BadCharacter { character } => write!(
                f,
                "contains the character {character:?}, which will cause errors if used with memcached \
                 (control characters and white space are not allowed)"
            ),
        }
    }
}

/// A cache URL, configuration entry or option that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The URL does not parse.
    #[error("invalid cache URL {url:?}: {source}")]
    InvalidUrl {
        /// The URL as given, its password replaced by `***`.
        url: String,
        /// What the URL parser reported.
        #[source]
        source: url::ParseError,
    },

    /// No backend is known for this scheme.
    #[error(
        "unknown cache URL scheme {scheme:?}; known schemes: memory, dummy, redis, rediss, \
         redis+cluster, memcached, sqlite, postgres, postgresql, mysql, mariadb, file"
    )]
    UnknownScheme {
        /// The scheme.
        scheme: String,
    },

    /// The backend exists but its cargo feature is off.
    #[error(
        "cache URL scheme {scheme:?} needs the `{feature}` feature of tower-cache; \
         enable it in Cargo.toml: tower-cache = {{ version = \"*\", features = [\"{feature}\"] }}"
    )]
    FeatureDisabled {
        /// The scheme.
        scheme: String,
        /// The cargo feature that provides it.
        feature: &'static str,
    },

    /// An option is not known to the backend.
    #[error(
        "unknown option {option:?} for the {backend} cache backend; known options: {}",
        if known.is_empty() { "(none)".to_owned() } else { known.join(", ") }
    )]
    UnknownOption {
        /// The backend's name.
        backend: &'static str,
        /// The option as given.
        option: String,
        /// The options the backend understands.
        known: Vec<&'static str>,
    },

    /// An option has a value that cannot be used.
    #[error(
        "invalid value {value:?} for option {option:?} of the {backend} cache backend: {reason}"
    )]
    InvalidOption {
        /// The backend's name (`"cache"` for the cache-level settings).
        backend: &'static str,
        /// The option (`"url"` for the URL itself).
        option: String,
        /// The value as given; a URL's password is replaced by `***`.
        value: String,
        /// What is expected instead.
        reason: String,
    },

    /// No cache is configured under this alias.
    #[error("The connection {alias:?} doesn't exist.")]
    UnknownAlias {
        /// The alias asked for.
        alias: String,
    },

    /// The default cache ([`Caches::global`](crate::Caches::global), from
    /// `CACHE_URL`) could not be built, and something needed it.
    #[error("the default cache (CACHE_URL) could not be built: {reason}")]
    NoDefaultCache {
        /// Why it could not be built.
        reason: String,
    },
}

/// A URL that prints redacted in `Debug` (see [`redact`]).
pub(crate) struct Redacted<'a>(pub(crate) &'a str);

impl fmt::Debug for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&redact(self.0), f)
    }
}

/// `url` (or a comma-separated list of URLs) with every password replaced
/// by `***`, for errors and `Debug`. Works on text that is not a valid URL.
pub(crate) fn redact(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    let mut rest = url;
    while let Some(start) = rest.find("://") {
        let (head, tail) = rest.split_at(start + 3);
        out.push_str(head);
        let end = tail.find(['/', '?', '#']).unwrap_or(tail.len());
        let (authority, after) = tail.split_at(end);
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                match userinfo.find(':') {
                    Some(colon) => {
                        out.push_str(&userinfo[..=colon]);
                        out.push_str("***");
                    }
                    None => out.push_str(userinfo),
                }
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redact_hides_every_password() {
        assert_eq!(redact("redis://:pw@h:6379/0"), "redis://:***@h:6379/0");
        assert_eq!(
            redact("postgres://u:p@ss@h/db?x=1"),
            "postgres://u:***@h/db?x=1"
        );
        assert_eq!(redact("redis://u@h"), "redis://u@h");
        assert_eq!(redact("memcached://h1,h2"), "memcached://h1,h2");
        assert_eq!(
            redact("redis://:a@h1/0,redis://:b@h2/0"),
            "redis://:***@h1/0,redis://:***@h2/0"
        );
        assert_eq!(redact("not a url"), "not a url");
    }
}
