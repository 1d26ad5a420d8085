//! Coalescing across instances: two app servers (here, two layers with
//! their own flight tables and their own connections) sharing Redis,
//! memcached or SQLite send one request per page to the origin for a cold
//! herd spread over both. Needs the servers of `./scripts/test`.
#![cfg(all(feature = "redis", feature = "memcached", feature = "sqlite"))]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use tower::ServiceExt;
use tower_cache::middleware::{Answer, CachePageLayer, Outcome, cache_page};
use tower_cache::{Cache, CacheConfig};

/// A cache over its own backend (its own connections), as one app server
/// has, under `prefix`.
async fn instance_cache(url: &str, prefix: &str) -> Cache {
    let mut config = CacheConfig::from_url(url);
    config.key_prefix = Some(prefix.to_owned());
    config.build().await.unwrap()
}

/// One app server: `/` behind `layer`, counting its origin calls in `calls`.
fn instance(calls: &Arc<AtomicUsize>, layer: CachePageLayer) -> Router {
    let calls = calls.clone();
    Router::new()
        .route(
            "/",
            get(move || {
                let calls = calls.clone();
                async move {
                    let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
                    tokio::time::sleep(Duration::from_millis(1000)).await;
                    format!("page {n}")
                }
            }),
        )
        .route_layer(layer)
}

/// 50 requests at once, alternating between the two instances, with one
/// Host (as behind a load balancer); the bodies and outcomes.
async fn herd(apps: [&Router; 2]) -> Vec<(StatusCode, String, Outcome)> {
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let app = apps[i % 2].clone();
            tokio::spawn(async move {
                let request = Request::get("/")
                    .header(header::HOST, "shop.example")
                    .body(Body::empty())
                    .unwrap();
                let response = app.oneshot(request).await.unwrap();
                let status = response.status();
                let outcome = *response.extensions().get::<Outcome>().unwrap();
                let body = response.into_body().collect().await.unwrap().to_bytes();
                (status, String::from_utf8(body.to_vec()).unwrap(), outcome)
            })
        })
        .collect();
    let mut replies = Vec::new();
    for task in tasks {
        replies.push(task.await.unwrap());
    }
    replies
}

/// The herd over two instances on `url`: the origin calls.
async fn two_instances(url: &str, across: Option<bool>) -> usize {
    let prefix = common::unique("herd");
    let calls = Arc::new(AtomicUsize::new(0));
    let layer = |cache| {
        let layer = cache_page(Duration::from_secs(60)).cache(cache);
        match across {
            Some(on) => layer.coalesce_across_instances(on),
            None => layer,
        }
    };
    let a = instance(&calls, layer(instance_cache(url, &prefix).await));
    let b = instance(&calls, layer(instance_cache(url, &prefix).await));
    let replies = herd([&a, &b]).await;
    for (status, body, _) in &replies {
        assert_eq!(*status, StatusCode::OK);
        assert!(body.starts_with("page "), "{body}");
    }
    let calls = calls.load(Ordering::SeqCst);
    if calls == 1 {
        assert!(replies.iter().all(|(_, body, _)| body == "page 1"));
        let coalesced = replies
            .iter()
            .filter(|(_, _, o)| o.answer == Answer::Coalesced)
            .count();
        assert_eq!(coalesced, 49);
    }
    calls
}

/// One test per shared server the suite starts, each on by default.
macro_rules! one_call_on {
    ($($name:ident: $var:literal),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let url = common::server_url($var);
            assert_eq!(two_instances(&url, None).await, 1);
        }
    )*};
}

one_call_on! {
    a_herd_over_two_instances_on_redis_calls_the_origin_once: "REDIS_URL",
    a_herd_over_two_instances_on_redis_cluster_calls_the_origin_once: "REDIS_CLUSTER_URL",
    a_herd_over_two_instances_on_memcached_calls_the_origin_once: "MEMCACHED_URLS",
}

/// Off by default on databases (a miss would cost two more round trips
/// there): one call per instance; on with the switch: one in all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqlite_it_is_a_switch() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("cache.db").display());
    assert_eq!(two_instances(&url, None).await, 2, "one per instance");
    assert_eq!(two_instances(&url, Some(true)).await, 1);
}

/// A page that is not storable is never waited for long: the lock is
/// released at once, and every instance's requests reach the origin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_page_releases_the_lock() {
    let url = common::server_url("REDIS_URL");
    let prefix = common::unique("private");
    let calls = Arc::new(AtomicUsize::new(0));
    let make = |cache| {
        let calls = calls.clone();
        Router::new()
            .route(
                "/",
                get(move || {
                    let calls = calls.clone();
                    async move {
                        calls.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        ([(header::CACHE_CONTROL, "private")], "mine")
                    }
                }),
            )
            .route_layer(cache_page(Duration::from_secs(60)).cache(cache))
    };
    let a = make(instance_cache(&url, &prefix).await);
    let b = make(instance_cache(&url, &prefix).await);
    let started = std::time::Instant::now();
    let replies = herd([&a, &b]).await;
    assert!(replies.iter().all(|(_, body, _)| body == "mine"));
    assert_eq!(calls.load(Ordering::SeqCst), 50);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "no one waits out the bound"
    );
}

/// GET / with `host` over a real connection; the status line, the
/// `Content-Length` and the body as a client reads them.
async fn get_over_tcp(addr: std::net::SocketAddr) -> (String, Option<usize>, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: shop.example\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let length = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse().unwrap())
    });
    (
        head.lines().next().unwrap().to_owned(),
        length,
        body.to_owned(),
    )
}

/// Through hyper, on a backend whose store waits for the network: the
/// client of a miss gets the whole page with its true length (the store
/// runs before the last chunk is handed on), and the next client a hit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_miss_on_redis_reaches_a_real_client_whole() {
    let url = common::server_url("REDIS_URL");
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let app = Router::new()
        .route(
            "/",
            get(move || {
                counter.fetch_add(1, Ordering::SeqCst);
                async { "the whole page" }
            }),
        )
        .route_layer(
            cache_page(Duration::from_secs(60))
                .cache(instance_cache(&url, &common::unique("tcp")).await),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    for _ in 0..2 {
        let (status, length, body) = get_over_tcp(addr).await;
        assert!(status.contains("200"), "{status}");
        assert_eq!(body, "the whole page");
        assert_eq!(length, Some(body.len()));
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

/// Backend round trips per hit on Redis: one for a page without `Vary` (its
/// entry, read together with the header list), two for one with `Vary`
/// (then its variant), where each read alone would make it three.
#[tokio::test]
async fn a_hit_on_redis_costs_one_round_trip_or_two_with_vary() {
    use tower_cache::testing::Instrumented;
    let url = common::server_url("REDIS_URL");
    let backend = common::backend_from_env("REDIS_URL").await;
    assert!(backend.reads_are_round_trips(), "{url}");
    let counted = Arc::new(Instrumented::new(backend, false));
    let cache = Cache::builder(counted.clone())
        .key_prefix(common::unique("round-trips"))
        .build();
    let app = Router::new()
        .route("/plain", get(|| async { "plain" }))
        .route(
            "/varying",
            get(|| async { ([(header::VARY, "Accept-Language")], "varying") }),
        )
        .route_layer(cache_page(Duration::from_secs(60)).cache(cache));
    let hit = |path: &'static str| {
        let app = app.clone();
        async move {
            let request = Request::get(path)
                .header(header::HOST, "example.com")
                .header(header::ACCEPT_LANGUAGE, "en")
                .body(Body::empty())
                .unwrap();
            let response = app.oneshot(request).await.unwrap();
            let answer = response.extensions().get::<Outcome>().unwrap().answer;
            response.into_body().collect().await.unwrap();
            answer
        }
    };
    for (path, round_trips) in [("/plain", 1), ("/varying", 2)] {
        hit(path).await;
        // The store runs while the body is read: wait for it to land.
        let mut answer = hit(path).await;
        for _ in 0..50 {
            if answer == Answer::Hit {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            answer = hit(path).await;
        }
        assert_eq!(answer, Answer::Hit, "{path}");
        let before = counted.calls();
        assert_eq!(hit(path).await, Answer::Hit);
        assert_eq!(counted.calls() - before, round_trips, "{path}");
    }
}
