//! The conformance suite: Django's `BaseCacheTests`, ported, for every backend.
//!
//! Every built-in backend runs it against a real store, and so can yours:
//!
//! ```
//! // tests/my_backend.rs: the memory backend stands in for yours here.
//! async fn backend() -> tower_cache::DynBackend {
//!     std::sync::Arc::new(tower_cache::backends::MemoryBackend::new())
//! }
//! tower_cache::conformance_suite!(backend);
//! # fn main() {}
//! ```
//!
//! The macro expands to one `#[tokio::test]` per case, named after the Django
//! test it ports (`test_simple`, `test_add`, ...), so `cargo test test_touch`
//! runs one case on every backend. The test crate needs `tokio` with the
//! `macros` and `rt-multi-thread` features.
//!
//! Each case builds a [`Harness`]: caches over the backend with a key prefix
//! unique to the case and the run (Django's `default`, `prefix`, `v2` and
//! `custom_key` aliases), so cases run in parallel against one shared server
//! and leave other data alone. A backend whose `clear` cannot be limited to
//! a prefix (memcached's `flush_all`) passes `global_clear`: `test_clear` then
//! runs alone while every other case waits.
//!
//! The cases are timing-based where Django's are (1 s expiries and 2 s
//! sleeps), since remote stores keep their own clocks.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::backend::{CacheBackend, ClearScope, DynBackend, Expiry};
use crate::error::{CacheError, InvalidKeyReason, Result};
use crate::{Cache, KeyFunction, Timeout};

#[doc(hidden)]
pub use tokio::sync::RwLock as __ClearLock;

/// Runs every conformance case against the backend that the given
/// `async fn() -> DynBackend` builds; see the [module docs](self).
#[macro_export]
macro_rules! conformance_suite {
    ($make:path) => {
        $crate::conformance_suite!(@cases $make, false);
    };
    ($make:path, global_clear) => {
        $crate::conformance_suite!(@cases $make, true);
    };
    (@cases $make:path, $global:expr) => {
        $crate::conformance_suite!(@expand $make, $global;
            test_simple, test_default_used_when_none_is_set, test_add, test_prefix,
            test_non_existent, test_get_many, test_delete, test_delete_nonexistent,
            test_has_key, test_in, test_incr, test_decr, test_close, test_data_types,
            test_expiration, test_touch, test_unicode, test_binary_string, test_large_value,
            test_set_many, test_set_many_returns_empty_list_on_success,
            test_set_many_expiration, test_set_many_empty_data, test_delete_many,
            test_delete_many_no_keys, test_clear, test_long_timeout, test_forever_timeout,
            test_zero_timeout, test_float_timeout, test_invalid_key_characters,
            test_invalid_key_length, test_invalid_with_version_key_length,
            test_cache_versioning_get_set, test_cache_versioning_add,
            test_cache_versioning_has_key, test_cache_versioning_delete,
            test_cache_versioning_incr_decr, test_cache_versioning_get_set_many,
            test_incr_version, test_decr_version, test_custom_key_func,
            test_add_fail_on_encode_error, test_set_fail_on_encode_error, test_get_or_set,
            test_get_or_set_callable, test_get_or_set_version, test_get_or_set_racing,
        );
    };
    (@expand $make:path, $global:expr; $($case:ident),* $(,)?) => {
        static CONFORMANCE_CLEAR_LOCK: $crate::testing::__ClearLock<()> =
            $crate::testing::__ClearLock::const_new(());
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let global_clear: bool = $global;
                let _guard = if global_clear && stringify!($case) == "test_clear" {
                    $crate::testing::ClearGuard::Exclusive(CONFORMANCE_CLEAR_LOCK.write().await)
                } else {
                    $crate::testing::ClearGuard::Shared(CONFORMANCE_CLEAR_LOCK.read().await)
                };
                let harness = $crate::testing::Harness::new($make().await, global_clear);
                $crate::testing::cases::$case(&harness).await;
                harness.clean_up().await;
            }
        )*
    };
}

#[doc(hidden)]
pub enum ClearGuard<'a> {
    Shared(tokio::sync::RwLockReadGuard<'a, ()>),
    Exclusive(tokio::sync::RwLockWriteGuard<'a, ()>),
}

/// The caches one case works with: Django's test aliases over one backend.
#[derive(Debug)]
pub struct Harness {
    /// Unique prefix, version 1 (Django's `default`).
    pub default: Cache,
    /// Another unique prefix (Django's `prefix`).
    pub prefix: Cache,
    /// The default prefix, version 2 (Django's `v2`).
    pub v2: Cache,
    /// `CUSTOM-prefix-version-key` keys (Django's `custom_key`).
    pub custom_key: Cache,
    /// The backend under test.
    pub backend: DynBackend,
    global_clear: bool,
}

impl Harness {
    /// Caches over `backend` with a key prefix no other case or run uses.
    pub fn new(backend: DynBackend, global_clear: bool) -> Harness {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let unique = format!(
            "t{:x}{:x}n{}",
            std::process::id(),
            nanos,
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let build = |prefix: &str| Cache::builder(backend.clone()).key_prefix(prefix);
        Harness {
            default: build(&unique).build(),
            prefix: build(&format!("{unique}cacheprefix")).build(),
            v2: build(&unique).version(2).build(),
            custom_key: build(&unique)
                .key_function(KeyFunction::new(|key, prefix, version| {
                    format!("CUSTOM-{prefix}-{version}-{key}")
                }))
                .build(),
            backend,
            global_clear,
        }
    }

    /// A cache over this backend whose made key is the user's key as is, to
    /// test validation of exactly that key.
    pub fn identity_keys(&self) -> Cache {
        Cache::builder(self.backend.clone())
            .key_function(KeyFunction::new(|key, _, _| key.to_owned()))
            .build()
    }

    /// Removes what the case stored (Django's `tearDown`), unless clearing
    /// would wipe other cases' data too.
    pub async fn clean_up(&self) {
        if !self.global_clear {
            for cache in [&self.default, &self.prefix] {
                let _ = cache.clear().await;
            }
        }
    }
}

/// Runs `tasks` concurrent tasks that each `incr` `key` by one `per_task`
/// times, task `i` through `caches[i % caches.len()]` (several caches over
/// one store stand for several app servers), and returns the final value.
/// The key must hold an integer.
pub async fn concurrent_incr(caches: &[Cache], key: &str, tasks: usize, per_task: usize) -> i64 {
    let handles: Vec<_> = (0..tasks)
        .map(|i| {
            let (cache, key) = (caches[i % caches.len()].clone(), key.to_owned());
            tokio::spawn(async move {
                for _ in 0..per_task {
                    cache.incr(&key, 1).await.expect("incr");
                }
            })
        })
        .collect();
    for handle in handles {
        handle.await.expect("incr task panicked");
    }
    caches[0]
        .get::<i64>(key)
        .await
        .expect("get")
        .expect("counter")
}

/// Runs `tasks` concurrent `add`s of `key`, task `i` through
/// `caches[i % caches.len()]`, and returns how many said they stored.
pub async fn concurrent_add(caches: &[Cache], key: &str, tasks: usize) -> usize {
    let handles: Vec<_> = (0..tasks)
        .map(|i| {
            let (cache, key) = (caches[i % caches.len()].clone(), key.to_owned());
            tokio::spawn(async move { cache.add(&key, &i, Timeout::Default).await.expect("add") })
        })
        .collect();
    let mut winners = 0;
    for handle in handles {
        winners += usize::from(handle.await.expect("add task panicked"));
    }
    winners
}

/// A backend wrapper that counts calls and can make `add` lose every race,
/// as Django's tests do with mocks.
#[derive(Debug)]
pub struct Instrumented {
    inner: DynBackend,
    calls: AtomicUsize,
    add_always_loses: bool,
}

impl Instrumented {
    /// Wraps `inner`; `add_always_loses` makes `add` return `false` without storing.
    pub fn new(inner: DynBackend, add_always_loses: bool) -> Instrumented {
        Instrumented {
            inner,
            calls: AtomicUsize::new(0),
            add_always_loses,
        }
    }

    /// How many backend calls were made.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn count(&self) -> &DynBackend {
        self.calls.fetch_add(1, Ordering::SeqCst);
        &self.inner
    }
}

#[async_trait]
impl CacheBackend for Instrumented {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        self.count().get(key).await
    }
    async fn set(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<()> {
        self.count().set(key, value, expiry).await
    }
    async fn add(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<bool> {
        if self.add_always_loses {
            self.count();
            return Ok(false);
        }
        self.count().add(key, value, expiry).await
    }
    async fn delete(&self, key: &str) -> Result<bool> {
        self.count().delete(key).await
    }
    async fn touch(&self, key: &str, expiry: Expiry) -> Result<bool> {
        self.count().touch(key, expiry).await
    }
    async fn has_key(&self, key: &str) -> Result<bool> {
        self.count().has_key(key).await
    }
    async fn incr(&self, key: &str, delta: i64) -> Result<i64> {
        self.count().incr(key, delta).await
    }
    async fn clear(&self, scope: ClearScope<'_>) -> Result<()> {
        self.count().clear(scope).await
    }
    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        self.count().get_many(keys).await
    }
    async fn set_many(&self, entries: Vec<(String, Bytes)>, expiry: Expiry) -> Result<Vec<String>> {
        self.count().set_many(entries, expiry).await
    }
    async fn delete_many(&self, keys: &[&str]) -> Result<()> {
        self.count().delete_many(keys).await
    }
    async fn close(&self) -> Result<()> {
        self.count().close().await
    }
}

/// A backend whose every operation fails, as a dead server's would: for
/// testing that callers degrade (serve the origin, render the fragment)
/// instead of failing.
#[derive(Debug, Default, Clone, Copy)]
pub struct FailingBackend;

impl FailingBackend {
    fn fail<T>(operation: &'static str) -> Result<T> {
        Err(CacheError::backend(
            "failing",
            operation,
            std::io::Error::new(
                std::io::ErrorKind::ConnectionRefused,
                "the test backend is down",
            ),
        ))
    }
}

#[async_trait]
impl CacheBackend for FailingBackend {
    fn name(&self) -> &'static str {
        "failing"
    }
    async fn get(&self, _: &str) -> Result<Option<Bytes>> {
        Self::fail("get")
    }
    async fn set(&self, _: &str, _: Bytes, _: Expiry) -> Result<()> {
        Self::fail("set")
    }
    async fn add(&self, _: &str, _: Bytes, _: Expiry) -> Result<bool> {
        Self::fail("add")
    }
    async fn delete(&self, _: &str) -> Result<bool> {
        Self::fail("delete")
    }
    async fn touch(&self, _: &str, _: Expiry) -> Result<bool> {
        Self::fail("touch")
    }
    async fn has_key(&self, _: &str) -> Result<bool> {
        Self::fail("has_key")
    }
    async fn incr(&self, _: &str, _: i64) -> Result<i64> {
        Self::fail("incr")
    }
    async fn clear(&self, _: ClearScope<'_>) -> Result<()> {
        Self::fail("clear")
    }
}

/// A value whose serialization always fails (Django's `Unpicklable`).
#[derive(Debug)]
pub struct Unserializable;

impl Serialize for Unserializable {
    fn serialize<S: serde::Serializer>(&self, _: S) -> std::result::Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom(
            "Unserializable cannot be serialized",
        ))
    }
}

/// The cases, one `pub async fn` per Django test. Each panics on failure.
pub mod cases {
    use super::*;

    const D: Timeout = Timeout::Default;

    fn secs(n: u64) -> Timeout {
        Timeout::After(Duration::from_secs(n))
    }

    async fn sleep_secs(n: u64) {
        tokio::time::sleep(Duration::from_secs(n)).await;
    }

    async fn expect_str(cache: &Cache, key: &str, want: Option<&str>) {
        let got = cache.get::<String>(key).await.expect("get");
        assert_eq!(got.as_deref(), want, "{key}");
    }

    async fn get_int(cache: &Cache, key: &str) -> Option<i64> {
        cache.get::<i64>(key).await.expect("get")
    }

    fn map<V: Clone>(pairs: &[(&str, V)]) -> HashMap<String, V> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

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

    /// Entries expire; an expired key can be added again and is not "had".
    pub async fn test_expiration(h: &Harness) {
        h.default
            .set("expire1", "very quickly", secs(1))
            .await
            .unwrap();
        h.default
            .set("expire2", "very quickly", secs(1))
            .await
            .unwrap();
        h.default
            .set("expire3", "very quickly", secs(1))
            .await
            .unwrap();
        sleep_secs(2).await;
        expect_str(&h.default, "expire1", None).await;
        assert!(h.default.add("expire2", "newvalue", D).await.unwrap());
        expect_str(&h.default, "expire2", Some("newvalue")).await;
        assert!(!h.default.has_key("expire3").await.unwrap());
    }

    /// `touch` gives a live key a new lifetime, the default one when asked;
    /// a missing key is not touched.
    pub async fn test_touch(h: &Harness) {
        h.default
            .set("expire1", "very quickly", secs(1))
            .await
            .unwrap();
        assert!(h.default.touch("expire1", secs(4)).await.unwrap());
        sleep_secs(2).await;
        assert!(h.default.has_key("expire1").await.unwrap());
        sleep_secs(3).await;
        assert!(!h.default.has_key("expire1").await.unwrap());
        h.default
            .set("expire2", "very quickly", secs(1))
            .await
            .unwrap();
        assert!(h.default.touch("expire2", D).await.unwrap());
        sleep_secs(2).await;
        assert!(h.default.has_key("expire2").await.unwrap());
        assert!(!h.default.touch("nonexistent", D).await.unwrap());
    }

    fn unicode_data() -> Vec<(&'static str, serde_json::Value)> {
        vec![
            ("ascii", "ascii_value".into()),
            ("unicode_ascii", "Iñtërnâtiônàlizætiøn1".into()),
            ("Iñtërnâtiônàlizætiøn", "Iñtërnâtiônàlizætiøn2".into()),
            ("ascii2", serde_json::json!({"x": 1})),
        ]
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

    fn binary_value() -> Bytes {
        // Not UTF-8, with NULs and high bytes, like Django's zlib-compressed value.
        (0..=255u8)
            .cycle()
            .take(1000)
            .map(|b| b.wrapping_mul(31))
            .collect()
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

    /// `set_many` applies the timeout to every entry.
    pub async fn test_set_many_expiration(h: &Harness) {
        h.default
            .set_many([("key1", "spam"), ("key2", "eggs")], secs(1))
            .await
            .unwrap();
        sleep_secs(2).await;
        expect_str(&h.default, "key1", None).await;
        expect_str(&h.default, "key2", None).await;
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

    /// Timeouts over 30 days (memcached's relative/absolute boundary) work.
    pub async fn test_long_timeout(h: &Harness) {
        let long = Timeout::After(Duration::from_secs(60 * 60 * 24 * 30 + 1));
        h.default.set("key1", "eggs", long).await.unwrap();
        expect_str(&h.default, "key1", Some("eggs")).await;
        assert!(h.default.add("key2", "ham", long).await.unwrap());
        expect_str(&h.default, "key2", Some("ham")).await;
        h.default
            .set_many([("key3", "sausage"), ("key4", "lobster bisque")], long)
            .await
            .unwrap();
        expect_str(&h.default, "key3", Some("sausage")).await;
        expect_str(&h.default, "key4", Some("lobster bisque")).await;
    }

    /// `Forever` works for set, add, set_many and touch.
    pub async fn test_forever_timeout(h: &Harness) {
        let forever = Timeout::Forever;
        h.default.set("key1", "eggs", forever).await.unwrap();
        expect_str(&h.default, "key1", Some("eggs")).await;
        assert!(h.default.add("key2", "ham", forever).await.unwrap());
        expect_str(&h.default, "key2", Some("ham")).await;
        assert!(!h.default.add("key1", "new eggs", forever).await.unwrap());
        expect_str(&h.default, "key1", Some("eggs")).await;
        h.default
            .set_many([("key3", "sausage"), ("key4", "lobster bisque")], forever)
            .await
            .unwrap();
        expect_str(&h.default, "key3", Some("sausage")).await;
        expect_str(&h.default, "key4", Some("lobster bisque")).await;
        h.default
            .set("key5", "belgian fries", secs(1))
            .await
            .unwrap();
        assert!(h.default.touch("key5", forever).await.unwrap());
        sleep_secs(2).await;
        expect_str(&h.default, "key5", Some("belgian fries")).await;
    }

    /// A zero timeout keeps nothing: set, add (which still says `true`),
    /// set_many, and touch (which removes the key).
    pub async fn test_zero_timeout(h: &Harness) {
        let zero = Timeout::ZERO;
        h.default.set("key1", "eggs", zero).await.unwrap();
        expect_str(&h.default, "key1", None).await;
        assert!(h.default.add("key2", "ham", zero).await.unwrap());
        expect_str(&h.default, "key2", None).await;
        h.default
            .set_many([("key3", "sausage"), ("key4", "lobster bisque")], zero)
            .await
            .unwrap();
        expect_str(&h.default, "key3", None).await;
        expect_str(&h.default, "key4", None).await;
        h.default
            .set("key5", "belgian fries", secs(1))
            .await
            .unwrap();
        assert!(h.default.touch("key5", zero).await.unwrap());
        expect_str(&h.default, "key5", None).await;
        // A zero-timeout set also removes what was there.
        h.default.set("key6", "old", D).await.unwrap();
        h.default
            .set("key6", "new", Timeout::from_secs(-1))
            .await
            .unwrap();
        expect_str(&h.default, "key6", None).await;
    }

    /// Fractional timeouts are accepted.
    pub async fn test_float_timeout(h: &Harness) {
        h.default
            .set("key1", "spam", Timeout::from_secs_f64(100.2))
            .await
            .unwrap();
        expect_str(&h.default, "key1", Some("spam")).await;
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

    /// Versions read and write independent entries, both per call and per cache.
    pub async fn test_cache_versioning_get_set(h: &Harness) {
        let (c, v2) = (&h.default, &h.v2);
        // set, using default version = 1
        c.set("answer1", &42, D).await.unwrap();
        assert_eq!(get_int(c, "answer1").await, Some(42));
        assert_eq!(get_int(&c.with_version(1), "answer1").await, Some(42));
        assert_eq!(get_int(&c.with_version(2), "answer1").await, None);
        assert_eq!(get_int(v2, "answer1").await, None);
        assert_eq!(get_int(&v2.with_version(1), "answer1").await, Some(42));
        assert_eq!(get_int(&v2.with_version(2), "answer1").await, None);
        // set, default version = 1, but manually override version = 2
        c.with_version(2).set("answer2", &42, D).await.unwrap();
        assert_eq!(get_int(c, "answer2").await, None);
        assert_eq!(get_int(&c.with_version(1), "answer2").await, None);
        assert_eq!(get_int(&c.with_version(2), "answer2").await, Some(42));
        assert_eq!(get_int(v2, "answer2").await, Some(42));
        assert_eq!(get_int(&v2.with_version(1), "answer2").await, None);
        assert_eq!(get_int(&v2.with_version(2), "answer2").await, Some(42));
        // v2 set, using default version = 2
        v2.set("answer3", &42, D).await.unwrap();
        assert_eq!(get_int(c, "answer3").await, None);
        assert_eq!(get_int(&c.with_version(1), "answer3").await, None);
        assert_eq!(get_int(&c.with_version(2), "answer3").await, Some(42));
        assert_eq!(get_int(v2, "answer3").await, Some(42));
        assert_eq!(get_int(&v2.with_version(1), "answer3").await, None);
        // v2 set, default version = 2, but manually override version = 1
        v2.with_version(1).set("answer4", &42, D).await.unwrap();
        assert_eq!(get_int(c, "answer4").await, Some(42));
        assert_eq!(get_int(&c.with_version(1), "answer4").await, Some(42));
        assert_eq!(get_int(&c.with_version(2), "answer4").await, None);
        assert_eq!(get_int(v2, "answer4").await, None);
        assert_eq!(get_int(&v2.with_version(1), "answer4").await, Some(42));
    }

    /// `add` respects versions.
    pub async fn test_cache_versioning_add(h: &Harness) {
        let (c, v2) = (&h.default, &h.v2);
        assert!(c.with_version(2).add("answer1", &42, D).await.unwrap());
        assert_eq!(get_int(&c.with_version(2), "answer1").await, Some(42));
        assert!(!c.with_version(2).add("answer1", &37, D).await.unwrap());
        assert_eq!(get_int(&c.with_version(2), "answer1").await, Some(42));
        assert!(c.with_version(1).add("answer1", &37, D).await.unwrap());
        assert_eq!(get_int(&c.with_version(1), "answer1").await, Some(37));
        assert_eq!(get_int(&c.with_version(2), "answer1").await, Some(42));
        // v2 add, using default version = 2
        assert!(v2.add("answer2", &42, D).await.unwrap());
        assert!(!v2.add("answer2", &37, D).await.unwrap());
        assert_eq!(get_int(&c.with_version(2), "answer2").await, Some(42));
        assert_eq!(get_int(&c.with_version(1), "answer2").await, None);
        assert!(v2.with_version(1).add("answer2", &37, D).await.unwrap());
        assert_eq!(get_int(&c.with_version(1), "answer2").await, Some(37));
        assert_eq!(get_int(&c.with_version(2), "answer2").await, Some(42));
        // v2 add, default version = 2, but manually override version = 1
        assert!(v2.with_version(1).add("answer3", &42, D).await.unwrap());
        assert!(!v2.with_version(1).add("answer3", &37, D).await.unwrap());
        assert_eq!(get_int(&c.with_version(1), "answer3").await, Some(42));
        assert_eq!(get_int(&c.with_version(2), "answer3").await, None);
        assert!(v2.add("answer3", &37, D).await.unwrap());
        assert_eq!(get_int(&c.with_version(1), "answer3").await, Some(42));
        assert_eq!(get_int(&c.with_version(2), "answer3").await, Some(37));
    }

    /// `has_key` respects versions.
    pub async fn test_cache_versioning_has_key(h: &Harness) {
        let (c, v2) = (&h.default, &h.v2);
        c.set("answer1", &42, D).await.unwrap();
        assert!(c.has_key("answer1").await.unwrap());
        assert!(c.with_version(1).has_key("answer1").await.unwrap());
        assert!(!c.with_version(2).has_key("answer1").await.unwrap());
        assert!(!v2.has_key("answer1").await.unwrap());
        assert!(v2.with_version(1).has_key("answer1").await.unwrap());
        assert!(!v2.with_version(2).has_key("answer1").await.unwrap());
    }

    /// `delete` removes only the targeted version.
    pub async fn test_cache_versioning_delete(h: &Harness) {
        let (c, v2) = (&h.default, &h.v2);
        let (c1, c2) = (c.with_version(1), c.with_version(2));
        for key in ["answer1", "answer2", "answer3", "answer4"] {
            c1.set(key, &37, D).await.unwrap();
            c2.set(key, &42, D).await.unwrap();
        }
        assert!(c.delete("answer1").await.unwrap());
        assert_eq!(get_int(&c1, "answer1").await, None);
        assert_eq!(get_int(&c2, "answer1").await, Some(42));
        assert!(c2.delete("answer2").await.unwrap());
        assert_eq!(get_int(&c1, "answer2").await, Some(37));
        assert_eq!(get_int(&c2, "answer2").await, None);
        assert!(v2.delete("answer3").await.unwrap());
        assert_eq!(get_int(&c1, "answer3").await, Some(37));
        assert_eq!(get_int(&c2, "answer3").await, None);
        assert!(v2.with_version(1).delete("answer4").await.unwrap());
        assert_eq!(get_int(&c1, "answer4").await, None);
        assert_eq!(get_int(&c2, "answer4").await, Some(42));
    }

    /// `incr`/`decr` change only the targeted version.
    pub async fn test_cache_versioning_incr_decr(h: &Harness) {
        let (c, v2) = (&h.default, &h.v2);
        let (c1, c2) = (c.with_version(1), c.with_version(2));
        for key in ["answer1", "answer2", "answer3", "answer4"] {
            c1.set(key, &37, D).await.unwrap();
            c2.set(key, &42, D).await.unwrap();
        }
        assert_eq!(c.incr("answer1", 1).await.unwrap(), 38);
        assert_eq!(get_int(&c2, "answer1").await, Some(42));
        assert_eq!(c.decr("answer1", 1).await.unwrap(), 37);
        assert_eq!(c2.incr("answer2", 1).await.unwrap(), 43);
        assert_eq!(get_int(&c1, "answer2").await, Some(37));
        assert_eq!(c2.decr("answer2", 1).await.unwrap(), 42);
        assert_eq!(v2.incr("answer3", 1).await.unwrap(), 43);
        assert_eq!(get_int(&c1, "answer3").await, Some(37));
        assert_eq!(v2.decr("answer3", 1).await.unwrap(), 42);
        assert_eq!(v2.with_version(1).incr("answer4", 1).await.unwrap(), 38);
        assert_eq!(get_int(&c2, "answer4").await, Some(42));
        assert_eq!(v2.with_version(1).decr("answer4", 1).await.unwrap(), 37);
        assert_eq!(get_int(&c1, "answer4").await, Some(37));
    }

    /// `get_many`/`set_many` respect versions in every combination.
    pub async fn test_cache_versioning_get_set_many(h: &Harness) {
        let (c, v2) = (&h.default, &h.v2);
        let want = map(&[("ford1", 37), ("arthur1", 42)]);
        let many = |cache: Cache| async move {
            cache
                .get_many::<i64, _, _>(["ford1", "arthur1"])
                .await
                .unwrap()
        };
        let none = HashMap::new();
        // set, using default version = 1
        c.set_many([("ford1", 37), ("arthur1", 42)], D)
            .await
            .unwrap();
        assert_eq!(many(c.clone()).await, want);
        assert_eq!(many(c.with_version(1)).await, want);
        assert_eq!(many(c.with_version(2)).await, none);
        assert_eq!(many(v2.clone()).await, none);
        assert_eq!(many(v2.with_version(1)).await, want);
        assert_eq!(many(v2.with_version(2)).await, none);
        c.delete_many(["ford1", "arthur1"]).await.unwrap();
        // set, default version = 1, but manually override version = 2
        c.with_version(2)
            .set_many([("ford1", 37), ("arthur1", 42)], D)
            .await
            .unwrap();
        assert_eq!(many(c.clone()).await, none);
        assert_eq!(many(c.with_version(2)).await, want);
        assert_eq!(many(v2.clone()).await, want);
        assert_eq!(many(v2.with_version(1)).await, none);
        v2.delete_many(["ford1", "arthur1"]).await.unwrap();
        // v2 set, using default version = 2
        v2.set_many([("ford1", 37), ("arthur1", 42)], D)
            .await
            .unwrap();
        assert_eq!(many(c.clone()).await, none);
        assert_eq!(many(c.with_version(2)).await, want);
        assert_eq!(many(v2.clone()).await, want);
        v2.delete_many(["ford1", "arthur1"]).await.unwrap();
        // v2 set, default version = 2, but manually override version = 1
        v2.with_version(1)
            .set_many([("ford1", 37), ("arthur1", 42)], D)
            .await
            .unwrap();
        assert_eq!(many(c.clone()).await, want);
        assert_eq!(many(c.with_version(2)).await, none);
        assert_eq!(many(v2.clone()).await, none);
        assert_eq!(many(v2.with_version(1)).await, want);
    }

    /// `incr_version` moves an entry to the next version.
    pub async fn test_incr_version(h: &Harness) {
        let (c, v2) = (&h.default, &h.v2);
        let (c2, c3) = (c.with_version(2), c.with_version(3));
        c2.set("answer", &42, D).await.unwrap();
        assert_eq!(get_int(c, "answer").await, None);
        assert_eq!(get_int(&c2, "answer").await, Some(42));
        assert_eq!(get_int(&c3, "answer").await, None);
        assert_eq!(c2.incr_version("answer", 1).await.unwrap(), 3);
        assert_eq!(get_int(&c2, "answer").await, None);
        assert_eq!(get_int(&c3, "answer").await, Some(42));

        v2.set("answer2", &42, D).await.unwrap();
        assert_eq!(get_int(v2, "answer2").await, Some(42));
        assert_eq!(v2.incr_version("answer2", 1).await.unwrap(), 3);
        assert_eq!(get_int(v2, "answer2").await, None);
        assert_eq!(get_int(&v2.with_version(3), "answer2").await, Some(42));

        let err = c.incr_version("does_not_exist", 1).await.unwrap_err();
        assert!(matches!(err, CacheError::MissingKey { ref key } if key == "does_not_exist"));

        c.set("null", &None::<i64>, D).await.unwrap();
        assert_eq!(c.incr_version("null", 1).await.unwrap(), 2);
        assert_eq!(c2.get::<Option<i64>>("null").await.unwrap(), Some(None));
    }

    /// `decr_version` moves an entry to the previous version.
    pub async fn test_decr_version(h: &Harness) {
        let (c, v2) = (&h.default, &h.v2);
        let (c1, c2) = (c.with_version(1), c.with_version(2));
        c2.set("answer", &42, D).await.unwrap();
        assert_eq!(c2.decr_version("answer", 1).await.unwrap(), 1);
        assert_eq!(get_int(&c1, "answer").await, Some(42));
        assert_eq!(get_int(&c2, "answer").await, None);

        v2.set("answer2", &42, D).await.unwrap();
        assert_eq!(v2.decr_version("answer2", 1).await.unwrap(), 1);
        assert_eq!(get_int(v2, "answer2").await, None);
        assert_eq!(get_int(&v2.with_version(1), "answer2").await, Some(42));

        let err = c2.decr_version("does_not_exist", 1).await.unwrap_err();
        assert!(matches!(err, CacheError::MissingKey { .. }));

        c2.set("null", &None::<i64>, D).await.unwrap();
        assert_eq!(c2.decr_version("null", 1).await.unwrap(), 1);
        assert_eq!(c1.get::<Option<i64>>("null").await.unwrap(), Some(None));
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

    /// `get_or_set` stores and returns on a miss; a `None` is stored too.
    pub async fn test_get_or_set(h: &Harness) {
        assert_eq!(get_int(&h.default, "projector").await, None);
        assert_eq!(
            h.default
                .get_or_set_value("projector", 42, D)
                .await
                .unwrap(),
            42
        );
        assert_eq!(get_int(&h.default, "projector").await, Some(42));
        assert_eq!(
            h.default
                .get_or_set_value("null", None::<i64>, D)
                .await
                .unwrap(),
            None
        );
        // A stored None is a hit: the default is not returned.
        assert_eq!(h.default.get_or("null", Some(7)).await.unwrap(), None);
    }

    /// A callable is only called on a miss, and its value is stored.
    pub async fn test_get_or_set_callable(h: &Harness) {
        let calls = AtomicUsize::new(0);
        let make = || async {
            calls.fetch_add(1, Ordering::SeqCst);
            "value".to_owned()
        };
        assert_eq!(
            h.default.get_or_set("mykey", make, D).await.unwrap(),
            "value"
        );
        assert_eq!(
            h.default.get_or_set("mykey", make, D).await.unwrap(),
            "value"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(
            h.default
                .get_or_set_value("mykey", "other".to_owned(), D)
                .await
                .unwrap(),
            "value"
        );
        let none = h
            .default
            .get_or_set("null", || async { None::<String> }, D)
            .await
            .unwrap();
        assert_eq!(none, None);
        assert_eq!(
            h.default.get::<Option<String>>("null").await.unwrap(),
            Some(None)
        );
    }

    /// `get_or_set` respects versions.
    pub async fn test_get_or_set_version(h: &Harness) {
        let c = &h.default;
        assert_eq!(
            c.with_version(2)
                .get_or_set_value("brian", 1979, D)
                .await
                .unwrap(),
            1979
        );
        assert_eq!(get_int(&c.with_version(1), "brian").await, None);
        assert_eq!(
            c.with_version(1)
                .get_or_set_value("brian", 42, D)
                .await
                .unwrap(),
            42
        );
        assert_eq!(
            c.with_version(2)
                .get_or_set_value("brian", 1979, D)
                .await
                .unwrap(),
            1979
        );
        assert_eq!(get_int(&c.with_version(3), "brian").await, None);
    }

    /// When `add` loses the race and nothing is readable, `get_or_set`
    /// returns the computed value.
    pub async fn test_get_or_set_racing(h: &Harness) {
        let losing = Arc::new(Instrumented::new(h.backend.clone(), true));
        let cache = Cache::builder(losing)
            .key_prefix(h.default.key_prefix())
            .build();
        assert_eq!(
            cache
                .get_or_set_value("key", "default".to_owned(), D)
                .await
                .unwrap(),
            "default"
        );
        // And when another writer won, its value is what comes back.
        h.default.set("won", "theirs", D).await.unwrap();
        let racing = Cache::builder(Arc::new(Instrumented::new(h.backend.clone(), true)))
            .key_prefix(h.default.key_prefix())
            .build();
        let got = racing
            .try_get_or_set(
                "won",
                || async { Ok::<_, CacheError>("mine".to_owned()) },
                D,
            )
            .await
            .unwrap();
        assert_eq!(got, "theirs");
    }
}
