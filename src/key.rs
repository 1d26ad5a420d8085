//! Making keys: `prefix:version:key`, Django's default, and the checks that
//! keep keys portable across backends.

use std::fmt;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::error::{CacheError, InvalidKeyReason, Result};
use crate::hex::Hex;

/// The longest key memcached accepts, in bytes, and so the longest key any
/// backend accepts after making.
pub const MAX_KEY_LENGTH: usize = 250;

type KeyFn = dyn Fn(&str, &str, i64) -> String + Send + Sync;

/// Turns a user's key, the cache's key prefix and a version into the key a
/// backend stores: Django's `KEY_FUNCTION`.
///
/// ```
/// use tower_cache::KeyFunction;
///
/// assert_eq!(KeyFunction::default().make("k", "", 1), ":1:k");
/// assert_eq!(KeyFunction::default().make("k", "site", 2), "site:2:k");
///
/// // Django's test suite uses this one.
/// let custom = KeyFunction::new(|key, prefix, version| format!("CUSTOM-{prefix}-{version}-{key}"));
/// assert_eq!(custom.make("k", "p", 1), "CUSTOM-p-1-k");
///
/// // Opt in to hashing keys that memcached would refuse.
/// let hashed = KeyFunction::hashed();
/// assert_eq!(hashed.make("short", "", 1), ":1:short");
/// assert!(hashed.make(&"x".repeat(300), "", 1).starts_with(":1:sha256:"));
/// ```
#[derive(Clone)]
pub struct KeyFunction {
    make: Arc<KeyFn>,
    /// Whether made keys start with `prefix:`, so that `clear` can select
    /// this cache's keys by prefix.
    prefixed: bool,
    /// Whether this is the default function (`prefix:version:key`), which
    /// [`MadeKey`] writes in place.
    default: bool,
}

impl KeyFunction {
    /// A custom key function. Keys it makes are still validated.
    ///
    /// As nothing is known of the keys it makes, [`Cache::clear`](crate::Cache::clear)
    /// then clears the whole backend, as Django does.
    pub fn new(make: impl Fn(&str, &str, i64) -> String + Send + Sync + 'static) -> KeyFunction {
        KeyFunction {
            make: Arc::new(make),
            prefixed: false,
            default: false,
        }
    }

    /// Django's default key function as is, for keys that are known to be
    /// safe, but with keys that would be rejected by validation (too long,
    /// white space, control characters) replaced by
    /// `prefix:version:sha256:<hex of the key>`.
    ///
    /// Use it when keys come from outside (URLs, user input). Hashed keys are
    /// opaque in `redis-cli`, and two caches must both use it to share keys.
    pub fn hashed() -> KeyFunction {
        KeyFunction {
            make: Arc::new(|key, prefix, version| {
                let made = default_key(key, prefix, version);
                if validate_key(&made).is_ok() {
                    return made;
                }
                let digest = Sha256::digest(key.as_bytes());
                format!("{prefix}:{version}:sha256:{}", Hex(&digest))
            }),
            prefixed: true,
            default: false,
        }
    }

    /// Makes the key: what a backend stores it under.
    pub fn make(&self, key: &str, prefix: &str, version: i64) -> String {
        (self.make)(key, prefix, version)
    }

    pub(crate) fn is_prefixed(&self) -> bool {
        self.prefixed
    }

    /// Whether this is the default function, `prefix:version:key`.
    pub(crate) fn is_default(&self) -> bool {
        self.default
    }
}

impl Default for KeyFunction {
    /// `prefix:version:key`, as Django's `default_key_func`.
    fn default() -> KeyFunction {
        KeyFunction {
            make: Arc::new(default_key),
            prefixed: true,
            default: true,
        }
    }
}

impl fmt::Debug for KeyFunction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.prefixed {
            "KeyFunction(prefix:version:key)"
        } else {
            "KeyFunction(custom)"
        })
    }
}

fn default_key(key: &str, prefix: &str, version: i64) -> String {
    let mut made = String::with_capacity(prefix.len() + key.len() + 8);
    push_default_prefix(&mut made, prefix, version);
    made.push_str(key);
    made
}

/// Whether every byte of `text` is visible ASCII (`!` to `~`), as nearly
/// every key is: one pass that the compiler turns into vector instructions
/// (no early exit). Every hit makes a key or two; [`validate_key`] searches
/// for the exact fault only when this finds something else.
pub(crate) fn is_visible_ascii(text: &str) -> bool {
    text.bytes()
        .fold(true, |all, b| all & (b'!'..=b'~').contains(&b))
}

/// What the default key function writes before the user's key:
/// `prefix:version:`.
pub(crate) fn push_default_prefix(made: &mut String, prefix: &str, version: i64) {
    made.push_str(prefix);
    made.push(':');
    made.push_str(itoa::Buffer::new().format(version));
    made.push(':');
}

/// A user's key with the key a backend stores it under, made in one
/// allocation when the key function is the default one (`prefix:version:`
/// then the user's key): the layers' page keys, made once per lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MadeKey {
    /// The user's key is `made[at..]`.
    Prefixed { made: String, at: usize },
    /// A key function of the user's: two strings.
    Custom { user: String, made: String },
    /// A key made before and kept ([`PageKeys`](crate::middleware)).
    Shared(Arc<MadeKey>),
}

impl MadeKey {
    /// The key made by `function` of the key `write` writes (about `len`
    /// bytes), validated.
    pub(crate) fn new(
        function: &KeyFunction,
        prefix: &str,
        version: i64,
        len: usize,
        write: impl FnOnce(&mut String),
    ) -> Result<MadeKey> {
        let key = if function.default {
            let mut made = String::with_capacity(prefix.len() + 8 + len);
            push_default_prefix(&mut made, prefix, version);
            let at = made.len();
            write(&mut made);
            MadeKey::Prefixed { made, at }
        } else {
            let mut user = String::with_capacity(len);
            write(&mut user);
            let made = function.make(&user, prefix, version);
            MadeKey::Custom { user, made }
        };
        validate_key(key.made())?;
        Ok(key)
    }

    /// The user's key.
    pub(crate) fn user(&self) -> &str {
        match self {
            MadeKey::Prefixed { made, at } => &made[*at..],
            MadeKey::Custom { user, .. } => user,
            MadeKey::Shared(key) => key.user(),
        }
    }

    /// The key the backend stores it under.
    pub(crate) fn made(&self) -> &str {
        match self {
            MadeKey::Prefixed { made, .. } | MadeKey::Custom { made, .. } => made,
            MadeKey::Shared(key) => key.made(),
        }
    }

    /// The user's key, owned.
    pub(crate) fn into_user(self) -> String {
        match self {
            MadeKey::Prefixed { mut made, at } => made.split_off(at),
            MadeKey::Custom { user, .. } => user,
            MadeKey::Shared(key) => key.user().to_owned(),
        }
    }
}

/// Checks a made key against memcached's rules, which every backend enforces:
/// at most [`MAX_KEY_LENGTH`] bytes, no control characters, no white space.
///
/// Django only warns about such keys on most backends; tower-cache rejects
/// them everywhere, so code that works on the memory backend keeps working on
/// memcached.
///
/// # Errors
///
/// [`CacheError::InvalidKey`] naming the key and the reason.
pub fn validate_key(made: &str) -> Result<()> {
    if made.len() > MAX_KEY_LENGTH {
        return Err(CacheError::InvalidKey {
            key: made.to_owned(),
            reason: InvalidKeyReason::TooLong { len: made.len() },
        });
    }
    if is_visible_ascii(made) {
        return Ok(());
    }
    let bad = if made.is_ascii() {
        made.bytes()
            .find(|b| b.is_ascii_control() || *b == b' ')
            .map(char::from)
    } else {
        made.chars().find(|c| c.is_control() || c.is_whitespace())
    };
    match bad {
        Some(character) => Err(CacheError::InvalidKey {
            key: made.to_owned(),
            reason: InvalidKeyReason::BadCharacter { character },
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(key: &str) -> Option<InvalidKeyReason> {
        match validate_key(key) {
            Err(CacheError::InvalidKey { reason, .. }) => Some(reason),
            _ => None,
        }
    }

    #[test]
    fn default_layout_is_djangos() {
        assert_eq!(KeyFunction::default().make("k", "", 1), ":1:k");
        assert_eq!(KeyFunction::default().make("0", "p", -3), "p:-3:0");
    }

    #[test]
    fn rejects_what_memcached_rejects() {
        assert_eq!(reason(&"a".repeat(250)), None);
        assert_eq!(
            reason(&"a".repeat(251)),
            Some(InvalidKeyReason::TooLong { len: 251 })
        );
        // 249 ASCII + one 3-byte character: 252 bytes.
        assert!(matches!(
            reason(&format!("{}清", "a".repeat(249))),
            Some(InvalidKeyReason::TooLong { len: 252 })
        ));
        assert_eq!(
            reason("key with spaces"),
            Some(InvalidKeyReason::BadCharacter { character: ' ' })
        );
        assert_eq!(
            reason("tab\tkey"),
            Some(InvalidKeyReason::BadCharacter { character: '\t' })
        );
        assert_eq!(
            reason("del\u{7f}"),
            Some(InvalidKeyReason::BadCharacter {
                character: '\u{7f}'
            })
        );
        assert_eq!(
            reason("nbsp\u{a0}清"),
            Some(InvalidKeyReason::BadCharacter {
                character: '\u{a0}'
            })
        );
        assert_eq!(reason(":1:clé-清"), None);
    }

    #[test]
    fn hashed_keys_are_valid_and_stable() {
        let f = KeyFunction::hashed();
        let long = f.make(&"a".repeat(400), "prefix", 1);
        assert!(validate_key(&long).is_ok());
        assert_eq!(long, f.make(&"a".repeat(400), "prefix", 1));
        assert_ne!(long, f.make(&"a".repeat(401), "prefix", 1));
        assert!(validate_key(&f.make("with space", "", 1)).is_ok());
        assert_eq!(f.make("fine", "", 1), ":1:fine");
    }

    #[test]
    fn error_message_names_key_and_fix() {
        let message = validate_key("a b").unwrap_err().to_string();
        assert!(message.contains("\"a b\""), "{message}");
        assert!(message.contains("' '"), "{message}");
        assert!(message.contains("KeyFunction::hashed"), "{message}");
    }

    #[test]
    fn a_made_key_is_the_key_functions_key_with_the_users_beside_it() {
        let write = |out: &mut String| out.push_str("views.page");
        for function in [
            KeyFunction::default(),
            KeyFunction::hashed(),
            KeyFunction::new(|key, prefix, version| format!("{version}/{prefix}/{key}")),
        ] {
            let key = MadeKey::new(&function, "site", 3, 10, write).unwrap();
            assert_eq!(key.made(), function.make("views.page", "site", 3));
            assert_eq!(key.user(), "views.page");
            assert_eq!(key.clone().into_user(), "views.page");
        }
        let bad = MadeKey::new(&KeyFunction::default(), "", 1, 3, |out| out.push_str("a b"));
        assert!(matches!(bad, Err(CacheError::InvalidKey { .. })));
        // The hashed function hashes what the default one would refuse.
        let long = MadeKey::new(&KeyFunction::hashed(), "", 1, 300, |out| {
            out.push_str(&"x".repeat(300));
        })
        .unwrap();
        assert!(long.made().starts_with(":1:sha256:"));
        assert_eq!(long.user(), "x".repeat(300));
    }
}
