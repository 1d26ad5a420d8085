//! `Cache` over the memory backend against raw moka, same bytes, one run.
//!
//! Run with `cargo bench --bench cache`. The figure that matters is the
//! ratio of `cache/get_hit` to `moka/get_hit` (goal: at most 2x).

use std::hint::black_box;
use std::sync::Arc;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use tower_cache::backends::MemoryBackend;
use tower_cache::{Cache, Timeout};

/// The size of the perf anchors' page body.
const VALUE_LEN: usize = 688;

fn get_and_set(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let value = Bytes::from(vec![b'x'; VALUE_LEN]);
    let text = "x".repeat(VALUE_LEN);

    let raw: moka::future::Cache<String, Bytes> = moka::future::Cache::new(10_000);
    let cache = Cache::new(Arc::new(MemoryBackend::new()));
    rt.block_on(async {
        raw.insert(":1:page".to_owned(), value.clone()).await;
        cache
            .set_bytes("page", value.clone(), Timeout::Forever)
            .await
            .unwrap();
        cache.set("text", &text, Timeout::Forever).await.unwrap();
    });

    let mut group = c.benchmark_group("memory");
    group.bench_function("moka/get_hit", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(raw.get(black_box(":1:page")).await) })
    });
    group.bench_function("cache/get_hit", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(cache.get_bytes(black_box("page")).await.unwrap()) })
    });
    group.bench_function("cache/get_hit_typed_string", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(cache.get::<String>(black_box("text")).await.unwrap()) })
    });
    group.bench_function("moka/get_miss", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(raw.get(black_box(":1:absent")).await) })
    });
    group.bench_function("cache/get_miss", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(cache.get_bytes(black_box("absent")).await.unwrap()) })
    });
    group.bench_function("moka/insert", |b| {
        b.to_async(&rt).iter(|| async {
            raw.insert(black_box(":1:page".to_owned()), value.clone())
                .await
        })
    });
    group.bench_function("cache/set", |b| {
        b.to_async(&rt).iter(|| async {
            cache
                .set_bytes(black_box("page"), value.clone(), Timeout::Default)
                .await
                .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, get_and_set);
criterion_main!(benches);
