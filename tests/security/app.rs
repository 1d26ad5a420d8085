//! The origin every attack is played against: an axum app that reflects its
//! request (method, target, headers, body) in its page, as a careless origin
//! does, behind `cache_page` or the site-wide pair.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::any;
use http::request::Parts;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode};
use http_body_util::BodyExt;
use tower::{ServiceBuilder, ServiceExt};
use tower_cache::Cache;
use tower_cache::backends::MemoryBackend;
use tower_cache::http::key::{VaryHeaders, page_key, url_hash};
use tower_cache::http::policy::Bypass;
use tower_cache::middleware::{Answer, CachePageLayer, Outcome, SiteCache, Store, cache_page};

/// The site under attack.
pub(crate) const HOST: &str = "shop.example";

type Respond = dyn Fn(&Parts) -> HeaderMap + Send + Sync;

/// Header lines as `(name, raw value)`; values may hold obs-text.
pub(crate) type Lines<'a> = &'a [(&'a str, &'a [u8])];

/// An origin that counts its calls and answers 200 with a page that
/// reflects the request, and the response headers `respond` gives.
#[derive(Clone)]
pub(crate) struct Origin {
    calls: Arc<AtomicUsize>,
    respond: Arc<Respond>,
}

/// Where the cache sits: `cache_page` on the routes, or the site-wide pair
/// around the router.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Mount {
    CachePage,
    SiteWide,
}

impl Mount {
    pub(crate) const ALL: [Mount; 2] = [Mount::CachePage, Mount::SiteWide];
}

/// A header map of these lines.
pub(crate) fn headers(pairs: Lines<'_>) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_bytes(value).unwrap(),
        );
    }
    map
}

/// A memory cache of its own.
pub(crate) fn fresh_cache() -> Cache {
    Cache::new(Arc::new(MemoryBackend::new()))
}

/// `cache_page(300 s)` on a cache of its own.
pub(crate) fn page_layer() -> CachePageLayer {
    cache_page(Duration::from_secs(300)).cache(fresh_cache())
}

/// The site-wide defaults on a cache of its own.
pub(crate) fn site() -> SiteCache {
    SiteCache::new().cache(fresh_cache())
}

/// `origin` behind both mounts, each on a cache of its own, with one
/// builder chain applied to both layer types (they share their builder
/// methods, but no trait): `configured_apps!(origin, |layer| layer.allowed_hosts(hosts))`.
macro_rules! configured_apps {
    ($origin:expr, |$layer:ident| $configure:expr) => {{
        let origin: &$crate::app::Origin = &$origin;
        let page = {
            let $layer = $crate::app::page_layer();
            $configure
        };
        let site = {
            let $layer = $crate::app::site();
            $configure
        };
        [origin.page_app(page), origin.site_app(site)]
    }};
}
pub(crate) use configured_apps;

impl Origin {
    /// An origin whose response headers depend on the request.
    pub(crate) fn new(respond: impl Fn(&Parts) -> HeaderMap + Send + Sync + 'static) -> Origin {
        Origin {
            calls: Arc::new(AtomicUsize::new(0)),
            respond: Arc::new(respond),
        }
    }

    /// An origin that sends these headers with every page.
    pub(crate) fn with(pairs: Lines<'_>) -> Origin {
        let sent = headers(pairs);
        Origin::new(move |_| sent.clone())
    }

    /// How many requests reached it.
    pub(crate) fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn router(&self) -> Router {
        Router::new()
            .route("/", any(reflect))
            .route("/{*rest}", any(reflect))
            .with_state(self.clone())
    }

    /// Behind `layer` on its routes.
    pub(crate) fn page_app(&self, layer: CachePageLayer) -> Router {
        self.router().route_layer(layer)
    }

    /// Behind the site-wide layers of `site`.
    pub(crate) fn site_app(&self, site: SiteCache) -> Router {
        let (update, fetch) = site.layers();
        self.router()
            .layer(ServiceBuilder::new().layer(update).layer(fetch))
    }

    /// Behind `mount`'s layers with their defaults, on `cache`.
    pub(crate) fn app_on(&self, mount: Mount, cache: Cache) -> Router {
        match mount {
            Mount::CachePage => self.page_app(page_layer().cache(cache)),
            Mount::SiteWide => self.site_app(site().cache(cache)),
        }
    }

    /// Behind `mount`'s layers with their defaults, on a cache of its own.
    pub(crate) fn app(&self, mount: Mount) -> Router {
        self.app_on(mount, fresh_cache())
    }
}

async fn reflect(State(origin): State<Origin>, request: Request<Body>) -> impl IntoResponse {
    let call = origin.calls.fetch_add(1, Ordering::SeqCst) + 1;
    let (parts, body) = request.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    let mut page = format!("{} {}\n", parts.method, parts.uri);
    for (name, value) in &parts.headers {
        page.push_str(&format!(
            "{name}: {}\n",
            String::from_utf8_lossy(value.as_bytes())
        ));
    }
    page.push_str(&format!("body: {}\n", String::from_utf8_lossy(&body)));
    let mut headers = (origin.respond)(&parts);
    headers.insert("x-origin-call", HeaderValue::from(call));
    (headers, page)
}

/// A request for `target`, with `Host: victim.example` unless `extra`
/// names a `Host` of its own; values are raw bytes (obs-text allowed).
pub(crate) fn request(method: Method, target: &str, extra: Lines<'_>, body: Body) -> Request<Body> {
    let mut request = Request::builder().method(method).uri(target);
    if !extra
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("host"))
    {
        request = request.header(http::header::HOST, HOST);
    }
    let mut request = request.body(body).unwrap();
    request.headers_mut().extend(headers(extra));
    request
}

/// A GET of `target` for victim.example.
pub(crate) fn get(target: &str) -> Request<Body> {
    get_with(target, &[])
}

/// A GET of `target` with these headers too.
pub(crate) fn get_with(target: &str, extra: Lines<'_>) -> Request<Body> {
    request(Method::GET, target, extra, Body::empty())
}

/// The key under which the layers (default prefix, no suffix) store the
/// GET page of `request`, as `scheme`, when the page has no `Vary`.
pub(crate) fn plain_page_key(scheme: &str, request: &Request<Body>) -> String {
    let url = url_hash(scheme, request.uri(), request.headers()).unwrap();
    let none = VaryHeaders::default().hash(request.headers());
    page_key("", &Method::GET, &url, &none, "")
}

/// A response, read whole.
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: String,
    pub(crate) outcome: Outcome,
}

impl Reply {
    /// Served from the cache, without calling the origin.
    pub(crate) fn is_hit(&self) -> bool {
        self.outcome.answer == Answer::Hit
    }

    /// The origin answered, and its response was not stored (a bypass, or
    /// a miss the rules refused), for `why`.
    pub(crate) fn not_stored_because(&self) -> Option<Bypass> {
        match (self.outcome.answer, self.outcome.store) {
            (Answer::Bypass(why), _) | (_, Some(Store::NotStored(why))) => Some(why),
            _ => None,
        }
    }
}

pub(crate) async fn send(app: &Router, request: Request<Body>) -> Reply {
    let response = app.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let outcome = *parts
        .extensions
        .get::<Outcome>()
        .expect("every response through a cache layer has an Outcome");
    let body = body.collect().await.unwrap().to_bytes();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        outcome,
    }
}
