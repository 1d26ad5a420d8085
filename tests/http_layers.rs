//! One test per rule of the HTTP layers, in process: a counting origin
//! service, `tower::ServiceExt::oneshot`, a memory cache of its own per test.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use tower::Layer;
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_cache::backends::MemoryBackend;
use tower_cache::http::key::{VaryHeaders, page_key, url_hash};
use tower_cache::http::policy::{AuthorizationPolicy, SetCookiePolicy};
use tower_cache::middleware::{
    CachePage, CachePageLayer, FetchFromCache, SiteCache, UpdateCache, cache_page,
};
use tower_cache::testing::{FailingBackend, Hooked};
use tower_cache::{Cache, CacheBackend, KeyFunction};

type Origin = Arc<dyn Fn(&Request<Body>) -> Response<Full<Bytes>> + Send + Sync>;

/// A plain `tower::Service` (no axum) that counts its calls and answers with `origin`.
#[derive(Clone)]
struct Counting {
    calls: Arc<AtomicUsize>,
    origin: Origin,
}

impl Counting {
    fn new(
        origin: impl Fn(&Request<Body>) -> Response<Full<Bytes>> + Send + Sync + 'static,
    ) -> Counting {
        Counting {
            calls: Arc::new(AtomicUsize::new(0)),
            origin: Arc::new(origin),
        }
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl Service<Request<Body>> for Counting {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        let mut response = (self.origin)(&request);
        response
            .headers_mut()
            .insert("x-origin-call", HeaderValue::from(n));
        std::future::ready(Ok(response))
    }
}

/// A 200 page with these headers.
fn page(body: &'static str, headers: &[(&'static str, &'static str)]) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    for (name, value) in headers {
        response
            .headers_mut()
            .append(*name, HeaderValue::from_static(value));
    }
    response
}

fn fresh_cache() -> Cache {
    Cache::new(Arc::new(MemoryBackend::new()))
}

/// `cache_page(300 s)` on a cache of its own.
fn ttl300() -> CachePageLayer {
    cache_page(Duration::from_secs(300)).cache(fresh_cache())
}

/// `origin` behind `cache_page(300 s)`.
fn cached(origin: &Counting) -> CachePage<Counting> {
    ttl300().layer(origin.clone())
}

/// `origin` behind the site-wide pair on `cache`.
fn site_wide(origin: &Counting, cache: Cache) -> UpdateCache<FetchFromCache<Counting>> {
    site_wide_with(SiteCache::new(), origin, cache)
}

/// `origin` behind the layers of `site` on `cache`.
fn site_wide_with(
    site: SiteCache,
    origin: &Counting,
    cache: Cache,
) -> UpdateCache<FetchFromCache<Counting>> {
    let (update, fetch) = site.cache(cache).layers();
    ServiceBuilder::new()
        .layer(update)
        .layer(fetch)
        .service(origin.clone())
}

fn get_req(uri: &str) -> http::request::Builder {
    Request::get(uri).header(header::HOST, "example.com")
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Reply {
    fn origin_call(&self) -> u64 {
        self.headers["x-origin-call"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap()
    }
}

async fn send<S, B>(service: &S, request: Request<Body>) -> Reply
where
    S: Service<Request<Body>, Response = Response<B>> + Clone,
    S::Error: std::fmt::Debug,
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    let response = service.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await.unwrap().to_bytes(),
    }
}

fn get(uri: &str) -> Request<Body> {
    get_req(uri).body(Body::empty()).unwrap()
}

/// The rule every other test builds on, on a plain tower service.
#[tokio::test]
async fn second_get_is_a_hit_and_the_origin_runs_once() {
    let origin = Counting::new(|_| page("hello", &[("content-type", "text/plain")]));
    let svc = cached(&origin);
    let first = send(&svc, get("/")).await;
    let second = send(&svc, get("/")).await;
    assert_eq!(origin.calls(), 1);
    assert_eq!(
        (first.status, second.status),
        (StatusCode::OK, StatusCode::OK)
    );
    assert_eq!(second.body, "hello");
    assert_eq!(second.headers["content-type"], "text/plain");
    assert_eq!(second.origin_call(), 1);
    for reply in [&first, &second] {
        assert_eq!(reply.headers[header::CACHE_CONTROL], "max-age=300");
        assert!(reply.headers.contains_key(header::EXPIRES));
    }
    assert!(
        !first.headers.contains_key(header::AGE),
        "a fresh response has no Age"
    );
    assert_eq!(second.headers[header::AGE], "0");
}

/// The layers store pages under the keys the cache's key function makes,
/// whichever it is: the default one, the hashed one, or the user's own.
#[tokio::test]
async fn pages_are_stored_under_the_caches_own_key_function() {
    let request = get("/by-key-function");
    let url = url_hash("http", request.uri(), request.headers()).unwrap();
    let vary = VaryHeaders::default().hash(request.headers());
    let key = page_key("", &Method::GET, &url, &vary, "");
    for (function, made) in [
        (KeyFunction::default(), format!("site:2:{key}")),
        (KeyFunction::hashed(), format!("site:2:{key}")),
        (
            KeyFunction::new(|key, prefix, version| format!("{prefix}/{version}/{key}")),
            format!("site/2/{key}"),
        ),
    ] {
        let backend = Arc::new(MemoryBackend::new());
        let cache = Cache::builder(backend.clone())
            .key_prefix("site")
            .version(2)
            .key_function(function)
            .build();
        let origin = Counting::new(|_| page("keyed", &[]));
        let svc = cache_page(Duration::from_secs(300))
            .cache(cache)
            .layer(origin.clone());
        send(&svc, get("/by-key-function")).await;
        let second = send(&svc, get("/by-key-function")).await;
        assert_eq!((origin.calls(), &second.body[..]), (1, &b"keyed"[..]));
        assert!(
            backend.get(&made).await.unwrap().is_some(),
            "the page is under {made}"
        );
    }
}

#[tokio::test]
async fn head_is_answered_from_the_get_entry_without_a_body() {
    let origin = Counting::new(|_| page("twelve bytes", &[]));
    let svc = cached(&origin);
    send(&svc, get("/")).await;
    let head = send(
        &svc,
        get_req("/")
            .method(Method::HEAD)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(origin.calls(), 1);
    assert_eq!(head.status, StatusCode::OK);
    assert!(head.body.is_empty());
    assert_eq!(head.headers[header::CONTENT_LENGTH], "12");
}

#[tokio::test]
async fn head_miss_is_stored_under_head_and_served_to_head() {
    let origin = Counting::new(|_| page("body", &[]));
    let svc = cached(&origin);
    let head = || {
        get_req("/")
            .method(Method::HEAD)
            .body(Body::empty())
            .unwrap()
    };
    send(&svc, head()).await;
    let second = send(&svc, head()).await;
    assert_eq!(origin.calls(), 1);
    assert!(second.body.is_empty());
    // test_head_caches_correctly: a later GET is not answered by the HEAD entry.
    send(&svc, get("/")).await;
    assert_eq!(origin.calls(), 2);
}

#[tokio::test]
async fn post_is_never_cached() {
    let origin = Counting::new(|_| page("ok", &[]));
    let svc = cached(&origin);
    for _ in 0..2 {
        let reply = send(
            &svc,
            get_req("/")
                .method(Method::POST)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert!(!reply.headers.contains_key(header::CACHE_CONTROL));
    }
    assert_eq!(origin.calls(), 2);
    // Nor does a POST answer fill the GET entry.
    send(&svc, get("/")).await;
    assert_eq!(origin.calls(), 3);
}

#[tokio::test]
async fn errors_are_not_stored() {
    for status in [
        StatusCode::NOT_FOUND,
        StatusCode::INTERNAL_SERVER_ERROR,
        StatusCode::BAD_GATEWAY,
    ] {
        let origin = Counting::new(move |_| {
            let mut response = page("no", &[]);
            *response.status_mut() = status;
            response
        });
        let svc = ServiceBuilder::new()
            .layer(cache_page(Duration::from_secs(300)).cache(fresh_cache()))
            .service(origin.clone());
        let reply = send(&svc, get("/")).await;
        send(&svc, get("/")).await;
        assert_eq!(origin.calls(), 2, "{status}");
        assert_eq!(reply.status, status);
        assert!(!reply.headers.contains_key(header::EXPIRES), "untouched");
    }
}

#[tokio::test]
async fn uncacheable_responses_are_not_stored() {
    let cases: &[(&str, &str)] = &[
        ("cache-control", "private"),
        ("cache-control", "no-store"),
        ("cache-control", "no-cache"),
        ("cache-control", "PRIVATE"),
        ("cache-control", "private=\"Set-Cookie\""),
        ("cache-control", "max-age=0"),
        ("vary", "*"),
        ("vary", "Cookie, * , Pony"),
    ];
    for &(name, value) in cases {
        for is_site_wide in [false, true] {
            let origin = Counting::new(move |_| page("x", &[(name, value)]));
            let cache = fresh_cache();
            let reply = if is_site_wide {
                let svc = site_wide(&origin, cache);
                send(&svc, get("/")).await;
                send(&svc, get("/")).await
            } else {
                let svc = ServiceBuilder::new()
                    .layer(cache_page(Duration::from_secs(300)).cache(cache))
                    .service(origin.clone());
                send(&svc, get("/")).await;
                send(&svc, get("/")).await
            };
            assert_eq!(
                origin.calls(),
                2,
                "{name}: {value} (site-wide: {is_site_wide})"
            );
            assert!(
                !reply.headers.contains_key(header::EXPIRES),
                "{name}: {value} untouched"
            );
        }
    }
    // test_cache_control_not_cached_superstring: `myprivate` is cached.
    let origin = Counting::new(|_| page("x", &[("cache-control", "myprivate")]));
    let svc = cached(&origin);
    send(&svc, get("/")).await;
    send(&svc, get("/")).await;
    assert_eq!(origin.calls(), 1);
}

#[tokio::test]
async fn not_modified_is_patched_but_not_stored() {
    let origin = Counting::new(|_| {
        let mut response = page("", &[]);
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        response
    });
    let svc = cached(&origin);
    let reply = send(&svc, get("/")).await;
    send(&svc, get("/")).await;
    assert_eq!(origin.calls(), 2);
    assert_eq!(reply.headers[header::CACHE_CONTROL], "max-age=300");
    assert!(reply.headers.contains_key(header::EXPIRES));
}

/// cache_page's ttl wins over max-age; site-wide, max-age wins over the
/// default. Both directions, observed through expiry (one 1.3 s wait for all).
#[tokio::test]
async fn lifetime_precedence() {
    let short_max_age = |_: &Request<Body>| page("x", &[("cache-control", "max-age=1")]);
    let long_max_age = |_: &Request<Body>| page("x", &[("cache-control", "max-age=300")]);

    // cache_page(300) on max-age=1: still a hit after 1.3 s.
    let page_long = Counting::new(short_max_age);
    let page_long_svc = cached(&page_long);
    // cache_page(1) on max-age=300: gone after 1.3 s.
    let page_short = Counting::new(long_max_age);
    let page_short_svc = cache_page(Duration::from_secs(1))
        .cache(fresh_cache())
        .layer(page_short.clone());
    // site-wide, default 1 s, max-age=300: still a hit.
    let site_long = Counting::new(long_max_age);
    let site_long_svc = site_wide_with(
        SiteCache::new().timeout(Duration::from_secs(1)),
        &site_long,
        fresh_cache(),
    );
    // site-wide, default 300 s, max-age=1: gone.
    let site_short = Counting::new(short_max_age);
    let site_short_svc = site_wide_with(
        SiteCache::new().timeout(Duration::from_secs(300)),
        &site_short,
        fresh_cache(),
    );

    let first = send(&page_long_svc, get("/")).await;
    assert_eq!(
        first.headers[header::CACHE_CONTROL],
        "max-age=1",
        "patched to the minimum, as Django"
    );
    send(&page_short_svc, get("/")).await;
    send(&site_long_svc, get("/")).await;
    send(&site_short_svc, get("/")).await;
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let later = send(&page_long_svc, get("/")).await;
    send(&page_short_svc, get("/")).await;
    let site_later = send(&site_long_svc, get("/")).await;
    send(&site_short_svc, get("/")).await;

    assert_eq!(
        page_long.calls(),
        1,
        "cache_page's ttl wins over a shorter max-age"
    );
    assert_eq!(
        page_short.calls(),
        2,
        "cache_page's ttl wins over a longer max-age"
    );
    assert_eq!(
        site_long.calls(),
        1,
        "site-wide, max-age wins over a shorter default"
    );
    assert_eq!(
        site_short.calls(),
        2,
        "site-wide, max-age wins over a longer default"
    );

    // Django's Age on hits (test_cache_control_max_age): max-age minus what is left.
    let age: u64 = site_later.headers[header::AGE]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&age), "Age {age}");
    // Django's formula with Expires = t0 + 300 and max-age=1: 1 - (300 - 1.3) < 0, so 0.
    assert_eq!(later.headers[header::AGE], "0");
}

#[tokio::test]
async fn different_vary_values_get_different_entries() {
    let origin = Counting::new(|request| {
        let encoding = request.headers().get("accept-encoding").cloned();
        let mut response = page("", &[("vary", "Accept-Encoding")]);
        *response.body_mut() = Full::new(Bytes::from(format!("{encoding:?}")));
        response
    });
    let svc = cached(&origin);
    let with = |encoding: &str| {
        get_req("/")
            .header("accept-encoding", encoding)
            .body(Body::empty())
            .unwrap()
    };
    let gzip = send(&svc, with("gzip")).await;
    let br = send(&svc, with("br")).await;
    let none = send(&svc, get("/")).await;
    assert_eq!(origin.calls(), 3);
    assert_eq!(send(&svc, with("gzip")).await.body, gzip.body);
    assert_eq!(send(&svc, with("br")).await.body, br.body);
    assert_eq!(send(&svc, get("/")).await.body, none.body);
    assert_eq!(origin.calls(), 3);
    assert_ne!(gzip.body, br.body);
}

#[tokio::test]
async fn each_cookie_sees_its_own_page_on_vary_cookie() {
    let origin = Counting::new(|request| {
        let cookie = request.headers()[header::COOKIE]
            .to_str()
            .unwrap()
            .to_owned();
        let mut response = page("", &[("vary", "Cookie")]);
        *response.body_mut() = Full::new(Bytes::from(format!("page for {cookie}")));
        response
    });
    let svc = cached(&origin);
    let as_user = |cookie: &str| {
        get_req("/")
            .header(header::COOKIE, cookie)
            .body(Body::empty())
            .unwrap()
    };
    for _ in 0..2 {
        assert_eq!(
            send(&svc, as_user("session=alice")).await.body,
            "page for session=alice"
        );
        assert_eq!(
            send(&svc, as_user("session=bob")).await.body,
            "page for session=bob"
        );
    }
    assert_eq!(origin.calls(), 2);
}

#[tokio::test]
async fn a_set_cookie_response_is_not_served_to_another_client() {
    let origin = Counting::new(|request| {
        let user = request.headers()["x-user"].to_str().unwrap().to_owned();
        let mut response = page("", &[]);
        response.headers_mut().insert(
            header::SET_COOKIE,
            HeaderValue::from_str(&format!("session={user}")).unwrap(),
        );
        response
    });
    let svc = cached(&origin);
    let as_user = |user: &str| {
        get_req("/")
            .header("x-user", user)
            .body(Body::empty())
            .unwrap()
    };
    assert_eq!(
        send(&svc, as_user("alice")).await.headers[header::SET_COOKIE],
        "session=alice"
    );
    assert_eq!(
        send(&svc, as_user("bob")).await.headers[header::SET_COOKIE],
        "session=bob"
    );
    assert_eq!(origin.calls(), 2);

    // Django's rule, by choice: stored unless it varies on Cookie.
    let origin = Counting::new(|_| page("x", &[("set-cookie", "a=1")]));
    let svc = ttl300()
        .set_cookie(SetCookiePolicy::Django)
        .layer(origin.clone());
    send(&svc, get("/")).await;
    send(&svc, get("/")).await;
    assert_eq!(origin.calls(), 1);
    let origin = Counting::new(|_| page("x", &[("set-cookie", "csrftoken=1"), ("vary", "Cookie")]));
    let svc = ttl300()
        .set_cookie(SetCookiePolicy::Django)
        .layer(origin.clone());
    send(&svc, get("/")).await;
    send(&svc, get("/")).await;
    assert_eq!(origin.calls(), 2, "test_sensitive_cookie_not_cached");
}

#[tokio::test]
async fn authorization_requests_are_not_served_a_cached_page() {
    let origin = Counting::new(|request| {
        let who = request
            .headers()
            .get(header::AUTHORIZATION)
            .map_or("anonymous".to_owned(), |v| v.to_str().unwrap().to_owned());
        let mut response = page("", &[]);
        *response.body_mut() = Full::new(Bytes::from(format!("page for {who}")));
        response
    });
    let svc = cached(&origin);
    let as_user = |auth: &str| {
        get_req("/")
            .header(header::AUTHORIZATION, auth)
            .body(Body::empty())
            .unwrap()
    };
    assert_eq!(send(&svc, get("/")).await.body, "page for anonymous");
    assert_eq!(
        send(&svc, as_user("Bearer alice")).await.body,
        "page for Bearer alice"
    );
    assert_eq!(
        send(&svc, as_user("Bearer bob")).await.body,
        "page for Bearer bob"
    );
    // Not stored either: the anonymous entry is intact, Alice's page is not served to anyone.
    assert_eq!(send(&svc, get("/")).await.body, "page for anonymous");
    assert_eq!(
        send(&svc, as_user("Bearer alice")).await.body,
        "page for Bearer alice"
    );
    assert_eq!(origin.calls(), 4);

    // `public` makes it shareable (RFC 9111 section 3.5).
    let origin = Counting::new(|_| page("shared", &[("cache-control", "public")]));
    let svc = cached(&origin);
    send(&svc, as_user("Bearer alice")).await;
    send(&svc, as_user("Bearer bob")).await;
    send(&svc, get("/")).await;
    assert_eq!(origin.calls(), 1);
}

#[tokio::test]
async fn django_authorization_mode_varies_on_authorization() {
    let origin = Counting::new(|request| {
        let who = request.headers()[header::AUTHORIZATION]
            .to_str()
            .unwrap()
            .to_owned();
        let mut response = page("", &[]);
        *response.body_mut() = Full::new(Bytes::from(who));
        response
    });
    let svc = ttl300()
        .authorization(AuthorizationPolicy::VaryOnAuthorization)
        .layer(origin.clone());
    let as_user = |auth: &str| {
        get_req("/")
            .header(header::AUTHORIZATION, auth)
            .body(Body::empty())
            .unwrap()
    };
    let alice = send(&svc, as_user("Bearer alice")).await;
    assert_eq!(alice.headers[header::VARY], "Authorization");
    assert_eq!(send(&svc, as_user("Bearer bob")).await.body, "Bearer bob");
    assert_eq!(
        send(&svc, as_user("Bearer alice")).await.body,
        "Bearer alice"
    );
    assert_eq!(origin.calls(), 2);
}

#[tokio::test]
async fn two_hosts_never_share_an_entry() {
    let origin = Counting::new(|request| {
        let host = request.headers()[header::HOST].to_str().unwrap().to_owned();
        let mut response = page("", &[]);
        *response.body_mut() = Full::new(Bytes::from(host));
        response
    });
    let svc = cached(&origin);
    let on = |host: &str| {
        Request::get("/")
            .header(header::HOST, host)
            .body(Body::empty())
            .unwrap()
    };
    for _ in 0..2 {
        assert_eq!(send(&svc, on("a.example")).await.body, "a.example");
        assert_eq!(send(&svc, on("b.example")).await.body, "b.example");
        assert_eq!(
            send(&svc, on("a.example:8080")).await.body,
            "a.example:8080"
        );
    }
    assert_eq!(origin.calls(), 3);
    // No usable Host: never cached.
    for _ in 0..2 {
        let reply = send(
            &svc,
            Request::get("/")
                .header(header::HOST, "bad host")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert!(!reply.headers.contains_key(header::EXPIRES));
    }
    assert_eq!(origin.calls(), 5);
}

#[tokio::test]
async fn an_oversized_body_passes_through_whole() {
    let big = "x".repeat(100);
    let body = big.clone();
    let origin = Counting::new(move |_| Response::new(Full::new(Bytes::from(body.clone()))));
    let svc = ServiceBuilder::new()
        .layer(
            cache_page(Duration::from_secs(300))
                .cache(fresh_cache())
                .max_body_size(64),
        )
        .service(origin.clone());
    for _ in 0..2 {
        let reply = send(&svc, get("/")).await;
        assert_eq!(reply.body, big.as_bytes());
        assert!(!reply.headers.contains_key(header::EXPIRES), "untouched");
    }
    assert_eq!(origin.calls(), 2);
}

/// A body of chunks whose length is not known in advance, as a stream's.
struct Chunks(std::collections::VecDeque<Bytes>);

impl http_body::Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        std::task::Poll::Ready(
            self.0
                .pop_front()
                .map(|chunk| Ok(http_body::Frame::data(chunk))),
        )
    }
}

/// A body without a known end (a stream, a compressed body) is read up to
/// the limit: stored when it ends within it, handed on whole and unstored
/// when it does not.
#[tokio::test]
async fn a_streaming_body_is_stored_within_the_limit_and_passed_through_over_it() {
    for (limit, calls_after_two) in [(1024, 1), (10, 2)] {
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let app = Router::new()
            .route(
                "/",
                routing::get(move || {
                    counter.fetch_add(1, Ordering::SeqCst);
                    async {
                        let chunks = (0..3).map(|i| Bytes::from(format!("chunk{i};"))).collect();
                        Body::new(Chunks(chunks))
                    }
                }),
            )
            .route_layer(
                cache_page(Duration::from_secs(300))
                    .cache(fresh_cache())
                    .max_body_size(limit),
            );
        for _ in 0..2 {
            assert_eq!(send(&app, get("/")).await.body, "chunk0;chunk1;chunk2;");
        }
        assert_eq!(
            calls.load(Ordering::SeqCst),
            calls_after_two,
            "limit {limit}"
        );
    }
}

#[tokio::test]
async fn a_corrupt_entry_is_a_miss_and_is_replaced() {
    let cache = fresh_cache();
    let origin = Counting::new(|_| page("fine", &[]));
    let svc = ServiceBuilder::new()
        .layer(cache_page(Duration::from_secs(300)).cache(cache.clone()))
        .service(origin.clone());
    send(&svc, get("/")).await;
    let request = get("/");
    let url = url_hash("http", request.uri(), request.headers()).unwrap();
    let vary = VaryHeaders::default().hash(request.headers());
    let key = page_key("", &Method::GET, &url, &vary, "");
    assert!(
        cache.get_bytes(&key).await.unwrap().is_some(),
        "the entry is where Django's layout puts it"
    );
    for garbage in [&b"\x80\x05\x95pickled"[..], b"tcr\x01\x00", b""] {
        cache
            .set_bytes(&key, Bytes::from_static(garbage), Duration::from_secs(300))
            .await
            .unwrap();
        let before = origin.calls();
        let reply = send(&svc, get("/")).await;
        assert_eq!(
            (reply.status, &reply.body[..]),
            (StatusCode::OK, &b"fine"[..])
        );
        assert_eq!(origin.calls(), before + 1, "{garbage:?} is a miss");
        // Stored again, and served.
        send(&svc, get("/")).await;
        assert_eq!(origin.calls(), before + 1);
    }
}

#[tokio::test]
async fn a_failing_backend_still_returns_the_origins_response() {
    let broken = Cache::new(Arc::new(FailingBackend));
    let origin = Counting::new(|_| page("from the origin", &[]));
    let per_route = ServiceBuilder::new()
        .layer(cache_page(Duration::from_secs(300)).cache(broken.clone()))
        .service(origin.clone());
    let (update, fetch) = SiteCache::new().cache(broken).layers();
    let site = ServiceBuilder::new()
        .layer(update)
        .layer(fetch)
        .service(origin.clone());
    for _ in 0..2 {
        for reply in [
            send(&per_route, get("/")).await,
            send(&site, get("/")).await,
        ] {
            assert_eq!(reply.status, StatusCode::OK);
            assert_eq!(reply.body, "from the origin");
        }
    }
    assert_eq!(origin.calls(), 4);
}

#[tokio::test]
async fn update_without_fetch_never_stores() {
    let origin = Counting::new(|_| page("x", &[]));
    let (update, _fetch) = SiteCache::new().cache(fresh_cache()).layers();
    let svc = ServiceBuilder::new().layer(update).service(origin.clone());
    send(&svc, get("/")).await;
    send(&svc, get("/")).await;
    assert_eq!(origin.calls(), 2);
}

/// The site-wide pair on `Router::layer`, with a private route left alone and
/// a layer between them that adds `Vary`, as Django's middleware order allows.
#[tokio::test]
async fn site_wide_layers_on_an_axum_router() {
    let calls = Arc::new(AtomicUsize::new(0));
    let (c1, c2) = (calls.clone(), calls.clone());
    let (update, fetch) = SiteCache::new()
        .cache(fresh_cache())
        .timeout(Duration::from_secs(60))
        .layers();
    let app = Router::new()
        .route(
            "/",
            routing::get(move || async move {
                c1.fetch_add(1, Ordering::SeqCst);
                "home"
            }),
        )
        .route(
            "/account",
            routing::get(move || async move {
                c2.fetch_add(1, Ordering::SeqCst);
                ([(header::CACHE_CONTROL, "private")], "your account")
            }),
        )
        .layer(
            ServiceBuilder::new()
                .layer(update)
                .layer(tower::util::MapResponseLayer::new(
                    |mut response: Response<_>| {
                        response
                            .headers_mut()
                            .insert(header::VARY, HeaderValue::from_static("Accept-Language"));
                        response
                    },
                ))
                .layer(fetch),
        );
    for _ in 0..3 {
        let home = send(&app, get("/")).await;
        assert_eq!(home.body, "home");
        assert_eq!(home.headers[header::CACHE_CONTROL], "max-age=60");
        let account = send(&app, get("/account")).await;
        assert_eq!(account.headers[header::CACHE_CONTROL], "private");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1 + 3);
    let french = get_req("/")
        .header("accept-language", "fr")
        .body(Body::empty())
        .unwrap();
    send(&app, french).await;
    assert_eq!(
        calls.load(Ordering::SeqCst),
        5,
        "the Vary added between the layers is in the key"
    );
}

#[tokio::test]
async fn cache_page_on_a_method_router_and_a_route_layer() {
    let calls = Arc::new(AtomicUsize::new(0));
    let (c1, c2) = (calls.clone(), calls.clone());
    let layer = CachePageLayer::new(Duration::from_secs(300)).cache(fresh_cache());
    let app = Router::new()
        .route(
            "/method",
            routing::get(move || async move {
                c1.fetch_add(1, Ordering::SeqCst);
                "m"
            })
            .layer(layer.clone()),
        )
        .route(
            "/route",
            routing::get(move || async move {
                c2.fetch_add(1, Ordering::SeqCst);
                "r"
            }),
        )
        .route_layer(layer);
    for _ in 0..3 {
        assert_eq!(send(&app, get("/method")).await.body, "m");
        assert_eq!(send(&app, get("/route")).await.body, "r");
    }
    // /method goes through the layer twice (its own and the route layer's):
    // both share one entry, and the handler runs once per path.
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

/// Entries are Django's: same URL and prefix, same entry, whichever layer
/// stored it; another prefix, another entry (`test_middleware`).
#[tokio::test]
async fn key_prefixes_separate_and_layers_share_entries() {
    let cache = fresh_cache();
    let origin = Counting::new(|_| page("x", &[]));
    let per_route = ServiceBuilder::new()
        .layer(cache_page(Duration::from_secs(300)).cache(cache.clone()))
        .service(origin.clone());
    let other_prefix = ServiceBuilder::new()
        .layer(
            cache_page(Duration::from_secs(300))
                .cache(cache.clone())
                .key_prefix("other"),
        )
        .service(origin.clone());
    let (_update, fetch) = SiteCache::new().cache(cache).layers();
    let site = ServiceBuilder::new().layer(fetch).service(origin.clone());
    send(&per_route, get("/")).await;
    assert_eq!(
        send(&site, get("/")).await.origin_call(),
        1,
        "served from cache_page's entry"
    );
    send(&other_prefix, get("/")).await;
    assert_eq!(origin.calls(), 2);
}

#[tokio::test]
async fn the_default_cache_is_used_without_one() {
    let origin = Counting::new(|_| page("x", &[]));
    let svc = ServiceBuilder::new()
        .layer(cache_page(Duration::from_secs(300)).key_prefix("default-cache-test"))
        .service(origin.clone());
    send(&svc, get("/")).await;
    send(&svc, get("/")).await;
    assert_eq!(origin.calls(), 1);
}

#[tokio::test]
async fn unknown_alias_is_an_error() {
    let caches = tower_cache::Caches::from_url("memory://").await.unwrap();
    assert!(
        cache_page(Duration::from_secs(1))
            .alias(&caches, "default")
            .is_ok()
    );
    let error = cache_page(Duration::from_secs(1))
        .alias(&caches, "other")
        .unwrap_err();
    assert!(error.to_string().contains("other"), "{error}");
}

/// Django's language and time-zone suffix, as an option: the tutorial's
/// exact Redis keys (`Cache` makes the `:1:`), and `Vary: Accept-Language`
/// left out of the key as Django does with `USE_I18N`.
#[tokio::test]
async fn key_suffix_gives_the_tutorials_keys() {
    use tower_cache::http::key::KeySuffix;
    let cache = fresh_cache();
    let origin = Counting::new(|_| page("x", &[("vary", "Accept-Language")]));
    let suffix = KeySuffix::new(|_, _| ".en-us.UTC".to_owned()).skip_accept_language();
    let svc = ttl300()
        .cache(cache.clone())
        .key_suffix(suffix)
        .layer(origin.clone());
    let request = |language: &str| {
        Request::get("/")
            .header(header::HOST, "127.0.0.1:8000")
            .header("accept-language", language)
            .body(Body::empty())
            .unwrap()
    };
    send(&svc, request("en")).await;
    assert_eq!(
        cache.make_key("views.decorators.cache.cache_page..GET.17abf5259517d604cc9599a00b7385d6.d41d8cd98f00b204e9800998ecf8427e.en-us.UTC").unwrap(),
        ":1:views.decorators.cache.cache_page..GET.17abf5259517d604cc9599a00b7385d6.d41d8cd98f00b204e9800998ecf8427e.en-us.UTC"
    );
    for key in [
        "views.decorators.cache.cache_header..17abf5259517d604cc9599a00b7385d6.en-us.UTC",
        "views.decorators.cache.cache_page..GET.17abf5259517d604cc9599a00b7385d6.d41d8cd98f00b204e9800998ecf8427e.en-us.UTC",
    ] {
        assert!(cache.get_bytes(key).await.unwrap().is_some(), "{key}");
    }
    send(&svc, request("fr")).await;
    assert_eq!(
        origin.calls(),
        1,
        "the language is in the suffix, not in the Vary hash"
    );
}

/// The memory backend, but every call waits once before answering, as a
/// backend over the network does: the layers then take their waiting path
/// (the lookup keeps the ready inner service and leaves a clone).
fn waiting() -> Hooked {
    Hooked::new(Arc::new(MemoryBackend::new()), |_, _| {
        Box::pin(tokio::task::yield_now())
    })
}

#[tokio::test]
async fn a_backend_that_waits_gives_the_same_answers() {
    let cache = Cache::new(Arc::new(waiting()));
    let origin = Counting::new(|request| {
        let encoding = request.headers().get("accept-encoding").cloned();
        let mut response = page("", &[("vary", "Accept-Encoding")]);
        *response.body_mut() = Full::new(Bytes::from(format!("{encoding:?}")));
        response
    });
    let per_route = ttl300().cache(cache.clone()).layer(origin.clone());
    let with = |encoding: &str| {
        get_req("/")
            .header("accept-encoding", encoding)
            .body(Body::empty())
            .unwrap()
    };
    let gzip = send(&per_route, with("gzip")).await;
    assert_eq!(send(&per_route, with("gzip")).await.body, gzip.body);
    send(&per_route, with("br")).await;
    let head = send(
        &per_route,
        get_req("/")
            .method(Method::HEAD)
            .header("accept-encoding", "gzip")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert!(head.body.is_empty());
    assert_eq!(
        origin.calls(),
        2,
        "gzip stored, then a hit; br stored; HEAD from the gzip entry"
    );

    let origin = Counting::new(|_| page("site", &[]));
    let site = site_wide(&origin, Cache::new(Arc::new(waiting())));
    for _ in 0..3 {
        assert_eq!(send(&site, get("/")).await.body, "site");
    }
    assert_eq!(origin.calls(), 1);
}

/// Attack: `GET http://evil.example/ HTTP/1.1` with `Host: victim.example`.
/// The origin, reading the URI, renders evil.example's page; it must never
/// be served to victim.example's visitors.
#[tokio::test]
async fn an_absolute_form_target_cannot_poison_another_hosts_page() {
    let origin = Counting::new(|request| {
        let host = request.uri().host().unwrap_or("victim.example").to_owned();
        let mut response = page("", &[]);
        *response.body_mut() = Full::new(Bytes::from(format!("page of {host}")));
        response
    });
    let svc = cached(&origin);
    let attack = Request::get("http://evil.example/")
        .header(header::HOST, "victim.example")
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&svc, attack).await.body, "page of evil.example");
    let victim = Request::get("/")
        .header(header::HOST, "victim.example")
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&svc, victim).await.body, "page of victim.example");
}

/// Attack: two `Host` headers (a 400 by RFC 9112), keyed under the first.
#[tokio::test]
async fn two_host_headers_are_never_cached() {
    let origin = Counting::new(|_| page("x", &[]));
    let svc = cached(&origin);
    for _ in 0..2 {
        let request = Request::get("/")
            .header(header::HOST, "victim.example")
            .header(header::HOST, "evil.example")
            .body(Body::empty())
            .unwrap();
        send(&svc, request).await;
    }
    assert_eq!(origin.calls(), 2);
}

/// An `Expires` in the past (without `max-age`) must not give a copy that
/// was just stored an `Age` of decades.
#[tokio::test]
async fn age_never_exceeds_the_time_in_the_cache() {
    let origin = Counting::new(|_| page("x", &[("expires", "Thu, 01 Jan 1998 00:00:00 GMT")]));
    let svc = site_wide(&origin, fresh_cache());
    send(&svc, get("/")).await;
    let hit = send(&svc, get("/")).await;
    assert_eq!(origin.calls(), 1);
    let age: u64 = hit.headers[header::AGE].to_str().unwrap().parse().unwrap();
    assert!(age <= 1, "Age {age}");
}

/// Attack (or mistake): `Cache-Control: max-age=60, s-maxage=0` says
/// "browsers only". The shared cache must not reuse it, nor rewrite the
/// header; Django's setting stores it.
#[tokio::test]
async fn max_age_with_s_maxage_zero_is_not_reused() {
    let origin = Counting::new(|_| page("x", &[("cache-control", "max-age=60, s-maxage=0")]));
    let svc = site_wide(&origin, fresh_cache());
    for _ in 0..2 {
        let reply = send(&svc, get("/")).await;
        assert_eq!(
            reply.headers[header::CACHE_CONTROL],
            "max-age=60, s-maxage=0"
        );
    }
    assert_eq!(origin.calls(), 2);
    let django = Counting::new(|_| page("x", &[("cache-control", "max-age=60, s-maxage=0")]));
    let svc = site_wide_with(
        SiteCache::new().shared_max_age(tower_cache::http::policy::SharedMaxAgePolicy::Django),
        &django,
        fresh_cache(),
    );
    send(&svc, get("/")).await;
    send(&svc, get("/")).await;
    assert_eq!(django.calls(), 1);
}

/// Attack: host pollution, a made-up `Host` per request to fill the cache.
/// With `allowed_hosts`, other hosts are served but never stored.
#[tokio::test]
async fn made_up_hosts_do_not_fill_the_cache() {
    let origin = Counting::new(|_| page("x", &[]));
    let svc = cache_page(Duration::from_secs(300))
        .cache(fresh_cache())
        .allowed_hosts(tower_cache::http::key::AllowedHosts::new([
            "example.com",
            ".example.org",
        ]))
        .layer(origin.clone());
    let request = |host: &str| {
        Request::get("/")
            .header(header::HOST, host)
            .body(Body::empty())
            .unwrap()
    };
    for host in [
        "attacker-1.invalid",
        "attacker-1.invalid",
        "example.com.evil",
    ] {
        assert_eq!(send(&svc, request(host)).await.status, StatusCode::OK);
    }
    assert_eq!(origin.calls(), 3, "served, never stored");
    // Allowed: an exact name and a subdomain, each cached.
    for _ in 0..2 {
        send(&svc, request("example.com")).await;
        send(&svc, request("www.example.org")).await;
    }
    assert_eq!(origin.calls(), 5, "allowed hosts are cached");
}

/// `ttl_jitter`: pages stored together stay fresh for spread lifetimes,
/// within the bounds, while the headers sent keep the nominal one.
#[tokio::test]
async fn ttl_jitter_spreads_freshness_but_not_headers() {
    use tower_cache::Jitter;
    use tower_cache::middleware::{Answer, Clock, Outcome, Store};

    let clock = Clock::adjustable();
    let origin = Counting::new(|_| page("p", &[]));
    let svc = cache_page(Duration::from_secs(100))
        .cache(fresh_cache())
        .clock(clock.clone())
        .ttl_jitter(Jitter::seeded(20, 9))
        .layer(origin.clone());
    let outcome = |response: &Response<_>| *response.extensions().get::<Outcome>().unwrap();
    let mut lifetimes = Vec::new();
    for i in 0..20 {
        let response = svc.clone().oneshot(get(&format!("/p{i}"))).await.unwrap();
        assert_eq!(response.headers()[header::CACHE_CONTROL], "max-age=100");
        let Some(Store::Stored(lifetime)) = outcome(&response).store else {
            panic!("stored")
        };
        lifetimes.push(lifetime.as_secs());
    }
    assert!(
        lifetimes.iter().all(|l| (80..=120).contains(l)),
        "{lifetimes:?}"
    );
    assert!(lifetimes.windows(2).any(|w| w[0] != w[1]), "{lifetimes:?}");
    // Ninety seconds on, the pages that live longer are hits and the others
    // misses (a second either side is left out: the clock may tick).
    clock.advance(Duration::from_secs(90));
    for (i, lifetime) in lifetimes.iter().enumerate() {
        let response = svc.clone().oneshot(get(&format!("/p{i}"))).await.unwrap();
        let hit = outcome(&response).answer == Answer::Hit;
        if *lifetime <= 89 {
            assert!(!hit, "/p{i} lived {lifetime} s");
        } else if *lifetime >= 92 {
            assert!(hit, "/p{i} lives {lifetime} s");
        }
    }
    assert!(lifetimes.iter().any(|l| *l <= 89) && lifetimes.iter().any(|l| *l >= 92));
}
