//! Tiered backends against real servers: the conformance suite with an L1
//! in front of Redis (one server and Cluster), memcached and SQLite;
//! coherence across two instances through Redis pub/sub, measured; and no
//! stale copy after a Redis restart or a cut connection. Needs
//! `./scripts/test` (REDIS_URL, REDIS_CLUSTER_URL, MEMCACHED_URL and
//! redis-server).
#![cfg(all(feature = "redis", feature = "memcached", feature = "sqlite"))]

mod common;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{
    Proxy, Server, backend_from_url, cluster_nodes, eventually, server_url, unique, with_option,
};
use tower_cache::backends::{RedisBackend, RedisInvalidation, TieredBackend};
use tower_cache::{Cache, DynBackend, Timeout};

/// The backend of `url` with an L1 of 64 MiB.
async fn tiered_from(url: &str) -> DynBackend {
    backend_from_url(&with_option(url, "l1_max_bytes=64MiB")).await
}

mod redis_single {
    use super::*;

    async fn backend() -> DynBackend {
        tiered_from(&server_url("REDIS_URL")).await
    }

    tower_cache::conformance_suite!(backend);
}

mod redis_cluster {
    use super::*;

    async fn backend() -> DynBackend {
        tiered_from(&server_url("REDIS_CLUSTER_URL")).await
    }

    tower_cache::conformance_suite!(backend);
}

mod memcached {
    use super::*;

    async fn backend() -> DynBackend {
        tiered_from(&server_url("MEMCACHED_URL")).await
    }

    tower_cache::conformance_suite!(backend, global_clear);
}

mod sqlite {
    use super::*;

    /// One database file per test thread (see tests/sqlite.rs for why).
    async fn backend() -> DynBackend {
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("tiered-sqlite");
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join(format!("{}.db", unique("cache")));
        tiered_from(&format!("sqlite://{}", file.display())).await
    }

    tower_cache::conformance_suite!(backend);
}

/// A tiered backend over the Redis at `url` (`redis+cluster://` for a
/// cluster), coherent through its pub/sub.
async fn instance(url: String) -> TieredBackend {
    let builder = if url.starts_with("redis+cluster://") {
        RedisBackend::builder(cluster_nodes(&url)).cluster(true)
    } else {
        RedisBackend::builder([url])
    };
    let redis = builder.build().await.unwrap();
    TieredBackend::builder(Arc::new(redis.clone()))
        .coherence(RedisInvalidation::new(&redis))
        .build()
        .await
        .unwrap()
}

/// An app instance on a tokio runtime of its own, so that it has a Redis
/// subscriber of its own, as another process would.
struct Remote {
    runtime: Option<tokio::runtime::Runtime>,
    backend: TieredBackend,
    cache: Cache,
}

impl Remote {
    async fn new(url: String, prefix: &str) -> Remote {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let backend = runtime.spawn(instance(url)).await.unwrap();
        let cache = Cache::builder(Arc::new(backend.clone()))
            .key_prefix(prefix)
            .build();
        Remote {
            runtime: Some(runtime),
            backend,
            cache,
        }
    }

    /// Runs `work` on the instance's runtime.
    async fn run<T: Send + 'static>(&self, work: impl Future<Output = T> + Send + 'static) -> T {
        self.runtime.as_ref().unwrap().spawn(work).await.unwrap()
    }

    async fn get(&self, key: &str) -> tower_cache::Result<Option<String>> {
        let (cache, key) = (self.cache.clone(), key.to_owned());
        self.run(async move { cache.get::<String>(&key).await })
            .await
    }

    async fn get_bytes(&self, key: &str) -> Option<bytes::Bytes> {
        let (cache, key) = (self.cache.clone(), key.to_owned());
        self.run(async move { cache.get_bytes(&key).await.unwrap() })
            .await
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// What instance A does in a trial, after which B must see `expected`.
#[derive(Debug, Clone, Copy)]
enum Change {
    Set,
    Delete,
    Clear,
    InvalidateTags,
}

/// Times, over `trials`, how long B takes to see a change made on A, and
/// fails past `bound`: from the start of A's write, and from its return.
/// Prints the median and the worst of each.
async fn measure(url: &str, change: Change, trials: usize, bound: Duration) {
    let prefix = unique("coherence");
    let a = Cache::builder(Arc::new(instance(url.to_owned()).await))
        .key_prefix(&prefix)
        .build();
    let b = Remote::new(url.to_owned(), &prefix).await;
    assert!(b.backend.l1_active(), "B's subscriber is up");
    let tag_key = tower_cache::tags::tag_key("t");
    let (mut from_start, mut from_return) = (Vec::new(), Vec::new());
    for trial in 0..trials {
        let key = format!("k{}", trial % 10);
        let old = format!("old {trial}");
        a.set(&key, &old, Timeout::Default).await.unwrap();
        a.invalidate_tags(["t"]).await.unwrap();
        let version = a.get_bytes(&tag_key).await.unwrap();
        assert!(version.is_some());
        // B catches up with both (it may still hold the last trial's copies
        // for a moment), then holds them in its L1.
        let until = Instant::now() + bound;
        while b.get(&key).await.unwrap().as_deref() != Some(old.as_str())
            || b.get_bytes(&tag_key).await != version
        {
            assert!(Instant::now() < until, "trial {trial}: B did not catch up");
        }

        let started = Instant::now();
        let new = format!("new {trial}");
        match change {
            Change::Set => a.set(&key, &new, Timeout::Default).await.unwrap(),
            Change::Delete => drop(a.delete(&key).await.unwrap()),
            Change::Clear => a.clear().await.unwrap(),
            Change::InvalidateTags => a.invalidate_tags(["t"]).await.unwrap(),
        }
        let returned = Instant::now();
        loop {
            let seen = match change {
                Change::Set => b.get(&key).await.unwrap().as_deref() == Some(new.as_str()),
                Change::Delete | Change::Clear => b.get(&key).await.unwrap().is_none(),
                Change::InvalidateTags => b.get_bytes(&tag_key).await != version,
            };
            if seen {
                break;
            }
            assert!(
                started.elapsed() < bound,
                "{change:?}, trial {trial}: B still serves the old value after {bound:?}"
            );
        }
        from_start.push(started.elapsed());
        from_return.push(returned.elapsed());
    }
    from_start.sort();
    from_return.sort();
    println!(
        "coherence {change:?} over {trials} trials ({url}): from the write's start median {:?} \
         worst {:?}; from its return median {:?} worst {:?}",
        from_start[trials / 2],
        from_start[trials - 1],
        from_return[trials / 2],
        from_return[trials - 1],
    );
    a.clear().await.unwrap();
}

/// The goal on loopback.
const BOUND: Duration = Duration::from_millis(100);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_instance_sees_every_change_within_the_bound() {
    let url = server_url("REDIS_URL");
    for change in [
        Change::Set,
        Change::Delete,
        Change::Clear,
        Change::InvalidateTags,
    ] {
        measure(&url, change, 200, BOUND).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_instance_sees_changes_on_a_cluster() {
    let url = server_url("REDIS_CLUSTER_URL");
    for change in [Change::Set, Change::Delete, Change::InvalidateTags] {
        measure(&url, change, 50, BOUND).await;
    }
}

/// Reads `key` on B for `during`, failing on the old value; errors (the
/// server or the connection is down) are fine.
async fn never_old(b: &Remote, key: &str, old: &str, during: Duration) {
    let until = Instant::now() + during;
    while Instant::now() < until {
        if let Ok(Some(value)) = b.get(key).await {
            assert_ne!(
                value, old,
                "B served a value overwritten while it was cut off"
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Polls `condition` for up to `within`.
async fn wait_for(within: Duration, what: &str, condition: impl Fn() -> bool) {
    let until = Instant::now() + within;
    while !condition() {
        assert!(Instant::now() < until, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_leaves_no_stale_copy() {
    let mut server = Server::redis();
    let url = format!("redis://{}/0", server.address());
    let prefix = unique("restart");
    let a = Cache::builder(Arc::new(instance(url.clone()).await))
        .key_prefix(&prefix)
        .build();
    let b = Remote::new(url, &prefix).await;
    a.set("k", "old", Timeout::Default).await.unwrap();
    // Once A's announcement has reached B, B's L1 takes a copy.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(b.get("k").await.unwrap().as_deref(), Some("old"));
    assert_eq!(b.get("k").await.unwrap().as_deref(), Some("old"));

    server.stop();
    wait_for(Duration::from_secs(3), "B sees the disconnect", || {
        !b.backend.l1_active()
    })
    .await;
    // Down: B's reads fail, never answer from L1.
    assert!(b.get("k").await.is_err());

    server.restart();
    // The restarted server is empty; A overwrites the key as soon as it can,
    // likely before B has subscribed again.
    eventually(Duration::from_secs(5), || {
        a.set("k", "new", Timeout::Default)
    })
    .await;
    println!(
        "restart: A's overwrite came while B's subscriber was {}",
        if b.backend.l1_active() {
            "back"
        } else {
            "still down"
        }
    );
    never_old(&b, "k", "old", Duration::from_millis(500)).await;
    wait_for(Duration::from_secs(5), "B subscribes again", || {
        b.backend.l1_active()
    })
    .await;
    never_old(&b, "k", "old", Duration::from_millis(200)).await;
    assert_eq!(b.get("k").await.unwrap().as_deref(), Some("new"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purge_while_one_instance_is_cut_off_is_not_missed() {
    let server = Server::redis();
    let mut proxy = Proxy::start(&server.address()).await;
    let prefix = unique("cut");
    // A talks to Redis directly; B through the proxy, which the test cuts.
    let a = Cache::builder(Arc::new(
        instance(format!("redis://{}/0", server.address())).await,
    ))
    .key_prefix(&prefix)
    .build();
    let b = Remote::new(format!("redis://{}/0", proxy.address()), &prefix).await;
    assert!(b.backend.l1_active());
    for key in ["overwritten", "purged"] {
        a.set(key, "old", Timeout::Default).await.unwrap();
    }
    // A's announcements of those writes reach B a moment later: once they
    // have, B's L1 takes the copies that the cut must not let it keep.
    tokio::time::sleep(Duration::from_millis(100)).await;
    for key in ["overwritten", "purged"] {
        for _ in 0..2 {
            assert_eq!(b.get(key).await.unwrap().as_deref(), Some("old"));
        }
    }

    proxy.cut();
    wait_for(Duration::from_secs(3), "B sees the cut", || {
        !b.backend.l1_active()
    })
    .await;
    // While B cannot hear them: an overwrite and a purge on A.
    a.set("overwritten", "new", Timeout::Default).await.unwrap();
    a.delete("purged").await.unwrap();
    never_old(&b, "overwritten", "old", Duration::from_millis(200)).await;

    proxy.resume().await;
    wait_for(Duration::from_secs(5), "B subscribes again", || {
        b.backend.l1_active()
    })
    .await;
    let b_sees = async |key: &str| eventually(Duration::from_secs(5), || b.get(key)).await;
    assert_eq!(b_sees("overwritten").await.as_deref(), Some("new"));
    assert_eq!(b_sees("purged").await, None);
    never_old(&b, "overwritten", "old", Duration::from_millis(200)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_network_loss_is_noticed_by_the_heartbeat() {
    let server = Server::redis();
    let mut proxy = Proxy::start(&server.address()).await;
    let b = Remote::new(format!("redis://{}/0", proxy.address()), &unique("silent")).await;
    // A healthy subscriber stays up across heartbeats.
    let until = Instant::now() + Duration::from_millis(2500);
    while Instant::now() < until {
        assert!(
            b.backend.l1_active(),
            "the subscriber dropped while healthy"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    proxy.freeze();
    let frozen = Instant::now();
    // A ping a second, each given a second to come back.
    wait_for(Duration::from_secs(3), "B notices the silent loss", || {
        !b.backend.l1_active()
    })
    .await;
    println!("silent loss noticed after {:?}", frozen.elapsed());
}
