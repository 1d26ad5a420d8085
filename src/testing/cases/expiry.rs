//! Timeouts: expiry, `touch`, and long, forever, zero and fractional timeouts.

use std::time::Duration;

use super::support::*;
use crate::Timeout;
use crate::testing::harness::cases;

cases! {
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

    /// `get_with_ttl` and `get_many_with_ttl` give the value with what is
    /// left of its lifetime, never more (or an unknown lifetime, `None`,
    /// which the default implementation gives); nothing for a missing key.
    pub async fn test_get_with_ttl(h: &Harness) {
        let key = |k: &str| h.default.make_key(k).unwrap();
        h.default.set("ten", "spam", secs(10)).await.unwrap();
        h.default.set("forever", "eggs", Timeout::Forever).await.unwrap();
        let (ten, forever, missing) = (key("ten"), key("forever"), key("missing"));
        let check_ten = |found: Option<(bytes::Bytes, Option<Duration>)>| {
            let (value, left) = found.expect("a live entry");
            assert_eq!(value, &b"\"spam\""[..]);
            if let Some(left) = left {
                assert!(left <= Duration::from_secs(10), "{left:?} left of 10 s");
                assert!(left >= Duration::from_secs(7), "{left:?} left of 10 s");
            }
        };
        check_ten(h.backend.get_with_ttl(&ten).await.unwrap());
        let (value, left) = h.backend.get_with_ttl(&forever).await.unwrap().unwrap();
        assert_eq!((&value[..], left), (&b"\"eggs\""[..], None));
        assert_eq!(h.backend.get_with_ttl(&missing).await.unwrap(), None);

        let mut many = h
            .backend
            .get_many_with_ttl(&[&ten, &missing, &forever])
            .await
            .unwrap();
        assert_eq!(many.len(), 3);
        let (value, left) = many.pop().unwrap().unwrap();
        assert_eq!((&value[..], left), (&b"\"eggs\""[..], None));
        assert_eq!(many.pop().unwrap(), None);
        check_ten(many.pop().unwrap());
        assert!(h.backend.get_many_with_ttl(&[]).await.unwrap().is_empty());
    }
}
