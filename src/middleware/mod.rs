//! Tower layers that cache whole responses: Django's per-view and per-site
//! caches.
//!
//! ```
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use std::time::Duration;
//! use axum::{Router, body::Body, routing::get};
//! use http::Request;
//! use tower::ServiceExt;
//! use tower_cache::middleware::cache_page;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> tower_cache::Result<()> {
//! let calls = Arc::new(AtomicUsize::new(0));
//! let counter = calls.clone();
//! let cache = tower_cache::Cache::from_url("memory://").await?;
//! let app = Router::new()
//!     .route("/", get(move || async move {
//!         counter.fetch_add(1, Ordering::SeqCst);
//!         "an expensive page"
//!     }))
//!     .route_layer(cache_page(Duration::from_secs(300)).cache(cache));
//!
//! for _ in 0..3 {
//!     let request = Request::get("/").header("host", "example.com").body(Body::empty()).unwrap();
//!     let response = app.clone().oneshot(request).await.unwrap();
//!     assert_eq!(response.headers()["cache-control"], "max-age=300");
//! }
//! assert_eq!(calls.load(Ordering::SeqCst), 1); // two hits
//! # Ok(()) }
//! ```
//!
//! # The layers
//!
//! * [`cache_page(ttl)`](cache_page) / [`CacheLayer`]: one route (or a few),
//!   both sides in one layer; `ttl` wins over the response's `max-age`.
//!   Use it with `Router::route_layer` or `MethodRouter::layer`.
//! * [`UpdateCacheLayer`] and [`FetchFromCacheLayer`]: the whole site. Fetch
//!   goes innermost (it answers hits), Update outermost (it stores misses);
//!   the response's `max-age` wins over Update's default lifetime:
//!
//! ```
//! use axum::{Router, routing::get};
//! use tower::ServiceBuilder;
//! use tower_cache::middleware::{FetchFromCacheLayer, UpdateCacheLayer};
//!
//! # async fn site(cache: tower_cache::Cache) {
//! let app: Router = Router::new()
//!     .route("/", get(|| async { "home" }))
//!     .layer(
//!         ServiceBuilder::new()
//!             .layer(UpdateCacheLayer::new().cache(cache.clone())) // outermost
//!             // ... layers that add Vary or cookies go here ...
//!             .layer(FetchFromCacheLayer::new().cache(cache)),     // innermost
//!     );
//! # }
//! ```
//!
//! # What is cached
//!
//! Served from the cache: GET and HEAD (HEAD from the GET entry, without a
//! body) of requests with a valid `Host`. Stored: 200 responses whose body has
//! a known length up to [`max_body_size`](CacheLayer::max_body_size) (1 MiB),
//! unless `Cache-Control` says `private`, `no-cache` or `no-store`, `Vary` is
//! `*`, or the lifetime is zero. Safer than Django by default: a response
//! that sets a cookie is not stored ([`set_cookie`](CacheLayer::set_cookie)),
//! and a request with `Authorization` is neither served nor stored unless the
//! response says `public`, `s-maxage` or `must-revalidate`
//! ([`authorization`](CacheLayer::authorization)). Stored responses get
//! `Expires` and `Cache-Control: max-age`; hits get `Age`.
//! [`Policy`](crate::http::policy::Policy) has every rule.
//!
//! Keys are Django 6.1's ([`key`](crate::http::key)), made by the
//! [`Cache`](crate::Cache) (`prefix:version:key`), so a page stored by
//! `cache_page` and by the site-wide layers under the same URL is the same
//! entry.
//!
//! # Failures and debugging
//!
//! The client never sees a cache failure: a backend error on lookup is a
//! miss, on store it is logged (`tracing`, target `tower_cache::http`) and
//! the response is served. An entry that does not decode is deleted and
//! counts as a miss. Every request logs one `debug` event: `cache hit`,
//! `cache miss` or `cache bypass` with the key or the reason, and misses a
//! `stored` or `not stored` event.

mod body;
mod cache_page;
mod fetch;
mod future;
mod settings;
mod update;

pub use body::CacheBody;
pub use cache_page::{CacheLayer, CachePage, cache_page};
pub use fetch::{FetchFromCache, FetchFromCacheLayer};
pub use future::ResponseFuture;
pub use settings::default_cache;
pub use update::{UpdateCache, UpdateCacheLayer};
