//! The layers in ordinary Axum apps: tower-http's real `CompressionLayer`
//! in both positions, and HTTPS behind a TLS-terminating proxy.

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::{HeaderMap, Method, Request, StatusCode, Uri, header};
use http_body_util::BodyExt;
use tower::{ServiceBuilder, ServiceExt};
use tower_cache::Cache;
use tower_cache::backends::MemoryBackend;
use tower_cache::http::key::{RequestScheme, VaryHeaders, page_key, url_hash};
use tower_cache::middleware::{SiteCache, cache_page};
use tower_http::compression::CompressionLayer;

/// A page long enough for tower-http to compress.
fn body_text() -> String {
    "All the news that fits, and then some.\n".repeat(40)
}

fn fresh_cache() -> Cache {
    Cache::new(Arc::new(MemoryBackend::new()))
}

/// `/` counting its calls, behind the site-wide pair with `compression`
/// between the layers.
fn compressed_site(
    calls: &Arc<AtomicUsize>,
    site: SiteCache,
    compression: CompressionLayer,
) -> Router {
    let (update, fetch) = site.cache(fresh_cache()).layers();
    counted(calls).layer(
        ServiceBuilder::new()
            .layer(update)
            .layer(compression)
            .layer(fetch),
    )
}

/// A router whose `/` counts its calls.
fn counted(calls: &Arc<AtomicUsize>) -> Router {
    let calls = calls.clone();
    Router::new().route(
        "/",
        get(move || async move {
            calls.fetch_add(1, Ordering::SeqCst);
            body_text()
        }),
    )
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

async fn send(app: &Router, request: Request<Body>) -> Reply {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        headers,
        body: body.to_vec(),
    }
}

fn get_with(accept_encoding: Option<&str>) -> Request<Body> {
    let mut request = Request::get("/").header(header::HOST, "example.com");
    if let Some(value) = accept_encoding {
        request = request.header(header::ACCEPT_ENCODING, value);
    }
    request.body(Body::empty()).unwrap()
}

/// The body as the client reads it, decoded from its `Content-Encoding`.
fn decoded(reply: &Reply) -> String {
    let coding = reply
        .headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap().to_owned());
    let mut text = String::new();
    match coding.as_deref() {
        None => text = String::from_utf8(reply.body.clone()).unwrap(),
        Some("gzip") => {
            flate2::read::GzDecoder::new(&reply.body[..])
                .read_to_string(&mut text)
                .unwrap();
        }
        Some("deflate") => {
            flate2::read::ZlibDecoder::new(&reply.body[..])
                .read_to_string(&mut text)
                .unwrap();
        }
        Some(other) => panic!("a coding this test cannot decode: {other}"),
    }
    text
}

/// The recommended position: compression between the site-wide layers. A
/// page is stored once per coding, compressed, and hits are served as
/// stored, whatever spelling of Accept-Encoding the client sends.
#[tokio::test]
async fn compression_between_the_site_wide_layers_stores_once_per_coding() {
    let calls = Arc::new(AtomicUsize::new(0));
    let app = compressed_site(&calls, SiteCache::new(), CompressionLayer::new().no_br());
    // Three spellings whose preferred coding is gzip, then two of deflate,
    // then none: three entries, three origin calls.
    let cases = [
        (Some("gzip"), "gzip", 1),
        (Some("deflate, gzip"), "gzip", 1),
        (Some("x-gzip;q=1.0, identity; q=0.5, *;q=0"), "gzip", 1),
        (Some("gzip ;q=0.9, deflate"), "deflate", 2),
        (Some("deflate"), "deflate", 2),
        (None, "identity", 3),
        (None, "identity", 3),
    ];
    for (accept_encoding, coding, calls_after) in cases {
        let reply = send(&app, get_with(accept_encoding)).await;
        assert_eq!(reply.status, StatusCode::OK);
        let sent = reply
            .headers
            .get(header::CONTENT_ENCODING)
            .map_or("identity", |v| v.to_str().unwrap());
        assert_eq!(sent, coding, "{accept_encoding:?}");
        assert_eq!(decoded(&reply), body_text(), "{accept_encoding:?}");
        assert_eq!(
            calls.load(Ordering::SeqCst),
            calls_after,
            "{accept_encoding:?}"
        );
    }
    // A hit carries the compressed bytes as stored, with their length.
    let hit = send(&app, get_with(Some("gzip"))).await;
    assert!(hit.headers.contains_key(header::AGE), "a hit");
    assert!(hit.body.len() < body_text().len() / 4, "compressed");
}

/// Two clients in one bucket (both prefer zstd, which this origin does not
/// make) may be answered in different codings: each gets only what it
/// accepts.
#[tokio::test]
async fn a_stored_coding_the_client_does_not_accept_is_a_miss() {
    let calls = Arc::new(AtomicUsize::new(0));
    let app = compressed_site(
        &calls,
        SiteCache::new(),
        CompressionLayer::new().no_br().no_zstd(),
    );
    let first = send(&app, get_with(Some("gzip, zstd"))).await;
    assert_eq!(first.headers[header::CONTENT_ENCODING], "gzip");
    let second = send(&app, get_with(Some("deflate, zstd"))).await;
    assert_eq!(second.headers[header::CONTENT_ENCODING], "deflate");
    assert_eq!(decoded(&second), body_text());
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    // The bucket now holds deflate, which a gzip-and-deflate client takes.
    let third = send(&app, get_with(Some("zstd, deflate, gzip;q=0.5"))).await;
    assert_eq!(third.headers[header::CONTENT_ENCODING], "deflate");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

/// Compression outside `cache_page` works too: the page is stored plain,
/// once, and each hit is compressed again on the way out.
#[tokio::test]
async fn compression_outside_cache_page_compresses_every_hit() {
    let calls = Arc::new(AtomicUsize::new(0));
    let app = counted(&calls)
        .route_layer(cache_page(Duration::from_secs(300)).cache(fresh_cache()))
        .layer(CompressionLayer::new());
    for accept_encoding in ["gzip", "deflate", "gzip", "identity"] {
        let reply = send(&app, get_with(Some(accept_encoding))).await;
        assert_eq!(decoded(&reply), body_text());
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

/// A body of unknown length over the limit reaches the client whole, and is
/// not stored.
#[tokio::test]
async fn an_unknown_length_body_over_the_limit_passes_through_whole() {
    let calls = Arc::new(AtomicUsize::new(0));
    let app = compressed_site(
        &calls,
        SiteCache::new().max_body_size(64),
        CompressionLayer::new(),
    );
    for _ in 0..2 {
        let reply = send(&app, get_with(Some("gzip"))).await;
        assert_eq!(decoded(&reply), body_text());
    }
    assert_eq!(calls.load(Ordering::SeqCst), 2, "never stored");
}

/// The key of `https://www.example.com/cache/test/` (Django's
/// `build_absolute_uri` behind `SECURE_PROXY_SSL_HEADER`).
fn https_page_key() -> String {
    let mut headers = HeaderMap::new();
    headers.insert(header::HOST, "www.example.com".parse().unwrap());
    let url = url_hash("https", &Uri::from_static("/cache/test/"), &headers).unwrap();
    assert_eq!(url.as_str(), "eda86a7610108f51d7c877af693d4a81");
    let vary = VaryHeaders::default().hash(&HeaderMap::new());
    page_key("", &Method::GET, &url, &vary, "")
}

fn behind_proxy(proto: Option<&str>) -> Request<Body> {
    let mut request = Request::get("/cache/test/").header(header::HOST, "www.example.com");
    if let Some(proto) = proto {
        request = request.header("x-forwarded-proto", proto);
    }
    request.body(Body::empty()).unwrap()
}

#[tokio::test]
async fn https_behind_a_proxy_is_keyed_as_https_with_the_trusted_header() {
    let cache = fresh_cache();
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let proxy = RequestScheme::trusted_header("X-Forwarded-Proto", "https").unwrap();
    let app = Router::new()
        .route(
            "/cache/test/",
            get(move || async move {
                counter.fetch_add(1, Ordering::SeqCst);
                "page"
            }),
        )
        .route_layer(
            cache_page(Duration::from_secs(300))
                .cache(cache.clone())
                .scheme(proxy),
        );
    send(&app, behind_proxy(Some("https"))).await;
    let key = https_page_key();
    assert!(
        cache.get_bytes(&key).await.unwrap().is_some(),
        "stored under Django's https key {key}"
    );
    // The first value of a list counts, as in Django.
    send(&app, behind_proxy(Some("https, http"))).await;
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // Plain HTTP, or another value: another entry.
    send(&app, behind_proxy(Some("http"))).await;
    send(&app, behind_proxy(None)).await;
    assert_eq!(calls.load(Ordering::SeqCst), 2, "one http entry, one https");
    // Without the setting, the header means nothing (it could be forged).
    let untrusting = fresh_cache();
    let plain = Router::new()
        .route("/cache/test/", get(|| async { "page" }))
        .route_layer(cache_page(Duration::from_secs(300)).cache(untrusting.clone()));
    send(&plain, behind_proxy(Some("https"))).await;
    assert!(untrusting.get_bytes(&key).await.unwrap().is_none());
}

#[tokio::test]
async fn a_server_that_terminates_tls_says_https() {
    let cache = fresh_cache();
    let (update, fetch) = SiteCache::new()
        .cache(cache.clone())
        .scheme(RequestScheme::Https)
        .layers();
    let app = Router::new()
        .route("/cache/test/", get(|| async { "page" }))
        .layer(ServiceBuilder::new().layer(update).layer(fetch));
    let reply = send(&app, behind_proxy(None)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(cache.get_bytes(&https_page_key()).await.unwrap().is_some());
}

#[test]
fn a_bad_trusted_header_name_is_a_clear_error() {
    let error = RequestScheme::trusted_header("X Forwarded Proto", "https").unwrap_err();
    assert!(error.to_string().contains("X Forwarded Proto"), "{error}");
}
