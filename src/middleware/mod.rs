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
//! * [`cache_page(ttl)`](cache_page) / [`CachePageLayer`]: one route (or a
//!   few), both sides in one layer; `ttl` wins over the response's
//!   `max-age`. Use it with `Router::route_layer` or `MethodRouter::layer`.
//! * [`SiteCache`]: the whole site, configured once; its
//!   [`layers`](SiteCache::layers) are Django's two middlewares. Fetch goes
//!   innermost (it answers hits), Update outermost (it stores misses, with
//!   the fetch layer's configuration, so the two cannot disagree); the
//!   response's `max-age` wins over the default lifetime:
//!
//! ```
//! use axum::{Router, routing::get};
//! use tower::ServiceBuilder;
//! use tower_cache::middleware::SiteCache;
//!
//! # async fn site(cache: tower_cache::Cache) {
//! let (update, fetch) = SiteCache::new().cache(cache).layers();
//! let app: Router = Router::new()
//!     .route("/", get(|| async { "home" }))
//!     .layer(
//!         ServiceBuilder::new()
//!             .layer(update) // outermost
//!             // ... layers that add Vary, set cookies or compress go here ...
//!             .layer(fetch), // innermost
//!     );
//! # }
//! ```
//!
//! Without `.cache(..)`, both use the `"default"` cache of
//! [`Caches::global`](crate::Caches::global), built once from `CACHE_URL`
//! (memory when it is unset), as Django uses `caches['default']`.
//!
//! # What is cached
//!
//! Served from the cache: GET and HEAD (HEAD from the GET entry, without a
//! body) of requests with a valid `Host` and without a body. Stored: 200
//! responses whose body ends within [`max_body_size`](CachePageLayer::max_body_size)
//! (1 MiB; a body of unknown length, compressed or streamed, is read up to
//! it), unless `Cache-Control` says `private`, `no-cache` or `no-store` (on
//! any line), `Vary` is `*`, either header cannot be read, or the lifetime
//! is zero (the smallest `max-age` counts). Safer than Django by default: a response
//! that sets a cookie is not stored ([`set_cookie`](CachePageLayer::set_cookie)),
//! and a request with `Authorization` is neither served nor stored unless the
//! response says `public`, `s-maxage` or `must-revalidate`
//! ([`authorization`](CachePageLayer::authorization)). Stored responses get
//! `Expires` and `Cache-Control: max-age`; hits get `Age`.
//! [`Policy`](crate::http::policy::Policy) has every rule.
//!
//! These are Django's rules. [`semantics`](CachePageLayer::semantics)
//! switches a layer to a standard shared cache's,
//! [`Semantics::Rfc9111`](crate::http::policy::Semantics::Rfc9111): freshness
//! and `Age` from the response, any cacheable status, stale entries
//! revalidated with conditional requests (one inner call, answered with the
//! stored body on a 304), request `Cache-Control` honoured, and unsafe
//! methods purging what they change (one `delete_many` per URL, awaited
//! before the response is returned). See [`rfc9111`](crate::http::rfc9111).
//!
//! Keys are Django 6.1's ([`key`](crate::http::key)), made by the
//! [`Cache`](crate::Cache) (`prefix:version:key`), so a page stored by
//! `cache_page` and by the site-wide layers under the same URL is the same
//! entry. Two settings matter in real deployments:
//!
//! * HTTPS behind a proxy that terminates TLS: the request URI has no
//!   scheme, so pages are keyed as `http://` unless
//!   [`scheme`](CachePageLayer::scheme) says how to tell
//!   ([`RequestScheme`](crate::http::key::RequestScheme), Django's
//!   `SECURE_PROXY_SSL_HEADER`).
//! * Compression: put tower-http's `CompressionLayer` between the site-wide
//!   layers (or inside `cache_page`), so that the compressed bytes are
//!   stored and hits are not compressed again. Pages that vary on
//!   `Accept-Encoding` are keyed by the coding the client prefers, not by
//!   the header as sent ([`encoding`](crate::http::encoding)): one entry per
//!   coding, not one per browser.
//!
//! # Herds and stale pages
//!
//! Misses coalesce: while the inner service answers one, other requests for
//! the same page wait for its response (bounded by
//! [`coalesce_wait`](CachePageLayer::coalesce_wait)) and get it when it was
//! storable and fits them; across app instances that share Redis or
//! memcached too ([`coalesce_across_instances`](CachePageLayer::coalesce_across_instances)).
//! Stale pages are served within their `stale-while-revalidate` window while
//! one request refreshes them, and within their `stale-if-error` window when
//! the inner service fails ([`stale_while_revalidate`](CachePageLayer::stale_while_revalidate),
//! [`stale_if_error`](CachePageLayer::stale_if_error)). A miss streams to the
//! client while a copy is kept, and is stored when its body ends. Every
//! response carries an [`Outcome`].
//!
//! # Conditional requests, `Cache-Status`, jitter
//!
//! A hit whose page has an `ETag` or a `Last-Modified` answers
//! `If-None-Match` and `If-Modified-Since` with `304 Not Modified`
//! ([`conditional`](crate::http::conditional)); [`etag`](CachePageLayer::etag)
//! gives stored pages without a tag a weak one. [`cache_status`](CachePageLayer::cache_status)
//! appends an RFC 9211 `Cache-Status` member, the [`Outcome`] written out.
//! [`ttl_jitter`](CachePageLayer::ttl_jitter) spreads the freshness of pages
//! stored together, so that they do not expire together.
//!
//! # Metrics
//!
//! Through the [`metrics`](https://docs.rs/metrics) facade (install the
//! recorder you want: `metrics-exporter-prometheus`, StatsD, ...):
//!
#![doc = include_str!("metrics.md")]
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
mod cache_status;
mod clock;
mod decoded;
mod etag;
mod fetch;
mod flight;
mod found_entry;
mod future;
mod hit;
mod invalidate;
mod lookup;
mod metrics;
mod outcome;
mod page_keys;
mod purge;
mod recent_decodes;
mod remote_lock;
mod revalidate;
mod serve;
mod settings;
mod site;
mod store;
mod tag_check;
mod tag_hints;
mod update;

pub use body::CacheBody;
pub use cache_page::{CachePage, CachePageLayer, cache_page};
pub use clock::Clock;
pub use fetch::{FetchFromCache, FetchFromCacheLayer};
pub use future::ResponseFuture;
pub use invalidate::Invalidator;
pub use outcome::{Answer, MissBecause, Outcome, StaleBecause, Store};
pub use purge::PurgeService;
pub use site::SiteCache;
pub use update::{UpdateCache, UpdateCacheLayer};

/// The target of every tracing event of the layers.
const TARGET: &str = "tower_cache::http";

/// Runs `task` on the current Tokio runtime, in the background; without
/// one, logs that `what` was skipped (it is never needed for correctness:
/// a store, a refresh or a lock release that does not happen only costs a
/// later miss or a lock that expires).
fn spawn_or_skip(what: &str, task: impl std::future::Future<Output = ()> + Send + 'static) {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => drop(runtime.spawn(task)),
        Err(_) => tracing::warn!(target: TARGET, "no Tokio runtime to {what} on; skipped"),
    }
}
