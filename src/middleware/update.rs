//! [`UpdateCacheLayer`]: the response side of site-wide caching.

use super::future::ResponseFuture;
use super::lookup::refresh_request;
use super::settings::layer_and_service;

layer_and_service! {
    /// Stores the responses that [`FetchFromCacheLayer`](super::FetchFromCacheLayer)
    /// marked as misses (Django's `UpdateCacheMiddleware`), with the fetch
    /// layer's configuration, under the rules of
    /// [`Policy::decide`](crate::http::policy::Policy::decide): the response's
    /// `max-age` is the lifetime, or the [`SiteCache::timeout`](super::SiteCache::timeout)
    /// (default 600 s, Django's `CACHE_MIDDLEWARE_SECONDS`) when it has none.
    ///
    /// Made by [`SiteCache::layers`](super::SiteCache::layers), with its pair.
    /// Put it outermost. A response that did not pass the fetch layer is never
    /// stored.
    ///
    /// It holds nothing: cloning is free. Its inner service is cloned once
    /// per request (to refresh stale pages in the background, when the
    /// fetch layer serves one inside its `stale-while-revalidate` window),
    /// and requests of its body type are made for those refreshes: the body
    /// must be `Default` (axum's `Body` is).
    layer UpdateCacheLayer {};
    /// The service of [`UpdateCacheLayer`].
    service UpdateCache where S: [+ Clone + Send + 'static], ReqB: [+ Default];
    call(|this, request| {
        let future = this.inner.call(request);
        ResponseFuture::update(future, this.inner.clone(), refresh_request::<ReqB>)
    });
}

impl UpdateCacheLayer {
    pub(crate) fn new() -> UpdateCacheLayer {
        UpdateCacheLayer {}
    }
}
