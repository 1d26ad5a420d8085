//! The page behind http-cache-tower-server's `ServerCacheLayer` on
//! http-cache's `MokaManager` (in memory). The layer stores only responses
//! that allow it (`max-age`, `s-maxage`, `public`) unless `cache_by_default`
//! is on; the shared view sends no Cache-Control, so it is on here, with 300 s
//! as the default and the longest TTL. `HandleErrorLayer` turns the layer's
//! errors into 500s, as in the crate's Axum example.

use std::time::Duration;

use axum::BoxError;
use axum::error_handling::HandleErrorLayer;
use axum::http::StatusCode;
use http_cache::MokaManager;
use http_cache_tower_server::{ServerCacheLayer, ServerCacheOptions};
use peer_common::{Options, serve};
use tower::ServiceBuilder;

#[tokio::main]
async fn main() {
    let options = Options::from_args();
    let manager = MokaManager::new(moka::future::Cache::new(10_000));
    let cache = ServerCacheLayer::new(manager).with_options(ServerCacheOptions {
        default_ttl: Some(Duration::from_secs(300)),
        max_ttl: Some(Duration::from_secs(300)),
        cache_by_default: true,
        ..ServerCacheOptions::default()
    });
    let app = options.page.router().layer(
        ServiceBuilder::new()
            .layer(HandleErrorLayer::new(|e: BoxError| async move {
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("cache error: {e}"),
                )
            }))
            .layer(cache),
    );
    serve("http-cache-tower-server", options.listen, app).await;
}
