//! The seed tutorial, in Rust: a page whose view calls a slow API
//! (`GET /delay/2`), cached for five minutes with `cache_page`.
//!
//! Run with `cargo run --example httpbin`, then, in another terminal:
//!
//! ```text
//! curl -s -o /dev/null -w '%{time_total}s\n' http://127.0.0.1:8000/   # about 2 s
//! curl -s -o /dev/null -w '%{time_total}s\n' http://127.0.0.1:8000/   # about 0 s
//! ```
//!
//! The server prints the tutorial's timing log, `Total time: 2.01s` for the
//! first request and `Total time: 0.00s` for the cached ones.
//!
//! Everything stays on this machine: the example starts its own httpbin-like
//! upstream on loopback (`/delay/{n}` sleeps n seconds and returns a small
//! JSON document). Options:
//!
//! * `--listen ADDR`: where the page is served (default `127.0.0.1:8000`);
//! * `--upstream URL`: call this httpbin instead of the bundled one;
//! * `--delay SECS`: the upstream delay the view asks for (default 2);
//! * `--site-wide`: cache with the two site-wide layers instead of `cache_page`;
//! * `--verbose`: log every cache hit, miss and store;
//! * `--quiet`: no timing log (to load-test the cache without it);
//! * `--serve-upstream ADDR`: only run the bundled upstream there (it also
//!   answers `GET /count` with its number of calls; `scripts/loadtest` uses it);
//! * `CACHE_TTL=seconds` (default 300) and `CACHE_URL` (default `memory://`;
//!   any scheme the registry knows, e.g. `redis://127.0.0.1:6379/1` with the
//!   `redis` feature).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;
use tower::{Service, ServiceBuilder};
use tower_cache::middleware::{SiteCache, cache_page};
use tower_cache::{Cache, Caches};

/// The command line.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Where the page is served.
    pub listen: SocketAddr,
    /// The httpbin to call; `None` starts the bundled one.
    pub upstream: Option<String>,
    /// Seconds of `/delay/{n}`.
    pub delay: f64,
    /// Site-wide layers instead of `cache_page`.
    pub site_wide: bool,
    /// Log cache events.
    pub verbose: bool,
    /// No timing log (for load tests of the cache alone).
    pub quiet: bool,
    /// Only serve the bundled upstream, on this address (for `scripts/loadtest`).
    pub serve_upstream: Option<SocketAddr>,
}

const USAGE: &str =
    "usage: httpbin [--listen ADDR] [--upstream URL] [--delay SECS] [--site-wide] [--verbose]";

/// Parses the arguments after the program name.
pub fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Options, String> {
    let mut options = Options {
        listen: SocketAddr::from(([127, 0, 0, 1], 8000)),
        upstream: None,
        delay: 2.0,
        site_wide: false,
        verbose: false,
        quiet: false,
        serve_upstream: None,
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .ok_or_else(|| format!("{name} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--listen" => {
                let v = value("--listen")?;
                options.listen = v.parse().map_err(|e| format!("--listen {v:?}: {e}"))?;
            }
            "--upstream" => {
                options.upstream = Some(value("--upstream")?.trim_end_matches('/').to_owned())
            }
            "--delay" => {
                let v = value("--delay")?;
                options.delay = v
                    .parse()
                    .ok()
                    .filter(|d: &f64| d.is_finite() && *d >= 0.0)
                    .ok_or_else(|| format!("--delay {v:?}: expected seconds, such as 2 or 0.2"))?;
            }
            "--site-wide" => options.site_wide = true,
            "--serve-upstream" => {
                let v = value("--serve-upstream")?;
                options.serve_upstream = Some(
                    v.parse()
                        .map_err(|e| format!("--serve-upstream {v:?}: {e}"))?,
                );
            }
            "--verbose" | "-v" => options.verbose = true,
            "--quiet" | "-q" => options.quiet = true,
            "--help" | "-h" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(options)
}

/// `CACHE_TTL` in seconds, 300 when unset.
pub fn ttl_from_env() -> Result<Duration, String> {
    match std::env::var("CACHE_TTL") {
        Err(_) => Ok(Duration::from_secs(300)),
        Ok(v) => v
            .trim()
            .parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|_| format!("CACHE_TTL={v:?}: expected whole seconds, such as 300")),
    }
}

/// The HTTP client the view calls the upstream with.
pub type HttpClient = Client<HttpConnector, Empty<Bytes>>;

/// A client with a connection pool.
pub fn http_client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// `GET url`: status, headers and the whole body.
pub async fn http_get(
    client: &HttpClient,
    url: &str,
) -> Result<(StatusCode, HeaderMap, Bytes), String> {
    let uri: Uri = url.parse().map_err(|e| format!("bad URL {url:?}: {e}"))?;
    let response = client
        .get(uri)
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?
        .to_bytes();
    Ok((parts.status, parts.headers, body))
}

// ---- the bundled upstream ----------------------------------------------------

/// The httpbin-like upstream: `GET /delay/{n}` sleeps `n` seconds (at most
/// 10, as httpbin) and answers a small JSON document; `calls` counts them,
/// and `GET /count` tells the count.
pub fn upstream_app(calls: Arc<AtomicUsize>) -> Router {
    async fn delay(
        State(calls): State<Arc<AtomicUsize>>,
        Path(n): Path<String>,
        uri: Uri,
        headers: HeaderMap,
    ) -> Response {
        let Some(secs) = n.parse::<f64>().ok().filter(|s| s.is_finite()) else {
            return (StatusCode::BAD_REQUEST, format!("bad delay {n:?}\n")).into_response();
        };
        calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs_f64(secs.clamp(0.0, 10.0))).await;
        let headers: serde_json::Map<String, serde_json::Value> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
            .collect();
        let body = serde_json::json!({"args": {}, "data": "", "files": {}, "form": {}, "headers": headers, "url": uri.to_string()});
        (
            [("content-type", "application/json")],
            format!("{body:#}\n"),
        )
            .into_response()
    }
    async fn count(State(calls): State<Arc<AtomicUsize>>) -> String {
        format!("{}\n", calls.load(Ordering::SeqCst))
    }
    Router::new()
        .route("/delay/{n}", get(delay))
        .route("/count", get(count))
        .with_state(calls)
}

// ---- the app -------------------------------------------------------------------

/// Where the timing middleware writes its lines (a `'static` reference, so
/// that a request does not touch a shared reference count).
pub type Log = &'static (dyn Fn(std::fmt::Arguments<'_>) + Send + Sync);

/// What the view needs.
#[derive(Clone)]
pub struct Demo {
    /// The HTTP client.
    pub client: HttpClient,
    /// The upstream's base URL, e.g. `http://127.0.0.1:40123`.
    pub upstream: String,
    /// Seconds of `/delay/{n}`.
    pub delay: f64,
}

/// The tutorial's view: call the slow API, then render the page.
async fn home(State(demo): State<Arc<Demo>>) -> Response {
    let url = format!("{}/delay/{}", demo.upstream, demo.delay);
    match http_get(&demo.client, &url).await {
        Ok((status, _, _)) if status.is_success() => {
            Html(render_page("Results received!", SystemTime::now())).into_response()
        }
        Ok((status, _, _)) => bad_gateway(&format!("the API answered {status}")),
        Err(error) => bad_gateway(&error),
    }
}

/// 502 with a short page (never cached: only 200s are).
fn bad_gateway(reason: &str) -> Response {
    let page = format!(
        "<!DOCTYPE html>\n<title>Bad gateway</title>\n<h1>502 Bad gateway</h1>\n<p>The API call failed: {}</p>\n",
        escape(reason)
    );
    (StatusCode::BAD_GATEWAY, Html(page)).into_response()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The tutorial's `apicalls/home.html`, with its content and the time (UTC,
/// `H:i:s`).
pub fn render_page(content: &str, now: SystemTime) -> String {
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
    <meta charset="UTF-8">
    <title>Home</title>
    <link rel="stylesheet" href="https://stackpath.bootstrapcdn.com/bootstrap/4.4.1/css/bootstrap.min.css"
          integrity="sha384-Vkoo8x4CGsO3+Hhxv8T/Q5PaXtkKtu6ug5TOeNV6gBiFeWPGFN9MuhOf23Q9Ifjh" crossorigin="anonymous">

</head>
<body>
<div class="container">
    <div class="pt-3">
        <h1>Below is the result of the APICall</h1>
    </div>
    <div class="pt-3 pb-3">
        <a href="/">
            <button type="button" class="btn btn-success">
                Get new data
            </button>
        </a>
    </div>
    {content}<br>
    {h:02}:{m:02}:{s:02}
</div>
</body>
</html>
"#
    )
}

/// The tutorial's `metric_middleware`, as a small Tower service: logs
/// `Total time: 2.01s` when the inner service has answered.
#[derive(Clone)]
struct Timing<S> {
    inner: S,
    log: Log,
}

impl<S, B> Service<axum::http::Request<B>> for Timing<S>
where
    S: Service<axum::http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = TimingFuture<S::Future>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: axum::http::Request<B>) -> Self::Future {
        TimingFuture {
            inner: self.inner.call(request),
            started: Instant::now(),
            log: self.log,
        }
    }
}

pin_project_lite::pin_project! {
    struct TimingFuture<F> {
        #[pin]
        inner: F,
        started: Instant,
        log: Log,
    }
}

impl<F: Future> Future for TimingFuture<F> {
    type Output = F::Output;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        let this = self.project();
        let output = std::task::ready!(this.inner.poll(cx));
        // Hundredths of a second, rounded, as Python's `{:.2f}` shows them
        // (integer formatting: cheaper than a float's, on every request).
        let hundredths = (this.started.elapsed().as_micros() + 5_000) / 10_000;
        (this.log)(format_args!(
            "Total time: {}.{:02}s",
            hundredths / 100,
            hundredths % 100
        ));
        std::task::Poll::Ready(output)
    }
}

/// The app: `/` cached for `ttl` in `cache`, per view (`cache_page`) or
/// site-wide, inside the timing middleware when there is a `log`.
pub fn app(demo: Demo, cache: Cache, ttl: Duration, site_wide: bool, log: Option<Log>) -> Router {
    let router = Router::new();
    let router = if site_wide {
        let (update, fetch) = SiteCache::new().cache(cache).timeout(ttl).layers();
        router
            .route("/", get(home))
            .layer(ServiceBuilder::new().layer(update).layer(fetch))
    } else {
        router
            .route("/", get(home))
            .route_layer(cache_page(ttl).cache(cache))
    };
    let router = router.with_state(Arc::new(demo));
    match log {
        Some(log) => router.layer(tower::layer::layer_fn(move |inner| Timing { inner, log })),
        None => router,
    }
}

/// A [`Log`] that prints on stdout from a thread of its own, every 20 ms,
/// so that a request never waits for the terminal: each server thread
/// appends to a buffer of its own (no lock shared between requests, no
/// wake-up per line), and the printing thread collects them. Each line is
/// stamped with the time it was logged, so lines from different threads in
/// one batch still print in the order the requests finished.
fn stdout_log() -> Log {
    use std::fmt::Write as _;
    use std::io::Write as _;
    use std::sync::Mutex;
    type Buffer = Arc<Mutex<String>>;
    const STAMP_WIDTH: usize = 20;
    static START: std::sync::LazyLock<std::time::Instant> =
        std::sync::LazyLock::new(std::time::Instant::now);
    std::sync::LazyLock::force(&START);
    static BUFFERS: Mutex<Vec<Buffer>> = Mutex::new(Vec::new());
    thread_local! {
        static MINE: Buffer = {
            let buffer = Buffer::default();
            BUFFERS.lock().unwrap_or_else(|e| e.into_inner()).push(buffer.clone());
            buffer
        };
    }
    std::thread::spawn(|| {
        let mut batch = String::new();
        loop {
            std::thread::sleep(Duration::from_millis(20));
            for buffer in BUFFERS.lock().unwrap_or_else(|e| e.into_inner()).iter() {
                let mut lines = buffer.lock().unwrap_or_else(|e| e.into_inner());
                batch.push_str(&lines);
                lines.clear();
            }
            if !batch.is_empty() {
                // Fixed-width stamps: sorting the lines sorts them by time.
                let mut lines: Vec<&str> = batch.lines().collect();
                lines.sort_unstable();
                let mut out = std::io::stdout().lock();
                for line in lines {
                    let _ = writeln!(out, "{}", &line[STAMP_WIDTH..]);
                }
                let _ = out.flush();
                batch.clear();
            }
        }
    });
    Box::leak(Box::new(|line: std::fmt::Arguments<'_>| {
        let stamp = START.elapsed().as_nanos();
        MINE.with(|buffer| {
            let mut buffer = buffer.lock().unwrap_or_else(|e| e.into_inner());
            let _ = writeln!(buffer, "{stamp:0width$}{line}", width = STAMP_WIDTH);
        });
    }))
}

/// INFO for everything; with `--verbose`, tower-cache's DEBUG events too
/// (one per request: hit, miss or bypass, and what was stored).
fn init_logging(verbose: bool) {
    use tracing::level_filters::LevelFilter;
    use tracing_subscriber::prelude::*;
    let cache_level = if verbose {
        LevelFilter::DEBUG
    } else {
        LevelFilter::INFO
    };
    let filter = tracing_subscriber::filter::Targets::new()
        .with_default(LevelFilter::INFO)
        .with_target("tower_cache", cache_level);
    tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_target(false))
        .with(filter)
        .init();
}

#[tokio::main]
async fn main() {
    if let Err(message) = run().await {
        eprintln!("{message}");
        std::process::exit(2);
    }
}

async fn run() -> Result<(), String> {
    let options = parse_args(std::env::args().skip(1))?;
    init_logging(options.verbose);
    if let Some(addr) = options.serve_upstream {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        println!("Bundled httpbin upstream on http://{addr} (/delay/{{n}}, /count)");
        let upstream = upstream_app(Arc::new(AtomicUsize::new(0)));
        return axum::serve(listener, upstream)
            .await
            .map_err(|e| e.to_string());
    }
    let ttl = ttl_from_env()?;
    let caches = Caches::from_env()
        .await
        .map_err(|e| format!("CACHE_URL: {e}"))?;

    let upstream = match options.upstream.clone() {
        Some(url) => url,
        None => {
            let listener = TcpListener::bind("127.0.0.1:0")
                .await
                .map_err(|e| format!("bundled upstream: {e}"))?;
            let addr = listener.local_addr().map_err(|e| e.to_string())?;
            let upstream = upstream_app(Arc::new(AtomicUsize::new(0)));
            tokio::spawn(async move { axum::serve(listener, upstream).await });
            format!("http://{addr}")
        }
    };
    let demo = Demo {
        client: http_client(),
        upstream: upstream.clone(),
        delay: options.delay,
    };
    let log = (!options.quiet).then(stdout_log);
    let app = app(demo, caches.default().clone(), ttl, options.site_wide, log);
    let listener = TcpListener::bind(options.listen).await.map_err(|e| {
        format!(
            "cannot listen on {}: {e} (use --listen to pick another address)",
            options.listen
        )
    })?;
    let how = if options.site_wide {
        "site-wide layers"
    } else {
        "cache_page"
    };
    println!(
        "Serving http://{} ({how}, TTL {} s, {} cache); the view calls {upstream}/delay/{}",
        options.listen,
        ttl.as_secs(),
        // The scheme only: a URL may hold a password.
        std::env::var("CACHE_URL").map_or("memory".to_owned(), |url| url
            .split(':')
            .next()
            .unwrap_or_default()
            .to_owned()),
        options.delay,
    );
    axum::serve(listener, app).await.map_err(|e| e.to_string())
}
