//! The dummy backend: a port of Django's `DummyCacheTests` (and the async
//! `AsyncDummyCacheTests`, which are the same here).

use std::sync::Arc;

use tower_cache::backends::DummyBackend;
use tower_cache::{Cache, CacheError, KeyFunction, Timeout};

const D: Timeout = Timeout::Default;

fn cache() -> Cache {
    Cache::new(Arc::new(DummyBackend))
}

#[tokio::test]
async fn test_simple() {
    let cache = cache();
    cache.set("key", "value", D).await.unwrap();
    assert_eq!(cache.get::<String>("key").await.unwrap(), None);
}

#[tokio::test]
async fn test_add() {
    let cache = cache();
    assert!(cache.add("addkey1", "value", D).await.unwrap());
    assert!(cache.add("addkey1", "newvalue", D).await.unwrap());
    assert_eq!(cache.get::<String>("addkey1").await.unwrap(), None);
}

#[tokio::test]
async fn test_non_existent() {
    let cache = cache();
    assert_eq!(cache.get::<String>("does_not_exist").await.unwrap(), None);
    assert_eq!(
        cache
            .get_or("does_not_exist", "bang!".to_owned())
            .await
            .unwrap(),
        "bang!"
    );
}

#[tokio::test]
async fn test_get_many() {
    let cache = cache();
    cache.set_many([("a", "a"), ("b", "b")], D).await.unwrap();
    let found = cache
        .get_many::<String, _, _>(["a", "c", "d"])
        .await
        .unwrap();
    assert!(found.is_empty());
    let found = cache
        .get_many::<String, _, _>(["a", "b", "e"])
        .await
        .unwrap();
    assert!(found.is_empty());
}

#[tokio::test]
async fn test_get_many_invalid_key() {
    let err = cache()
        .get_many::<String, _, _>(["key with spaces"])
        .await
        .unwrap_err();
    assert!(
        matches!(err, CacheError::InvalidKey { ref key, .. } if key == ":1:key with spaces"),
        "{err}"
    );
}

#[tokio::test]
async fn test_delete() {
    let cache = cache();
    cache.set("key1", "spam", D).await.unwrap();
    assert!(!cache.delete("key1").await.unwrap());
    assert_eq!(cache.get::<String>("key1").await.unwrap(), None);
}

/// Not a Django port: nothing is stored, so nothing is ever equal.
#[tokio::test]
async fn delete_if_equal_deletes_nothing() {
    let cache = cache();
    cache.set_bytes("key1", &b"spam"[..], D).await.unwrap();
    assert!(!cache.delete_if_equal("key1", b"spam").await.unwrap());
    assert!(matches!(
        cache.delete_if_equal("key with spaces", b"spam").await,
        Err(CacheError::InvalidKey { .. })
    ));
}

#[tokio::test]
async fn test_has_key() {
    let cache = cache();
    cache.set("hello1", "goodbye1", D).await.unwrap();
    assert!(!cache.has_key("hello1").await.unwrap());
    assert!(!cache.has_key("goodbye1").await.unwrap());
}

#[tokio::test]
async fn test_in() {
    let cache = cache();
    cache.set("hello2", "goodbye2", D).await.unwrap();
    assert!(!cache.has_key("hello2").await.unwrap());
}

#[tokio::test]
async fn test_incr() {
    let cache = cache();
    cache.set("answer", &42, D).await.unwrap();
    for key in ["answer", "does_not_exist"] {
        let err = cache.incr(key, 1).await.unwrap_err();
        assert!(
            matches!(err, CacheError::MissingKey { key: ref k } if k == key),
            "{err}"
        );
    }
}

#[tokio::test]
async fn test_decr() {
    let cache = cache();
    cache.set("answer", &42, D).await.unwrap();
    for key in ["answer", "does_not_exist"] {
        let err = cache.decr(key, 1).await.unwrap_err();
        assert!(matches!(err, CacheError::MissingKey { .. }), "{err}");
    }
}

#[tokio::test]
async fn test_touch() {
    let cache = cache();
    cache.set("key", "value", D).await.unwrap();
    assert!(!cache.touch("key", D).await.unwrap());
}

#[tokio::test]
async fn test_data_types() {
    let cache = cache();
    let stuff = serde_json::json!({"string": "this is a string", "int": 42, "list": [1, 2, 3, 4]});
    cache.set("stuff", &stuff, D).await.unwrap();
    assert_eq!(cache.get::<serde_json::Value>("stuff").await.unwrap(), None);
}

#[tokio::test]
async fn test_expiration() {
    let cache = cache();
    cache
        .set("expire1", "very quickly", std::time::Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(cache.get::<String>("expire1").await.unwrap(), None);
    assert!(cache.add("expire2", "newvalue", D).await.unwrap());
    assert_eq!(cache.get::<String>("expire2").await.unwrap(), None);
    assert!(!cache.has_key("expire3").await.unwrap());
}

#[tokio::test]
async fn test_unicode() {
    let cache = cache();
    for key in ["ascii", "unicode_ascii", "Iñtërnâtiônàlizætiøn"] {
        cache.set(key, "Iñtërnâtiônàlizætiøn2", D).await.unwrap();
        assert_eq!(cache.get::<String>(key).await.unwrap(), None);
    }
}

#[tokio::test]
async fn test_set_many() {
    let cache = cache();
    assert!(
        cache
            .set_many([("a", 1), ("b", 2)], D)
            .await
            .unwrap()
            .is_empty()
    );
    let versioned = cache.with_version(1);
    assert!(
        versioned
            .set_many([("a", 1), ("b", 2)], std::time::Duration::from_secs(2))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn test_set_many_invalid_key() {
    let err = cache()
        .set_many([("key with spaces", "foo")], D)
        .await
        .unwrap_err();
    assert!(matches!(err, CacheError::InvalidKey { .. }), "{err}");
}

#[tokio::test]
async fn test_delete_many() {
    cache().delete_many(["a", "b"]).await.unwrap();
}

#[tokio::test]
async fn test_delete_many_invalid_key() {
    let err = cache().delete_many(["key with spaces"]).await.unwrap_err();
    assert!(matches!(err, CacheError::InvalidKey { .. }), "{err}");
}

#[tokio::test]
async fn test_clear() {
    cache().clear().await.unwrap();
}

#[tokio::test]
async fn test_close() {
    cache().close().await.unwrap();
}

#[tokio::test]
async fn test_incr_version() {
    let cache = cache();
    cache.set("answer", &42, D).await.unwrap();
    for version in [1, 2] {
        let err = cache
            .with_version(version)
            .incr_version("answer", 1)
            .await
            .unwrap_err();
        assert!(matches!(err, CacheError::MissingKey { .. }), "{err}");
        let err = cache
            .with_version(version)
            .incr_version("does_not_exist", 1)
            .await
            .unwrap_err();
        assert!(matches!(err, CacheError::MissingKey { .. }), "{err}");
    }
}

#[tokio::test]
async fn test_decr_version() {
    let cache = cache();
    cache.set("answer", &42, D).await.unwrap();
    for version in [1, 2] {
        let err = cache
            .with_version(version)
            .decr_version("answer", 1)
            .await
            .unwrap_err();
        assert!(matches!(err, CacheError::MissingKey { .. }), "{err}");
    }
}

#[tokio::test]
async fn test_get_or_set() {
    let cache = cache();
    assert_eq!(
        cache
            .get_or_set_value("mykey", "default".to_owned(), D)
            .await
            .unwrap(),
        "default"
    );
    assert_eq!(
        cache
            .get_or_set_value("mykey", None::<String>, D)
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn test_get_or_set_callable() {
    let cache = cache();
    let value = cache
        .get_or_set("mykey", || async { "default".to_owned() }, D)
        .await
        .unwrap();
    assert_eq!(value, "default");
}

#[tokio::test]
async fn validates_keys_like_every_backend() {
    // Django's dummy cache still warns about invalid keys; here it rejects them.
    let cache = Cache::builder(Arc::new(DummyBackend))
        .key_function(KeyFunction::new(|key, _, _| key.to_owned()))
        .build();
    let long = "a".repeat(251);
    assert!(matches!(
        cache.set(&long, "v", D).await,
        Err(CacheError::InvalidKey { .. })
    ));
}
