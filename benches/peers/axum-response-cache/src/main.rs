//! The page behind axum-response-cache's `CacheLayer` with a 300 s lifespan,
//! its defaults otherwise: any 2xx response is stored in memory, keyed by
//! method and URI; no Cache-Control handling, no coalescing.

use std::time::Duration;

use axum_response_cache::CacheLayer;
use peer_common::{Options, serve};

#[tokio::main]
async fn main() {
    let options = Options::from_args();
    let app = options
        .page
        .router()
        .layer(CacheLayer::with_lifespan(Duration::from_secs(300)));
    serve("axum-response-cache", options.listen, app).await;
}
