//! What one hit costs, counted rather than timed: allocations per request
//! (a counting global allocator) and, under callgrind, instructions per
//! request of the requests (`Case::once`, warm-up included: two of N + 2). Figures that do not move with the machine's
//! noise; `scripts/hit-cost` runs every case under callgrind and prints the
//! table with the ratios.
//!
//! ```text
//! cargo bench --bench hit_cost -- CASE [N]
//! ```
//!
//! Cases, each in-process on one current-thread runtime, behind an Axum
//! router, for a 688-byte page (the perf anchors' size):
//! * `bare`: the handler alone;
//! * `cache_page`: a `cache_page(300 s)` hit on the memory backend;
//! * `cache_page_tagged`: the same page tagged (one tag version read per hit),
//!   with `Cache-Status`, as the httpbin demo serves it;
//! * `rfc9111`: the hit under the RFC 9111 policy;
//! * `bare_browser` and `cache_page_browser`: `bare` and `cache_page` asked
//!   as a browser asks, with a dozen header fields (the others send `Host`
//!   alone, as `wrk` does);
//! * `cache_get` and `moka_get`: `Cache::get_bytes` of a 688-byte value
//!   against a raw moka get of the same;
//! * `redis`, `memcached`, `sqlite`: the `cache_page` hit over a server
//!   (`REDIS_URL`, `MEMCACHED_URL` from `./scripts/test --serve`; a SQLite
//!   file in the temp directory), the app's side only; build with
//!   `--all-features`. Not in `scripts/hit-cost`, which needs no server;
//! * `tiered`: `cache_page_tagged` on Redis (`REDIS_URL`) behind a 64 MiB
//!   L1, the two-tier cache: an L1 hit.
//!
//! It prints `CASE allocations/request` for `N` requests (10,000 by
//! default) after one warm-up. Only `run` is counted by callgrind
//! (`--toggle-collect`), so set-up and the warm-up do not count.

use std::alloc::System;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::HeaderValue;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use bytes::Bytes;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
mod common;
use common::{VALUE_LEN, one_request};
use tower_cache::Cache;
use tower_cache::backends::MemoryBackend;
use tower_cache::http::policy::Semantics;
use tower_cache::http::rfc9111::Rfc9111;
use tower_cache::middleware::cache_page;

/// Counts allocations: what a request costs the allocator.
#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn router(page: Bytes, tagged: bool) -> Router {
    Router::new().route(
        "/",
        get(move || {
            let page = page.clone();
            async move {
                let mut response =
                    ([(CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response();
                if tagged {
                    response
                        .headers_mut()
                        .insert("cache-tag", HeaderValue::from_static("page:home"));
                }
                response
            }
        }),
    )
}

/// What a case does once per request.
enum Case {
    App(Router),
    /// The app, asked as a browser asks: a dozen header fields.
    Browser(Router),
    CacheGet(Cache),
    MokaGet(moka::future::Cache<String, Bytes>),
}

impl Case {
    async fn once(&self) {
        match self {
            Case::App(app) => drop(black_box(one_request(app).await)),
            Case::Browser(app) => drop(black_box(browser_request(app).await)),
            Case::CacheGet(cache) => drop(black_box(cache.get_bytes("page").await.unwrap())),
            Case::MokaGet(moka) => drop(black_box(moka.get("page").await)),
        }
    }
}

/// A request as a browser sends it (Firefox's fields for a page, with a
/// cookie), with the one field `one_request` sends.
async fn browser_request(app: &Router) -> Bytes {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let mut request = axum::http::Request::get("/").header("host", "127.0.0.1:8000");
    for (name, value) in [
        (
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
        ),
        (
            "accept",
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        ),
        ("accept-language", "en-GB,en;q=0.5"),
        ("accept-encoding", "gzip, deflate, br, zstd"),
        ("connection", "keep-alive"),
        ("cookie", "theme=dark; consent=yes"),
        ("upgrade-insecure-requests", "1"),
        ("sec-fetch-dest", "document"),
        ("sec-fetch-mode", "navigate"),
        ("sec-fetch-site", "none"),
        ("sec-fetch-user", "?1"),
        ("priority", "u=0, i"),
    ] {
        request = request.header(name, value);
    }
    let request = request.body(axum::body::Body::empty()).unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    response.into_body().collect().await.unwrap().to_bytes()
}

/// The loop callgrind counts.
#[inline(never)]
async fn run(case: &Case, n: u64) {
    for _ in 0..n {
        case.once().await;
    }
}

async fn setup(name: &str) -> Case {
    let page = Bytes::from(vec![b'x'; VALUE_LEN]);
    let memory = || Cache::new(Arc::new(MemoryBackend::new()));
    let layer = || cache_page(Duration::from_secs(300)).cache(memory());
    match name {
        "bare" => Case::App(router(page, false)),
        "cache_page" => Case::App(router(page, false).route_layer(layer())),
        "bare_browser" => Case::Browser(router(page, false)),
        "cache_page_browser" => Case::Browser(router(page, false).route_layer(layer())),
        "cache_page_tagged" => {
            Case::App(router(page, true).route_layer(layer().cache_status(true)))
        }
        "rfc9111" => Case::App(router(page, false).route_layer(layer().semantics(
            Semantics::Rfc9111(Rfc9111::new().default_lifetime(Duration::from_secs(300))),
        ))),
        // The same hit over a server, from the environment (REDIS_URL,
        // MEMCACHED_URL, or a SQLite file): the app's side only; `tiered`,
        // the demo's tagged hit with `Cache-Status` on Redis behind a
        // 64 MiB L1 (the two-tier cache), against `cache_page_tagged`.
        "redis" | "memcached" | "sqlite" | "tiered" => {
            let url = match name {
                "redis" => std::env::var("REDIS_URL").expect("REDIS_URL"),
                "memcached" => std::env::var("MEMCACHED_URL").expect("MEMCACHED_URL"),
                "tiered" => {
                    let url = std::env::var("REDIS_URL").expect("REDIS_URL");
                    let join = if url.contains('?') { '&' } else { '?' };
                    format!("{url}{join}l1_max_bytes=64MiB")
                }
                _ => format!("sqlite://{}/hit-cost.db", std::env::temp_dir().display()),
            };
            let cache = Cache::from_url(&url).await.expect("cache");
            let tiered = name == "tiered";
            Case::App(
                router(page, tiered).route_layer(
                    cache_page(Duration::from_secs(300))
                        .key_prefix(format!("hit-cost-{}", std::process::id()))
                        .cache_status(tiered)
                        .cache(cache),
                ),
            )
        }
        "cache_get" => {
            let cache = memory();
            cache
                .set_bytes("page", page, Duration::from_secs(300))
                .await
                .unwrap();
            Case::CacheGet(cache)
        }
        "moka_get" => {
            let moka = moka::future::Cache::new(10_000);
            moka.insert("page".to_owned(), page).await;
            Case::MokaGet(moka)
        }
        other => panic!(
            "unknown case {other:?}: bare, cache_page, cache_page_tagged, rfc9111, \
             bare_browser, cache_page_browser, cache_get, moka_get, redis, memcached, sqlite, tiered"
        ),
    }
}

fn main() {
    // `cargo bench` passes `--bench`; the case and count follow.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let name = args.first().map_or("cache_page", String::as_str);
    let n: u64 = args.get(1).map_or(10_000, |n| n.parse().expect("N"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let case = setup(name).await;
        // The warm-up: the miss that stores the page (stored in the
        // background over a server: give it a moment), and one hit.
        case.once().await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        case.once().await;
        let region = Region::new(GLOBAL);
        run(&case, n).await;
        let change = region.change();
        let allocations = change.allocations + change.reallocations;
        println!(
            "{name} {:.2} allocations/request",
            allocations as f64 / n as f64
        );
    });
}
