//! memcached key injection: keys with white space, CR/LF, control
//! characters or over 250 bytes. memcached's text protocol ends a command
//! at CR LF and splits it at spaces, so such a key, sent as is, could end
//! the command early and start another (`set victim 0 0 1`). Every `Cache`
//! operation refuses such keys before any I/O (Django's memcached
//! `validate_key` raises `InvalidCacheKey`; tower-cache refuses them on
//! every backend), and the memcached backend itself sends any key it is
//! given as one token (base64 with the meta `b` flag), so not even a
//! backend called directly can be made to send a second command.
//!
//! Against the real server of MEMCACHED_URL (`./scripts/test` starts one).

use std::fmt::Debug;
use std::time::Duration;

use bytes::Bytes;
use tower_cache::{Cache, CacheError, DynBackend, KeyFunction, Timeout};

use crate::common::{backend_from_env, memcached_command, unique};

async fn memcached() -> DynBackend {
    backend_from_env("MEMCACHED_URL").await
}

/// Whether memcached itself holds `key` (asked over a connection of its own).
fn server_holds(key: &str) -> bool {
    let answer = memcached_command(&format!("get {key}\r\n"));
    assert!(answer == "END" || answer.starts_with("VALUE "), "{answer}");
    answer != "END"
}

/// `result` is the key error, naming the key as made.
fn refused<T: Debug>(operation: &str, made: &str, result: tower_cache::Result<T>) {
    match result {
        Err(error @ CacheError::InvalidKey { .. }) => {
            let message = error.to_string();
            assert!(
                message.contains(&format!("{made:?}")),
                "{operation}: {message}"
            );
        }
        other => panic!("{operation} of {made:?} was not refused: {other:?}"),
    }
}

/// Keys that would break the text protocol, each with what a successful
/// injection would create (`set <planted> 0 0 1`).
fn hostile_keys(planted: &str) -> Vec<String> {
    vec![
        format!("a\r\nset {planted} 0 0 1\r\nx"),
        format!("a\nset {planted} 0 0 1\nx"),
        format!("a set {planted} 0 0 1"),
        format!("a\0{planted}"),
        format!("a\t{planted}"),
        format!("a\u{7f}{planted}"),
        format!("a\u{85}{planted}"),
        "k".repeat(251),
        // 248 characters plus `:1:` is 251 (Django's
        // test_invalid_with_version_key_length).
        "k".repeat(248),
    ]
}

/// Attack: each hostile key through every `Cache` operation. Each is
/// refused with the key error, and the server holds neither the planted
/// key nor anything under the hostile one.
#[tokio::test]
async fn hostile_keys_are_refused_by_every_cache_operation() {
    let cache = Cache::new(memcached().await);
    let planted = unique("planted");
    let second = Timeout::from(Duration::from_secs(60));
    for key in hostile_keys(&planted) {
        let made = format!(":1:{key}");
        let k = key.as_str();
        refused("get", &made, cache.get::<i64>(k).await);
        refused("get_bytes", &made, cache.get_bytes(k).await);
        refused("get_or", &made, cache.get_or(k, 0).await);
        refused("has_key", &made, cache.has_key(k).await);
        refused("set", &made, cache.set(k, &1, second).await);
        refused("set_bytes", &made, cache.set_bytes(k, "x", second).await);
        refused("add", &made, cache.add(k, &1, second).await);
        refused("add_bytes", &made, cache.add_bytes(k, "x", second).await);
        refused("delete", &made, cache.delete(k).await);
        refused(
            "delete_if_equal",
            &made,
            cache.delete_if_equal(k, b"x").await,
        );
        refused("touch", &made, cache.touch(k, second).await);
        refused("incr", &made, cache.incr(k, 1).await);
        refused("decr", &made, cache.decr(k, 1).await);
        refused("incr_version", &made, cache.incr_version(k, 1).await);
        refused("decr_version", &made, cache.decr_version(k, 1).await);
        refused(
            "get_or_set",
            &made,
            cache.get_or_set(k, || async { 1 }, second).await,
        );
        refused(
            "get_or_set_value",
            &made,
            cache.get_or_set_value(k, 1, second).await,
        );
        // A good key beside it does not let the batch through, nor is it
        // written: the batch is refused whole, before any I/O.
        let good = unique("good");
        refused(
            "get_many",
            &made,
            cache.get_many::<i64, _, _>([good.as_str(), k]).await,
        );
        refused(
            "set_many",
            &made,
            cache.set_many([(good.as_str(), 1), (k, 1)], second).await,
        );
        refused(
            "delete_many",
            &made,
            cache.delete_many([good.as_str(), k]).await,
        );
        assert!(
            !server_holds(&format!(":1:{good}")),
            "set_many wrote part of a refused batch"
        );
    }
    assert!(!server_holds(&planted), "a second command was injected");
    assert!(!server_holds(&format!(":1:{planted}")));
}

/// Attack: `set("a\r\nset <planted> 0 0 1\r\nx")` below `Cache`, on the
/// backend itself (a custom key function that skips validation would
/// reach it so). The key travels as one base64 token: the value is stored
/// under exactly that key and read back, and no second command runs.
#[tokio::test]
async fn a_crlf_key_cannot_inject_a_command_even_below_the_cache() {
    let backend = memcached().await;
    let planted = unique("planted");
    let key = format!("{}\r\nset {planted} 0 0 1\r\nx", unique("crlf"));
    let expiry = Some(Duration::from_secs(60));
    backend
        .set(&key, Bytes::from_static(b"value"), expiry)
        .await
        .unwrap();
    assert_eq!(
        backend.get(&key).await.unwrap().as_deref(),
        Some(&b"value"[..])
    );
    assert!(backend.has_key(&key).await.unwrap());
    assert!(!server_holds(&planted), "a second command was injected");
    assert!(backend.delete(&key).await.unwrap());
    assert!(!server_holds(&planted));
}

/// A custom key function cannot turn validation off: the keys it makes are
/// checked too. `KeyFunction::hashed` is the way to accept keys from
/// outside: hostile ones become `prefix:version:sha256:<hex>`.
#[tokio::test]
async fn key_functions_cannot_skip_validation_and_hashed_keys_are_safe() {
    let planted = unique("planted");
    let raw = Cache::builder(memcached().await)
        .key_function(KeyFunction::new(|key, _, _| key.to_owned()))
        .build();
    let hostile = format!("a\r\nset {planted} 0 0 1\r\nx");
    refused(
        "set",
        &hostile,
        raw.set(&hostile, &1, Timeout::Default).await,
    );

    let hashed = Cache::builder(memcached().await)
        .key_function(KeyFunction::hashed())
        .build();
    for key in hostile_keys(&planted) {
        hashed.set(&key, &7, Duration::from_secs(60)).await.unwrap();
        assert_eq!(hashed.get::<i64>(&key).await.unwrap(), Some(7));
        let made = hashed.make_key(&key).unwrap();
        assert!(made.starts_with(":1:sha256:"), "{made}");
        assert!(server_holds(&made));
        assert!(hashed.delete(&key).await.unwrap());
    }
    assert!(!server_holds(&planted), "a second command was injected");
}
