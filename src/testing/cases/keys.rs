//! Keys: validation of invalid keys, and custom key functions.

use std::sync::Arc;

use super::support::*;
use crate::error::{CacheError, InvalidKeyReason, Result};
use crate::testing::harness::cases;
use crate::testing::{Harness, Instrumented};
use crate::{Cache, KeyFunction};

cases! {
    /// Keys with white space are rejected by every operation.
    pub async fn test_invalid_key_characters(h: &Harness) {
        let key = "key with spaces and 清";
        let identity = KeyFunction::new(|key, _, _| key.to_owned());
        let expected = InvalidKeyReason::BadCharacter { character: ' ' };
        assert_invalid_key(h, identity, key, expected, key).await;
        // Also through the default key function, naming the made key.
        let cache = h.identity_keys();
        assert!(matches!(
            cache.get::<String>("tab\there").await,
            Err(CacheError::InvalidKey { .. })
        ));
    }

    /// Keys over 250 bytes are rejected by every operation.
    pub async fn test_invalid_key_length(h: &Harness) {
        let key = format!("{}清", "a".repeat(250));
        let identity = KeyFunction::new(|key, _, _| key.to_owned());
        let expected = InvalidKeyReason::TooLong { len: 253 };
        assert_invalid_key(h, identity, &key, expected, &key).await;
    }

    /// The length is checked after making: a key function that lengthens a
    /// 249-byte key past 250 is caught, naming the made key.
    pub async fn test_invalid_with_version_key_length(h: &Harness) {
        let key = "a".repeat(249);
        let appends_version = KeyFunction::new(|key, _, version| format!("{key}:{version}"));
        let expected = InvalidKeyReason::TooLong { len: 251 };
        assert_invalid_key(h, appends_version, &key, expected, &format!("{key}:1")).await;
    }

    /// Caches with different key functions do not see each other's keys.
    pub async fn test_custom_key_func(h: &Harness) {
        h.default.set("answer1", &42, D).await.unwrap();
        assert_eq!(get_int(&h.default, "answer1").await, Some(42));
        assert_eq!(get_int(&h.custom_key, "answer1").await, None);
        h.custom_key.set("answer2", &42, D).await.unwrap();
        assert_eq!(get_int(&h.default, "answer2").await, None);
        assert_eq!(get_int(&h.custom_key, "answer2").await, Some(42));
        h.custom_key.delete("answer2").await.unwrap();
    }
}

/// Every operation rejects `key` (made by `cache`) with `expected`,
/// before any backend call.
async fn assert_invalid_key(
    h: &Harness,
    cache_key_fn: KeyFunction,
    key: &str,
    expected: InvalidKeyReason,
    made: &str,
) {
    let probe = Arc::new(Instrumented::new(h.backend.clone(), false));
    let cache = Cache::builder(probe.clone())
        .key_function(cache_key_fn)
        .build();
    let check = |result: Result<()>, op: &str| match result {
        Err(CacheError::InvalidKey { key: got, reason }) => {
            assert_eq!(reason, expected, "{op}");
            assert_eq!(got, made, "{op} must name the made key");
        }
        other => panic!("{op} of an invalid key gave {other:?}"),
    };
    check(cache.add(key, "value", D).await.map(drop), "add");
    check(cache.get::<String>(key).await.map(drop), "get");
    check(cache.set(key, "value", D).await, "set");
    check(cache.incr(key, 1).await.map(drop), "incr");
    check(cache.decr(key, 1).await.map(drop), "decr");
    check(cache.touch(key, D).await.map(drop), "touch");
    check(cache.delete(key).await.map(drop), "delete");
    check(
        cache.delete_if_equal(key, b"value").await.map(drop),
        "delete_if_equal",
    );
    check(cache.has_key(key).await.map(drop), "has_key");
    check(
        cache.get_many::<String, _, _>([key]).await.map(drop),
        "get_many",
    );
    check(
        cache.set_many([(key, "value")], D).await.map(drop),
        "set_many",
    );
    check(cache.delete_many([key]).await, "delete_many");
    check(
        cache.get_or_set(key, || async { 1 }, D).await.map(drop),
        "get_or_set",
    );
    check(cache.incr_version(key, 1).await.map(drop), "incr_version");
    assert_eq!(
        probe.calls(),
        0,
        "invalid keys must be rejected before any backend call"
    );
}
