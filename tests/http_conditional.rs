//! Conditional requests answered from the cache: `If-None-Match` and
//! `If-Modified-Since` against a stored `ETag` or `Last-Modified` give a
//! `304 Not Modified` without a body (RFC 9110 section 13.2.2), through
//! `cache_page` and the site-wide pair, for hits, stale pages and coalesced
//! requests; `.etag(true)` gives stored pages a weak ETag.

mod http_support;

use std::time::Duration;

use axum::Router;
use axum::http::{StatusCode, header};
use http_support::{Origin, Reply, Window, get, head, send, stale, ttl300};
use tower_cache::middleware::{Answer, Clock, SiteCache, StaleBecause};

const JUNE: &str = "Sat, 01 Jun 2024 10:00:00 GMT";
const MAY: &str = "Sun, 05 May 2024 10:00:00 GMT";
const JULY: &str = "Mon, 01 Jul 2024 10:00:00 GMT";

/// An origin with both validators (axum gives it a `Content-Type`).
fn validated() -> Origin {
    Origin::new()
        .with("etag", "\"v1\"")
        .with("last-modified", JUNE)
        .with("x-page-note", "kept on 200s")
}

/// A 304 standing for the stored page: no body, none of the body's headers.
fn assert_not_modified(reply: &Reply) {
    assert_eq!(reply.status, StatusCode::NOT_MODIFIED);
    assert!(reply.body.is_empty());
    for gone in [header::CONTENT_LENGTH, header::CONTENT_TYPE] {
        assert!(!reply.headers.contains_key(&gone), "{gone} on a 304");
    }
    assert!(!reply.headers.contains_key("x-page-note"));
    for kept in [
        header::ETAG,
        header::CACHE_CONTROL,
        header::EXPIRES,
        header::AGE,
    ] {
        assert!(reply.headers.contains_key(&kept), "{kept} missing on a 304");
    }
    assert_eq!(reply.headers[header::LAST_MODIFIED], JUNE);
}

/// The precedence rules, on one app: after a miss, every request is a hit.
async fn precedence(app: &Router, origin: &Origin) {
    let miss = send(app, get(&[("if-none-match", "\"v1\"")])).await;
    assert_eq!(miss.status, StatusCode::OK, "a miss is the origin's answer");
    let not_modified = [
        vec![("if-none-match", "\"v1\"")],
        vec![("if-none-match", "W/\"v1\"")],
        vec![("if-none-match", "\"v0\", \"v1\"")],
        vec![("if-none-match", "*")],
        vec![("if-modified-since", JUNE)],
        vec![("if-modified-since", JULY)],
        // If-None-Match wins: the dates alone would give a 200.
        vec![("if-none-match", "\"v1\""), ("if-modified-since", MAY)],
    ];
    for headers in &not_modified {
        let reply = send(app, get(headers)).await;
        assert_not_modified(&reply);
        assert_eq!(reply.outcome.unwrap().answer, Answer::Hit, "{headers:?}");
    }
    let whole = [
        vec![],
        vec![("if-none-match", "\"v2\"")],
        vec![("if-modified-since", MAY)],
        // If-None-Match wins: the dates alone would give a 304.
        vec![("if-none-match", "\"v2\""), ("if-modified-since", JULY)],
        // No condition at all.
        vec![("if-none-match", "v1")],
        vec![("if-modified-since", "last tuesday")],
    ];
    for headers in &whole {
        let reply = send(app, get(headers)).await;
        assert_eq!(reply.status, StatusCode::OK, "{headers:?}");
        assert_eq!(reply.body, "v1", "{headers:?}");
        assert!(reply.headers.contains_key(header::CONTENT_TYPE));
    }
    assert_eq!(origin.calls(), 1, "every one of them a hit");
}

#[tokio::test]
async fn cache_page_answers_preconditions_from_a_hit() {
    let origin = validated();
    let app = origin.per_route(ttl300(&Clock::system()));
    precedence(&app, &origin).await;
}

#[tokio::test]
async fn the_site_wide_pair_answers_preconditions_from_a_hit() {
    let origin = validated();
    let app = origin.site_wide(SiteCache::new());
    precedence(&app, &origin).await;
}

#[tokio::test]
async fn head_gets_a_304_too() {
    let origin = validated();
    let app = origin.per_route(ttl300(&Clock::system()));
    send(&app, get(&[])).await;
    assert_not_modified(&send(&app, head(&[("if-none-match", "\"v1\"")])).await);
}

#[tokio::test]
async fn a_page_without_validators_is_always_served_whole() {
    let origin = Origin::new();
    let app = origin.per_route(ttl300(&Clock::system()));
    send(&app, get(&[])).await;
    for headers in [
        vec![("if-none-match", "*")],
        vec![("if-modified-since", JULY)],
    ] {
        let reply = send(&app, get(&headers)).await;
        assert_eq!(
            (reply.status, &reply.body[..]),
            (StatusCode::OK, &b"v1"[..])
        );
    }
}

#[tokio::test]
async fn a_stale_page_served_while_revalidating_answers_with_a_304() {
    let app = stale(&validated(), Window::WhileRevalidate, |layer| layer).await;
    let reply = send(&app, get(&[("if-none-match", "\"v1\"")])).await;
    assert_not_modified(&reply);
    assert_eq!(
        reply.outcome.unwrap().answer,
        Answer::Stale(StaleBecause::Revalidating)
    );
}

#[tokio::test]
async fn a_stale_page_served_for_a_failed_origin_answers_with_a_304() {
    let origin = validated();
    let app = stale(&origin, Window::IfError, |layer| layer).await;
    origin.answer(StatusCode::BAD_GATEWAY);
    let reply = send(&app, get(&[("if-modified-since", JUNE)])).await;
    assert_not_modified(&reply);
    assert_eq!(
        reply.outcome.unwrap().answer,
        Answer::Stale(StaleBecause::OriginFailed)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coalesced_request_answers_with_a_304() {
    let origin = validated().slow(Duration::from_millis(300));
    let app = origin.per_route(ttl300(&Clock::system()));
    let leader = tokio::spawn({
        let app = app.clone();
        async move { send(&app, get(&[])).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let follower = send(&app, get(&[("if-none-match", "\"v1\"")])).await;
    assert_eq!(leader.await.unwrap().status, StatusCode::OK);
    assert_not_modified(&follower);
    assert_eq!(follower.outcome.unwrap().answer, Answer::Coalesced);
    assert_eq!(origin.calls(), 1);
}

/// The miss goes out without a tag (its headers leave before its body is
/// read); the hits carry the tag of the stored body, and a request that
/// sends it back gets a 304.
async fn weak_etag(app: &Router) {
    let miss = send(app, get(&[])).await;
    assert!(!miss.headers.contains_key(header::ETAG));
    let hit = send(app, get(&[])).await;
    let tag = hit.headers[header::ETAG].to_str().unwrap().to_owned();
    assert!(tag.starts_with("W/\"") && tag.len() == 36, "{tag}");
    assert_eq!(hit.body, "v1");
    let again = send(app, get(&[])).await;
    assert_eq!(again.headers[header::ETAG], tag, "computed once, stored");
    let conditional = send(app, get(&[("if-none-match", &tag)])).await;
    assert_eq!(conditional.status, StatusCode::NOT_MODIFIED);
    assert!(conditional.body.is_empty());
    assert_eq!(conditional.headers[header::ETAG], tag);
}

#[tokio::test]
async fn etag_gives_stored_pages_a_weak_tag() {
    let app = Origin::new().per_route(ttl300(&Clock::system()).etag(true));
    weak_etag(&app).await;
}

#[tokio::test]
async fn etag_through_the_site_wide_pair() {
    let app = Origin::new().site_wide(SiteCache::new().etag(true));
    weak_etag(&app).await;
}

#[tokio::test]
async fn etag_keeps_the_origins_own_and_is_off_by_default() {
    let app = validated().per_route(ttl300(&Clock::system()).etag(true));
    send(&app, get(&[])).await;
    assert_eq!(send(&app, get(&[])).await.headers[header::ETAG], "\"v1\"");
    let plain = Origin::new().per_route(ttl300(&Clock::system()));
    send(&plain, get(&[])).await;
    assert!(
        !send(&plain, get(&[]))
            .await
            .headers
            .contains_key(header::ETAG)
    );
}

/// Over a real connection (axum's server, hyper): the 304 goes out without
/// a `Content-Length` (which would claim the page is empty) and without a
/// body.
#[tokio::test]
async fn on_the_wire_a_304_has_no_length_and_no_body() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let app = validated().per_route(ttl300(&Clock::system()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let exchange = |extra: &'static str| async move {
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        let request =
            format!("GET / HTTP/1.1\r\nHost: example.com\r\n{extra}Connection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut raw = String::new();
        stream.read_to_string(&mut raw).await.unwrap();
        raw
    };
    assert!(exchange("").await.starts_with("HTTP/1.1 200"));
    let raw = exchange("If-None-Match: \"v1\"\r\n").await;
    assert!(raw.starts_with("HTTP/1.1 304"), "{raw}");
    assert!(
        !raw.to_ascii_lowercase().contains("content-length"),
        "{raw}"
    );
    assert!(raw.ends_with("\r\n\r\n"), "a body after the head: {raw}");
    server.abort();
}

/// A HEAD miss is stored with an empty body, which is not the page's: no
/// tag for it.
#[tokio::test]
async fn etag_skips_the_entries_of_head_requests() {
    let app = Origin::new().per_route(ttl300(&Clock::system()).etag(true));
    send(&app, head(&[])).await;
    let hit = send(&app, head(&[])).await;
    assert_eq!(hit.outcome.unwrap().answer, Answer::Hit);
    assert!(!hit.headers.contains_key(header::ETAG));
}
