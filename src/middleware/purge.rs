//! [`PurgeService`]: purging over HTTP, as Varnish and nginx's
//! `cache_purge` take it, for an internal admin port.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri, header};
use http_body::Body;
use http_body_util::{BodyExt, Full, Limited};
use serde::{Deserialize, Serialize};

use super::invalidate::Invalidator;
use crate::http::key::request_host;

/// The largest `POST` body the service reads.
const MAX_BODY: usize = 64 * 1024;

/// A Tower service that purges a layer's pages (off unless you mount it):
///
/// * `PURGE /path?query` with the site's `Host`: every entry of that URL
///   ([`Invalidator::invalidate_url`], both schemes);
/// * `PURGE http://host/path?query` (absolute form): the same, the target's
///   authority naming the host;
/// * `POST` with a JSON body `{"tags": ["product:42"], "urls": ["https://shop.example/"]}`
///   (either list may be left out): those tags and URLs.
///
/// It answers `200` with a JSON summary (`{"tags":[..],"urls":[..]}`, a
/// `PURGE`'s URL as `//host/path`, without a scheme: both were purged),
/// `400` for a request it cannot read, `405` for other methods and `503`
/// when the backend failed (the purge may not have happened: retry).
///
/// It has no authentication of its own: mount it where only your
/// operators reach it (a second listener on an internal address), behind
/// your own check, for example a bearer token with tower-http's
/// `ValidateRequestHeaderLayer`:
///
/// ```
/// use std::time::Duration;
/// use axum::{Router, body::Body, response::{IntoResponse, Response}};
/// use http::{Request, StatusCode, header::AUTHORIZATION};
/// use tower_http::validate_request::ValidateRequestHeaderLayer;
/// use tower_cache::middleware::cache_page;
///
/// # async fn admin(cache: tower_cache::Cache) {
/// let layer = cache_page(Duration::from_secs(600)).cache(cache);
/// let expected = "Bearer a-long-random-token"; // from your secrets
/// let admin: Router = Router::new()
///     .fallback_service(layer.invalidator().purge_service())
///     .layer(ValidateRequestHeaderLayer::custom(
///         move |request: &mut Request<Body>| -> Result<(), Response> {
///             match request.headers().get(AUTHORIZATION) {
///                 Some(sent) if sent == expected => Ok(()),
///                 _ => Err(StatusCode::UNAUTHORIZED.into_response()),
///             }
///         },
///     ));
/// // axum::serve(internal_listener, admin) ... while the site uses `layer`.
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct PurgeService {
    invalidator: Invalidator,
}

/// What a `POST` asks to purge.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Purge {
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    urls: Vec<String>,
}

impl Invalidator {
    /// The [`PurgeService`] over this invalidator.
    pub fn purge_service(&self) -> PurgeService {
        PurgeService {
            invalidator: self.clone(),
        }
    }
}

impl<B> tower_service::Service<Request<B>> for PurgeService
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<crate::BoxError>,
{
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let invalidator = self.invalidator.clone();
        Box::pin(async move { Ok(purge(&invalidator, request).await) })
    }
}

async fn purge<B>(invalidator: &Invalidator, request: Request<B>) -> Response<Full<Bytes>>
where
    B: Body,
    B::Error: Into<crate::BoxError>,
{
    let (parts, body) = request.into_parts();
    let asked = if parts.method.as_str() == "PURGE" {
        purge_target(invalidator, &parts.uri, &parts.headers).await
    } else if parts.method == Method::POST {
        match Limited::new(body, MAX_BODY).collect().await {
            Ok(body) => match serde_json::from_slice::<Purge>(&body.to_bytes()) {
                Ok(asked) => purge_listed(invalidator, asked).await,
                Err(error) => Err(reply(StatusCode::BAD_REQUEST, &error.to_string())),
            },
            Err(_) => Err(reply(
                StatusCode::BAD_REQUEST,
                "body unreadable or over 64 KiB",
            )),
        }
    } else {
        let mut response = reply(StatusCode::METHOD_NOT_ALLOWED, "use PURGE or POST");
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("PURGE, POST"));
        Err(response)
    };
    match asked {
        Ok(done) => json(StatusCode::OK, &done),
        Err(response) => response,
    }
}

/// `PURGE /path` (with `Host`) or `PURGE http://host/path`.
async fn purge_target(
    invalidator: &Invalidator,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<Purge, Response<Full<Bytes>>> {
    // In absolute form the target names the host, whatever `Host` says
    // (RFC 9112 section 3.2.2).
    let none = HeaderMap::new();
    let headers = if uri.authority().is_some() {
        &none
    } else {
        headers
    };
    match invalidator.purge(uri, headers).await {
        Ok(Some(())) => {
            // The URL purged, without a scheme: both were.
            let host = request_host(uri, headers).unwrap_or_default();
            let path = uri.path_and_query().map_or("/", |p| p.as_str());
            Ok(Purge {
                tags: Vec::new(),
                urls: vec![format!("//{host}{path}")],
            })
        }
        Ok(None) => Err(reply(StatusCode::BAD_REQUEST, "no valid Host to purge for")),
        Err(error) => Err(failed(&error)),
    }
}

/// A `POST`'s tags and URLs.
async fn purge_listed(
    invalidator: &Invalidator,
    asked: Purge,
) -> Result<Purge, Response<Full<Bytes>>> {
    let mut uris = Vec::with_capacity(asked.urls.len());
    for url in &asked.urls {
        match url.parse::<Uri>() {
            Ok(uri) if matches!(uri.scheme_str(), Some("http" | "https")) => uris.push(uri),
            _ => {
                return Err(reply(
                    StatusCode::BAD_REQUEST,
                    &format!("not an absolute http(s) URL: {url}"),
                ));
            }
        }
    }
    if !asked.tags.is_empty() {
        invalidator
            .invalidate_tags(&asked.tags)
            .await
            .map_err(|error| failed(&error))?;
    }
    for uri in &uris {
        match invalidator.purge(uri, &HeaderMap::new()).await {
            Ok(Some(())) => {}
            Ok(None) => {
                return Err(reply(
                    StatusCode::BAD_REQUEST,
                    &format!("no valid host: {uri}"),
                ));
            }
            Err(error) => return Err(failed(&error)),
        }
    }
    Ok(asked)
}

fn failed(error: &crate::CacheError) -> Response<Full<Bytes>> {
    tracing::warn!(target: super::TARGET, error = error as &dyn std::error::Error, "purge failed");
    reply(
        StatusCode::SERVICE_UNAVAILABLE,
        "the cache backend failed; retry",
    )
}

fn reply(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    json(status, &serde_json::json!({ "error": message }))
}

fn json(status: StatusCode, value: &impl Serialize) -> Response<Full<Bytes>> {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
