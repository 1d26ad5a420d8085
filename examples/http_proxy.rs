//! A caching reverse proxy: the site-wide layers in front of any HTTP
//! origin, forwarding what they do not answer with a hyper-util client.
//! Useful on its own (a cache in front of a slow service), and the harness
//! that `scripts/cache-tests` runs the public HTTP caching test suite
//! through.
//!
//! ```text
//! cargo run --example http_proxy -- --origin http://127.0.0.1:8000 --listen 127.0.0.1:8080
//! ```
//!
//! Options: `--origin URL` (required), `--listen ADDR` (default
//! `127.0.0.1:8080`), `--timeout SECS` (the layers' default lifetime for
//! responses without `max-age`, default 300); `CACHE_URL` picks the backend
//! (memory by default).

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tower::ServiceBuilder;
use tower_cache::Caches;
use tower_cache::middleware::SiteCache;

/// The client requests are forwarded with.
type Forwarder = Client<HttpConnector, Body>;

/// Where requests go.
#[derive(Clone)]
struct Origin {
    client: Forwarder,
    /// `http://host:port`, without a trailing slash.
    base: String,
}

/// Headers that describe one connection, not the message (RFC 9110
/// section 7.6.1): never forwarded.
const HOP_BY_HOP: [header::HeaderName; 6] = [
    header::CONNECTION,
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::UPGRADE,
];

/// Forwards a request to the origin and streams its response back; an
/// origin that cannot be reached is a 502.
async fn forward(State(origin): State<Origin>, mut request: Request) -> Response {
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let uri: Uri = match format!("{}{path}", origin.base).parse() {
        Ok(uri) => uri,
        Err(_) => return (StatusCode::BAD_REQUEST, "bad request target").into_response(),
    };
    *request.uri_mut() = uri;
    for name in &HOP_BY_HOP {
        request.headers_mut().remove(name);
    }
    match origin.client.request(request).await {
        Ok(response) => {
            let (mut parts, body) = response.into_parts();
            for name in &HOP_BY_HOP {
                parts.headers.remove(name);
            }
            Response::from_parts(parts, Body::new(body))
        }
        Err(error) => (StatusCode::BAD_GATEWAY, format!("origin: {error}\n")).into_response(),
    }
}

/// The proxy: every request through the site-wide layers to `origin`.
fn proxy(origin: String, site: SiteCache) -> Router {
    let client = Client::builder(TokioExecutor::new()).build_http();
    let (update, fetch) = site.layers();
    Router::new()
        .fallback(forward)
        .with_state(Origin {
            client,
            base: origin,
        })
        .layer(ServiceBuilder::new().layer(update).layer(fetch))
}

struct Options {
    origin: String,
    listen: SocketAddr,
    timeout: Duration,
}

const USAGE: &str = "usage: http_proxy --origin URL [--listen ADDR] [--timeout SECS]";

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut origin = None;
    let mut listen = SocketAddr::from(([127, 0, 0, 1], 8080));
    let mut timeout = Duration::from_secs(300);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value\n{USAGE}"));
        match arg.as_str() {
            "--origin" => origin = Some(value()?.trim_end_matches('/').to_owned()),
            "--listen" => {
                let v = value()?;
                listen = v.parse().map_err(|e| format!("--listen {v:?}: {e}"))?;
            }
            "--timeout" => {
                let v = value()?;
                let secs = v
                    .parse()
                    .map_err(|_| format!("--timeout {v:?}: whole seconds"))?;
                timeout = Duration::from_secs(secs);
            }
            _ => return Err(format!("unknown argument {arg:?}\n{USAGE}")),
        }
    }
    let origin = origin.ok_or(USAGE)?;
    if !origin.starts_with("http://") {
        return Err(format!("--origin {origin:?}: an http:// URL\n{USAGE}"));
    }
    Ok(Options {
        origin,
        listen,
        timeout,
    })
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
    let caches = Caches::from_env()
        .await
        .map_err(|e| format!("CACHE_URL: {e}"))?;
    let site = SiteCache::new()
        .cache(caches.default().clone())
        .timeout(options.timeout);
    let app = proxy(options.origin.clone(), site);
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", options.listen))?;
    println!(
        "Caching proxy on http://{} for {}",
        options.listen, options.origin
    );
    axum::serve(listener, app).await.map_err(|e| e.to_string())
}
