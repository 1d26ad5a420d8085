//! What every peer shares, so that only the cache layer differs between them:
//! the command line, the page view and serving.
//!
//! The view is the one of the project's demo: `GET /` calls the upstream's
//! `/delay/N` (the bundled `httpbin --serve-upstream`, which counts its
//! calls), then answers the page's bytes, read from a file at start (the
//! bytes the demo caches, as `examples/bare_page.rs` serves them), as
//! `text/html; charset=utf-8`. A miss costs the upstream delay and one
//! counted call; a hit costs what the cache layer costs.
//!
//! Command line of every peer:
//! `--body FILE [--listen ADDR] [--upstream URL] [--delay SECS]`
//! (defaults: 127.0.0.1:8003, http://127.0.0.1:8080, 2).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

const USAGE: &str = "usage: PEER --body FILE [--listen ADDR] [--upstream URL] [--delay SECS]";

/// The command line.
pub struct Options {
    /// Where the page is served.
    pub listen: SocketAddr,
    /// The page.
    pub page: Page,
}

impl Options {
    /// Reads the command line; prints the usage and exits on an error.
    pub fn from_args() -> Self {
        match Self::parse(std::env::args().skip(1)) {
            Ok(options) => options,
            Err(message) => {
                eprintln!("{message}\n{USAGE}");
                std::process::exit(2);
            }
        }
    }

    fn parse(args: impl IntoIterator<Item = String>) -> Result<Self, String> {
        let mut listen = "127.0.0.1:8003".to_owned();
        let mut body = None;
        let mut upstream = "http://127.0.0.1:8080".to_owned();
        let mut delay = "2".to_owned();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let value = args.next().ok_or(format!("{arg}: a value is missing"))?;
            match arg.as_str() {
                "--listen" => listen = value,
                "--body" => body = Some(value),
                "--upstream" => upstream = value,
                "--delay" => delay = value,
                _ => return Err(format!("unknown option {arg}")),
            }
        }
        let body = body.ok_or("--body FILE is required")?;
        let bytes = std::fs::read(&body).map_err(|e| format!("{body}: {e}"))?;
        Ok(Self {
            listen: listen
                .parse()
                .map_err(|e| format!("--listen {listen}: {e}"))?,
            page: Page {
                client: Client::builder(TokioExecutor::new()).build_http(),
                url: format!("{}/delay/{delay}", upstream.trim_end_matches('/')).into(),
                body: Bytes::from(bytes),
            },
        })
    }
}

/// The page view: one upstream call, then the page's bytes.
#[derive(Clone)]
pub struct Page {
    client: Client<HttpConnector, Empty<Bytes>>,
    url: Arc<str>,
    body: Bytes,
}

impl Page {
    /// Calls the upstream and answers the page (a 502 if the upstream
    /// fails).
    pub async fn respond(&self) -> Response<Full<Bytes>> {
        match self.call_upstream().await {
            Ok(()) => {
                let mut response = Response::new(Full::new(self.body.clone()));
                response.headers_mut().insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                );
                response
            }
            Err(message) => {
                let mut response = Response::new(Full::new(Bytes::from(message)));
                *response.status_mut() = StatusCode::BAD_GATEWAY;
                response
            }
        }
    }

    async fn call_upstream(&self) -> Result<(), String> {
        let uri = self.url.parse::<http::Uri>().map_err(|e| e.to_string())?;
        let response = self.client.get(uri).await.map_err(|e| e.to_string())?;
        let status = response.status();
        response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?;
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("upstream answered {status}"))
        }
    }

    /// An Axum router with the view on `GET /`, before any cache layer.
    pub fn router(self) -> Router {
        Router::new().route(
            "/",
            get(move || {
                let page = self.clone();
                async move { page.respond().await }
            }),
        )
    }
}

/// Serves the app on the address; exits on an error.
pub async fn serve(name: &str, listen: SocketAddr, app: Router) {
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("{name}: cannot listen on {listen}: {e}");
            std::process::exit(2);
        }
    };
    println!("{name} serving http://{listen}");
    if let Err(e) = axum::serve(listener, app).await {
        eprintln!("{name}: {e}");
        std::process::exit(1);
    }
}
