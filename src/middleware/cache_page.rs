//! [`CacheLayer`] and [`cache_page`]: one route's cache, both sides in one.

use std::sync::Arc;
use std::time::Duration;

use super::future::ResponseFuture;
use super::settings::{
    Settings, cache_layer, key_suffix_builder, settings_builders, store_builders,
};
use crate::http::policy::{Lifetime, Policy};

/// Caches the responses of the service it wraps for `ttl`: Django's
/// `cache_page(ttl)` decorator, as a layer.
///
/// ```
/// use std::time::Duration;
/// use axum::{Router, routing::get};
/// use tower_cache::middleware::cache_page;
///
/// let app: Router = Router::new()
///     .route("/", get(|| async { "expensive" }))
///     .route_layer(cache_page(Duration::from_secs(300)));
/// ```
pub fn cache_page(ttl: Duration) -> CacheLayer {
    CacheLayer::new(ttl)
}

cache_layer! {
    /// Fetch and update in one layer, for one route or a few: Django's
    /// `CacheMiddleware`, which `cache_page` is made of.
    ///
    /// The `ttl` is the lifetime of every stored page, whatever its `max-age`
    /// says (as Django's `page_timeout`); responses are marked with `Expires`
    /// and `Cache-Control: max-age`. The rules are those of
    /// [`Policy::decide`](crate::http::policy::Policy::decide). See the
    /// [module docs](crate::middleware) for the whole picture.
    ///
    /// Cloning is cheap (an `Arc`).
    layer CacheLayer;
    /// The service of [`CacheLayer`].
    service CachePage where S: [+ Clone + Send + 'static];
    call(|this, request| ResponseFuture::lookup(&this.settings, &mut this.inner, request, true));
}

impl CacheLayer {
    /// Caches pages for `ttl`, on the [default cache](super::default_cache).
    pub fn new(ttl: Duration) -> CacheLayer {
        CacheLayer {
            settings: Arc::new(Settings::new(Policy::new(Lifetime::Page(ttl)))),
        }
    }
}

settings_builders!(CacheLayer);
store_builders!(
    CacheLayer,
    "The lifetime of every stored page; it wins over the response's `max-age`."
);
key_suffix_builder!(CacheLayer);
