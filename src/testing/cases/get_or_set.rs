//! `get_or_set`: misses, callables, versions and lost races.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::support::*;
use crate::Cache;
use crate::error::CacheError;
use crate::testing::Instrumented;
use crate::testing::harness::cases;

cases! {
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
