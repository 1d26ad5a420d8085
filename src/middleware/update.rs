//! [`UpdateCacheLayer`]: the response side of site-wide caching.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use tower_layer::Layer;
use tower_service::Service;

use super::body::CacheBody;
use super::future::{After, ResponseFuture};
use super::settings::{Settings, inner_accessors, settings_builders, store_builders};
use crate::error::BoxError;
use crate::http::policy::{Lifetime, Policy};

/// Stores the responses that [`FetchFromCacheLayer`](super::FetchFromCacheLayer)
/// marked as misses (Django's `UpdateCacheMiddleware`), under the rules of
/// [`Policy::decide`](crate::http::policy::Policy::decide): the response's
/// `max-age` is the lifetime, or the layer's [`timeout`](UpdateCacheLayer::timeout)
/// (default 600 s, Django's `CACHE_MIDDLEWARE_SECONDS`) when it has none.
///
/// Put it outermost. A response that did not pass the fetch layer is never
/// stored. See the [module docs](crate::middleware) for an example.
///
/// Cloning is cheap (an `Arc`).
#[derive(Debug, Clone)]
#[must_use]
pub struct UpdateCacheLayer {
    settings: Arc<Settings>,
}

impl UpdateCacheLayer {
    /// The layer on the [default cache](super::default_cache), storing pages
    /// without `max-age` for 600 s.
    pub fn new() -> UpdateCacheLayer {
        UpdateCacheLayer {
            settings: Arc::new(Settings::new(Policy::new(Lifetime::Default(
                Duration::from_secs(600),
            )))),
        }
    }
}

impl Default for UpdateCacheLayer {
    fn default() -> Self {
        UpdateCacheLayer::new()
    }
}

settings_builders!(UpdateCacheLayer);
store_builders!(
    UpdateCacheLayer,
    "How long a page without `max-age` is kept (default 600 s); a response's own `max-age` wins."
);

impl<S> Layer<S> for UpdateCacheLayer {
    type Service = UpdateCache<S>;

    fn layer(&self, inner: S) -> UpdateCache<S> {
        UpdateCache {
            inner,
            settings: self.settings.clone(),
        }
    }
}

/// The service of [`UpdateCacheLayer`].
#[derive(Debug, Clone)]
pub struct UpdateCache<S> {
    inner: S,
    settings: Arc<Settings>,
}

inner_accessors!(UpdateCache);

impl<S, ReqB, ResB> Service<Request<ReqB>> for UpdateCache<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
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
        ResponseFuture::inner(
            self.settings.clone(),
            self.inner.call(request),
            After::StoreIfMarked,
        )
    }
}
