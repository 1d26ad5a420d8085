//! `Cache` over Redis against raw redis commands on a pool like its own, and
//! `get_many` of 100 keys against 100 single gets, in one run.
//!
//! Needs a Redis server: `REDIS_URL=redis://127.0.0.1:6379/0 cargo bench --bench redis --features redis`
//! (`./scripts/test` does not run benches; start a server as it does).
//! The figures that matter: `cache/get_hit` over `raw/get` (goal <= 1.2x), and
//! `cache/100_gets` over `cache/get_many_100` (goal >= 10x). `raw/get_without_pool`
//! shows what deadpool's health check (a PING on every checkout) costs: the
//! backend's shared multiplexed connections do not pay it.

use std::hint::black_box;
use std::sync::Arc;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use deadpool_redis::redis;
use tower_cache::backends::RedisBackend;
use tower_cache::{Cache, Timeout};

mod common;
use common::VALUE_LEN;

fn redis_url() -> String {
    std::env::var("REDIS_URL").expect(
        "REDIS_URL is not set: start redis-server and run REDIS_URL=redis://127.0.0.1:PORT/0 \
         cargo bench --bench redis --features redis",
    )
}

fn get(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let url = redis_url();
    let value = Bytes::from(vec![b'x'; VALUE_LEN]);
    let keys: Vec<String> = (0..100).map(|i| format!("bench-many-{i}")).collect();
    // The raw side uses a deadpool-redis pool made as the backend makes its
    // own (deadpool's default size, a multiplexed connection per object).
    let pool = deadpool_redis::Config::from_url(url.as_str())
        .create_pool(Some(deadpool_redis::Runtime::Tokio1))
        .expect("pool");
    let cache = rt.block_on(async {
        let backend = RedisBackend::builder([url.as_str()])
            .build()
            .await
            .expect("backend");
        Cache::new(Arc::new(backend))
    });
    rt.block_on(async {
        cache
            .set_bytes("bench-page", value.clone(), Timeout::Forever)
            .await
            .unwrap();
        let entries: Vec<(&str, &str)> = keys.iter().map(|k| (k.as_str(), "x")).collect();
        cache.set_many(entries, Timeout::Forever).await.unwrap();
    });

    let mut group = c.benchmark_group("redis");
    group.bench_function("raw/get", |b| {
        b.to_async(&rt).iter(|| async {
            let mut connection = pool.get().await.unwrap();
            let value: Vec<u8> = redis::cmd("GET")
                .arg(black_box(":1:bench-page"))
                .query_async(&mut connection)
                .await
                .unwrap();
            black_box(value)
        })
    });
    // One multiplexed connection taken out of the pool: what a GET costs
    // without deadpool's PING on every checkout.
    let multiplexed =
        rt.block_on(async { deadpool_redis::Connection::take(pool.get().await.unwrap()) });
    group.bench_function("raw/get_without_pool", |b| {
        b.to_async(&rt).iter(|| {
            let mut connection = multiplexed.clone();
            async move {
                let value: Vec<u8> = redis::cmd("GET")
                    .arg(black_box(":1:bench-page"))
                    .query_async(&mut connection)
                    .await
                    .unwrap();
                black_box(value)
            }
        })
    });
    group.bench_function("cache/get_hit", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(cache.get_bytes(black_box("bench-page")).await.unwrap()) })
    });
    common::bench_get_many_against_gets(&mut group, &rt, &cache, &keys);
    group.finish();
}

criterion_group!(benches, get);
criterion_main!(benches);
