//! [`FetchFromCacheLayer`]: the request side of site-wide caching.

use std::sync::Arc;

use super::future::{ResponseFuture, Side};
use super::settings::{Settings, layer_and_service};

layer_and_service! {
    /// Answers GET and HEAD requests from the cache (Django's
    /// `FetchFromCacheMiddleware`); on a miss, calls the inner service and marks
    /// the response, with this layer's configuration, for the
    /// [`UpdateCacheLayer`](super::UpdateCacheLayer) further out, which stores it.
    ///
    /// Made by [`SiteCache::layers`](super::SiteCache::layers), with its pair.
    /// Put it innermost, and the update layer outermost, with every layer that
    /// changes the key (adds `Vary`, sets cookies, sets the language,
    /// compresses) between them, as Django's `MIDDLEWARE` order asks.
    ///
    /// Cloning is cheap (an `Arc`).
    layer FetchFromCacheLayer { settings: Arc<Settings> };
    /// The service of [`FetchFromCacheLayer`].
    service FetchFromCache where S: [+ Clone + Send + 'static];
    call(|this, request| ResponseFuture::lookup(&this.settings, &mut this.inner, request, Side::Fetch));
}

impl FetchFromCacheLayer {
    pub(crate) fn new(settings: Arc<Settings>) -> FetchFromCacheLayer {
        FetchFromCacheLayer { settings }
    }
}
