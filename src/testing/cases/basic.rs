//! Storing, reading and removing entries: the basic operations, value types and `clear`.

use std::collections::HashMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::support::*;
use crate::Timeout;
use crate::error::CacheError;
use crate::testing::Unserializable;
use crate::testing::concurrent_delete_if_equal;
use crate::testing::harness::cases;

cases! {
    /// Set then get returns the value.
    pub async fn test_simple(h: &Harness) {
        h.default.set("key", "value", D).await.unwrap();
        expect_str(&h.default, "key", Some("value")).await;
    }

    /// A stored `None` comes back as `None`, not as the default.
    pub async fn test_default_used_when_none_is_set(h: &Harness) {
        h.default
            .set("key_default_none", &None::<String>, D)
            .await
            .unwrap();
        let got = h
            .default
            .get_or("key_default_none", Some("default".to_owned()))
            .await
            .unwrap();
        assert_eq!(got, None);
    }

    /// `add` stores once, then refuses and keeps the first value.
    pub async fn test_add(h: &Harness) {
        assert!(h.default.add("addkey1", "value", D).await.unwrap());
        assert!(!h.default.add("addkey1", "newvalue", D).await.unwrap());
        expect_str(&h.default, "addkey1", Some("value")).await;
    }

    /// Caches with different key prefixes do not see each other's keys.
    pub async fn test_prefix(h: &Harness) {
        h.default.set("somekey", "value", D).await.unwrap();
        assert!(!h.prefix.has_key("somekey").await.unwrap());
        h.prefix.set("somekey", "value2", D).await.unwrap();
        expect_str(&h.default, "somekey", Some("value")).await;
        expect_str(&h.prefix, "somekey", Some("value2")).await;
    }

    /// A missing key reads as `None`, or the default given.
    pub async fn test_non_existent(h: &Harness) {
        expect_str(&h.default, "does_not_exist", None).await;
        let got = h
            .default
            .get_or("does_not_exist", "bang!".to_owned())
            .await
            .unwrap();
        assert_eq!(got, "bang!");
    }

    /// `get_many` returns only the keys that exist, stored `None`s included.
    pub async fn test_get_many(h: &Harness) {
        for key in ["a", "b", "c", "d"] {
            h.default.set(key, key, D).await.unwrap();
        }
        let got: HashMap<String, String> = h.default.get_many(["a", "c", "d"]).await.unwrap();
        assert_eq!(
            got,
            map(&[
                ("a", "a".to_owned()),
                ("c", "c".to_owned()),
                ("d", "d".to_owned())
            ])
        );
        let got: HashMap<String, String> = h.default.get_many(["a", "b", "e"]).await.unwrap();
        assert_eq!(got, map(&[("a", "a".to_owned()), ("b", "b".to_owned())]));
        let iterator = ["a", "b", "e"].into_iter().map(str::to_owned);
        let got: HashMap<String, String> = h.default.get_many(iterator).await.unwrap();
        assert_eq!(got.len(), 2);
        h.default.set("x", &None::<i64>, D).await.unwrap();
        h.default.set("y", &Some(1), D).await.unwrap();
        let got: HashMap<String, Option<i64>> = h.default.get_many(["x", "y"]).await.unwrap();
        assert_eq!(got, map(&[("x", None), ("y", Some(1))]));
    }

    /// `delete` removes one key and says so.
    pub async fn test_delete(h: &Harness) {
        h.default.set("key1", "spam", D).await.unwrap();
        h.default.set("key2", "eggs", D).await.unwrap();
        assert!(h.default.delete("key1").await.unwrap());
        expect_str(&h.default, "key1", None).await;
        expect_str(&h.default, "key2", Some("eggs")).await;
    }

    /// `delete` of a missing key returns `false`.
    pub async fn test_delete_nonexistent(h: &Harness) {
        assert!(!h.default.delete("nonexistent_key").await.unwrap());
    }

    /// `delete_if_equal` deletes a live entry only when its bytes are exactly
    /// the expected ones, under the made key (prefix and version). Not a
    /// Django port: Django's cache has no compare-and-delete; it is what a
    /// lock taken with `add` needs, to be released by its holder only.
    pub async fn test_delete_if_equal(h: &Harness) {
        // The exact bytes: deleted, and only once.
        h.default.set_bytes("lock", &b"token-1"[..], D).await.unwrap();
        assert!(h.default.delete_if_equal("lock", b"token-1").await.unwrap());
        assert!(!h.default.has_key("lock").await.unwrap());
        assert!(!h.default.delete_if_equal("lock", b"token-1").await.unwrap());
        // Other bytes, however close: kept.
        h.default.set_bytes("lock", &b"token-2"[..], D).await.unwrap();
        for other in [
            &b"token-1"[..],
            b"token-",
            b"token-22",
            b"token-2 ",
            b"TOKEN-2",
            b"",
        ] {
            assert!(!h.default.delete_if_equal("lock", other).await.unwrap(), "{other:?}");
        }
        assert_eq!(
            h.default.get_bytes("lock").await.unwrap().as_deref(),
            Some(&b"token-2"[..])
        );
        // A missing key.
        assert!(!h.default.delete_if_equal("missing", b"token").await.unwrap());
        // Binary values compare byte by byte; a typed value as its encoding.
        const BINARY: [u8; 7] = [0, 255, 1, 0, 128, 13, 10];
        h.default.set_bytes("binary", &BINARY[..], D).await.unwrap();
        assert!(!h.default.delete_if_equal("binary", &BINARY[..6]).await.unwrap());
        assert!(h.default.delete_if_equal("binary", &BINARY).await.unwrap());
        h.default.set("typed", "v", D).await.unwrap();
        assert!(!h.default.delete_if_equal("typed", b"v").await.unwrap());
        assert!(h.default.delete_if_equal("typed", b"\"v\"").await.unwrap());
        // Other versions and prefixes are other keys.
        h.default.set_bytes("shared", &b"t"[..], D).await.unwrap();
        assert!(!h.v2.delete_if_equal("shared", b"t").await.unwrap());
        assert!(!h.prefix.delete_if_equal("shared", b"t").await.unwrap());
        h.v2.set_bytes("shared", &b"t"[..], D).await.unwrap();
        assert!(h.v2.delete_if_equal("shared", b"t").await.unwrap());
        assert!(h.default.has_key("shared").await.unwrap());
        assert!(h.default.delete_if_equal("shared", b"t").await.unwrap());
        // An expired entry never matches (and can be taken again).
        h.default
            .set_bytes("expiring", &b"t"[..], secs(1))
            .await
            .unwrap();
        sleep_secs(2).await;
        assert!(!h.default.delete_if_equal("expiring", b"t").await.unwrap());
        assert!(h.default.add_bytes("expiring", &b"u"[..], D).await.unwrap());
        assert!(!h.default.delete_if_equal("expiring", b"t").await.unwrap());
        assert!(h.default.delete_if_equal("expiring", b"u").await.unwrap());
    }

    /// Of many concurrent `delete_if_equal`s of one entry with its value,
    /// exactly one deletes it. Not a Django port (see `test_delete_if_equal`).
    pub async fn test_delete_if_equal_concurrent(h: &Harness) {
        let caches = std::slice::from_ref(&h.default);
        for round in 0..3 {
            let key = format!("contested-lock-{round}");
            let token = format!("token-{round}");
            h.default.set_bytes(&key, token.clone(), D).await.unwrap();
            assert_eq!(
                concurrent_delete_if_equal(caches, &key, token.as_bytes(), 20).await,
                1,
                "round {round}"
            );
            assert!(!h.default.has_key(&key).await.unwrap());
        }
    }

    /// `has_key` is true for live keys, forever keys and stored `None`s.
    pub async fn test_has_key(h: &Harness) {
        h.default.set("hello1", "goodbye1", D).await.unwrap();
        assert!(h.default.has_key("hello1").await.unwrap());
        assert!(!h.default.has_key("goodbye1").await.unwrap());
        h.default
            .set("no_expiry", "here", Timeout::Forever)
            .await
            .unwrap();
        assert!(h.default.has_key("no_expiry").await.unwrap());
        h.default.set("null", &None::<i64>, D).await.unwrap();
        assert!(h.default.has_key("null").await.unwrap());
    }

    /// Django's `key in cache`: `has_key`, for present, missing and `None` values.
    pub async fn test_in(h: &Harness) {
        h.default.set("hello2", "goodbye2", D).await.unwrap();
        let contains = |key: &'static str| async move { h.default.has_key(key).await.unwrap() };
        assert!(contains("hello2").await);
        assert!(!contains("goodbye2").await);
        h.default.set("null", &None::<String>, D).await.unwrap();
        assert!(contains("null").await);
    }

    /// `incr` adds, also negative deltas; a missing key or a non-integer fails.
    pub async fn test_incr(h: &Harness) {
        h.default.set("answer", &41, D).await.unwrap();
        assert_eq!(h.default.incr("answer", 1).await.unwrap(), 42);
        assert_eq!(get_int(&h.default, "answer").await, Some(42));
        assert_eq!(h.default.incr("answer", 10).await.unwrap(), 52);
        assert_eq!(get_int(&h.default, "answer").await, Some(52));
        assert_eq!(h.default.incr("answer", -10).await.unwrap(), 42);
        for delta in [1, -1] {
            let err = h.default.incr("does_not_exist", delta).await.unwrap_err();
            assert!(
                matches!(err, CacheError::MissingKey { ref key } if key == "does_not_exist"),
                "{err:?}"
            );
        }
        assert!(
            !h.default.has_key("does_not_exist").await.unwrap(),
            "incr must not create"
        );
        h.default.set("null", &None::<i64>, D).await.unwrap();
        let err = h.default.incr("null", 1).await.unwrap_err();
        assert!(matches!(err, CacheError::NotAnInteger { .. }), "{err:?}");
    }

    /// `decr` subtracts; a missing key or a non-integer fails.
    pub async fn test_decr(h: &Harness) {
        h.default.set("answer", &43, D).await.unwrap();
        assert_eq!(h.default.decr("answer", 1).await.unwrap(), 42);
        assert_eq!(get_int(&h.default, "answer").await, Some(42));
        assert_eq!(h.default.decr("answer", 10).await.unwrap(), 32);
        assert_eq!(h.default.decr("answer", -10).await.unwrap(), 42);
        for delta in [1, -1] {
            let err = h.default.decr("does_not_exist", delta).await.unwrap_err();
            assert!(matches!(err, CacheError::MissingKey { .. }), "{err:?}");
        }
        h.default.set("null", &None::<i64>, D).await.unwrap();
        let err = h.default.decr("null", 1).await.unwrap_err();
        assert!(matches!(err, CacheError::NotAnInteger { .. }), "{err:?}");
    }

    /// `close` succeeds and the cache stays usable.
    pub async fn test_close(h: &Harness) {
        h.default.close().await.unwrap();
        h.default
            .set("after_close", "still works", D)
            .await
            .unwrap();
        expect_str(&h.default, "after_close", Some("still works")).await;
    }

    /// Strings, numbers, booleans, lists, tuples, maps and structs round-trip.
    pub async fn test_data_types(h: &Harness) {
        let value = Everything {
            text: "hello".into(),
            number: -1234567890123,
            float: 1.5,
            flag: true,
            list: vec![1, 2, 3],
            pair: ("a".into(), 1),
            map: HashMap::from([("k".into(), vec![Some(true), None])]),
            nothing: None,
        };
        h.default.set("stuff", &value, D).await.unwrap();
        assert_eq!(
            h.default.get::<Everything>("stuff").await.unwrap(),
            Some(value)
        );
        h.default.set("bool", &false, D).await.unwrap();
        assert_eq!(h.default.get::<bool>("bool").await.unwrap(), Some(false));
    }

    /// Non-ASCII keys and values, through set, delete + add, and set_many.
    pub async fn test_unicode(h: &Harness) {
        for (key, value) in unicode_data() {
            h.default.set(key, &value, D).await.unwrap();
            assert_eq!(
                h.default.get::<serde_json::Value>(key).await.unwrap(),
                Some(value)
            );
        }
        for (key, value) in unicode_data() {
            assert!(h.default.delete(key).await.unwrap());
            assert!(h.default.add(key, &value, D).await.unwrap());
            assert_eq!(
                h.default.get::<serde_json::Value>(key).await.unwrap(),
                Some(value)
            );
        }
        for (key, _) in unicode_data() {
            assert!(h.default.delete(key).await.unwrap());
        }
        assert!(
            h.default
                .set_many(unicode_data(), D)
                .await
                .unwrap()
                .is_empty()
        );
        for (key, value) in unicode_data() {
            assert_eq!(
                h.default.get::<serde_json::Value>(key).await.unwrap(),
                Some(value)
            );
        }
    }

    /// Binary values round-trip through the raw API, `add` and `set_many`.
    pub async fn test_binary_string(h: &Harness) {
        let value = binary_value();
        h.default
            .set_bytes("binary1", value.clone(), D)
            .await
            .unwrap();
        assert_eq!(
            h.default.get_bytes("binary1").await.unwrap(),
            Some(value.clone())
        );
        assert!(
            h.default
                .add_bytes("binary1-add", value.clone(), D)
                .await
                .unwrap()
        );
        assert_eq!(
            h.default.get_bytes("binary1-add").await.unwrap(),
            Some(value.clone())
        );
        let as_vec = value.to_vec();
        assert!(
            h.default
                .set_many([("binary1-set_many", &as_vec)], D)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            h.default.get::<Vec<u8>>("binary1-set_many").await.unwrap(),
            Some(as_vec)
        );
    }

    /// A value of half a MiB round-trips whole.
    pub async fn test_large_value(h: &Harness) {
        let value: Bytes = (0..512 * 1024).map(|i: u32| (i % 251) as u8).collect();
        h.default
            .set_bytes("large", value.clone(), D)
            .await
            .unwrap();
        assert_eq!(h.default.get_bytes("large").await.unwrap(), Some(value));
    }

    /// `set_many` stores every pair.
    pub async fn test_set_many(h: &Harness) {
        h.default
            .set_many([("key1", "spam"), ("key2", "eggs")], D)
            .await
            .unwrap();
        expect_str(&h.default, "key1", Some("spam")).await;
        expect_str(&h.default, "key2", Some("eggs")).await;
    }

    /// `set_many` returns no failed keys when all are stored.
    pub async fn test_set_many_returns_empty_list_on_success(h: &Harness) {
        let failing = h
            .default
            .set_many([("key1", "spam"), ("key2", "eggs")], D)
            .await
            .unwrap();
        assert_eq!(failing, Vec::<String>::new());
    }

    /// `set_many` of nothing is `[]`.
    pub async fn test_set_many_empty_data(h: &Harness) {
        let empty: [(&str, &str); 0] = [];
        assert!(h.default.set_many(empty, D).await.unwrap().is_empty());
    }

    /// `delete_many` removes the listed keys only.
    pub async fn test_delete_many(h: &Harness) {
        h.default
            .set_many([("key1", "spam"), ("key2", "eggs"), ("key3", "ham")], D)
            .await
            .unwrap();
        h.default.delete_many(["key1", "key2"]).await.unwrap();
        expect_str(&h.default, "key1", None).await;
        expect_str(&h.default, "key2", None).await;
        expect_str(&h.default, "key3", Some("ham")).await;
    }

    /// `delete_many` of nothing succeeds.
    pub async fn test_delete_many_no_keys(h: &Harness) {
        h.default.delete_many(Vec::<String>::new()).await.unwrap();
    }

    /// `clear` removes the cache's keys (and, where it can select by prefix,
    /// only those: another prefix's keys survive).
    pub async fn test_clear(h: &Harness) {
        h.default.set("key1", "spam", D).await.unwrap();
        h.default
            .with_version(2)
            .set("key2", "eggs", D)
            .await
            .unwrap();
        h.prefix.set("key1", "other cache", D).await.unwrap();
        h.default.clear().await.unwrap();
        expect_str(&h.default, "key1", None).await;
        expect_str(&h.default.with_version(2), "key2", None).await;
        if !h.global_clear {
            expect_str(&h.prefix, "key1", Some("other cache")).await;
        }
    }

    /// `add` of a value that cannot be encoded fails (and stores nothing).
    pub async fn test_add_fail_on_encode_error(h: &Harness) {
        let err = h
            .default
            .add("unserializable", &Unserializable, D)
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                CacheError::Codec {
                    direction: "encoded",
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(!h.default.has_key("unserializable").await.unwrap());
    }

    /// `set` of a value that cannot be encoded fails (and stores nothing).
    pub async fn test_set_fail_on_encode_error(h: &Harness) {
        let err = h
            .default
            .set("unserializable", &Unserializable, D)
            .await
            .unwrap_err();
        assert!(matches!(err, CacheError::Codec { .. }), "{err:?}");
        assert!(!h.default.has_key("unserializable").await.unwrap());
    }
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Everything {
    text: String,
    number: i64,
    float: f64,
    flag: bool,
    list: Vec<u32>,
    pair: (String, i32),
    map: HashMap<String, Vec<Option<bool>>>,
    nothing: Option<String>,
}

fn unicode_data() -> Vec<(&'static str, serde_json::Value)> {
    vec![
        ("ascii", "ascii_value".into()),
        ("unicode_ascii", "Iñtërnâtiônàlizætiøn1".into()),
        ("Iñtërnâtiônàlizætiøn", "Iñtërnâtiônàlizætiøn2".into()),
        ("ascii2", serde_json::json!({"x": 1})),
    ]
}

fn binary_value() -> Bytes {
    // Not UTF-8, with NULs and high bytes, like Django's zlib-compressed value.
    (0..=255u8)
        .cycle()
        .take(1000)
        .map(|b| b.wrapping_mul(31))
        .collect()
}
