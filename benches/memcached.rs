//! `Cache` over memcached against a raw get with the same client, and
//! `get_many` of 100 keys against 100 single gets, in one run. Also the
//! memcache crate's blocking client through `spawn_blocking`, the
//! alternative this backend does not use.
//!
//! Needs a memcached: `MEMCACHED_URL=memcached://127.0.0.1:11211 cargo bench --bench memcached --features memcached`
//! (`./scripts/test` does not run benches; start a server as it does).
//! The figures that matter: `cache/get_hit` over `raw/get` (goal <= 1.2x), and
//! `cache/100_gets` over `cache/get_many_100` (goal >= 10x).

use std::hint::black_box;
use std::sync::Arc;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use memcache::exp::{AsyncMetaClient, Get};
use tower_cache::backends::MemcachedBackend;
use tower_cache::{Cache, Timeout};

mod common;
use common::VALUE_LEN;

fn server() -> String {
    let url = std::env::var("MEMCACHED_URL").expect(
        "MEMCACHED_URL is not set: start memcached and run \
         MEMCACHED_URL=memcached://127.0.0.1:PORT cargo bench --bench memcached --features memcached",
    );
    let server = url.trim_start_matches("memcached://");
    server.split([',', '?']).next().unwrap().to_owned()
}

fn get(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let server = server();
    let value = Bytes::from(vec![b'x'; VALUE_LEN]);
    let keys: Vec<String> = (0..100).map(|i| format!("bench-many-{i}")).collect();
    let (cache, raw) = rt.block_on(async {
        let backend = MemcachedBackend::builder([server.as_str()])
            .build()
            .await
            .expect("backend");
        let cache = Cache::new(Arc::new(backend));
        cache
            .set_bytes("bench-page", value.clone(), Timeout::Forever)
            .await
            .unwrap();
        let entries: Vec<(&str, &str)> = keys.iter().map(|k| (k.as_str(), "x")).collect();
        cache.set_many(entries, Timeout::Forever).await.unwrap();
        // The same client, configured as the backend configures it.
        let raw = AsyncMetaClient::builder()
            .max_idle(MemcachedBackend::DEFAULT_POOL_SIZE)
            .max_connections(Some(MemcachedBackend::DEFAULT_POOL_SIZE))
            .connect_async(server.as_str())
            .await
            .expect("client");
        (cache, raw)
    });
    let blocking = Arc::new(
        memcache::Client::builder()
            .add_server(format!("memcache://{server}?protocol=ascii"))
            .unwrap()
            .with_max_pool_size(8)
            .build()
            .expect("blocking client"),
    );

    let mut group = c.benchmark_group("memcached");
    group.bench_function("raw/get", |b| {
        b.to_async(&rt).iter(|| async {
            black_box(raw.run(Get::new(black_box(":1:bench-page"))).await.unwrap())
        })
    });
    group.bench_function("cache/get_hit", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(cache.get_bytes(black_box("bench-page")).await.unwrap()) })
    });
    group.bench_function("blocking_client_spawn_blocking/get", |b| {
        b.to_async(&rt).iter(|| {
            let blocking = blocking.clone();
            async move {
                let value = tokio::task::spawn_blocking(move || {
                    blocking.get::<Vec<u8>>(":1:bench-page").unwrap()
                })
                .await
                .unwrap();
                black_box(value)
            }
        })
    });
    let made: Vec<String> = keys.iter().map(|k| format!(":1:{k}")).collect();
    group.bench_function("raw/get_many_100", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(raw.run_many(made.iter().map(Get::new)).await.unwrap()) })
    });
    common::bench_get_many_against_gets(&mut group, &rt, &cache, &keys);
    group.finish();
}

criterion_group!(benches, get);
criterion_main!(benches);
