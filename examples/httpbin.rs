//! The seed tutorial, in Rust: a page whose view calls a slow API, cached for
//! five minutes, with the tutorial's timing log.
//!
//! Run with `cargo run --example httpbin`, then, in another terminal:
//!
//! ```text
//! curl -s -o /dev/null -w '%{time_total}s\n' http://127.0.0.1:8000/   # about 2 s
//! curl -s -o /dev/null -w '%{time_total}s\n' http://127.0.0.1:8000/   # about 0 s
//! ```
//!
//! The server prints what the tutorial's Django server prints:
//!
//! ```text
//! Total time: 2.00s
//! Total time: 0.00s
//! ```
//!
//! The story, in the order of this file:
//!
//! 1. **The upstream.** The tutorial's view calls httpbin's `GET /delay/2`,
//!    which answers after two seconds. This example bundles an httpbin-like
//!    upstream on loopback, so that everything stays on this machine.
//! 2. **The page view.** `home` is the tutorial's `ApiCalls` view: it calls
//!    the API, then renders `apicalls/home.html` with the time of day.
//! 3. **The cache layer.** Django's `@cache_page(60 * 5)` is a route layer
//!    here, `cache_page(ttl).cache(cache)`: the first request runs the view,
//!    the next ones get the stored page until the TTL runs out. With
//!    `--site-wide`, the per-site middleware pair does the same for every
//!    route (`SiteCache`'s two layers, in Django's `MIDDLEWARE` order).
//!    Both coalesce: fifty requests for a cold page call the view once.
//! 4. **The timing log.** The tutorial's `metric_middleware` is an async
//!    function, [`timing`], turned into a layer by `axum::middleware::from_fn`.
//!    It logs with `tracing`; a `tracing-appender` thread writes the lines to
//!    stdout, so a request never waits for the terminal (`httpbin/log.rs`
//!    lets the lines gather, so that this thread wakes up rarely under load).
//! 5. **main** reads the command line, starts the upstream and serves, with
//!    the cache's metrics at `/metrics` (Prometheus text) and, with
//!    `--admin`, the purge service on a second listener.
//!
//! Options:
//!
//! * `--listen ADDR`: where the page is served (default `127.0.0.1:8000`);
//! * `--upstream URL`: call this httpbin instead of the bundled one;
//! * `--delay SECS`: the upstream delay the view asks for (default 2);
//! * `--site-wide`: cache with the two site-wide layers instead of `cache_page`;
//! * `--stale-while-revalidate SECS`: serve a page up to SECS past its TTL
//!   while one request refreshes it in the background (default 0);
//! * `--stale-if-error SECS`: serve a page up to SECS past its TTL when the
//!   upstream fails (default 0);
//! * `--admin ADDR`: serve the purge service there (an internal address:
//!   `curl -X PURGE -H 'Host: 127.0.0.1:8000' http://ADDR/` purges the page,
//!   `curl -d '{"tags": ["page:home"]}' http://ADDR/` purges by its tag;
//!   with `ADMIN_TOKEN` set, requests need `Authorization: Bearer $ADMIN_TOKEN`);
//! * `--verbose`: log every cache hit, miss and store;
//! * `--quiet`: no timing log (to load-test the cache without it);
//! * `--serve-upstream ADDR`: only run the bundled upstream there (it also
//!   answers `GET /count` with its number of calls; `scripts/loadtest` uses it);
//! * `CACHE_TTL=seconds` (default 300) and `CACHE_URL` (default `memory://`;
//!   any scheme the registry knows, e.g. `redis://127.0.0.1:6379/1` with the
//!   `redis` feature).

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_cache::middleware::{Invalidator, SiteCache, cache_page};
use tower_cache::{Cache, Caches};
use tower_http::validate_request::ValidateRequestHeaderLayer;
use tracing::level_filters::LevelFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::{self, MakeWriter};
use tracing_subscriber::prelude::*;

#[path = "httpbin/log.rs"]
mod log;

// ---- 1. The upstream ------------------------------------------------------

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

// ---- 2. The page view -----------------------------------------------------

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

/// The tag the home page carries: `--admin`'s purge service (or
/// `Invalidator::invalidate_tags`) purges it with `{"tags": ["page:home"]}`.
pub const HOME_TAG: &str = "page:home";

/// The tutorial's view: call the slow API, then render the page, tagged
/// [`HOME_TAG`]. An error is a 502 page, which the cache never stores (it
/// keeps 200s only).
async fn home(State(demo): State<Arc<Demo>>) -> Response {
    let url = format!("{}/delay/{}", demo.upstream, demo.delay);
    let reason = match http_get(&demo.client, &url).await {
        Ok((status, _, _)) if status.is_success() => {
            let page = Html(render_page("Results received!", SystemTime::now()));
            return ([("cache-tag", HOME_TAG)], page).into_response();
        }
        Ok((status, _, _)) => format!("the API answered {status}"),
        Err(error) => error,
    };
    let reason = reason.replace('&', "&amp;").replace('<', "&lt;");
    let page = format!(
        "<!DOCTYPE html>\n<title>Bad gateway</title>\n<h1>502 Bad gateway</h1>\n<p>The API call failed: {reason}</p>\n"
    );
    (StatusCode::BAD_GATEWAY, Html(page)).into_response()
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

/// The HTTP client the view calls the upstream with (Python's `requests`).
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
        .map_err(|e| format!("GET {url}: {e}"))?;
    Ok((parts.status, parts.headers, body.to_bytes()))
}

// ---- 3. The cache layer ---------------------------------------------------

/// How the page is cached.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Caching {
    /// The page's lifetime (`CACHE_TTL`).
    pub ttl: Duration,
    /// The site-wide layers instead of `cache_page`.
    pub site_wide: bool,
    /// How long a stale page is served while one request refreshes it.
    pub stale_while_revalidate: Duration,
    /// How long a stale page is served when the upstream fails.
    pub stale_if_error: Duration,
}

/// The site: `/` cached in `cache`, per view (`cache_page`) or with the
/// site-wide layers, and what purges its pages. Both coalesce (a cold herd
/// calls the view once), say what they did in `Cache-Status`, and give the
/// page a weak `ETag`, so `curl -H 'If-None-Match: <etag>'` gets a 304.
pub fn app(demo: Demo, cache: Cache, caching: Caching) -> (Router, Invalidator) {
    let router = Router::new().route("/", get(home));
    let (router, invalidator) = if caching.site_wide {
        let site = SiteCache::new()
            .cache(cache)
            .timeout(caching.ttl)
            .cache_status(true)
            .etag(true)
            .stale_while_revalidate(caching.stale_while_revalidate)
            .stale_if_error(caching.stale_if_error);
        let (update, fetch) = site.layers();
        let router = router.layer(ServiceBuilder::new().layer(update).layer(fetch));
        (router, site.invalidator())
    } else {
        let layer = cache_page(caching.ttl)
            .cache(cache)
            .cache_status(true)
            .etag(true)
            .stale_while_revalidate(caching.stale_while_revalidate)
            .stale_if_error(caching.stale_if_error);
        let invalidator = layer.invalidator();
        (router.route_layer(layer), invalidator)
    };
    (router.with_state(Arc::new(demo)), invalidator)
}

/// The admin listener's app (`--admin`): the purge service, behind a bearer
/// token when `token` is set (`ADMIN_TOKEN`). Serve it on an internal
/// address only: `PURGE /` with the site's `Host`, or `POST`
/// `{"tags": ["page:home"]}`.
// The validator's `Result<(), Response>` is tower-http's signature.
#[allow(clippy::result_large_err)]
pub fn admin_app(invalidator: &Invalidator, token: Option<String>) -> Router {
    let admin = Router::new().fallback_service(invalidator.purge_service());
    let Some(token) = token else {
        return admin;
    };
    let expected = format!("Bearer {token}");
    admin.layer(ValidateRequestHeaderLayer::custom(
        move |request: &mut Request| -> Result<(), Response> {
            match request.headers().get(AUTHORIZATION) {
                Some(sent) if sent.as_bytes() == expected.as_bytes() => Ok(()),
                _ => Err(StatusCode::UNAUTHORIZED.into_response()),
            }
        },
    ))
}

/// `GET /metrics`: the cache's counters in Prometheus text, from the
/// recorder `main` installs (never cached: it is routed outside the cache
/// layers, and says `no-store` besides).
pub fn with_metrics(app: Router, metrics: PrometheusHandle) -> Router {
    app.route(
        "/metrics",
        get(move || {
            let text = metrics.render();
            async move { ([(CACHE_CONTROL, "no-store")], text) }
        }),
    )
}

// ---- 4. The timing log ----------------------------------------------------

/// The target of the timing lines (the tutorial's `getLogger('debug')`).
pub const TIMING: &str = "timing";

/// The tutorial's `metric_middleware`: logs how long the app took to answer,
/// `Total time: 2.00s` (Python's `{:.2f}`: seconds, rounded to hundredths).
pub async fn timing(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let response = next.run(request).await;
    let total_time = started.elapsed().as_secs_f64();
    tracing::info!(target: TIMING, "Total time: {total_time:.2}s");
    response
}

/// The timing lines, printed as the tutorial prints them: the message alone.
pub fn timing_lines<S, W>(writer: W) -> impl Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    fmt::layer()
        .without_time()
        .with_level(false)
        .with_target(false)
        .with_ansi(false)
        .with_writer(writer)
        .with_filter(Targets::new().with_target(TIMING, LevelFilter::INFO))
}

/// Logs to stdout off the request path ([`log::stdout`]): the timing lines,
/// and the other events at INFO (tower-cache's DEBUG events too with
/// `--verbose`: a hit, miss or bypass per request, and what was stored).
/// All of them go through one queue, so they print in the order they were
/// logged. Keep the returned guard: dropping it writes what is still queued.
fn init_logging(verbose: bool) -> tracing_appender::non_blocking::WorkerGuard {
    let (stdout, guard) = log::stdout();
    let cache_level = if verbose {
        LevelFilter::DEBUG
    } else {
        LevelFilter::INFO
    };
    let other_events = Targets::new()
        .with_default(LevelFilter::INFO)
        .with_target("tower_cache", cache_level)
        .with_target(TIMING, LevelFilter::OFF);
    tracing_subscriber::registry()
        .with(timing_lines(stdout.clone()))
        .with(
            fmt::layer()
                .with_target(false)
                .with_ansi(std::io::stdout().is_terminal())
                .with_writer(stdout)
                .with_filter(other_events),
        )
        .init();
    guard
}

// ---- 5. main --------------------------------------------------------------

#[tokio::main]
async fn main() {
    if let Err(message) = run().await {
        eprintln!("{message}");
        std::process::exit(2);
    }
}

async fn run() -> Result<(), String> {
    let options = parse_args(std::env::args().skip(1))?;
    let _log = init_logging(options.verbose);
    if let Some(addr) = options.serve_upstream {
        let listener = bind(addr).await?;
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

    let upstream = match options.upstream {
        Some(url) => url,
        None => {
            let listener = bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
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
    let caching = Caching {
        ttl,
        site_wide: options.site_wide,
        stale_while_revalidate: options.stale_while_revalidate,
        stale_if_error: options.stale_if_error,
    };
    let metrics = PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| format!("metrics: {e}"))?;
    let (app, invalidator) = app(demo, caches.default().clone(), caching);
    let mut app = with_metrics(app, metrics);
    if !options.quiet {
        app = app.layer(middleware::from_fn(timing));
    }
    if let Some(addr) = options.admin {
        let listener = bind(addr).await?;
        let token = std::env::var("ADMIN_TOKEN").ok().filter(|t| !t.is_empty());
        let how = if token.is_some() {
            "Authorization: Bearer $ADMIN_TOKEN"
        } else {
            "no authentication: keep it on loopback"
        };
        println!("Purge service on http://{addr} (PURGE /path, POST {{\"tags\": [..]}}; {how})");
        let admin = admin_app(&invalidator, token);
        tokio::spawn(async move { axum::serve(listener, admin).await });
    }

    let listener = bind(options.listen)
        .await
        .map_err(|e| format!("{e} (use --listen to pick another address)"))?;
    let how = if options.site_wide {
        "site-wide layers"
    } else {
        "cache_page"
    };
    // The scheme only: a URL may hold a password.
    let backend = std::env::var("CACHE_URL").map_or("memory".to_owned(), |url| {
        url.split(':').next().unwrap_or_default().to_owned()
    });
    println!(
        "Serving http://{} ({how}, TTL {} s, {backend} cache); the view calls {upstream}/delay/{}",
        options.listen,
        ttl.as_secs(),
        options.delay,
    );
    axum::serve(listener, app).await.map_err(|e| e.to_string())
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, String> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))
}

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
    /// Seconds a stale page is served while it is refreshed.
    pub stale_while_revalidate: Duration,
    /// Seconds a stale page is served when the upstream fails.
    pub stale_if_error: Duration,
    /// Where the purge service listens, if anywhere.
    pub admin: Option<SocketAddr>,
}

const USAGE: &str = "usage: httpbin [--listen ADDR] [--upstream URL] [--delay SECS] [--site-wide] \
                     [--stale-while-revalidate SECS] [--stale-if-error SECS] [--admin ADDR] [--verbose] [--quiet] \
                     | --serve-upstream ADDR";

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
        stale_while_revalidate: Duration::ZERO,
        stale_if_error: Duration::ZERO,
        admin: None,
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
            "--stale-while-revalidate" | "--stale-if-error" => {
                let v = value(&arg)?;
                let secs: u64 = v
                    .parse()
                    .map_err(|_| format!("{arg} {v:?}: expected whole seconds"))?;
                let window = Duration::from_secs(secs);
                if arg == "--stale-if-error" {
                    options.stale_if_error = window;
                } else {
                    options.stale_while_revalidate = window;
                }
            }
            "--admin" => {
                let v = value("--admin")?;
                options.admin = Some(v.parse().map_err(|e| format!("--admin {v:?}: {e}"))?);
            }
            "--serve-upstream" => {
                let v = value("--serve-upstream")?;
                let addr = v
                    .parse()
                    .map_err(|e| format!("--serve-upstream {v:?}: {e}"))?;
                options.serve_upstream = Some(addr);
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
