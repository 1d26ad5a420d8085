//! What the layers share: the cache, the key prefix, the rules, and the
//! builder methods of the two types that hold them ([`CachePageLayer`](super::CachePageLayer)
//! and [`SiteCache`](super::SiteCache)).

use std::sync::Arc;
use std::time::Duration;

use http::HeaderMap;

use super::cache_status::CacheStatusName;
use super::clock::Clock;
use super::flight::Flights;
use super::metrics::LayerMetrics;
use super::page_keys::PageKeys;
use super::recent_decodes::RecentDecodes;
use super::tag_hints::TagHints;
use crate::cache::Cache;
use crate::http::encoding::AcceptEncodingKey;
use crate::http::key::{AllowedHosts, KeySuffix, Md5Hex, RequestScheme, VaryHeaders};
use crate::http::policy::{Lifetime, Policy, Semantics};
use crate::http::tags::TagHeader;
use crate::jitter::Jitter;
use crate::registry::Caches;

/// The configuration of a cache layer (of `cache_page`, or of the site-wide
/// pair, which share one through the request marker).
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// `None`: the default alias of [`Caches::global`].
    pub(crate) cache: Option<Cache>,
    pub(crate) key_prefix: String,
    pub(crate) policy: Policy,
    pub(crate) key_suffix: Option<KeySuffix>,
    pub(crate) scheme: RequestScheme,
    pub(crate) allowed_hosts: AllowedHosts,
    pub(crate) accept_encoding: AcceptEncodingKey,
    pub(crate) clock: Clock,
    /// How long a request waits for another's fetch of the same page;
    /// `None`: no coalescing.
    pub(crate) coalesce: Option<Duration>,
    pub(crate) flights: Arc<Flights>,
    /// The tags of pages found before, to read with a page on a remote backend.
    pub(crate) tag_hints: Arc<TagHints>,
    /// The URL hashes and page keys of pages found before, by request.
    /// Not shared by a clone: a layer configured anew (another key
    /// prefix, other hosts) starts with none.
    pub(crate) page_keys: PageKeys,
    /// The pages decoded from a backend without memos, with their bytes.
    /// Not shared by a clone either.
    pub(crate) recent_decodes: RecentDecodes,
    /// Coalescing across instances through the cache; `None`: on for Redis
    /// and memcached.
    pub(crate) across_instances: Option<bool>,
    /// Stale windows for responses that do not give their own.
    pub(crate) stale_while_revalidate: Duration,
    pub(crate) stale_if_error: Duration,
    /// How long the inner service may take before a stale entry inside its
    /// `stale-if-error` window is served instead; `None`: no bound.
    pub(crate) origin_timeout: Option<Duration>,
    /// Where responses carry their tags.
    pub(crate) tag_header: TagHeader,
    /// The layer's name and its metrics.
    pub(crate) metrics: LayerMetrics,
    /// Give stored pages without an `ETag` a weak one of their body.
    pub(crate) etag: bool,
    /// The layer's name in `Cache-Status`; `None`: no header.
    pub(crate) cache_status: Option<CacheStatusName>,
    /// The layer's name, in `Cache-Status` and the metrics' `cache` label.
    pub(crate) name: CacheStatusName,
    /// Spreads stored pages' freshness.
    pub(crate) ttl_jitter: Jitter,
}

/// nginx's `proxy_cache_lock_timeout`.
pub(crate) const DEFAULT_COALESCE_WAIT: Duration = Duration::from_secs(5);

impl Settings {
    pub(crate) fn new(policy: Policy) -> Settings {
        let layer = match policy.lifetime {
            Lifetime::Page(_) => "cache_page",
            Lifetime::Default(_) => "site",
        };
        Settings {
            cache: None,
            key_prefix: String::new(),
            policy,
            key_suffix: None,
            scheme: RequestScheme::default(),
            allowed_hosts: AllowedHosts::default(),
            accept_encoding: AcceptEncodingKey::default(),
            clock: Clock::default(),
            coalesce: Some(DEFAULT_COALESCE_WAIT),
            flights: Arc::default(),
            tag_hints: Arc::default(),
            page_keys: PageKeys::default(),
            recent_decodes: RecentDecodes::default(),
            across_instances: None,
            stale_while_revalidate: Duration::ZERO,
            stale_if_error: Duration::ZERO,
            origin_timeout: None,
            tag_header: TagHeader::default(),
            metrics: LayerMetrics::new(layer),
            etag: false,
            cache_status: None,
            name: CacheStatusName::new(super::cache_status::DEFAULT_NAME),
            ttl_jitter: Jitter::none(),
        }
    }

    /// The cache pages go to: the layer's own, or the process-wide default
    /// built from `CACHE_URL`. `None` (logged once, in [`Caches::global`])
    /// when that could not be built: the layer then passes requests through.
    pub(crate) async fn cache(&self) -> Option<&Cache> {
        match &self.cache {
            Some(cache) => Some(cache),
            None => Caches::global().await.ok().map(Caches::default),
        }
    }

    /// [`cache`](Settings::cache) without waiting: `None` while the
    /// process-wide default is not built yet.
    pub(crate) fn cache_now(&self) -> Option<&Cache> {
        match &self.cache {
            Some(cache) => Some(cache),
            None => Caches::global_if_built().map(Caches::default),
        }
    }

    /// Whether misses coalesce across the instances that share `cache`.
    pub(crate) fn coalesces_across_instances(&self, cache: &Cache) -> bool {
        self.across_instances
            .unwrap_or_else(|| super::remote_lock::on_by_default(cache))
    }

    /// The hash of a request's values of the headers `vary` names: as sent
    /// (Django), or normalised (RFC 9111, [`VaryHeaders::hash_normalized`]).
    pub(crate) fn vary_hash(&self, vary: &VaryHeaders, request: &HeaderMap) -> Md5Hex {
        match self.policy.semantics {
            Semantics::Django => vary.hash_with(request, self.accept_encoding),
            Semantics::Rfc9111(_) => vary.hash_normalized(request, self.accept_encoding),
        }
    }

    /// The key suffix of a request (empty without one).
    pub(crate) fn suffix(&self, headers: &HeaderMap, extensions: &http::Extensions) -> String {
        self.key_suffix
            .as_ref()
            .map(|s| s.make(headers, extensions))
            .unwrap_or_default()
    }
}

/// The builder methods of [`CachePageLayer`](super::CachePageLayer) and
/// [`SiteCache`](super::SiteCache): `$timeout_doc` says what `timeout` means
/// for the type.
macro_rules! builders {
    ($type:ident, $timeout_doc:literal) => {
        impl $type {
            fn settings_mut(&mut self) -> &mut $crate::middleware::settings::Settings {
                std::sync::Arc::make_mut(&mut self.settings)
            }

            /// Purges what this configuration stores, by URL or by tag, in
            /// every instance that shares its cache ([`Invalidator`](crate::middleware::Invalidator)).
            /// Take it once the configuration is complete: it keeps the
            /// cache and key prefix set so far.
            pub fn invalidator(&self) -> $crate::middleware::Invalidator {
                $crate::middleware::Invalidator::new(self.settings.clone())
            }

            /// The cache pages are stored in. Without it, the `"default"`
            /// cache of [`Caches::global`](crate::Caches::global), built once
            /// from `CACHE_URL` (memory when unset), as Django's
            /// `caches['default']`.
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

            /// The largest body stored, in bytes (default 1 MiB). A response
            /// whose length is known to be larger is passed through untouched;
            /// one without a known length (a compressed or streamed body) is
            /// read up to the limit and, past it, handed to the client whole,
            /// unstored.
            pub fn max_body_size(mut self, bytes: u64) -> Self {
                self.settings_mut().policy.max_body_size = bytes;
                self
            }

            /// The hosts whose pages are cached (Django's `ALLOWED_HOSTS`:
            /// `"example.com"`, `".example.com"` with its subdomains, `"*"`);
            /// requests for other hosts are served uncached, so that made-up
            /// `Host` values cannot fill the cache. Default: any host.
            pub fn allowed_hosts(mut self, hosts: $crate::http::key::AllowedHosts) -> Self {
                self.settings_mut().allowed_hosts = hosts;
                self
            }

            /// What to do with a response's `s-maxage` (default: the shared
            /// cache's rule, `s-maxage=0` is never stored and `s-maxage` is
            /// the site-wide lifetime; [`SharedMaxAgePolicy::Django`](crate::http::policy::SharedMaxAgePolicy::Django)
            /// ignores it, as Django does).
            pub fn shared_max_age(
                mut self,
                policy: $crate::http::policy::SharedMaxAgePolicy,
            ) -> Self {
                self.settings_mut().policy.shared_max_age = policy;
                self
            }

            /// Whose rules the layer follows: Django's (the default), or a
            /// standard shared cache's, [`Semantics::Rfc9111`](crate::http::policy::Semantics::Rfc9111)
            /// (freshness, `Age` and validation from the response; any
            /// cacheable status; invalidation by unsafe methods; see
            /// [`rfc9111`](crate::http::rfc9111)). Under RFC 9111 the
            /// layer's lifetime ([`timeout`](Self::timeout), `cache_page`'s
            /// ttl) is not used: a response without freshness information
            /// gets the heuristic, or [`Rfc9111::default_lifetime`](crate::http::rfc9111::Rfc9111::default_lifetime).
            /// The other switches (cookies, `Authorization`, body size,
            /// hosts, coalescing, stale windows, tags) apply under both.
            ///
            /// ```
            /// use tower_cache::http::policy::Semantics;
            /// use tower_cache::http::rfc9111::Rfc9111;
            /// use tower_cache::middleware::SiteCache;
            ///
            /// let site = SiteCache::new().semantics(Semantics::Rfc9111(Rfc9111::new()));
            /// // or from configuration:
            /// let site = SiteCache::new().semantics("rfc9111".parse().unwrap());
            /// ```
            pub fn semantics(mut self, semantics: $crate::http::policy::Semantics) -> Self {
                self.settings_mut().policy.semantics = semantics;
                self
            }

            /// What to do with responses that set cookies (default: never
            /// store them; [`SetCookiePolicy::Django`](crate::http::policy::SetCookiePolicy::Django)
            /// stores them unless they vary on `Cookie`).
            pub fn set_cookie(mut self, policy: $crate::http::policy::SetCookiePolicy) -> Self {
                self.settings_mut().policy.set_cookie = policy;
                self
            }

            /// Appends something to every key: Django's language and time-zone
            /// suffix (`.en-us.UTC`), off by default.
            pub fn key_suffix(mut self, suffix: $crate::http::key::KeySuffix) -> Self {
                self.settings_mut().key_suffix = Some(suffix);
                self
            }

            /// How the scheme in the page key (`http://` or `https://`) is
            /// found (default: the request URI's, `http` when it has none).
            /// Behind a proxy that terminates TLS, use
            /// [`RequestScheme::TrustedHeader`](crate::http::key::RequestScheme::TrustedHeader)
            /// (Django's `SECURE_PROXY_SSL_HEADER`); a server that terminates
            /// TLS itself can say [`RequestScheme::Https`](crate::http::key::RequestScheme::Https).
            pub fn scheme(mut self, scheme: $crate::http::key::RequestScheme) -> Self {
                self.settings_mut().scheme = scheme;
                self
            }

            /// How a request's `Accept-Encoding` goes into the key of a page
            /// that varies on it (default: bucketed into the one coding the
            /// client prefers, so a handful of entries serve every browser;
            /// [`AcceptEncodingKey::AsSent`](crate::http::encoding::AcceptEncodingKey::AsSent)
            /// is Django's).
            pub fn accept_encoding(
                mut self,
                key: $crate::http::encoding::AcceptEncodingKey,
            ) -> Self {
                self.settings_mut().accept_encoding = key;
                self
            }

            /// Request coalescing (on by default): while the inner service
            /// answers a miss, other requests for the same page wait for that
            /// answer instead of calling it too, and get it if it was
            /// storable and fits them (same values of the headers it varies
            /// on, a coding they accept). `false` lets every miss call the
            /// inner service.
            pub fn coalesce(mut self, on: bool) -> Self {
                self.settings_mut().coalesce =
                    on.then_some($crate::middleware::settings::DEFAULT_COALESCE_WAIT);
                self
            }

            /// Coalescing across the app instances that share the cache: a
            /// miss takes a lock key beside the page (one `add`, then one
            /// compare-and-delete once stored), and an instance that finds it
            /// taken polls the cache (10 ms doubling to 200 ms) within the
            /// [`coalesce_wait`](Self::coalesce_wait) instead of calling the
            /// inner service. On by default on Redis and memcached, off on
            /// the other backends; a hit costs nothing either way.
            pub fn coalesce_across_instances(mut self, on: bool) -> Self {
                self.settings_mut().across_instances = Some(on);
                self
            }

            /// How long a coalesced request waits for the one that fetches
            /// (default 5 s, nginx's `proxy_cache_lock_timeout`); after it,
            /// the request calls the inner service itself. Turns coalescing on.
            pub fn coalesce_wait(mut self, bound: std::time::Duration) -> Self {
                self.settings_mut().coalesce = Some(bound);
                self
            }

            /// How long past its freshness a page may be served while one
            /// background request refreshes it (RFC 5861
            /// `stale-while-revalidate`), for responses whose `Cache-Control`
            /// does not say (default zero: Django's behaviour). The backend
            /// keeps entries that much longer.
            pub fn stale_while_revalidate(mut self, window: std::time::Duration) -> Self {
                self.settings_mut().stale_while_revalidate = window;
                self
            }

            /// How long past its freshness a page may be served when the
            /// inner service fails: returns an error, a 5xx, or takes longer
            /// than [`origin_timeout`](Self::origin_timeout) (RFC 5861
            /// `stale-if-error`), for responses whose `Cache-Control` does not
            /// say (default zero). The backend keeps entries that much longer.
            pub fn stale_if_error(mut self, window: std::time::Duration) -> Self {
                self.settings_mut().stale_if_error = window;
                self
            }

            /// How long the inner service may take when a stale entry could
            /// answer instead (inside its `stale-if-error` window); past it,
            /// the stale entry is served and the call dropped. Default: no
            /// bound.
            pub fn origin_timeout(mut self, bound: std::time::Duration) -> Self {
                self.settings_mut().origin_timeout = Some(bound);
                self
            }

            /// The response header pages carry their tags in (default
            /// [`TagHeader::cache_tag`](crate::http::tags::TagHeader::cache_tag):
            /// `Cache-Tag`, comma-separated, removed before the response
            /// reaches the client). A page stored with tags is a miss once one
            /// of them is invalidated ([`Cache::invalidate_tags`](crate::Cache::invalidate_tags));
            /// a hit on it costs one more backend round trip (a `get_many` of
            /// its tags' versions), an untagged page nothing.
            pub fn tag_header(mut self, header: $crate::http::tags::TagHeader) -> Self {
                self.settings_mut().tag_header = header;
                self
            }

            /// The cache's name (default `tower-cache`), in its metrics (the
            /// `cache` label; see [`metrics`](crate::middleware#metrics)) and
            /// its `Cache-Status` members (`"edge-1"`, `"Example CDN"`): set
            /// it before the layer serves, to tell several caches apart.
            ///
            /// # Panics
            ///
            /// When `name` is empty, has a character other than printable
            /// ASCII, or is longer than 128 bytes once quoted (a `Cache-Status`
            /// member holds it: a name that is not a structured-field token
            /// is sent quoted).
            pub fn name(mut self, name: &str) -> Self {
                let settings = self.settings_mut();
                settings.name = $crate::middleware::cache_status::CacheStatusName::new(name);
                if settings.cache_status.is_some() {
                    settings.cache_status = Some(settings.name.clone());
                }
                settings.metrics.named(name);
                self
            }

            /// The clock freshness and `Age` are judged by (default: the
            /// system's; [`Clock::adjustable`](crate::middleware::Clock::adjustable)
            /// for tests).
            pub fn clock(mut self, clock: $crate::middleware::Clock) -> Self {
                self.settings_mut().clock = clock;
                self
            }

            /// Gives every stored page that has no `ETag` a weak one,
            /// `W/"<xxh3-128 of the body in hex>"` (off by default), so that
            /// its hits answer `If-None-Match` with `304 Not Modified`
            /// ([`conditional`](crate::http::conditional)). The tag is
            /// computed once, when the page is stored; the miss that stores
            /// it goes out without one (its headers are sent before its body
            /// is read), and every hit carries it. A page whose origin sets
            /// an `ETag` keeps its own; the entry of a HEAD request, whose
            /// body is empty, gets none.
            pub fn etag(mut self, on: bool) -> Self {
                self.settings_mut().etag = on;
                self
            }

            /// Appends a `Cache-Status` member (RFC 9211) to every response
            /// that went through the layer (off by default): `tower-cache;
            /// hit; ttl=240`, `tower-cache; fwd=uri-miss; fwd-status=200;
            /// stored; ttl=300`, ... (the [`Outcome`](crate::middleware::Outcome),
            /// written out). `false` turns it off again. The name is
            /// the layer's [`name`](Self::name), `tower-cache` by default. A hit with it on costs one allocation more, of the
            /// member's length; with it off, nothing.
            ///
            /// ```
            /// # use std::time::Duration;
            /// # use axum::{Router, body::Body, routing::get};
            /// # use tower::ServiceExt;
            /// use tower_cache::middleware::cache_page;
            ///
            /// # #[tokio::main(flavor = "current_thread")]
            /// # async fn main() {
            /// # let cache = tower_cache::Cache::from_url("memory://").await.unwrap();
            /// let app = Router::new()
            ///     .route("/", get(|| async { "page" }))
            ///     .route_layer(cache_page(Duration::from_secs(60)).cache(cache).cache_status(true));
            /// let request = || http::Request::get("/").header("host", "example.com").body(Body::empty()).unwrap();
            /// let miss = app.clone().oneshot(request()).await.unwrap();
            /// assert_eq!(miss.headers()["cache-status"], "tower-cache; fwd=uri-miss; fwd-status=200; stored; ttl=60");
            /// let hit = app.oneshot(request()).await.unwrap();
            /// // ttl: the seconds the page stays fresh (60, or 59 if a second ticked).
            /// assert!(hit.headers()["cache-status"].to_str().unwrap().starts_with("tower-cache; hit; ttl="));
            /// # }
            /// ```
            pub fn cache_status(mut self, on: bool) -> Self {
                let settings = self.settings_mut();
                settings.cache_status = match (on, settings.cache_status.take()) {
                    (false, _) => None,
                    (true, Some(name)) => Some(name),
                    (true, None) => Some(settings.name.clone()),
                };
                self
            }

            /// Spreads the freshness of stored pages by up to ± this
            /// percentage, uniformly at random (default: none), so that pages
            /// stored together (a deploy, a warm-up) do not all expire in the
            /// same second and send their misses to the inner service in one
            /// herd. The backend keeps each entry for its spread lifetime (plus
            /// the stale windows). The `Cache-Control: max-age` and `Expires`
            /// sent keep the nominal lifetime, as Django writes them; the
            /// spread one is in the [`Outcome`](crate::middleware::Outcome)
            /// (`Store::Stored`) and in `Cache-Status`. A percentage (`10`),
            /// or a [`Jitter`](crate::Jitter) (`Jitter::seeded(10, 1)` for
            /// reproducible tests).
            ///
            /// # Panics
            ///
            /// When the percentage is over 50 ([`Jitter::percent`](crate::Jitter::percent)).
            pub fn ttl_jitter(mut self, jitter: impl Into<$crate::Jitter>) -> Self {
                self.settings_mut().ttl_jitter = jitter.into();
                self
            }
        }
    };
}

/// A layer, its service and the service's accessors.
macro_rules! layer_and_service {
    (
        $(#[$layer_meta:meta])*
        layer $layer:ident { $($field:ident: $ty:ty),* };
        $(#[$service_meta:meta])*
        service $service:ident where S: [$($bounds:tt)*] $(, ReqB: [$($req_bounds:tt)*])?;
        call(|$this:ident, $request:ident| $call:expr);
    ) => {
        $(#[$layer_meta])*
        #[derive(Debug, Clone)]
        #[must_use]
        pub struct $layer {
            $($field: $ty),*
        }

        impl<S> tower_layer::Layer<S> for $layer {
            type Service = $service<S>;

            fn layer(&self, inner: S) -> $service<S> {
                $service {
                    inner,
                    $($field: self.$field.clone()),*
                }
            }
        }

        $(#[$service_meta])*
        #[derive(Debug, Clone)]
        pub struct $service<S> {
            inner: S,
            $($field: $ty),*
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
            S::Future: Send + 'static,
            ReqB: Send + 'static $($($req_bounds)*)?,
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

pub(crate) use {builders, layer_and_service};
