//! The Redis backend against real servers: the conformance suite on one
//! server, on a primary with a replica and on a 3-node Redis Cluster, plus
//! interop with redis-cli, atomicity across two pools, prefix-only clear and
//! an outage (these need `./scripts/test`, or REDIS_URL, REDIS_REPLICA_URL,
//! REDIS_CLUSTER_URL and the redis-server and redis-cli programs).
#![cfg(feature = "redis")]

mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Server, eventually, server_url, unique, with_option};
use tower_cache::testing::{concurrent_add, concurrent_delete_if_equal, concurrent_incr};
use tower_cache::{Cache, CacheError, DynBackend, Timeout};

async fn cache_from(url: &str) -> Cache {
    Cache::from_url(url)
        .await
        .unwrap_or_else(|e| panic!("cannot build a cache from {url}: {e}"))
}

mod single {
    use super::*;

    async fn backend() -> DynBackend {
        cache_from(&server_url("REDIS_URL")).await.backend().clone()
    }

    tower_cache::conformance_suite!(backend);
}

mod primary_and_replica {
    use super::*;

    /// Reads go to the replica: `wait_replicas=1` makes every write wait
    /// until the replica has it, so the suite reads its own writes.
    async fn backend() -> DynBackend {
        let url = with_option(&server_url("REDIS_REPLICA_URL"), "wait_replicas=1");
        cache_from(&url).await.backend().clone()
    }

    tower_cache::conformance_suite!(backend);

    #[tokio::test]
    async fn writes_go_to_the_primary_and_reads_to_the_replica() {
        let url = server_url("REDIS_REPLICA_URL");
        let cache = cache_from(&with_option(&url, "wait_replicas=1")).await;
        assert!(format!("{:?}", cache.backend()).contains("primary+replicas"));
        let key = unique("replicated");
        cache.set(&key, &7, Timeout::Default).await.unwrap();
        // The replica holds it (redis-cli on the second server).
        let replica = url.split(',').nth(1).unwrap();
        let replica_url = format!("redis://{replica}");
        assert_eq!(redis_cli(&replica_url, &["GET", &format!(":1:{key}")]), "7");
        assert_eq!(cache.get::<i64>(&key).await.unwrap(), Some(7));
        assert_eq!(cache.incr(&key, 1).await.unwrap(), 8);
    }
}

mod cluster {
    use super::*;

    async fn backend() -> DynBackend {
        cache_from(&server_url("REDIS_CLUSTER_URL"))
            .await
            .backend()
            .clone()
    }

    tower_cache::conformance_suite!(backend);

    /// The node addresses of the cluster URL.
    fn nodes() -> Vec<String> {
        common::cluster_nodes(&server_url("REDIS_CLUSTER_URL"))
    }

    #[tokio::test]
    async fn delete_if_equal_loads_its_script_on_every_node() {
        let cache = Cache::builder(backend().await)
            .key_prefix(unique("scripts"))
            .build();
        delete_if_equal_survives_a_script_flush(&cache, || {
            for node in nodes() {
                assert_eq!(redis_cli(&node, &["SCRIPT", "FLUSH"]), "OK");
            }
        })
        .await;
        // Keys on every node were deleted by the script run on that node.
        let keys: Vec<String> = (0..30).map(|i| format!("lock{i}")).collect();
        for key in &keys {
            cache
                .set_bytes(key, key.clone(), Timeout::Default)
                .await
                .unwrap();
        }
        for key in &keys {
            assert!(!cache.delete_if_equal(key, b"other").await.unwrap());
            assert!(cache.delete_if_equal(key, key.as_bytes()).await.unwrap());
        }
        assert!(
            cache
                .get_many::<String, _, _>(&keys)
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn many_keys_span_every_node() {
        let cache = Cache::builder(backend().await)
            .key_prefix(unique("slots"))
            .build();
        let keys: Vec<String> = (0..200).map(|i| format!("k{i}")).collect();
        let entries: Vec<(&str, i64)> = keys.iter().map(|k| k.as_str()).zip(0..).collect();
        assert!(
            cache
                .set_many(entries, Timeout::Default)
                .await
                .unwrap()
                .is_empty()
        );
        let found = cache.get_many::<i64, _, _>(&keys).await.unwrap();
        assert_eq!(found.len(), 200);
        // Every node holds some of them: MGET and DEL really crossed slots.
        for node in nodes() {
            let pattern = format!("{}:1:k*", cache.key_prefix());
            let held = redis_cli(&node, &["--scan", "--pattern", &pattern]);
            assert!(!held.is_empty(), "{node} holds none of the keys");
        }
        cache.delete_many(&keys[..100]).await.unwrap();
        assert_eq!(cache.get_many::<i64, _, _>(&keys).await.unwrap().len(), 100);
    }

    #[tokio::test]
    async fn clear_reaches_every_node_and_only_the_prefix() {
        let backend = backend().await;
        let doomed = Cache::builder(backend.clone())
            .key_prefix(unique("doomed"))
            .build();
        let kept = Cache::builder(backend).key_prefix(unique("kept")).build();
        let keys: Vec<String> = (0..100).map(|i| format!("k{i}")).collect();
        for cache in [&doomed, &kept] {
            let entries: Vec<(&str, i64)> = keys.iter().map(|k| k.as_str()).zip(0..).collect();
            cache.set_many(entries, Timeout::Default).await.unwrap();
        }
        let foreign = unique("foreign");
        for node in nodes() {
            // `-c` follows the redirect to the key's node.
            redis_cli(
                &node,
                &["-c", "SET", &format!("{foreign}-{node}"), "untouched"],
            );
        }
        doomed.clear().await.unwrap();
        assert!(
            doomed
                .get_many::<i64, _, _>(&keys)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(kept.get_many::<i64, _, _>(&keys).await.unwrap().len(), 100);
        for node in nodes() {
            let value = redis_cli(&node, &["-c", "GET", &format!("{foreign}-{node}")]);
            assert_eq!(value, "untouched");
        }
        kept.clear().await.unwrap();
    }
}

mod tls {
    use super::*;

    async fn backend() -> DynBackend {
        cache_from(&server_url("REDIS_TLS_URL"))
            .await
            .backend()
            .clone()
    }

    tower_cache::conformance_suite!(backend);

    #[tokio::test]
    async fn an_untrusted_certificate_is_an_error_not_a_hang() {
        let url = server_url("REDIS_TLS_URL");
        // The system's roots do not include the test CA.
        let untrusted = url.split('?').next().unwrap();
        let cache = cache_from(untrusted).await;
        let started = Instant::now();
        assert!(cache.get::<i64>("k").await.is_err());
        assert!(started.elapsed() < Duration::from_secs(3));
        let err = Cache::from_url(&format!("{untrusted}?ca_file=/nonexistent/ca.pem"))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("ca_file"), "{err}");
    }
}

/// Runs redis-cli against `url` and returns its trimmed output.
fn redis_cli(url: &str, args: &[&str]) -> String {
    let output = Command::new("redis-cli")
        .arg("-u")
        .arg(url)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run redis-cli ({e}): install redis-tools (./scripts/test does)")
        });
    assert!(
        output.status.success(),
        "redis-cli {args:?} failed: {output:?}"
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

#[tokio::test]
async fn redis_cli_sees_djangos_keys_and_increments_our_integers() {
    let url = server_url("REDIS_URL");
    let cache = cache_from(&url).await;
    let key = unique("interop");
    cache.set(&key, &41, Timeout::Default).await.unwrap();
    // Django's layout with an empty prefix: `:1:key`.
    let made = format!(":1:{key}");
    assert_eq!(redis_cli(&url, &["KEYS", &format!("*{key}*")]), made);
    // The stored form is the decimal text redis understands.
    assert_eq!(redis_cli(&url, &["INCRBY", &made, "1"]), "42");
    assert_eq!(cache.get::<i64>(&key).await.unwrap(), Some(42));
    assert_eq!(cache.incr(&key, 8).await.unwrap(), 50);
    assert_eq!(redis_cli(&url, &["GET", &made]), "50");
    // Its expiry is the default 300 s, in milliseconds.
    let ttl: i64 = redis_cli(&url, &["PTTL", &made]).parse().unwrap();
    assert!((290_000..=300_000).contains(&ttl), "{ttl}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_pools_increment_and_add_atomically() {
    let url = server_url("REDIS_URL");
    let (a, b) = (cache_from(&url).await, cache_from(&url).await);
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

/// The SHA-1 of the `delete_if_equal` script, as Redis names it.
const DELETE_IF_EQUAL_SHA1: &str = "d02e481a9c91ceec59c5822a58a49d5d5d7ac80b";

/// `delete_if_equal` on a server that does not have its script (after
/// `SCRIPT FLUSH`, a restart, a failover): `EVALSHA` fails with `NOSCRIPT`,
/// `EVAL` runs it and caches it, so the next call is an `EVALSHA` again.
async fn delete_if_equal_survives_a_script_flush(cache: &Cache, flush: impl Fn()) {
    for round in 0..2 {
        flush();
        let key = unique(&format!("flushed{round}"));
        cache
            .set_bytes(&key, &b"mine"[..], Timeout::Default)
            .await
            .unwrap();
        assert!(!cache.delete_if_equal(&key, b"theirs").await.unwrap());
        assert!(cache.delete_if_equal(&key, b"mine").await.unwrap());
        assert!(!cache.has_key(&key).await.unwrap());
    }
}

#[tokio::test]
async fn delete_if_equal_loads_its_script_when_the_server_lacks_it() {
    let url = server_url("REDIS_URL");
    let cache = cache_from(&url).await;
    delete_if_equal_survives_a_script_flush(&cache, || {
        assert_eq!(redis_cli(&url, &["SCRIPT", "FLUSH"]), "OK");
    })
    .await;
    // EVAL cached it under the SHA-1 that EVALSHA sends.
    assert_eq!(
        redis_cli(&url, &["SCRIPT", "EXISTS", DELETE_IF_EQUAL_SHA1]),
        "1"
    );
    // With replicas to wait for, EVALSHA and WAIT share a round trip: the
    // NOSCRIPT answer still comes back, and the write still reaches the replica.
    let url = server_url("REDIS_REPLICA_URL");
    let cache = cache_from(&with_option(&url, "wait_replicas=1")).await;
    let primary = format!(
        "redis://{}",
        url.split("://")
            .nth(1)
            .unwrap()
            .split([',', '/', '?'])
            .next()
            .unwrap()
    );
    delete_if_equal_survives_a_script_flush(&cache, || {
        assert_eq!(redis_cli(&primary, &["SCRIPT", "FLUSH"]), "OK");
    })
    .await;
}

#[tokio::test]
async fn clear_leaves_other_prefixes_and_foreign_keys() {
    let url = server_url("REDIS_URL");
    let doomed = Cache::builder(cache_from(&url).await.backend().clone())
        .key_prefix(unique("doomed*[x]"))
        .build();
    let kept = Cache::builder(doomed.backend().clone())
        .key_prefix(unique("kept"))
        .build();
    let foreign = unique("foreign");
    redis_cli(&url, &["SET", &foreign, "not a cache key"]);
    for i in 0..2500 {
        doomed
            .set(&format!("k{i}"), &i, Timeout::Default)
            .await
            .unwrap();
    }
    doomed
        .with_version(2)
        .set("v2", &1, Timeout::Default)
        .await
        .unwrap();
    kept.set("k1", &1, Timeout::Default).await.unwrap();

    doomed.clear().await.unwrap();

    assert_eq!(doomed.get::<i64>("k1").await.unwrap(), None);
    assert_eq!(doomed.get::<i64>("k2499").await.unwrap(), None);
    assert_eq!(doomed.with_version(2).get::<i64>("v2").await.unwrap(), None);
    assert_eq!(kept.get::<i64>("k1").await.unwrap(), Some(1));
    assert_eq!(redis_cli(&url, &["GET", &foreign]), "not a cache key");
    kept.clear().await.unwrap();
    redis_cli(&url, &["DEL", &foreign]);
}

#[tokio::test]
async fn incr_errors_are_the_caches_own() {
    let cache = cache_from(&server_url("REDIS_URL")).await;
    let key = unique("big");
    cache.set(&key, &i64::MAX, Timeout::Default).await.unwrap();
    assert!(matches!(
        cache.incr(&key, 1).await,
        Err(CacheError::Overflow { .. })
    ));
    cache.set(&key, "text", Timeout::Default).await.unwrap();
    assert!(matches!(
        cache.incr(&key, 1).await,
        Err(CacheError::NotAnInteger { .. })
    ));
}

#[tokio::test]
async fn bad_options_are_named() {
    let err = Cache::from_url("redis://127.0.0.1:1/0?pool_sise=3")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("pool_sise"), "{err}");
    // The known options are the shared connection options and Redis's own.
    assert!(
        err.to_string().contains(
            "known options: pool_size, connect_timeout, command_timeout, wait_replicas, \
             cluster, read_from_replicas, ca_file"
        ),
        "{err}"
    );
    let err = Cache::from_url("redis://127.0.0.1:1/0?command_timeout=soon")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("command_timeout"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_gives_errors_in_time_and_the_same_cache_recovers() {
    let mut server = Server::redis();
    let url = format!(
        "redis://{}/0?connect_timeout=300ms&command_timeout=300ms",
        server.address()
    );
    let cache = cache_from(&url).await;
    cache.set("before", &1, Timeout::Default).await.unwrap();

    server.stop();
    let bound = Duration::from_millis(600 + 400);
    for attempt in 0..3 {
        let started = Instant::now();
        let get = cache.get::<i64>("before").await;
        let set = cache.set("during", &2, Timeout::Default).await;
        let incr = cache.incr("before", 1).await;
        let elapsed = started.elapsed();
        assert!(
            get.is_err() && set.is_err() && incr.is_err(),
            "attempt {attempt}: {get:?} {set:?} {incr:?}"
        );
        assert!(elapsed < bound * 3, "three operations took {elapsed:?}");
    }

    server.restart();
    eventually(Duration::from_secs(10), || {
        cache.set("after", &3, Timeout::Default)
    })
    .await;
    assert_eq!(cache.get::<i64>("after").await.unwrap(), Some(3));
    // The restarted server is empty.
    assert_eq!(cache.get::<i64>("before").await.unwrap(), None);
    drop(Arc::new(()));
}

#[tokio::test]
async fn urls_list_servers_and_only_redis_and_memcached_take_several() {
    // Connections are made on first use: no server is needed to build.
    let cache = Cache::from_url("redis://:secret@127.0.0.1:1,127.0.0.1:2/3?wait_replicas=1")
        .await
        .unwrap();
    let debug = format!("{:?}", cache.backend());
    assert!(debug.contains("primary+replicas"), "{debug}");
    assert!(
        debug.contains("127.0.0.1:2/3") && !debug.contains("secret"),
        "{debug}"
    );
    let cluster = Cache::from_url("redis://127.0.0.1:1,127.0.0.1:2?cluster=true")
        .await
        .unwrap();
    assert!(format!("{:?}", cluster.backend()).contains("cluster"));
    let err = Cache::from_url("memory://a,b").await.unwrap_err();
    assert!(
        err.to_string().contains("only redis and memcached"),
        "{err}"
    );
}

/// Reads (`GET`, `MGET`, `GET` + `PTTL`, `EXISTS`) go over one pipelined
/// connection per server that the backend speaks RESP on itself; writes go
/// over the redis crate's connections. These check that both see the same
/// database, as the same user.
mod read_lane {
    use super::*;

    /// Everything a read can do, through `cache`, on keys it wrote.
    async fn reads_see_writes(cache: &Cache) {
        let key = unique("lane");
        cache.set(&key, &5, Timeout::Default).await.unwrap();
        assert_eq!(cache.get::<i64>(&key).await.unwrap(), Some(5));
        assert!(cache.has_key(&key).await.unwrap());
        assert!(!cache.has_key(&unique("absent")).await.unwrap());
        let absent = unique("absent");
        assert_eq!(
            cache.get_many_bytes(&[&key, &absent]).await.unwrap(),
            [Some(bytes::Bytes::from_static(b"5")), None]
        );
        let made = cache.make_key(&key).unwrap();
        let (value, ttl) = cache.backend().get_with_ttl(&made).await.unwrap().unwrap();
        assert_eq!(value, "5");
        let ttl = ttl.expect("a lifetime");
        assert!(ttl > Duration::from_secs(290) && ttl <= Duration::from_secs(300));
        let found = cache
            .backend()
            .get_many_with_ttl(&[&made, &cache.make_key(&absent).unwrap()])
            .await
            .unwrap();
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].as_ref().unwrap().0, "5");
        assert!(found[1].is_none());
    }

    #[tokio::test]
    async fn reads_authenticate_and_select_the_database_of_the_url() {
        let server = Server::redis_with(&[
            "--requirepass",
            "s3cret",
            "--user",
            "reader",
            "on",
            ">r3ader",
            "~*",
            "+@all",
        ]);
        let address = server.address();
        let cache = cache_from(&format!("redis://:s3cret@{address}/3")).await;
        reads_see_writes(&cache).await;
        // The keys are in database 3, not 0.
        let key = unique("where");
        cache.set(&key, &1, Timeout::Default).await.unwrap();
        let made = cache.make_key(&key).unwrap();
        let cli = |db: u8| format!("redis://default:s3cret@{address}/{db}");
        assert_eq!(redis_cli(&cli(3), &["EXISTS", &made]), "1");
        assert_eq!(redis_cli(&cli(0), &["EXISTS", &made]), "0");
        let in_zero = cache_from(&format!("redis://:s3cret@{address}/0")).await;
        assert_eq!(in_zero.get::<i64>(&key).await.unwrap(), None);

        // An ACL user, named in the URL.
        let as_user = cache_from(&format!("redis://reader:r3ader@{address}/3")).await;
        reads_see_writes(&as_user).await;
        assert_eq!(as_user.get::<i64>(&key).await.unwrap(), Some(1));

        // A wrong password is an error in time, on every read, not a hang.
        let wrong = cache_from(&format!(
            "redis://:wrong@{address}/3?connect_timeout=500ms&command_timeout=500ms"
        ))
        .await;
        for _ in 0..2 {
            let started = Instant::now();
            let err = wrong.get_bytes(&key).await.unwrap_err();
            assert!(started.elapsed() < Duration::from_secs(2));
            let message = format!("{err:?}");
            assert!(
                message.contains("WRONGPASS") && !message.contains("wrong@"),
                "{message}"
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_refused_read_leaves_the_connection_in_step() {
        let url = server_url("REDIS_URL");
        let cache = cache_from(&url).await;
        let list = unique("list");
        redis_cli(&url, &["RPUSH", &cache.make_key(&list).unwrap(), "x"]);
        let keys: Vec<String> = (0..50).map(|i| unique(&format!("step{i}"))).collect();
        for (i, key) in keys.iter().enumerate() {
            cache.set(key, &i, Timeout::Default).await.unwrap();
        }
        // Reads of the list (refused: WRONGTYPE) among reads of values, all
        // in flight at once on the one connection.
        let reads = keys.iter().enumerate().map(|(i, key)| {
            let cache = cache.clone();
            let list = list.clone();
            async move {
                let refused = cache.get_bytes(&list).await;
                let value = cache.get::<usize>(key).await;
                (i, refused, value)
            }
        });
        for (i, refused, value) in futures_util::future::join_all(reads).await {
            let err = refused.unwrap_err();
            assert!(format!("{err:?}").contains("WRONGTYPE"), "{err:?}");
            assert_eq!(value.unwrap(), Some(i));
        }
        redis_cli(&url, &["DEL", &cache.make_key(&list).unwrap()]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn values_of_any_bytes_and_length_come_back_whole() {
        let cache = cache_from(&server_url("REDIS_URL")).await;
        let mut values: Vec<Vec<u8>> = vec![
            Vec::new(),
            b"\r\n".to_vec(),
            b"$-1\r\n*2\r\n-ERR\r\n".to_vec(),
            (0..=255).collect(),
            vec![b'x'; 16 * 1024 - 1],
            vec![b'y'; 16 * 1024],
        ];
        values.push((0..(1 << 20) + 3).map(|i| (i % 251) as u8).collect());
        let keys: Vec<String> = (0..values.len())
            .map(|i| unique(&format!("bytes{i}")))
            .collect();
        for (key, value) in keys.iter().zip(&values) {
            cache
                .set_bytes(key, value.clone(), Timeout::Default)
                .await
                .unwrap();
        }
        // Each alone, all at once, and in one MGET, several times over.
        let reads = (0..4).flat_map(|_| {
            keys.iter().zip(&values).map(|(key, value)| {
                let cache = cache.clone();
                async move {
                    assert_eq!(cache.get_bytes(key).await.unwrap().unwrap(), value[..]);
                }
            })
        });
        futures_util::future::join_all(reads).await;
        let found = cache.get_many_bytes(&keys).await.unwrap();
        for (found, value) in found.iter().zip(&values) {
            assert_eq!(found.as_deref(), Some(&value[..]));
        }
    }
}
