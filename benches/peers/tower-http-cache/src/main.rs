//! The page behind tower-http-cache's `CacheLayer` on its in-memory (moka)
//! backend with a 300 s TTL, its defaults otherwise (Cache-Control honoured,
//! a per-key lock that coalesces misses).
//!
//! The layer wants an inner service whose response body is `Sync` (Axum's
//! `Body` is not) and fails with `BoxError`: the view is therefore a
//! `service_fn` answering `Full<Bytes>`, and `HandleErrorLayer` turns the
//! layer's errors into 500s so that Axum can route to it.

use std::convert::Infallible;
use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use axum::http::StatusCode;
use axum::{BoxError, Router};
use peer_common::{Options, serve};
use tower::ServiceBuilder;
use tower_http_cache::prelude::*;

#[tokio::main]
async fn main() {
    let options = Options::from_args();
    let page = options.page;
    let view = tower::service_fn(move |_request: axum::extract::Request| {
        let page = page.clone();
        async move { Ok::<_, Infallible>(page.respond().await) }
    });
    let cache = CacheLayer::builder(InMemoryBackend::new(10_000))
        .ttl(Duration::from_secs(300))
        .build();
    let service = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(|e: BoxError| async move {
            (StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
        }))
        .layer(cache)
        .service(view);
    let app = Router::new().route_service("/", service);
    serve("tower-http-cache", options.listen, app).await;
}
