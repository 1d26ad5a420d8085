//! [`UpdateCacheLayer`]: the response side of site-wide caching.

use std::sync::Arc;
use std::time::Duration;

use super::future::{After, ResponseFuture};
use super::settings::{Settings, cache_layer, settings_builders, store_builders};
use crate::http::policy::{Lifetime, Policy};

cache_layer! {
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
    layer UpdateCacheLayer;
    /// The service of [`UpdateCacheLayer`].
    service UpdateCache where S: [];
    call(|this, request| {
        let future = this.inner.call(request);
        ResponseFuture::inner(this.settings.clone(), future, After::StoreIfMarked)
    });
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
