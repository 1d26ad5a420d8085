//! The page behind hitbox-tower's `Cache` on hitbox-moka (in memory) with a
//! 300 s TTL: GET requests and 200 responses are cached, keyed by method and
//! path. hitbox has no HTTP caching rules of its own (Cache-Control is not
//! read); its herd protection is off by default, and is turned on here
//! (`BroadcastConcurrencyManager`, one request per key goes upstream), as a
//! team measuring herds would configure it.

use std::time::Duration;

use hitbox::Config;
use hitbox::concurrency::BroadcastConcurrencyManager;
use hitbox::policy::{ConcurrencyLimit, PolicyConfig};
use hitbox_http::extractors::Method as MethodKey;
use hitbox_http::extractors::path::PathExtractor;
use hitbox_http::predicates::request::Method;
use hitbox_http::predicates::response::StatusCode;
use hitbox_moka::MokaBackend;
use hitbox_tower::Cache;
use peer_common::{Options, serve};

#[tokio::main]
async fn main() {
    let options = Options::from_args();
    let policy = PolicyConfig::builder()
        .ttl(Duration::from_secs(300))
        .concurrency(ConcurrencyLimit::new(1).expect("a limit of 1"))
        .build();
    let config = Config::builder()
        .request_predicate(Method::new(http::Method::GET).expect("GET"))
        .response_predicate(StatusCode::new(http::StatusCode::OK))
        .extractor(MethodKey::new().path("/{path}*"))
        .policy(policy)
        .build();
    let cache = Cache::builder()
        .backend(MokaBackend::builder().max_entries(10_000).build())
        .config(config)
        .concurrency_manager(BroadcastConcurrencyManager::new())
        .build();
    let app = options.page.router().layer(cache);
    serve("hitbox", options.listen, app).await;
}
