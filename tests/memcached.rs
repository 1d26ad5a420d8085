//! The memcached backend against one real server: the conformance suite
//! (`clear` is memcached's `flush_all`, so `global_clear`), interop with
//! memcached's own `incr`, oversized values, and memcached's counter rules.
//! Needs `./scripts/test`, or MEMCACHED_URL.
#![cfg(feature = "memcached")]

mod common;

use bytes::Bytes;
use common::{backend_from_env, memcached_command, unique};
use tower_cache::{Cache, CacheError, DynBackend, Timeout};

async fn backend() -> DynBackend {
    backend_from_env("MEMCACHED_URL").await
}

tower_cache::conformance_suite!(backend, global_clear);

#[tokio::test]
async fn memcacheds_own_incr_works_on_our_integers() {
    let _no_flush = CONFORMANCE_CLEAR_LOCK.read().await;
    let cache = Cache::new(backend().await);
    let key = unique("interop");
    cache.set(&key, &41, Timeout::Default).await.unwrap();
    assert_eq!(memcached_command(&format!("incr :1:{key} 1\r\n")), "42");
    assert_eq!(cache.get::<i64>(&key).await.unwrap(), Some(42));
    assert_eq!(cache.incr(&key, 8).await.unwrap(), 50);
    assert_eq!(
        memcached_command(&format!("get :1:{key}\r\n")),
        format!("VALUE :1:{key} 0 2")
    );
}

#[tokio::test]
async fn oversized_values_fail_clearly_and_leave_nothing_behind() {
    let _no_flush = CONFORMANCE_CLEAR_LOCK.read().await;
    let cache = Cache::new(backend().await);
    let key = unique("big");
    let big = Bytes::from(vec![b'x'; 2 * 1024 * 1024]);
    cache
        .set(&key, "old value", Timeout::Default)
        .await
        .unwrap();

    let err = cache
        .set_bytes(&key, big.clone(), Timeout::Default)
        .await
        .unwrap_err();
    let chain = format!("{err}: {}", std::error::Error::source(&err).unwrap());
    assert!(chain.contains("item size limit"), "{chain}");
    // As in Django, the old value does not linger.
    assert_eq!(cache.get::<String>(&key).await.unwrap(), None);

    // set_many stores the others and names the failed key.
    let small = unique("small");
    let failed = cache
        .set_many(
            [
                (key.as_str(), serde_json::json!("x".repeat(2 * 1024 * 1024))),
                (small.as_str(), serde_json::json!(1)),
            ],
            Timeout::Default,
        )
        .await
        .unwrap();
    assert_eq!(failed, [key.as_str()]);
    assert_eq!(cache.get::<i64>(&small).await.unwrap(), Some(1));
    // The connection is still in step after the refused value.
    assert_eq!(cache.get::<i64>(&small).await.unwrap(), Some(1));
}

#[tokio::test]
async fn counters_follow_memcached_rules() {
    let _no_flush = CONFORMANCE_CLEAR_LOCK.read().await;
    let cache = Cache::new(backend().await);
    let key = unique("counter");
    cache.set(&key, &3, Timeout::Default).await.unwrap();
    // memcached's decr stops at 0 (Django on memcached gives 0 too).
    assert_eq!(cache.decr(&key, 10).await.unwrap(), 0);
    // Past i64::MAX: undone, and an error.
    cache.set(&key, &i64::MAX, Timeout::Default).await.unwrap();
    assert!(matches!(
        cache.incr(&key, 1).await,
        Err(CacheError::Overflow { .. })
    ));
    assert_eq!(cache.get::<i64>(&key).await.unwrap(), Some(i64::MAX));
    // A negative number is not a memcached counter.
    cache.set(&key, &-5, Timeout::Default).await.unwrap();
    assert!(matches!(
        cache.incr(&key, 1).await,
        Err(CacheError::NotAnInteger { .. })
    ));
}

#[tokio::test]
async fn incr_keeps_the_lifetime() {
    let _no_flush = CONFORMANCE_CLEAR_LOCK.read().await;
    let cache = Cache::new(backend().await);
    let key = unique("short");
    cache
        .set(&key, &1, std::time::Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(cache.incr(&key, 1).await.unwrap(), 2);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(cache.get::<i64>(&key).await.unwrap(), None);
}

#[tokio::test]
async fn urls_are_checked() {
    for (url, needle) in [
        ("memcached://127.0.0.1:1?pool_sise=3", "pool_sise"),
        (
            "memcached://127.0.0.1:1?pool_sise=3",
            "known options: pool_size, connect_timeout, command_timeout",
        ),
        ("memcached://user:pw@127.0.0.1:1", "credentials"),
        ("memcached://127.0.0.1:1,,127.0.0.1:2", "invalid cache URL"),
    ] {
        let err = Cache::from_url(url).await.unwrap_err();
        assert!(err.to_string().contains(needle), "{url}: {err}");
    }
}

/// The connections a burst of six concurrent commands opens to a server that
/// accepts and never answers: reads share one pipelined connection whatever
/// the pool size; writes take pooled connections, at most `pool_size`
/// (not the idle ones kept), waiting for one instead of dialing more.
#[tokio::test]
async fn reads_share_one_connection_and_pool_size_bounds_the_writes() {
    async fn connections(pool_size: usize, reads: bool) -> usize {
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "memcached://{}?pool_size={pool_size}&connect_timeout=200ms&command_timeout=600ms",
            silent.local_addr().unwrap()
        );
        let accepted = tokio::spawn(async move {
            let mut sockets = Vec::new();
            while let Ok(Ok((socket, _))) =
                tokio::time::timeout(std::time::Duration::from_secs(2), silent.accept()).await
            {
                sockets.push(socket);
            }
            sockets.len()
        });
        let cache = Cache::from_url(&url).await.unwrap();
        let commands = (0..6).map(|i| {
            let cache = cache.clone();
            async move {
                let key = format!("k{i}");
                if reads {
                    // An unreachable server's keys are misses.
                    assert_eq!(cache.get::<i64>(&key).await.unwrap(), None);
                } else {
                    assert!(cache.set(&key, &1, Timeout::Default).await.is_err());
                }
            }
        });
        futures_util::future::join_all(commands).await;
        accepted.await.unwrap()
    }
    let (reads, writes) = tokio::join!(
        futures_util::future::join_all([1, 3].map(|size| connections(size, true))),
        futures_util::future::join_all([1, 3].map(|size| connections(size, false))),
    );
    assert_eq!(reads, [1, 1], "reads, pool_size 1 and 3");
    assert_eq!(writes, [1, 3], "writes, pool_size 1 and 3");
}
