//! Helpers shared by the tests of conditional requests and `Cache-Status`:
//! an origin that counts its calls, the layers around it, and replies with
//! their outcome.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use bytes::Bytes;
use http_body_util::BodyExt;
use tower::{ServiceBuilder, ServiceExt};
use tower_cache::Cache;
use tower_cache::backends::MemoryBackend;
use tower_cache::middleware::{CachePageLayer, Clock, Outcome, SiteCache, cache_page};

/// An origin whose page is `v<call number>`, after `delay`, with `headers`,
/// and the status in `status` (200 unless set).
#[derive(Clone)]
pub struct Origin {
    calls: Arc<AtomicUsize>,
    pub status: Arc<AtomicU16>,
    delay: Duration,
    headers: Vec<(&'static str, &'static str)>,
}

impl Origin {
    pub fn new() -> Origin {
        Origin {
            calls: Arc::default(),
            status: Arc::new(AtomicU16::new(200)),
            delay: Duration::ZERO,
            headers: Vec::new(),
        }
    }

    /// The same, answering after `delay`.
    pub fn slow(mut self, delay: Duration) -> Origin {
        self.delay = delay;
        self
    }

    /// The same, with one more response header.
    pub fn with(mut self, name: &'static str, value: &'static str) -> Origin {
        self.headers.push((name, value));
        self
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// Answers with `status` from now on.
    pub fn answer(&self, status: StatusCode) {
        self.status.store(status.as_u16(), Ordering::SeqCst);
    }

    pub fn router(&self) -> Router {
        async fn page(State(origin): State<Origin>) -> Response {
            let n = origin.calls.fetch_add(1, Ordering::SeqCst) + 1;
            tokio::time::sleep(origin.delay).await;
            let status = StatusCode::from_u16(origin.status.load(Ordering::SeqCst)).unwrap();
            let mut response = (status, format!("v{n}")).into_response();
            for (name, value) in &origin.headers {
                response
                    .headers_mut()
                    .append(*name, HeaderValue::from_static(value));
            }
            response
        }
        Router::new().route("/", any(page)).with_state(self.clone())
    }

    /// Behind `layer` (a `cache_page`), on a cache of its own.
    pub fn per_route(&self, layer: CachePageLayer) -> Router {
        self.router().route_layer(layer.cache(fresh_cache()))
    }

    /// Behind the layers of `site`, on a cache of their own.
    pub fn site_wide(&self, site: SiteCache) -> Router {
        let (update, fetch) = site.cache(fresh_cache()).layers();
        self.router()
            .layer(ServiceBuilder::new().layer(update).layer(fetch))
    }
}

pub fn fresh_cache() -> Cache {
    Cache::new(Arc::new(MemoryBackend::new()))
}

/// `cache_page(300 s)` on `clock`.
pub fn ttl300(clock: &Clock) -> CachePageLayer {
    cache_page(Duration::from_secs(300)).clock(clock.clone())
}

/// A GET for `/` on example.com, with `headers`.
pub fn get(headers: &[(&'static str, &str)]) -> Request<Body> {
    request(Method::GET, headers)
}

/// A HEAD for `/` on example.com, with `headers`.
pub fn head(headers: &[(&'static str, &str)]) -> Request<Body> {
    request(Method::HEAD, headers)
}

/// A POST for `/` on example.com.
pub fn post() -> Request<Body> {
    request(Method::POST, &[])
}

fn request(method: Method, headers: &[(&'static str, &str)]) -> Request<Body> {
    let mut request = Request::builder()
        .method(method)
        .uri("/")
        .header(header::HOST, "example.com");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.body(Body::empty()).unwrap()
}

/// The stale window a layer gives pages.
#[derive(Debug, Clone, Copy)]
pub enum Window {
    WhileRevalidate,
    IfError,
}

/// `origin` behind `cache_page(10 s)` with a 60 s `window`, configured
/// further by `configure`, once its page is stored and 15 s have passed (on
/// the layer's clock): the page is stale.
pub async fn stale(
    origin: &Origin,
    window: Window,
    configure: impl FnOnce(CachePageLayer) -> CachePageLayer,
) -> Router {
    let clock = Clock::adjustable();
    let layer = cache_page(Duration::from_secs(10)).clock(clock.clone());
    let minute = Duration::from_secs(60);
    let layer = match window {
        Window::WhileRevalidate => layer.stale_while_revalidate(minute),
        Window::IfError => layer.stale_if_error(minute),
    };
    let app = origin.per_route(configure(layer));
    send(&app, get(&[])).await;
    clock.advance(Duration::from_secs(15));
    app
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub outcome: Option<Outcome>,
}

impl Reply {
    /// Every `Cache-Status` member, in order.
    pub fn members(&self) -> Vec<String> {
        self.headers
            .get_all("cache-status")
            .iter()
            .flat_map(|v| v.to_str().unwrap().split(", "))
            .map(str::to_owned)
            .collect()
    }

    /// The only `Cache-Status` member, with its `ttl` taken out (seconds
    /// may tick between the store and the check).
    pub fn member(&self) -> (String, Option<i64>) {
        let members = self.members();
        assert_eq!(members.len(), 1, "{members:?}");
        without_ttl(&members[0])
    }
}

/// `member` without its `ttl` parameter, and the `ttl`.
pub fn without_ttl(member: &str) -> (String, Option<i64>) {
    let mut ttl = None;
    let kept: Vec<&str> = member
        .split("; ")
        .filter(|param| match param.strip_prefix("ttl=") {
            Some(value) => {
                ttl = Some(value.parse().unwrap());
                false
            }
            None => true,
        })
        .collect();
    (kept.join("; "), ttl)
}

pub async fn send(app: &Router, request: Request<Body>) -> Reply {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let outcome = response.extensions().get::<Outcome>().copied();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        headers,
        body,
        outcome,
    }
}
