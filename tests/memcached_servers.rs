//! memcached over several servers: the conformance suite over three
//! servers, the stable hash (a fourth server moves about a quarter of the
//! keys), an outage of one server, and atomicity across two caches.
//! Needs `./scripts/test` (or MEMCACHED_URLS) and the memcached program.
#![cfg(feature = "memcached")]

mod common;

use std::time::{Duration, Instant};

use common::{Server, eventually, memcached_over as over, server_url, unique};
use tower_cache::testing::{concurrent_add, concurrent_delete_if_equal, concurrent_incr};
use tower_cache::{Cache, DynBackend, Timeout};

async fn backend() -> DynBackend {
    let url = server_url("MEMCACHED_URLS");
    let cache = Cache::from_url(&url)
        .await
        .unwrap_or_else(|e| panic!("cannot build a cache from {url}: {e}"));
    assert!(
        format!("{:?}", cache.backend())
            .matches("127.0.0.1")
            .count()
            >= 2
            || !url.contains(','),
        "MEMCACHED_URLS should list several servers: {url}"
    );
    cache.backend().clone()
}

tower_cache::conformance_suite!(backend, global_clear);

#[tokio::test]
async fn a_fourth_server_moves_about_a_quarter_of_the_keys() {
    let servers: Vec<Server> = (0..4).map(|_| Server::memcached()).collect();
    let (_, three) = over(&[&servers[0], &servers[1], &servers[2]]).await;
    let (four_backend, four) = over(&[&servers[0], &servers[1], &servers[2], &servers[3]]).await;
    let keys: Vec<String> = (0..4000).map(|i| format!("key{i}")).collect();
    let entries: Vec<(&str, usize)> = keys.iter().map(|k| k.as_str()).zip(0..).collect();
    assert!(
        three
            .set_many(entries, Timeout::Default)
            .await
            .unwrap()
            .is_empty()
    );

    // Through the four-server cache, a key still hits unless it now belongs
    // to the new server.
    let found = four.get_many::<usize, _, _>(&keys).await.unwrap();
    let moved = keys.len() - found.len();
    let share = moved as f64 / keys.len() as f64;
    println!(
        "adding a 4th server moved {moved} of {} keys ({share:.3})",
        keys.len()
    );
    assert!((0.20..0.30).contains(&share), "moved {share}");
    for key in keys.iter().filter(|k| !found.contains_key(*k)) {
        let made = four.make_key(key).unwrap();
        assert_eq!(four_backend.server_for(&made), servers[3].address());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_server_down_misses_its_keys_and_the_cache_recovers() {
    let mut servers: Vec<Server> = (0..3).map(|_| Server::memcached()).collect();
    let (backend, cache) = over(&[&servers[0], &servers[1], &servers[2]]).await;
    let keys: Vec<String> = (0..300).map(|i| format!("key{i}")).collect();
    let entries: Vec<(&str, usize)> = keys.iter().map(|k| k.as_str()).zip(0..).collect();
    assert!(
        cache
            .set_many(entries, Timeout::Default)
            .await
            .unwrap()
            .is_empty()
    );
    let down = servers[1].address();
    let on_down = |key: &String| backend.server_for(&cache.make_key(key).unwrap()) == down;
    let (lost, kept): (Vec<&String>, Vec<&String>) = keys.iter().partition(|k| on_down(k));
    assert!(!lost.is_empty() && !kept.is_empty());

    servers[1].stop();
    let started = Instant::now();
    let found = cache.get_many::<usize, _, _>(&keys).await.unwrap();
    assert_eq!(found.len(), kept.len(), "the other servers' keys still hit");
    assert!(lost.iter().all(|k| !found.contains_key(*k)));
    assert_eq!(
        cache.get::<usize>(lost[0]).await.unwrap(),
        None,
        "a read is a miss"
    );
    assert!(
        cache.set(lost[0], &1, Timeout::Default).await.is_err(),
        "a write fails"
    );
    assert!(cache.incr(lost[0], 1).await.is_err());
    cache.set(kept[0], &1, Timeout::Default).await.unwrap();
    let failed = cache
        .set_many(
            [(lost[0].as_str(), 1), (kept[1].as_str(), 2)],
            Timeout::Default,
        )
        .await
        .unwrap();
    assert_eq!(failed, [lost[0].clone()]);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );

    servers[1].restart();
    eventually(Duration::from_secs(10), || {
        cache.set(lost[0], &7, Timeout::Default)
    })
    .await;
    assert_eq!(cache.get::<usize>(lost[0]).await.unwrap(), Some(7));
    assert_eq!(cache.get::<usize>(kept[1]).await.unwrap(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_caches_increment_and_add_atomically() {
    let _no_flush = CONFORMANCE_CLEAR_LOCK.read().await;
    let (a, b) = (Cache::new(backend().await), Cache::new(backend().await));
    let caches = [a, b];
    let key = unique("counter");
    caches[0].set(&key, &0, Timeout::Default).await.unwrap();
    assert_eq!(concurrent_incr(&caches, &key, 1000, 1).await, 1000);
    for round in 0..5 {
        let key = unique(&format!("contested{round}"));
        assert_eq!(concurrent_add(&caches, &key, 50).await, 1, "round {round}");
        let token = caches[0].get_bytes(&key).await.unwrap().unwrap();
        assert_eq!(
            concurrent_delete_if_equal(&caches, &key, &token, 50).await,
            1,
            "round {round}"
        );
    }
}
