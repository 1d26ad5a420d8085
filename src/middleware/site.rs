//! [`SiteCache`]: the one configuration of site-wide caching, which makes
//! the two layers.

use std::sync::Arc;
use std::time::Duration;

use super::fetch::FetchFromCacheLayer;
use super::settings::{Settings, builders};
use super::update::UpdateCacheLayer;
use crate::http::policy::{Lifetime, Policy};

/// Site-wide caching, configured once: Django's `CACHE_MIDDLEWARE_*`
/// settings. [`layers`](SiteCache::layers) makes the two layers, which go
/// around the whole router in Django's `MIDDLEWARE` order:
///
/// ```
/// use std::time::Duration;
/// use axum::{Router, routing::get};
/// use tower::ServiceBuilder;
/// use tower_cache::middleware::SiteCache;
///
/// # async fn site(cache: tower_cache::Cache) {
/// let (update, fetch) = SiteCache::new()
///     .cache(cache)
///     .timeout(Duration::from_secs(600))
///     .layers();
/// let app: Router = Router::new()
///     .route("/", get(|| async { "home" }))
///     .layer(
///         ServiceBuilder::new()
///             .layer(update) // outermost: stores misses
///             // ... layers that add Vary, set cookies or compress go here ...
///             .layer(fetch), // innermost: answers hits
///     );
/// # }
/// ```
///
/// The fetch layer carries the whole configuration; the update layer stores
/// each response with the configuration of the fetch layer that looked it up
/// (it travels in the response's extensions), so the two can never disagree
/// on the cache, the key prefix or the rules.
///
/// The update layer has nothing to configure, so a pair that disagrees
/// cannot be written:
///
/// ```compile_fail
/// # fn no(cache: tower_cache::Cache) {
/// // There is no UpdateCacheLayer of its own, with a cache or a prefix.
/// let update = tower_cache::middleware::UpdateCacheLayer::new().cache(cache);
/// # }
/// ```
///
/// Without [`.cache(..)`](SiteCache::cache), pages go to the `"default"`
/// cache of [`Caches::global`](crate::Caches::global) (from `CACHE_URL`).
///
/// Cloning is cheap (an `Arc`).
#[derive(Debug, Clone)]
#[must_use]
pub struct SiteCache {
    settings: Arc<Settings>,
}

impl SiteCache {
    /// The defaults: the default cache, an empty key prefix, and pages
    /// without `max-age` kept for 600 s (Django's `CACHE_MIDDLEWARE_SECONDS`).
    pub fn new() -> SiteCache {
        SiteCache {
            settings: Arc::new(Settings::new(Policy::new(Lifetime::Default(
                Duration::from_secs(600),
            )))),
        }
    }

    /// The two layers: `(update, fetch)`, in the order they go into a
    /// `ServiceBuilder` (update outermost, fetch innermost).
    pub fn layers(&self) -> (UpdateCacheLayer, FetchFromCacheLayer) {
        (
            UpdateCacheLayer::new(),
            FetchFromCacheLayer::new(self.settings.clone()),
        )
    }
}

impl Default for SiteCache {
    fn default() -> Self {
        SiteCache::new()
    }
}

builders!(
    SiteCache,
    "How long a page without `max-age` is kept (default 600 s); a response's own `max-age` wins."
);
