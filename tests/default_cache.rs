//! A layer without `.cache(..)` uses the `"default"` cache of
//! `Caches::global()`, built once from `CACHE_URL`. The global is one per
//! process, so each case runs in a child process of this test binary with
//! its own `CACHE_URL`.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::{HeaderMap, Method, Request, StatusCode, Uri, header};
use http_body_util::BodyExt;
use tower::ServiceExt;
use tower_cache::Caches;
use tower_cache::http::key::{VaryHeaders, page_key, url_hash};
use tower_cache::middleware::cache_page;

/// Runs the ignored test `name` of this binary in a child process with
/// `CACHE_URL=url`, and fails if it fails.
fn in_child(name: &str, url: &str) {
    let output = Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--ignored", "--nocapture"])
        .env("CACHE_URL", url)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "{name} with CACHE_URL={url}:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `/` behind `cache_page(300 s)` with no cache of its own.
fn app(calls: &Arc<AtomicUsize>) -> Router {
    let calls = calls.clone();
    Router::new()
        .route(
            "/",
            get(move || async move {
                calls.fetch_add(1, Ordering::SeqCst);
                "page"
            }),
        )
        .route_layer(cache_page(Duration::from_secs(300)))
}

async fn get_home(app: &Router) -> StatusCode {
    let request = Request::get("/")
        .header(header::HOST, "example.com")
        .body(Body::empty())
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    response.into_body().collect().await.unwrap();
    status
}

#[test]
fn cache_page_without_a_cache_uses_cache_url() {
    in_child("child_uses_cache_url", "memory://?key_prefix=from-env");
}

/// Three GETs of `/` with no cache of the layer's own: the origin's calls.
async fn three_requests() -> usize {
    let calls = Arc::new(AtomicUsize::new(0));
    let app = app(&calls);
    for _ in 0..3 {
        assert_eq!(get_home(&app).await, StatusCode::OK);
    }
    calls.load(Ordering::SeqCst)
}

#[tokio::test]
#[ignore = "runs in a child process with its own CACHE_URL"]
async fn child_uses_cache_url() {
    assert_eq!(three_requests().await, 1);
    // The page is in CACHE_URL's cache, under its key prefix.
    let cache = Caches::global().await.unwrap().default();
    assert_eq!(cache.key_prefix(), "from-env");
    let mut headers = HeaderMap::new();
    headers.insert(header::HOST, "example.com".parse().unwrap());
    let url = url_hash("http", &Uri::from_static("/"), &headers).unwrap();
    let vary = VaryHeaders::default().hash(&HeaderMap::new());
    let key = page_key("", &Method::GET, &url, &vary, "");
    assert!(cache.get_bytes(&key).await.unwrap().is_some());
}

#[test]
fn a_bad_cache_url_passes_requests_through() {
    in_child("child_bad_cache_url", "nosuchscheme://x");
}

#[tokio::test]
#[ignore = "runs in a child process with its own CACHE_URL"]
async fn child_bad_cache_url() {
    assert_eq!(three_requests().await, 3, "served, uncached");
    let error = Caches::global().await.unwrap_err();
    assert!(error.to_string().contains("nosuchscheme"), "{error}");
}
