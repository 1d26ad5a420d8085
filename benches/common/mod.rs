//! The operations the backend benches measure, on any set of caches in one
//! run, so that each backend's figures can be read as ratios to the memory
//! backend's.

// Each bench uses the part it needs.
#![allow(dead_code)]

use std::hint::black_box;

use bytes::Bytes;
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion};
use tokio::runtime::Runtime;
use tower_cache::{Cache, Timeout};

/// The size of the perf anchors' page body.
pub(crate) const VALUE_LEN: usize = 688;

/// One GET of `/` through `app`, body read whole (the HTTP benches' request).
pub(crate) async fn one_request(app: &axum::Router) -> Bytes {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let request = axum::http::Request::get("/")
        .header(axum::http::header::HOST, "127.0.0.1:8000")
        .body(axum::body::Body::empty())
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    response.into_body().collect().await.unwrap().to_bytes()
}

/// Keys in the `get_many` and sequential-get comparisons.
pub(crate) const MANY: usize = 100;

/// Benchmarks `get` of a hit, `set`, and `get_many` of [`MANY`] keys against
/// [`MANY`] sequential `get`s, on every `(name, cache)`.
pub(crate) fn bench_backends(c: &mut Criterion, rt: &Runtime, caches: &[(&str, Cache)]) {
    let value = Bytes::from(vec![b'x'; VALUE_LEN]);
    let keys: Vec<String> = (0..MANY).map(|i| format!("many{i}")).collect();
    for (name, cache) in caches {
        rt.block_on(async {
            cache
                .set_bytes("page", value.clone(), Timeout::Forever)
                .await
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let entries: Vec<(&str, &str)> = keys.iter().map(|k| (k.as_str(), "value")).collect();
            cache.set_many(entries, Timeout::Forever).await.unwrap();
        });
    }

    let mut group = c.benchmark_group("get_hit");
    for (name, cache) in caches {
        group.bench_function(*name, |b| {
            b.to_async(rt)
                .iter(|| async { black_box(cache.get_bytes(black_box("page")).await.unwrap()) })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("set");
    for (name, cache) in caches {
        group.bench_function(*name, |b| {
            b.to_async(rt).iter(|| async {
                cache
                    .set_bytes(black_box("page"), value.clone(), Timeout::Forever)
                    .await
                    .unwrap()
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("get_many_100");
    for (name, cache) in caches {
        group.bench_function(*name, |b| {
            b.to_async(rt).iter(|| async {
                let found = cache.get_many::<String, _, _>(&keys).await.unwrap();
                assert_eq!(found.len(), MANY);
                black_box(found)
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("get_100_sequential");
    for (name, cache) in caches {
        group.bench_function(*name, |b| {
            b.to_async(rt).iter(|| async {
                for key in &keys {
                    black_box(cache.get::<String>(key).await.unwrap());
                }
            })
        });
    }
    group.finish();
}

/// Adds `cache/get_many_100` (one `get_many` of `keys`) and `cache/100_gets`
/// (one `get` per key) to `group`: the round trips a batch saves.
pub(crate) fn bench_get_many_against_gets(
    group: &mut BenchmarkGroup<'_, WallTime>,
    rt: &Runtime,
    cache: &Cache,
    keys: &[String],
) {
    group.bench_function("cache/get_many_100", |b| {
        b.to_async(rt).iter(|| async {
            black_box(
                cache
                    .get_many::<String, _, _>(black_box(keys))
                    .await
                    .unwrap(),
            )
        })
    });
    group.bench_function("cache/100_gets", |b| {
        b.to_async(rt).iter(|| async {
            for key in keys {
                black_box(cache.get::<String>(black_box(key)).await.unwrap());
            }
        })
    });
}
