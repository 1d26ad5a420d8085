//! Versions: per-call and per-cache versions, `incr_version` and `decr_version`.

use std::collections::HashMap;

use super::support::*;
use crate::Cache;
use crate::error::CacheError;
use crate::testing::harness::cases;

cases! {
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
}
