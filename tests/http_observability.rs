//! The layers' metrics, read back from `metrics-util`'s debugging recorder
//! (installed for the test's thread: the current-thread runtime polls every
//! request and store there).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::{Method, Request, header};
use http_body_util::BodyExt;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use tower::ServiceExt;
use tower_cache::Cache;
use tower_cache::middleware::{SiteCache, cache_page};
use tower_cache::testing::FailingBackend;

async fn send(app: &Router, method: Method, path: &str) {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, "example.com")
        .body(Body::empty())
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    response.into_body().collect().await.unwrap();
}

/// Every counter and histogram, by name and its labels (`k=v` sorted,
/// comma-joined): counters as their value, histograms as their count.
fn read(snapshotter: &Snapshotter) -> HashMap<(String, String), u64> {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let key = key.key();
            let mut labels: Vec<String> = key
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            labels.sort();
            let value = match value {
                DebugValue::Counter(n) => n,
                DebugValue::Histogram(samples) => samples.len() as u64,
                DebugValue::Gauge(_) => 0,
            };
            ((key.name().to_owned(), labels.join(",")), value)
        })
        .collect()
}

fn value(all: &HashMap<(String, String), u64>, name: &str, labels: &str) -> u64 {
    all.get(&(name.to_owned(), labels.to_owned()))
        .copied()
        .unwrap_or(0)
}

#[tokio::test]
async fn each_outcome_is_counted_with_the_caches_name_and_layer() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);

    let cache = Cache::from_url("memory://").await.unwrap();
    let layer = cache_page(Duration::from_secs(60))
        .cache(cache.clone())
        .name("edge");
    let invalidator = layer.invalidator();
    let app = Router::new()
        .route("/", get(|| async { ([("cache-tag", "home")], "home") }))
        .route(
            "/private",
            get(|| async { ([(header::CACHE_CONTROL, "private")], "mine") }),
        )
        .route_layer(layer);
    send(&app, Method::GET, "/").await; // miss, stored
    send(&app, Method::GET, "/").await; // hit
    send(&app, Method::HEAD, "/").await; // hit
    send(&app, Method::POST, "/").await; // bypass: method
    send(&app, Method::GET, "/private").await; // miss, not stored
    invalidator.invalidate_tags(["home"]).await.unwrap();
    invalidator
        .invalidate_url("http://example.com/private")
        .await
        .unwrap();
    send(&app, Method::GET, "/").await; // miss: invalidated, stored

    let all = read(&snapshotter);
    let at = "cache=edge,layer=cache_page";
    assert_eq!(value(&all, "tower_cache_hits_total", at), 2, "{all:?}");
    assert_eq!(
        value(
            &all,
            "tower_cache_misses_total",
            &format!("{at},reason=uri-miss")
        ),
        2
    );
    assert_eq!(
        value(
            &all,
            "tower_cache_misses_total",
            &format!("{at},reason=invalidated")
        ),
        1
    );
    assert_eq!(
        value(
            &all,
            "tower_cache_bypasses_total",
            &format!("{at},reason=method")
        ),
        1
    );
    assert_eq!(value(&all, "tower_cache_stores_total", at), 2);
    assert_eq!(
        value(
            &all,
            "tower_cache_not_stored_total",
            &format!("{at},reason=private")
        ),
        1
    );
    assert_eq!(
        value(&all, "tower_cache_purges_total", "cache=edge,kind=tag"),
        1
    );
    assert_eq!(
        value(&all, "tower_cache_purges_total", "cache=edge,kind=url"),
        1
    );
    // Every lookup and every store is timed.
    assert_eq!(
        value(
            &all,
            "tower_cache_backend_seconds",
            &format!("{at},operation=lookup")
        ),
        5
    );
    assert_eq!(
        value(
            &all,
            "tower_cache_backend_seconds",
            &format!("{at},operation=store")
        ),
        2
    );
    assert_eq!(
        value(
            &all,
            "tower_cache_backend_errors_total",
            &format!("{at},operation=lookup")
        ),
        0
    );
}

#[tokio::test]
async fn a_failing_backend_is_counted_not_seen() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);

    let cache = Cache::new(Arc::new(FailingBackend));
    let (update, fetch) = SiteCache::new().cache(cache).layers();
    let app = Router::new()
        .route("/", get(|| async { "page" }))
        .layer(fetch)
        .layer(update);
    send(&app, Method::GET, "/").await;

    let all = read(&snapshotter);
    let at = "cache=tower-cache,layer=site";
    assert_eq!(
        value(
            &all,
            "tower_cache_misses_total",
            &format!("{at},reason=backend")
        ),
        1,
        "{all:?}"
    );
    assert_eq!(
        value(
            &all,
            "tower_cache_backend_errors_total",
            &format!("{at},operation=lookup")
        ),
        1
    );
    assert_eq!(
        value(
            &all,
            "tower_cache_backend_errors_total",
            &format!("{at},operation=store")
        ),
        1
    );
}
