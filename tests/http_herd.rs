//! Herds and stale pages: request coalescing (one inner call per page for a
//! cold herd, never a shared response that does not fit, cancellation at
//! every await point), stale-while-revalidate, stale-if-error, misses that
//! stream, and `Cache::get_or_set`'s single flight.

mod http_support;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use http_body_util::BodyExt;
use http_support::{Reply, send};
use tower::{Layer, Service, ServiceBuilder, ServiceExt};
use tower_cache::Cache;
use tower_cache::backends::MemoryBackend;
use tower_cache::middleware::{Answer, CachePageLayer, Clock, SiteCache, StaleBecause, cache_page};
use tower_cache::testing::{Call, Hooked};

/// What the origin does on its next calls.
// 0: answer normally.
const FAIL_500: u8 = 1;
const HANG: u8 = 2;

/// An origin whose page is `v<call number>`, after `delay`, with `headers`.
#[derive(Clone, Default)]
struct Origin {
    calls: Arc<AtomicUsize>,
    mode: Arc<AtomicU8>,
    delay: Duration,
    headers: Vec<(&'static str, &'static str)>,
}

impl Origin {
    fn slow(delay_ms: u64) -> Origin {
        Origin {
            delay: Duration::from_millis(delay_ms),
            ..Origin::default()
        }
    }

    fn with(mut self, name: &'static str, value: &'static str) -> Origin {
        self.headers.push((name, value));
        self
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn router(&self) -> Router {
        async fn page(State(origin): State<Origin>, request: HeaderMap) -> Response {
            let n = origin.calls.fetch_add(1, Ordering::SeqCst) + 1;
            match origin.mode.load(Ordering::SeqCst) {
                FAIL_500 => return (StatusCode::INTERNAL_SERVER_ERROR, "down").into_response(),
                HANG => tokio::time::sleep(Duration::from_secs(3600)).await,
                _ => {}
            }
            tokio::time::sleep(origin.delay).await;
            let user = request
                .get("x-user")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default();
            let mut response = format!("v{n}{user}").into_response();
            for (name, value) in &origin.headers {
                response
                    .headers_mut()
                    .append(*name, HeaderValue::from_static(value));
            }
            response
        }
        Router::new().route("/", get(page)).with_state(self.clone())
    }
}

fn fresh_cache() -> Cache {
    Cache::new(Arc::new(MemoryBackend::new()))
}

fn request(host: &str, user: Option<&'static str>) -> Request<Body> {
    let mut request = Request::get("/").header(header::HOST, host);
    if let Some(user) = user {
        request = request.header("x-user", user);
    }
    request.body(Body::empty()).unwrap()
}

/// `n` requests made by `make` at once; their replies.
async fn herd(app: &Router, n: usize, make: impl Fn(usize) -> Request<Body>) -> Vec<Reply> {
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let app = app.clone();
            let request = make(i);
            tokio::spawn(async move { send(&app, request).await })
        })
        .collect();
    let mut replies = Vec::new();
    for task in tasks {
        replies.push(task.await.unwrap());
    }
    replies
}

fn per_route(origin: &Origin, layer: CachePageLayer) -> Router {
    origin.router().route_layer(layer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cold_herd_of_50_calls_the_origin_once() {
    let origin = Origin::slow(200);
    let app = per_route(
        &origin,
        cache_page(Duration::from_secs(300)).cache(fresh_cache()),
    );
    let replies = herd(&app, 50, |_| request("example.com", None)).await;
    assert_eq!(origin.calls(), 1);
    for reply in &replies {
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.body, "v1");
        assert_eq!(reply.headers[header::CACHE_CONTROL], "max-age=300");
    }
    let coalesced = replies
        .iter()
        .filter(|r| r.outcome.unwrap().answer == Answer::Coalesced)
        .count();
    assert_eq!(coalesced, 49);
    assert_eq!(
        replies
            .iter()
            .filter(|r| r.outcome.unwrap().stored())
            .count(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_site_wide_layers_coalesce_too() {
    let origin = Origin::slow(200);
    let (update, fetch) = SiteCache::new().cache(fresh_cache()).layers();
    let app = origin
        .router()
        .layer(ServiceBuilder::new().layer(update).layer(fetch));
    let replies = herd(&app, 50, |_| request("example.com", None)).await;
    assert_eq!(origin.calls(), 1);
    assert!(replies.iter().all(|r| r.body == "v1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coalescing_can_be_turned_off() {
    let origin = Origin::slow(100);
    let app = per_route(
        &origin,
        cache_page(Duration::from_secs(300))
            .cache(fresh_cache())
            .coalesce(false),
    );
    herd(&app, 10, |_| request("example.com", None)).await;
    assert_eq!(origin.calls(), 10);
}

/// Responses that must not be shared: each waiter calls the origin itself
/// and gets its own page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_unsafe_to_share_are_never_handed_to_waiters() {
    for (name, value) in [
        ("cache-control", "private"),
        ("set-cookie", "session=abc"),
        ("cache-control", "no-store"),
        ("vary", "*"),
    ] {
        let origin = Origin::slow(150).with(name, value);
        let app = per_route(
            &origin,
            cache_page(Duration::from_secs(300)).cache(fresh_cache()),
        );
        let started = Instant::now();
        let replies = herd(&app, 10, |_| request("example.com", None)).await;
        assert_eq!(origin.calls(), 10, "{name}: {value}");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{name}: the waiters call at once, not one by one"
        );
        let mut bodies: Vec<_> = replies.iter().map(|r| r.body.clone()).collect();
        bodies.sort();
        bodies.dedup();
        assert_eq!(bodies.len(), 10, "{name}: every client its own page");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_and_oversized_pages_are_not_shared() {
    let origin = Origin::slow(150);
    origin.mode.store(FAIL_500, Ordering::SeqCst);
    let app = per_route(
        &origin,
        cache_page(Duration::from_secs(300)).cache(fresh_cache()),
    );
    herd(&app, 5, |_| request("example.com", None)).await;
    assert_eq!(origin.calls(), 5);

    let origin = Origin::slow(150);
    let app = per_route(
        &origin,
        cache_page(Duration::from_secs(300))
            .cache(fresh_cache())
            .max_body_size(1),
    );
    herd(&app, 5, |_| request("example.com", None)).await;
    assert_eq!(origin.calls(), 5);
}

/// A page that varies on a header is shared only with waiters that send the
/// same value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_with_other_vary_values_call_the_origin_themselves() {
    let origin = Origin::slow(200).with("vary", "X-User");
    let app = per_route(
        &origin,
        cache_page(Duration::from_secs(300)).cache(fresh_cache()),
    );
    let users = ["ann", "bob", "ann", "bob", "ann", "cy"];
    let replies = herd(&app, users.len(), |i| {
        request("example.com", Some(users[i]))
    })
    .await;
    for (reply, user) in replies.iter().zip(users) {
        assert!(
            std::str::from_utf8(&reply.body).unwrap().ends_with(user),
            "{user} got {:?}",
            reply.body
        );
    }
    assert!(origin.calls() >= 3, "one per user at least");
    assert!(
        origin.calls() < users.len(),
        "the same user's waiters share"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hosts_never_share_a_flight() {
    let origin = Origin::slow(200);
    let app = per_route(
        &origin,
        cache_page(Duration::from_secs(300)).cache(fresh_cache()),
    );
    let hosts = ["a.example", "b.example"];
    herd(&app, 10, |i| request(hosts[i % 2], None)).await;
    assert_eq!(origin.calls(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wait_is_bounded() {
    let origin = Origin::slow(1500);
    let app = per_route(
        &origin,
        cache_page(Duration::from_secs(300))
            .cache(fresh_cache())
            .coalesce_wait(Duration::from_millis(100)),
    );
    let started = Instant::now();
    herd(&app, 4, |_| request("example.com", None)).await;
    assert_eq!(
        origin.calls(),
        4,
        "after the bound, waiters call themselves"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}

/// The leader's client goes away at each of its await points in turn: no
/// waiter fails or waits for nothing, at worst one more origin call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_leader_at_every_await_point_costs_at_most_one_more_call() {
    for polls in 0..8 {
        let origin = Origin::slow(100);
        let app = per_route(
            &origin,
            cache_page(Duration::from_secs(300)).cache(fresh_cache()),
        );
        let mut leader = Box::pin(send(&app, request("example.com", None)));
        let mut cx = Context::from_waker(Waker::noop());
        let mut finished = false;
        for _ in 0..polls {
            if leader.as_mut().poll(&mut cx).is_ready() {
                finished = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let waiters = {
            let app = app.clone();
            tokio::spawn(async move { herd(&app, 5, |_| request("example.com", None)).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(leader);
        let replies = tokio::time::timeout(Duration::from_secs(3), waiters)
            .await
            .expect("no waiter hangs")
            .unwrap();
        for reply in &replies {
            assert_eq!(reply.status, StatusCode::OK, "polls {polls}");
            assert!(reply.body.starts_with(b"v"), "polls {polls}");
        }
        assert!(
            origin.calls() <= 2,
            "polls {polls}: {} calls",
            origin.calls()
        );
        if !finished {
            // Nothing left behind: the page is stored and served.
            let again = send(&app, request("example.com", None)).await;
            assert_eq!(again.outcome.unwrap().answer, Answer::Hit, "polls {polls}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_waiter_leaves_nothing_behind() {
    let origin = Origin::slow(200);
    let app = per_route(
        &origin,
        cache_page(Duration::from_secs(300)).cache(fresh_cache()),
    );
    let leader = {
        let app = app.clone();
        tokio::spawn(async move { send(&app, request("example.com", None)).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let waiter = {
        let app = app.clone();
        tokio::spawn(async move { send(&app, request("example.com", None)).await })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    waiter.abort();
    assert_eq!(leader.await.unwrap().body, "v1");
    let hit = send(&app, request("example.com", None)).await;
    assert_eq!(hit.outcome.unwrap().answer, Answer::Hit);
    assert_eq!(origin.calls(), 1);
}

/// A cache_page layer with a clock the test moves: fresh for 10 s.
fn stale_app(origin: &Origin, clock: &Clock, layer: CachePageLayer) -> Router {
    per_route(
        origin,
        layer
            .cache(fresh_cache())
            .clock(clock.clone())
            .origin_timeout(Duration::from_millis(200)),
    )
}

async fn until(mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(Instant::now() < deadline, "timed out");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_while_revalidate_serves_stale_once_and_refreshes_once() {
    let origin = Origin::slow(100);
    let clock = Clock::adjustable();
    let app = stale_app(
        &origin,
        &clock,
        cache_page(Duration::from_secs(10)).stale_while_revalidate(Duration::from_secs(60)),
    );
    assert_eq!(send(&app, request("example.com", None)).await.body, "v1");
    clock.advance(Duration::from_secs(15));
    let replies = herd(&app, 10, |_| request("example.com", None)).await;
    for reply in &replies {
        assert_eq!(reply.body, "v1", "stale, at once");
        assert_eq!(
            reply.outcome.unwrap().answer,
            Answer::Stale(StaleBecause::Revalidating)
        );
        let age: u64 = reply.headers[header::AGE]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(age >= 15, "Age counts on: {age}");
    }
    until(|| origin.calls() == 2).await;
    // The refresh is stored; then the next request is a fresh hit.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let reply = send(&app, request("example.com", None)).await;
        if reply.body == "v2" {
            assert_eq!(reply.outcome.unwrap().answer, Answer::Hit);
            break;
        }
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(origin.calls(), 2, "exactly one refresh");
    // Past both windows: a plain miss.
    clock.advance(Duration::from_secs(200));
    let reply = send(&app, request("example.com", None)).await;
    assert_eq!(reply.body, "v3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_refresh_leaves_the_stale_entry() {
    let origin = Origin::slow(0);
    let clock = Clock::adjustable();
    let app = stale_app(
        &origin,
        &clock,
        cache_page(Duration::from_secs(10)).stale_while_revalidate(Duration::from_secs(60)),
    );
    send(&app, request("example.com", None)).await;
    clock.advance(Duration::from_secs(15));
    origin.mode.store(FAIL_500, Ordering::SeqCst);
    assert_eq!(send(&app, request("example.com", None)).await.body, "v1");
    until(|| origin.calls() == 2).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(send(&app, request("example.com", None)).await.body, "v1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_while_revalidate_through_the_site_wide_layers() {
    let origin = Origin::slow(50).with("vary", "X-User");
    let clock = Clock::adjustable();
    let (update, fetch) = SiteCache::new()
        .cache(fresh_cache())
        .timeout(Duration::from_secs(10))
        .clock(clock.clone())
        .stale_while_revalidate(Duration::from_secs(60))
        .layers();
    let app = origin
        .router()
        .layer(ServiceBuilder::new().layer(update).layer(fetch));
    assert_eq!(
        send(&app, request("example.com", Some("ann"))).await.body,
        "v1ann"
    );
    clock.advance(Duration::from_secs(15));
    let stale = send(&app, request("example.com", Some("ann"))).await;
    assert_eq!(stale.body, "v1ann");
    until(|| origin.calls() == 2).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let reply = send(&app, request("example.com", Some("ann"))).await;
        if reply.body == "v2ann" {
            break;
        }
        assert!(Instant::now() < deadline, "the refresh is stored");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Another user's variant was never stored: its own miss.
    assert_eq!(
        send(&app, request("example.com", Some("bob"))).await.body,
        "v3bob"
    );
}

/// The response's own `stale-while-revalidate` wins over the layer's zero.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_responses_own_stale_window_counts() {
    let origin = Origin::slow(0).with("cache-control", "max-age=10, stale-while-revalidate=30");
    let clock = Clock::adjustable();
    let (update, fetch) = SiteCache::new()
        .cache(fresh_cache())
        .clock(clock.clone())
        .layers();
    let app = origin
        .router()
        .layer(ServiceBuilder::new().layer(update).layer(fetch));
    send(&app, request("example.com", None)).await;
    clock.advance(Duration::from_secs(15));
    let reply = send(&app, request("example.com", None)).await;
    assert_eq!(reply.body, "v1");
    assert_eq!(
        reply.outcome.unwrap().answer,
        Answer::Stale(StaleBecause::Revalidating)
    );
}

async fn stale_if_error_case(mode: u8) {
    let origin = Origin::slow(0);
    let clock = Clock::adjustable();
    let app = stale_app(
        &origin,
        &clock,
        cache_page(Duration::from_secs(10)).stale_if_error(Duration::from_secs(60)),
    );
    assert_eq!(send(&app, request("example.com", None)).await.body, "v1");
    clock.advance(Duration::from_secs(15));
    origin.mode.store(mode, Ordering::SeqCst);
    let started = Instant::now();
    let reply = send(&app, request("example.com", None)).await;
    assert_eq!(
        (reply.status, &reply.body[..]),
        (StatusCode::OK, &b"v1"[..])
    );
    assert_eq!(
        reply.outcome.unwrap().answer,
        Answer::Stale(StaleBecause::OriginFailed)
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    // Past the window, the failure is the client's.
    if mode == FAIL_500 {
        clock.advance(Duration::from_secs(100));
        let reply = send(&app, request("example.com", None)).await;
        assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_if_error_serves_stale_on_a_500() {
    stale_if_error_case(FAIL_500).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_if_error_serves_stale_on_a_hang() {
    stale_if_error_case(HANG).await;
}

/// A service that fails (a transport error) once told to.
#[derive(Clone)]
struct Failing {
    fail: Arc<AtomicU8>,
}

impl Service<Request<Body>> for Failing {
    type Response = Response;
    type Error = std::io::Error;
    type Future = std::future::Ready<Result<Response, std::io::Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), std::io::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<Body>) -> Self::Future {
        std::future::ready(if self.fail.load(Ordering::SeqCst) == 1 {
            Err(std::io::Error::other("connection refused"))
        } else {
            Ok("page".into_response())
        })
    }
}

#[tokio::test]
async fn stale_if_error_serves_stale_on_an_error() {
    let fail = Arc::new(AtomicU8::new(0));
    let clock = Clock::adjustable();
    let svc = cache_page(Duration::from_secs(10))
        .cache(fresh_cache())
        .clock(clock.clone())
        .stale_if_error(Duration::from_secs(60))
        .layer(Failing { fail: fail.clone() });
    let call = || svc.clone().oneshot(request("example.com", None));
    call().await.unwrap();
    clock.advance(Duration::from_secs(15));
    fail.store(1, Ordering::SeqCst);
    let response = call().await.expect("stale instead of the error");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "page");
    clock.advance(Duration::from_secs(100));
    assert!(call().await.is_err(), "past the window");
}

/// A body whose chunks come from a channel, as the origin sends them.
struct Channel(tokio::sync::mpsc::Receiver<Bytes>);

impl http_body::Body for Channel {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|chunk| Ok(http_body::Frame::data(chunk))))
    }
}

/// A miss streams: the client has the first chunk before the origin sends
/// the last; the page is stored once the body has ended.
#[tokio::test]
async fn a_miss_streams_and_is_stored_when_it_ends() {
    let (sender, receiver) = tokio::sync::mpsc::channel::<Bytes>(4);
    let receiver = Arc::new(std::sync::Mutex::new(Some(receiver)));
    let app = Router::new()
        .route(
            "/",
            get(move || {
                let receiver = receiver.lock().unwrap().take();
                async move {
                    match receiver {
                        Some(receiver) => Body::new(Channel(receiver)),
                        None => Body::from("origin called twice"),
                    }
                }
            }),
        )
        .route_layer(cache_page(Duration::from_secs(300)).cache(fresh_cache()));
    sender.send(Bytes::from_static(b"first,")).await.unwrap();
    let response = app
        .clone()
        .oneshot(request("example.com", None))
        .await
        .unwrap();
    let mut body = response.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(first, "first,", "before the origin sent the rest");
    sender.send(Bytes::from_static(b"last")).await.unwrap();
    drop(sender);
    let rest = body.collect().await.unwrap().to_bytes();
    assert_eq!(rest, "last");
    let hit = send(&app, request("example.com", None)).await;
    assert_eq!(hit.body, "first,last");
    assert_eq!(hit.outcome.unwrap().answer, Answer::Hit);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_or_set_computes_once_for_concurrent_callers() {
    let cache = fresh_cache();
    let runs = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let cache = cache.clone();
            let runs = runs.clone();
            tokio::spawn(async move {
                cache
                    .get_or_set(
                        "report",
                        || async move {
                            runs.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            vec![1, 2, 3]
                        },
                        Duration::from_secs(60),
                    )
                    .await
                    .unwrap()
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), vec![1, 2, 3]);
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

/// Sends a request to `app` in a task of its own and waits until its store
/// has written the header list to `memory` (the test holds its write of the
/// page): the leader of a flight, between its two writes.
async fn leader_held_between_its_writes(
    app: &Router,
    memory: &MemoryBackend,
) -> tokio::task::JoinHandle<Reply> {
    let first = tokio::spawn({
        let app = app.clone();
        async move { send(&app, request("example.com", None)).await }
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    while memory.entry_count() == 0 {
        assert!(
            Instant::now() < deadline,
            "the header list was never stored"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    first
}

/// A request that comes after the header list is stored and before the page
/// is (a remote backend's two writes are a round trip apart; the leader's
/// followers are answered before them) joins the flight that is storing the
/// page: one origin call, not two.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_between_the_header_list_and_the_page_joins_the_flight() {
    // The writes of page entries wait for a permit of `gate`; the header
    // list and everything else go through: a store held between its writes.
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let memory = MemoryBackend::new();
    let held = gate.clone();
    let cache = Cache::new(Arc::new(Hooked::new(
        Arc::new(memory.clone()),
        move |call, key| {
            let gate = held.clone();
            let page = call == Call::Set && key.contains(".cache_page.");
            Box::pin(async move {
                if page {
                    gate.acquire().await.unwrap().forget();
                }
            })
        },
    )));
    let origin = Origin::default();
    let app = per_route(&origin, cache_page(Duration::from_secs(300)).cache(cache));
    let first = leader_held_between_its_writes(&app, &memory).await;
    // A request that led a flight of its own would call the origin and
    // wait at the gate too.
    let second = tokio::time::timeout(
        Duration::from_secs(5),
        send(&app, request("example.com", None)),
    )
    .await
    .expect("the request joined the leader's flight");
    assert_eq!(second.outcome.unwrap().answer, Answer::Coalesced);
    assert_eq!((origin.calls(), &second.body[..]), (1, &b"v1"[..]));
    gate.add_permits(1);
    assert_eq!(first.await.unwrap().body, "v1");
    let hit = send(&app, request("example.com", None)).await;
    assert_eq!(hit.outcome.unwrap().answer, Answer::Hit);
    assert_eq!(origin.calls(), 1);
}

/// A request whose read missed while the leader was storing the page, and
/// that comes to join after the flight ended (its page stored), reads again
/// instead of leading a flight of its own: one origin call, not two. (On a
/// backend whose writes take a while, SQLite or files, `ab -n 100 -c 10`
/// made two calls in every run.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_that_missed_while_the_page_was_stored_does_not_lead_again() {
    // The leader's write of the page waits for `page`; once `armed`, a read
    // of the header list (the second request's) waits for `list`.
    let page = Arc::new(tokio::sync::Semaphore::new(0));
    let list = Arc::new(tokio::sync::Semaphore::new(0));
    let armed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reached = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let memory = MemoryBackend::new();
    let hook = (page.clone(), list.clone(), armed.clone(), reached.clone());
    let cache = Cache::new(Arc::new(Hooked::new(
        Arc::new(memory.clone()),
        move |call, key| {
            let (page, list, armed, reached) = hook.clone();
            let gate = match call {
                Call::Set if key.contains(".cache_page.") => Some(page),
                Call::Get if key.contains(".cache_header.") && armed.load(Ordering::SeqCst) => {
                    reached.store(true, Ordering::SeqCst);
                    Some(list)
                }
                _ => None,
            };
            Box::pin(async move {
                if let Some(gate) = gate {
                    gate.acquire().await.unwrap().forget();
                }
            })
        },
    )));
    let origin = Origin::default();
    let app = per_route(&origin, cache_page(Duration::from_secs(300)).cache(cache));
    let first = leader_held_between_its_writes(&app, &memory).await;
    // The second request misses the page and waits to read the header list.
    armed.store(true, Ordering::SeqCst);
    let second = tokio::spawn({
        let app = app.clone();
        async move { send(&app, request("example.com", None)).await }
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    while !reached.load(Ordering::SeqCst) {
        assert!(
            Instant::now() < deadline,
            "the second request never read the list"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The leader stores the page and its flight ends (a second permit lets
    // a second flight, if one were led, store too).
    page.add_permits(2);
    assert_eq!(first.await.unwrap().body, "v1");
    list.add_permits(1);
    let second = tokio::time::timeout(Duration::from_secs(5), second)
        .await
        .expect("answered")
        .unwrap();
    assert_eq!(second.outcome.unwrap().answer, Answer::Hit);
    assert_eq!((origin.calls(), &second.body[..]), (1, &b"v1"[..]));
}

/// A follower's copy of the leader's response is dated when it is served,
/// not when the follower arrived: its remaining lifetime (`ttl`) is never
/// longer than the page's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_followers_copy_is_dated_when_it_is_served() {
    let clock = Clock::adjustable();
    let origin = Origin::slow(300);
    let app = per_route(
        &origin,
        cache_page(Duration::from_secs(300))
            .clock(clock.clone())
            .cache(fresh_cache()),
    );
    let herd = tokio::spawn({
        let app = app.clone();
        async move { herd(&app, 5, |_| request("example.com", None)).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    clock.advance(Duration::from_secs(10));
    let replies = herd.await.unwrap();
    assert_eq!(origin.calls(), 1);
    let followers: Vec<_> = replies
        .iter()
        .map(|reply| reply.outcome.unwrap())
        .filter(|outcome| outcome.answer == Answer::Coalesced)
        .collect();
    assert!(!followers.is_empty());
    for outcome in followers {
        assert_eq!(outcome.ttl, Some(300), "{outcome}");
    }
}
