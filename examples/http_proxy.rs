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
//! The layers follow RFC 9111 here ([`Semantics::Rfc9111`]): freshness,
//! `Age` and validation come from the origin's headers, unsafe methods
//! purge what they change, and `CDN-Cache-Control` and `Surrogate-Control`
//! (addressed to this proxy as the device `tower-cache`, which it announces
//! in `Surrogate-Capability`) govern over `Cache-Control`, as in a CDN.
//!
//! Options: `--origin URL` (required), `--listen ADDR` (default
//! `127.0.0.1:8080`), `--semantics rfc9111|django` (default `rfc9111`),
//! `--default-lifetime SECS` (for responses without freshness information:
//! none by default under RFC 9111, 300 under Django's rules),
//! `--targeted-fields A,B` (default `CDN-Cache-Control,Surrogate-Control`,
//! empty for none), `--set-cookie store|never` (default `store`: RFC 9111
//! stores responses that set cookies; `never` is the layers' safer
//! default); `CACHE_URL` picks the backend (memory by default).

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
use tower_cache::http::policy::{Semantics, SetCookiePolicy};
use tower_cache::http::rfc9111::Rfc9111;
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

/// The device name this proxy answers to in targeted directives
/// (`Surrogate-Control: max-age=60;tower-cache`).
const DEVICE: &str = "tower-cache";

/// Removes the hop-by-hop headers, and those `Connection` names (RFC 9110
/// section 7.6.1).
fn remove_hop_by_hop(headers: &mut header::HeaderMap) {
    let listed: Vec<header::HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| header::HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in listed.iter().chain(&HOP_BY_HOP) {
        headers.remove(name);
    }
}

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
    remove_hop_by_hop(request.headers_mut());
    request.headers_mut().append(
        "surrogate-capability",
        header::HeaderValue::from_static("tower-cache=\"Surrogate/1.0\""),
    );
    match origin.client.request(request).await {
        Ok(response) => {
            let (mut parts, body) = response.into_parts();
            remove_hop_by_hop(&mut parts.headers);
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
    rfc9111: bool,
    default_lifetime: Option<Duration>,
    targeted_fields: Vec<header::HeaderName>,
    set_cookie: SetCookiePolicy,
}

const USAGE: &str = "usage: http_proxy --origin URL [--listen ADDR] [--semantics rfc9111|django] \
[--default-lifetime SECS] [--targeted-fields A,B] [--set-cookie store|never]";

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut origin = None;
    let mut listen = SocketAddr::from(([127, 0, 0, 1], 8080));
    let mut rfc9111 = true;
    let mut default_lifetime = None;
    let mut targeted_fields = vec![
        header::HeaderName::from_static("cdn-cache-control"),
        header::HeaderName::from_static("surrogate-control"),
    ];
    let mut set_cookie = SetCookiePolicy::Store;
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value\n{USAGE}"));
        match arg.as_str() {
            "--origin" => origin = Some(value()?.trim_end_matches('/').to_owned()),
            "--listen" => {
                let v = value()?;
                listen = v.parse().map_err(|e| format!("--listen {v:?}: {e}"))?;
            }
            "--semantics" => {
                rfc9111 = match value()?.as_str() {
                    "rfc9111" => true,
                    "django" => false,
                    other => return Err(format!("--semantics {other:?}: rfc9111 or django")),
                }
            }
            "--default-lifetime" => {
                let v = value()?;
                let secs = v
                    .parse()
                    .map_err(|_| format!("--default-lifetime {v:?}: whole seconds"))?;
                default_lifetime = Some(Duration::from_secs(secs));
            }
            "--targeted-fields" => {
                targeted_fields = value()?
                    .split(',')
                    .filter(|name| !name.trim().is_empty())
                    .map(|name| {
                        header::HeaderName::from_bytes(name.trim().as_bytes())
                            .map_err(|_| format!("--targeted-fields: {name:?} is no header name"))
                    })
                    .collect::<Result<_, _>>()?;
            }
            "--set-cookie" => {
                set_cookie = match value()?.as_str() {
                    "store" => SetCookiePolicy::Store,
                    "never" => SetCookiePolicy::NeverStore,
                    other => return Err(format!("--set-cookie {other:?}: store or never")),
                }
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
        rfc9111,
        default_lifetime,
        targeted_fields,
        set_cookie,
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
    let mut site = SiteCache::new()
        .cache(caches.default().clone())
        .set_cookie(options.set_cookie);
    if options.rfc9111 {
        let mut rules = Rfc9111::new().target(DEVICE);
        rules.targeted_fields = options.targeted_fields;
        if let Some(lifetime) = options.default_lifetime {
            rules = rules.default_lifetime(lifetime);
        }
        site = site.semantics(Semantics::Rfc9111(rules));
    } else {
        site = site.timeout(options.default_lifetime.unwrap_or(Duration::from_secs(300)));
    }
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
