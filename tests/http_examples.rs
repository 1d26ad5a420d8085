//! The HTTP examples: the demo (`examples/httpbin.rs`) end to end on ephemeral loopback ports,
//! with a 0.2 s upstream delay instead of 2 s.

#[allow(dead_code, unreachable_pub)]
#[path = "../examples/httpbin.rs"]
mod httpbin;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::middleware::Next;
use tokio::net::TcpListener;
use tower_cache::Cache;
use tracing::instrument::WithSubscriber;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;

const DELAY: f64 = 0.2;

struct Running {
    url: String,
    /// The demo's purge service (`--admin`), with the token `secret`.
    admin: String,
    upstream_calls: Arc<AtomicUsize>,
    log: Lines,
    client: httpbin::HttpClient,
}

/// A log writer that keeps the lines.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<String>>>);

impl Lines {
    fn get(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

impl std::io::Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8(buf.to_vec()).unwrap();
        self.0
            .lock()
            .unwrap()
            .extend(text.lines().map(str::to_owned));
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Lines {
    type Writer = Lines;

    fn make_writer(&'a self) -> Lines {
        self.clone()
    }
}

async fn serve(router: axum::Router) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

async fn start(site_wide: bool, upstream: Option<String>) -> Running {
    let upstream_calls = Arc::new(AtomicUsize::new(0));
    let upstream = match upstream {
        Some(url) => url,
        None => serve(httpbin::upstream_app(upstream_calls.clone())).await,
    };
    let demo = httpbin::Demo {
        client: httpbin::http_client(),
        upstream,
        delay: DELAY,
    };
    let cache = Cache::from_url("memory://").await.unwrap();
    // The demo's timing middleware, its lines printed into `log` by a
    // subscriber of this app's own (tests run side by side), set for each
    // request by the outermost layer.
    let log = Lines::default();
    let subscriber = tracing::Dispatch::new(
        tracing_subscriber::registry().with(httpbin::timing_lines(log.clone())),
    );
    let caching = httpbin::Caching {
        ttl: Duration::from_secs(300),
        site_wide,
        stale_while_revalidate: Duration::ZERO,
        stale_if_error: Duration::ZERO,
    };
    let (app, invalidator) = httpbin::app(demo, cache, caching);
    let admin = serve(httpbin::admin_app(&invalidator, Some("secret".into()))).await;
    let app =
        app.layer(axum::middleware::from_fn(httpbin::timing))
            .layer(axum::middleware::from_fn(move |request, next: Next| {
                next.run(request).with_subscriber(subscriber.clone())
            }));
    Running {
        url: serve(app).await,
        admin,
        upstream_calls,
        log,
        client: httpbin::http_client(),
    }
}

async fn ten_requests(site_wide: bool) {
    let demo = start(site_wide, None).await;
    let mut pages = Vec::new();
    for i in 0..10 {
        let started = Instant::now();
        let (status, headers, body) = httpbin::http_get(&demo.client, &format!("{}/", demo.url))
            .await
            .unwrap();
        let took = started.elapsed();
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers["cache-control"], "max-age=300");
        assert!(headers.contains_key("expires"));
        assert_eq!(headers["content-type"], "text/html; charset=utf-8");
        let page = String::from_utf8(body.to_vec()).unwrap();
        assert!(
            page.contains("Results received!") && page.contains("Get new data"),
            "{page}"
        );
        if i == 0 {
            assert!(
                took >= Duration::from_secs_f64(DELAY),
                "the first request waits for the API: {took:?}"
            );
            assert!(!headers.contains_key("age"));
        } else {
            // Stored a moment ago: 0, or 1 when a second boundary falls
            // between the store and this request (Age counts whole seconds).
            let age: u64 = headers["age"].to_str().unwrap().parse().unwrap();
            assert!(age <= 1, "Age {age}");
        }
        pages.push(page);
    }
    assert_eq!(
        demo.upstream_calls.load(Ordering::SeqCst),
        1,
        "one upstream call for ten requests"
    );
    assert!(
        pages.iter().all(|p| *p == pages[0]),
        "every hit is the first page, time and all"
    );

    let log = demo.log.get();
    assert_eq!(log.len(), 10, "{log:?}");
    let secs = |line: &str| -> f64 {
        line.strip_prefix("Total time: ")
            .and_then(|rest| rest.strip_suffix('s'))
            .unwrap_or_else(|| panic!("not a timing line: {line:?}"))
            .parse()
            .unwrap()
    };
    assert!(secs(&log[0]) >= 0.19, "{log:?}");
    for line in &log[1..] {
        assert_eq!(line, "Total time: 0.00s");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_view_cache_calls_the_upstream_once_for_ten_requests() {
    ten_requests(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn site_wide_cache_calls_the_upstream_once_for_ten_requests() {
    ten_requests(true).await;
}

/// A cold herd of 50 concurrent requests: one upstream call, every client
/// the page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cold_herd_calls_the_upstream_once() {
    for site_wide in [false, true] {
        let demo = start(site_wide, None).await;
        let url = format!("{}/", demo.url);
        let requests: Vec<_> = (0..50)
            .map(|_| {
                let (client, url) = (demo.client.clone(), url.clone());
                tokio::spawn(async move { httpbin::http_get(&client, &url).await })
            })
            .collect();
        let mut bodies = Vec::new();
        for request in requests {
            let (status, _, body) = request.await.unwrap().unwrap();
            assert_eq!(status, 200);
            bodies.push(body);
        }
        assert!(
            bodies.iter().all(|body| *body == bodies[0]),
            "one page for all"
        );
        assert_eq!(
            demo.upstream_calls.load(Ordering::SeqCst),
            1,
            "site_wide {site_wide}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_error_is_a_502_and_never_cached() {
    // A port that was free a moment ago: connections are refused.
    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let demo = start(false, Some(closed)).await;
    for _ in 0..2 {
        let (status, headers, body) = httpbin::http_get(&demo.client, &format!("{}/", demo.url))
            .await
            .unwrap();
        assert_eq!(status, StatusCode::BAD_GATEWAY);
        assert!(!headers.contains_key("cache-control") && !headers.contains_key("expires"));
        assert!(String::from_utf8_lossy(&body).contains("502 Bad gateway"));
    }
    assert_eq!(demo.log.get().len(), 2);
}

/// `--admin`: the page carries its tag to the cache, not to the client;
/// `PURGE /` with the site's Host and a `POST` of its tag each make the next
/// request call the upstream again; without the token, nothing is purged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_listener_purges_the_page() {
    let demo = start(false, None).await;
    let host = demo.url.trim_start_matches("http://").to_owned();
    let page = async || {
        let (status, headers, _) = httpbin::http_get(&demo.client, &format!("{}/", demo.url))
            .await
            .unwrap();
        assert_eq!(status, StatusCode::OK);
        assert!(!headers.contains_key("cache-tag"), "the tag stays inside");
    };
    let admin = async |method: &str, token: &str, body: &'static str| {
        let request = axum::http::Request::builder()
            .method(method)
            .uri(format!("{}/", demo.admin))
            .header("host", &host)
            .header("authorization", format!("Bearer {token}"))
            .body(http_body_util::Full::new(bytes::Bytes::from_static(
                body.as_bytes(),
            )))
            .unwrap();
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http();
        client.request(request).await.unwrap().status()
    };
    page().await;
    page().await;
    assert_eq!(demo.upstream_calls.load(Ordering::SeqCst), 1);
    assert_eq!(admin("PURGE", "wrong", "").await, StatusCode::UNAUTHORIZED);
    page().await;
    assert_eq!(demo.upstream_calls.load(Ordering::SeqCst), 1);
    assert_eq!(admin("PURGE", "secret", "").await, StatusCode::OK);
    page().await;
    assert_eq!(demo.upstream_calls.load(Ordering::SeqCst), 2);
    let tags = r#"{"tags": ["page:home"]}"#;
    assert_eq!(admin("POST", "secret", tags).await, StatusCode::OK);
    page().await;
    page().await;
    assert_eq!(demo.upstream_calls.load(Ordering::SeqCst), 3);
}

/// The page says what the cache did (`Cache-Status`), and a hit carries a
/// weak ETag that makes the next request with it a 304 without a body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_carries_cache_status_and_answers_304() {
    let demo = start(false, None).await;
    let get = async |etag: Option<&str>| {
        let mut request = axum::http::Request::get(format!("{}/", demo.url));
        if let Some(etag) = etag {
            request = request.header("if-none-match", etag);
        }
        let request = request
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap();
        let response = demo.client.request(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let body = http_body_util::BodyExt::collect(body)
            .await
            .unwrap()
            .to_bytes();
        (parts.status, parts.headers, body)
    };
    let (_, miss, _) = get(None).await;
    let status = miss["cache-status"].to_str().unwrap();
    assert!(
        status.contains("fwd=uri-miss") && status.contains("stored"),
        "{status}"
    );
    let (_, hit, _) = get(None).await;
    assert!(hit["cache-status"].to_str().unwrap().contains("hit"));
    let etag = hit["etag"].to_str().unwrap().to_owned();
    assert!(etag.starts_with("W/\""), "{etag}");
    let (status, headers, body) = get(Some(&etag)).await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    assert!(body.is_empty());
    assert_eq!(headers["etag"], etag.as_str());
    assert_eq!(demo.upstream_calls.load(Ordering::SeqCst), 1);
}

/// `/metrics`: the cache's counters in Prometheus text, never cached.
#[tokio::test]
async fn metrics_are_served_in_prometheus_text() {
    use axum::body::Body;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let _local = metrics::set_default_local_recorder(&recorder);
    let cache = Cache::from_url("memory://").await.unwrap();
    let page = axum::Router::new()
        .route("/", axum::routing::get(|| async { "page" }))
        .route_layer(tower_cache::middleware::cache_page(Duration::from_secs(60)).cache(cache));
    let app = httpbin::with_metrics(page, handle);
    let get = async |path: &str| {
        let request = axum::http::Request::get(path)
            .header("host", "example.com")
            .body(Body::empty())
            .unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (headers, String::from_utf8(body.to_vec()).unwrap())
    };
    get("/").await;
    get("/").await;
    let (headers, text) = get("/metrics").await;
    assert_eq!(headers["cache-control"], "no-store");
    assert!(
        text.contains(r#"tower_cache_hits_total{cache="tower-cache",layer="cache_page"} 1"#),
        "{text}"
    );
    assert!(text.contains("tower_cache_stores_total"), "{text}");
}

#[test]
fn arguments() {
    let args = |list: &[&str]| httpbin::parse_args(list.iter().map(|s| s.to_string()));
    let defaults = args(&[]).unwrap();
    assert_eq!(defaults.listen.to_string(), "127.0.0.1:8000");
    assert_eq!(
        (defaults.delay, defaults.site_wide, defaults.upstream),
        (2.0, false, None)
    );
    let custom = args(&[
        "--listen",
        "127.0.0.1:9000",
        "--upstream",
        "http://127.0.0.1:8080/",
        "--delay",
        "0.5",
        "--site-wide",
    ])
    .unwrap();
    assert_eq!(custom.listen.to_string(), "127.0.0.1:9000");
    assert_eq!(custom.upstream.as_deref(), Some("http://127.0.0.1:8080"));
    assert_eq!((custom.delay, custom.site_wide), (0.5, true));
    assert!(args(&["--quiet"]).unwrap().quiet);
    assert_eq!(
        args(&["--admin", "127.0.0.1:8001"]).unwrap().admin,
        Some("127.0.0.1:8001".parse().unwrap())
    );
    assert!(
        args(&["--admin", "nowhere"])
            .unwrap_err()
            .contains("--admin")
    );
    let stale = args(&["--stale-while-revalidate", "30", "--stale-if-error", "600"]).unwrap();
    assert_eq!(
        (stale.stale_while_revalidate, stale.stale_if_error),
        (Duration::from_secs(30), Duration::from_secs(600))
    );
    assert!(
        args(&["--stale-if-error", "-1"])
            .unwrap_err()
            .contains("--stale-if-error")
    );
    assert!(args(&["--delay", "soon"]).unwrap_err().contains("--delay"));
    assert!(args(&["--listen"]).unwrap_err().contains("needs a value"));
    assert!(
        args(&["--frobnicate"])
            .unwrap_err()
            .contains("unknown argument")
    );
}

#[allow(dead_code, unreachable_pub)]
#[path = "../examples/site_wide.rs"]
mod site_wide;

/// `examples/site_wide.rs`: `/` is cached, `/account` (private) is not.
#[tokio::test]
async fn site_wide_example_caches_public_pages_only() {
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    let app = site_wide::app(Cache::from_url("memory://").await.unwrap());
    let fetch = |path: &'static str| {
        let app = app.clone();
        async move {
            let request = Request::get(path)
                .header("host", "localhost")
                .body(Body::empty())
                .unwrap();
            let response = app.oneshot(request).await.unwrap();
            let age = response.headers().contains_key("age");
            let control = response.headers()["cache-control"]
                .to_str()
                .unwrap()
                .to_owned();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            (age, control, body)
        }
    };
    let (age, control, _) = fetch("/").await;
    assert_eq!((age, control.as_str()), (false, "max-age=60"));
    let (age, _, _) = fetch("/").await;
    assert!(age, "the second / is a hit");
    let (_, control, _) = fetch("/news").await;
    assert_eq!(control, "max-age=10");
    assert!(fetch("/news").await.0, "/news is a hit too");
    for _ in 0..2 {
        let (age, control, body) = fetch("/account").await;
        assert_eq!((age, control.as_str()), (false, "private"));
        assert!(body.starts_with(b"Your account"));
    }
}
