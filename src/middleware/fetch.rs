//! [`FetchFromCacheLayer`]: the request side of site-wide caching.

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
use super::settings::{Settings, inner_accessors, key_suffix_builder, settings_builders};
use crate::error::BoxError;
use crate::http::policy::{Lifetime, Policy};

/// Answers GET and HEAD requests from the cache (Django's
/// `FetchFromCacheMiddleware`); on a miss, calls the inner service and marks
/// the response for the [`UpdateCacheLayer`](super::UpdateCacheLayer) further
/// out, which stores it.
///
/// Put it innermost, and the update layer outermost, with every layer that
/// changes the key (adds `Vary`, sets cookies, sets the language) between
/// them, as Django's `MIDDLEWARE` order asks. Both must use the same cache
/// and key prefix. See the [module docs](crate::middleware) for an example.
///
/// Cloning is cheap (an `Arc`).
#[derive(Debug, Clone)]
#[must_use]
pub struct FetchFromCacheLayer {
    settings: Arc<Settings>,
}

impl FetchFromCacheLayer {
    /// The layer on the [default cache](super::default_cache), with an empty key prefix.
    pub fn new() -> FetchFromCacheLayer {
        FetchFromCacheLayer {
            settings: Arc::new(Settings::new(Policy::new(Lifetime::Default(
                Duration::from_secs(600),
            )))),
        }
    }
}

impl Default for FetchFromCacheLayer {
    fn default() -> Self {
        FetchFromCacheLayer::new()
    }
}

settings_builders!(FetchFromCacheLayer);
key_suffix_builder!(FetchFromCacheLayer);

impl<S> Layer<S> for FetchFromCacheLayer {
    type Service = FetchFromCache<S>;

    fn layer(&self, inner: S) -> FetchFromCache<S> {
        FetchFromCache {
            inner,
            settings: self.settings.clone(),
        }
    }
}

/// The service of [`FetchFromCacheLayer`].
#[derive(Debug, Clone)]
pub struct FetchFromCache<S> {
    inner: S,
    settings: Arc<Settings>,
}

inner_accessors!(FetchFromCache);

impl<S, ReqB, ResB> Service<Request<ReqB>> for FetchFromCache<S>
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
        // The ready service goes with the request; a clone stays for the next.
        let clone = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, clone);
        ResponseFuture::lookup(self.settings.clone(), ready, request, false)
    }
}
