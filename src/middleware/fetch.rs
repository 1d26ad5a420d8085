//! [`FetchFromCacheLayer`]: the request side of site-wide caching.

use std::sync::Arc;
use std::time::Duration;

use super::future::ResponseFuture;
use super::settings::{Settings, cache_layer, key_suffix_builder, settings_builders};
use crate::http::policy::{Lifetime, Policy};

cache_layer! {
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
    layer FetchFromCacheLayer;
    /// The service of [`FetchFromCacheLayer`].
    service FetchFromCache where S: [+ Clone + Send + 'static];
    call(|this, request| ResponseFuture::lookup(&this.settings, &mut this.inner, request, false));
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
