//! [`CacheLayer`] and [`cache_page`]: one route's cache, both sides in one.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use tower_layer::Layer;
use tower_service::Service;

use super::body::CacheBody;
use super::future::ResponseFuture;
use super::settings::{
    Settings, inner_accessors, key_suffix_builder, settings_builders, store_builders,
};
use crate::error::BoxError;
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
#[derive(Debug, Clone)]
#[must_use]
pub struct CacheLayer {
    settings: Arc<Settings>,
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

impl<S> Layer<S> for CacheLayer {
    type Service = CachePage<S>;

    fn layer(&self, inner: S) -> CachePage<S> {
        CachePage {
            inner,
            settings: self.settings.clone(),
        }
    }
}

/// The service of [`CacheLayer`].
#[derive(Debug, Clone)]
pub struct CachePage<S> {
    inner: S,
    settings: Arc<Settings>,
}

inner_accessors!(CachePage);

impl<S, ReqB, ResB> Service<Request<ReqB>> for CachePage<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>> + Clone + Send + 'static,
    ReqB: Send + 'static,
    ResB: Body + Send + 'static,
    ResB::Data: Into<Bytes>,
    ResB::Error: Into<BoxError>,
{
    type Response = Response<CacheBody<ResB>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqB, ResB>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqB>) -> Self::Future {
        let clone = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, clone);
        ResponseFuture::lookup(self.settings.clone(), ready, request, true)
    }
}
