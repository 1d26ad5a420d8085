//! A cache hit through `cache_page` on the memory backend against a bare
//! handler serving the same bytes, both behind an Axum router, in one run.
//!
//! Run with `cargo bench --bench http`. The figure that matters is the ratio
//! of `bare_handler` to `cache_page_hit` time per request (goal: the hit
//! costs little more than the bare handler; `scripts/loadtest` measures the
//! same over real connections). `cache_page_hit_cache_status` is the same
//! hit with `Cache-Status` on: the cost of writing the header.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::header::CONTENT_TYPE;
use axum::routing::get;
use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
mod common;
use common::{VALUE_LEN, one_request};
use tower_cache::Cache;
use tower_cache::backends::MemoryBackend;
use tower_cache::middleware::cache_page;

fn router(page: Bytes) -> Router {
    Router::new().route(
        "/",
        get(move || {
            let page = page.clone();
            async move { ([(CONTENT_TYPE, "text/html; charset=utf-8")], page) }
        }),
    )
}

fn hit_vs_bare(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let page = Bytes::from(vec![b'x'; VALUE_LEN]);
    let bare = router(page.clone());
    let layer =
        || cache_page(Duration::from_secs(300)).cache(Cache::new(Arc::new(MemoryBackend::new())));
    let cached = router(page.clone()).route_layer(layer());
    let with_status = router(page).route_layer(layer().cache_status(true));
    // Warm the caches: every measured request below is a hit.
    rt.block_on(async {
        for app in [&cached, &with_status] {
            one_request(app).await;
            assert_eq!(one_request(app).await.len(), VALUE_LEN);
        }
    });

    let mut group = c.benchmark_group("http");
    group.bench_function("bare_handler", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(one_request(&bare).await) })
    });
    group.bench_function("cache_page_hit", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(one_request(&cached).await) })
    });
    group.bench_function("cache_page_hit_cache_status", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(one_request(&with_status).await) })
    });
    group.finish();
}

criterion_group!(benches, hit_vs_bare);
criterion_main!(benches);
