//! What the three layers share: the cache, the key prefix, the rules.

use std::sync::{Arc, LazyLock};

use crate::backends::MemoryBackend;
use crate::cache::Cache;
use crate::http::key::KeySuffix;
use crate::http::policy::Policy;

/// The cache a layer uses when none is given: one in-memory cache for the
/// whole process (Django's default `CACHES` is one local-memory cache), with
/// the memory backend's defaults (10,000 entries).
///
/// Give the layers a cache of your own with `.cache(...)` or `.alias(...)`
/// to bound it differently or to share it between servers.
pub fn default_cache() -> &'static Cache {
    static DEFAULT: LazyLock<Cache> = LazyLock::new(|| Cache::new(Arc::new(MemoryBackend::new())));
    &DEFAULT
}

#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) cache: Option<Cache>,
    pub(crate) key_prefix: String,
    pub(crate) policy: Policy,
    pub(crate) key_suffix: Option<KeySuffix>,
}

impl Settings {
    pub(crate) fn new(policy: Policy) -> Settings {
        Settings {
            cache: None,
            key_prefix: String::new(),
            policy,
            key_suffix: None,
        }
    }

    pub(crate) fn cache(&self) -> &Cache {
        self.cache.as_ref().unwrap_or_else(|| default_cache())
    }
}

/// The builder methods every layer has.
macro_rules! settings_builders {
    ($layer:ident) => {
        impl $layer {
            fn settings_mut(&mut self) -> &mut $crate::middleware::settings::Settings {
                std::sync::Arc::make_mut(&mut self.settings)
            }

            /// The cache pages are stored in (default: [`default_cache`](crate::middleware::default_cache)).
            pub fn cache(mut self, cache: $crate::Cache) -> Self {
                self.settings_mut().cache = Some(cache);
                self
            }

            /// The cache named `alias` in `caches` (Django's `cache_alias`).
            ///
            /// # Errors
            ///
            /// [`ConfigError::UnknownAlias`](crate::ConfigError::UnknownAlias) when there is no such cache.
            pub fn alias(self, caches: &$crate::Caches, alias: &str) -> $crate::Result<Self> {
                let cache = caches.get(alias)?.clone();
                Ok(self.cache(cache))
            }

            /// Put in every page key (Django's `key_prefix`, default empty), so
            /// that sites sharing a cache keep apart.
            pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
                self.settings_mut().key_prefix = prefix.into();
                self
            }

            /// What to do with requests that carry `Authorization` (default:
            /// RFC 9111's shared-cache rule; [`AuthorizationPolicy::VaryOnAuthorization`](crate::http::policy::AuthorizationPolicy::VaryOnAuthorization)
            /// is Django's).
            pub fn authorization(
                mut self,
                policy: $crate::http::policy::AuthorizationPolicy,
            ) -> Self {
                self.settings_mut().policy.authorization = policy;
                self
            }
        }
    };
}

/// The builder methods of the layers that store responses.
macro_rules! store_builders {
    ($layer:ident, $timeout_doc:literal) => {
        impl $layer {
            #[doc = $timeout_doc]
            pub fn timeout(mut self, timeout: std::time::Duration) -> Self {
                use $crate::http::policy::Lifetime;
                let settings = self.settings_mut();
                settings.policy.lifetime = match settings.policy.lifetime {
                    Lifetime::Page(_) => Lifetime::Page(timeout),
                    Lifetime::Default(_) => Lifetime::Default(timeout),
                };
                self
            }

            /// The largest body stored, in bytes (default 1 MiB). A larger
            /// response, or one without a known length, is passed to the
            /// client whole and untouched, streaming.
            pub fn max_body_size(mut self, bytes: u64) -> Self {
                self.settings_mut().policy.max_body_size = bytes;
                self
            }

            /// What to do with responses that set cookies (default: never
            /// store them; [`SetCookiePolicy::Django`](crate::http::policy::SetCookiePolicy::Django)
            /// stores them unless they vary on `Cookie`).
            pub fn set_cookie(mut self, policy: $crate::http::policy::SetCookiePolicy) -> Self {
                self.settings_mut().policy.set_cookie = policy;
                self
            }
        }
    };
}

/// `key_suffix`, for the layers that see the request first.
macro_rules! key_suffix_builder {
    ($layer:ident) => {
        impl $layer {
            /// Appends something to every key: Django's language and time-zone
            /// suffix (`.en-us.UTC`), off by default.
            pub fn key_suffix(mut self, suffix: $crate::http::key::KeySuffix) -> Self {
                self.settings_mut().key_suffix = Some(suffix);
                self
            }
        }
    };
}

/// A layer, its service and the service's `Service` impl: what the three
/// layers have in common. `call` makes the [`ResponseFuture`](super::ResponseFuture)
/// from `self` and the request.
macro_rules! cache_layer {
    (
        $(#[$layer_meta:meta])*
        layer $layer:ident;
        $(#[$service_meta:meta])*
        service $service:ident where S: [$($bounds:tt)*];
        call(|$this:ident, $request:ident| $call:expr);
    ) => {
        $(#[$layer_meta])*
        #[derive(Debug, Clone)]
        #[must_use]
        pub struct $layer {
            settings: std::sync::Arc<$crate::middleware::settings::Settings>,
        }

        impl<S> tower_layer::Layer<S> for $layer {
            type Service = $service<S>;

            fn layer(&self, inner: S) -> $service<S> {
                $service {
                    inner,
                    settings: self.settings.clone(),
                }
            }
        }

        $(#[$service_meta])*
        #[derive(Debug, Clone)]
        pub struct $service<S> {
            inner: S,
            settings: std::sync::Arc<$crate::middleware::settings::Settings>,
        }

        impl<S> $service<S> {
            /// The inner service.
            pub fn get_ref(&self) -> &S {
                &self.inner
            }

            /// The inner service, mutably.
            pub fn get_mut(&mut self) -> &mut S {
                &mut self.inner
            }

            /// Unwraps the inner service.
            pub fn into_inner(self) -> S {
                self.inner
            }
        }

        impl<S, ReqB, ResB> tower_service::Service<http::Request<ReqB>> for $service<S>
        where
            S: tower_service::Service<http::Request<ReqB>, Response = http::Response<ResB>> $($bounds)*,
            ReqB: Send + 'static,
            ResB: http_body::Body + Send + 'static,
            ResB::Data: Into<bytes::Bytes>,
            ResB::Error: Into<$crate::BoxError>,
        {
            type Response = http::Response<$crate::middleware::CacheBody<ResB>>;
            type Error = S::Error;
            type Future = $crate::middleware::ResponseFuture<S, ReqB, ResB>;

            fn poll_ready(
                &mut self,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<Result<(), Self::Error>> {
                self.inner.poll_ready(cx)
            }

            fn call(&mut self, request: http::Request<ReqB>) -> Self::Future {
                let $this = self;
                let $request = request;
                $call
            }
        }
    };
}

pub(crate) use {cache_layer, key_suffix_builder, settings_builders, store_builders};
