//! [`CachePageLayer`] and [`cache_page`]: one route's cache, both sides in one.

use std::sync::Arc;
use std::time::Duration;

use super::future::{ResponseFuture, Side};
use super::settings::{Settings, builders, layer_and_service};
use crate::http::policy::{Lifetime, Policy};

/// Caches the responses of the service it wraps for `ttl`: Django's
/// `cache_page(ttl)` decorator, as a layer.
///
/// Without [`.cache(..)`](CachePageLayer::cache), pages go to the `"default"`
/// cache of [`Caches::global`](crate::Caches::global), built once from the
/// `CACHE_URL` environment variable (memory when it is unset), as Django's
/// `cache_page` uses `caches['default']`.
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
pub fn cache_page(ttl: Duration) -> CachePageLayer {
    CachePageLayer::new(ttl)
}

layer_and_service! {
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
    layer CachePageLayer { settings: Arc<Settings> };
    /// The service of [`CachePageLayer`].
    service CachePage where S: [+ Clone + Send + 'static];
    call(|this, request| ResponseFuture::lookup(&this.settings, &mut this.inner, request, Side::Both));
}

impl CachePageLayer {
    /// Caches pages for `ttl`, on the default cache (see [`cache_page`]).
    pub fn new(ttl: Duration) -> CachePageLayer {
        CachePageLayer {
            settings: Arc::new(Settings::new(Policy::new(Lifetime::Page(ttl)))),
        }
    }
}

builders!(
    CachePageLayer,
    "The lifetime of every stored page; it wins over the response's `max-age`."
);
