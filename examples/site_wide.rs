//! Site-wide caching: Django's `UpdateCacheMiddleware` and
//! `FetchFromCacheMiddleware` around a whole router, with a page that must
//! not be cached.
//!
//! Run with `cargo run --example site_wide`, then:
//!
//! ```text
//! curl -i http://127.0.0.1:8001/          # cached 60 s: the time stays the same
//! curl -i http://127.0.0.1:8001/news      # max-age=10 wins over the 60 s default
//! curl -i http://127.0.0.1:8001/account   # Cache-Control: private, never cached
//! ```
//!
//! `--listen ADDR` serves elsewhere; `CACHE_URL` picks the backend.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::http::header::CACHE_CONTROL;
use axum::response::IntoResponse;
use axum::routing::get;
use tower::ServiceBuilder;
use tower_cache::Cache;
use tower_cache::middleware::{FetchFromCacheLayer, UpdateCacheLayer};

fn now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!(
        "{:02}:{:02}:{:02} UTC",
        (secs / 3600) % 24,
        (secs / 60) % 60,
        secs % 60
    )
}

async fn home() -> impl IntoResponse {
    format!("Home, rendered at {}\n", now())
}

async fn news() -> impl IntoResponse {
    (
        [(CACHE_CONTROL, "max-age=10")],
        format!("News, rendered at {}\n", now()),
    )
}

/// A page for one user: `private` keeps it out of the shared cache.
async fn account() -> impl IntoResponse {
    (
        [(CACHE_CONTROL, "private")],
        format!("Your account, rendered at {}\n", now()),
    )
}

/// The router, cached site-wide in `cache` for 60 s by default.
pub fn app(cache: Cache) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/news", get(news))
        .route("/account", get(account))
        .layer(
            ServiceBuilder::new()
                // Outermost: stores what the fetch layer missed.
                .layer(
                    UpdateCacheLayer::new()
                        .cache(cache.clone())
                        .timeout(Duration::from_secs(60)),
                )
                // Layers that add Vary or cookies would go here.
                // Innermost: answers hits.
                .layer(FetchFromCacheLayer::new().cache(cache)),
        )
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let listen = match (args.next().as_deref(), args.next()) {
        (None, _) => "127.0.0.1:8001".to_owned(),
        (Some("--listen"), Some(addr)) => addr,
        _ => return Err("usage: site_wide [--listen ADDR]".into()),
    };
    let caches = tower_cache::Caches::from_env().await?;
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("Serving http://{listen}: / and /news are cached, /account is not");
    axum::serve(listener, app(caches.default().clone())).await?;
    Ok(())
}
