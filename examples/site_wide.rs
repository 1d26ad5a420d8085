//! Site-wide caching: Django's `UpdateCacheMiddleware` and
//! `FetchFromCacheMiddleware` around a whole router, configured once with
//! [`SiteCache`], with tower-http's compression between them and a page that
//! must not be cached.
//!
//! Run with `cargo run --example site_wide`, then:
//!
//! ```text
//! curl -i http://127.0.0.1:8001/                 # cached 60 s: the time stays the same
//! curl -i --compressed http://127.0.0.1:8001/    # gzip, br...: stored once per coding
//! curl -i http://127.0.0.1:8001/news             # max-age=10 wins over the 60 s default
//! curl -i http://127.0.0.1:8001/account          # Cache-Control: private, never cached
//! ```
//!
//! `--listen ADDR` serves elsewhere; `CACHE_URL` picks the backend.
//!
//! # Where compression goes
//!
//! Between the two layers: the update layer then stores the compressed
//! bytes, and a hit is served as stored, never compressed again. The
//! compression layer adds `Vary: Accept-Encoding`, and the key holds the
//! coding each client prefers (`zstd`, `br`, `gzip`, `deflate` or
//! `identity`), so the many spellings of `Accept-Encoding` make a handful of
//! entries per page. Outside the update layer it works too, but every hit is
//! compressed again; inside the fetch layer, hits would skip it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::http::header::CACHE_CONTROL;
use axum::response::IntoResponse;
use axum::routing::get;
use tower::ServiceBuilder;
use tower_cache::Cache;
use tower_cache::middleware::SiteCache;
use tower_http::compression::CompressionLayer;

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
    // Long enough to be worth compressing (tower-http skips tiny bodies).
    format!(
        "Home, rendered at {}\n{}",
        now(),
        "All the news that fits, and then some.\n".repeat(20)
    )
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
    let (update, fetch) = SiteCache::new()
        .cache(cache)
        .timeout(Duration::from_secs(60))
        .layers();
    Router::new()
        .route("/", get(home))
        .route("/news", get(news))
        .route("/account", get(account))
        .layer(
            ServiceBuilder::new()
                // Outermost: stores what the fetch layer missed.
                .layer(update)
                // Layers that add Vary, set cookies or compress go here.
                .layer(CompressionLayer::new())
                // Innermost: answers hits.
                .layer(fetch),
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
