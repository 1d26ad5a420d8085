//! `Cache-Status` (RFC 9211): one member per layer, for every outcome,
//! through `cache_page` and the site-wide pair.

mod http_support;

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_support::{Origin, Window, fresh_cache, get, post, send, stale, ttl300, without_ttl};
use tower_cache::Jitter;
use tower_cache::http::key::AllowedHosts;
use tower_cache::middleware::{CachePageLayer, Clock, SiteCache, cache_page};

fn on(clock: &Clock) -> CachePageLayer {
    ttl300(clock).cache_status(true)
}

/// The `Cache-Status` members of the answer to `request`.
async fn members(app: &Router, request: Request<Body>) -> Vec<String> {
    send(app, request).await.members()
}

/// The one member `origin` behind `layer` answers a GET with.
async fn first_member(origin: &Origin, layer: CachePageLayer) -> Vec<String> {
    members(&origin.per_route(layer), get(&[])).await
}

#[tokio::test]
async fn off_by_default() {
    let app = Origin::new().per_route(ttl300(&Clock::system()));
    for _ in 0..2 {
        let reply = send(&app, get(&[])).await;
        assert!(!reply.headers.contains_key("cache-status"));
    }
}

#[tokio::test]
async fn miss_stored_then_hit() {
    let app = Origin::new().per_route(on(&Clock::system()));
    let miss = send(&app, get(&[])).await;
    assert_eq!(
        miss.members(),
        ["tower-cache; fwd=uri-miss; fwd-status=200; stored; ttl=300"]
    );
    let hit = send(&app, get(&[])).await;
    let (member, ttl) = hit.member();
    assert_eq!(member, "tower-cache; hit");
    assert!((299..=300).contains(&ttl.unwrap()), "{ttl:?}");
}

#[tokio::test]
async fn vary_miss() {
    let app = Origin::new()
        .with("vary", "X-User")
        .per_route(on(&Clock::system()));
    send(&app, get(&[("x-user", "ann")])).await;
    let other = send(&app, get(&[("x-user", "bob")])).await;
    assert_eq!(
        other.members(),
        ["tower-cache; fwd=vary-miss; fwd-status=200; stored; ttl=300"]
    );
}

#[tokio::test]
async fn not_stored_says_why() {
    let private = Origin::new().with("cache-control", "private");
    assert_eq!(
        first_member(&private, on(&Clock::system())).await,
        ["tower-cache; fwd=uri-miss; fwd-status=200; detail=private"]
    );
    let missing = Origin::new();
    missing.answer(StatusCode::NOT_FOUND);
    assert_eq!(
        first_member(&missing, on(&Clock::system())).await,
        ["tower-cache; fwd=uri-miss; fwd-status=404; detail=status-404"]
    );
}

#[tokio::test]
async fn stale_while_revalidate_is_a_hit_with_a_negative_ttl() {
    let app = stale(&Origin::new(), Window::WhileRevalidate, |layer| {
        layer.cache_status(true)
    })
    .await;
    let (member, ttl) = send(&app, get(&[])).await.member();
    assert_eq!(member, "tower-cache; hit; detail=stale-while-revalidate");
    assert!((-6..=-4).contains(&ttl.unwrap()), "{ttl:?}");
}

#[tokio::test]
async fn stale_if_error_was_forwarded() {
    let origin = Origin::new();
    let app = stale(&origin, Window::IfError, |layer| layer.cache_status(true)).await;
    origin.answer(StatusCode::SERVICE_UNAVAILABLE);
    let reply = send(&app, get(&[])).await;
    assert_eq!(
        (reply.status, &reply.body[..]),
        (StatusCode::OK, &b"v1"[..])
    );
    let (member, ttl) = reply.member();
    assert_eq!(
        member,
        "tower-cache; fwd=stale; fwd-status=503; detail=stale-if-error"
    );
    assert!(ttl.unwrap() < 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coalesced_request_was_collapsed() {
    let origin = Origin::new().slow(Duration::from_millis(300));
    let app = origin.per_route(on(&Clock::system()));
    let leader = tokio::spawn({
        let app = app.clone();
        async move { send(&app, get(&[])).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let follower = send(&app, get(&[])).await;
    assert_eq!(
        leader.await.unwrap().members(),
        ["tower-cache; fwd=uri-miss; fwd-status=200; stored; ttl=300"]
    );
    let (member, _) = follower.member();
    assert_eq!(
        member,
        "tower-cache; fwd=uri-miss; fwd-status=200; collapsed"
    );
    assert_eq!(origin.calls(), 1);
}

#[tokio::test]
async fn bypasses() {
    let app = Origin::new()
        .per_route(on(&Clock::system()).allowed_hosts(AllowedHosts::new(["example.com"])));
    assert_eq!(
        members(&app, post()).await,
        ["tower-cache; fwd=method; fwd-status=200"]
    );
    let elsewhere = Request::get("/")
        .header(header::HOST, "made-up.example")
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        members(&app, elsewhere).await,
        ["tower-cache; fwd=bypass; fwd-status=200; detail=host-not-allowed"]
    );
}

#[tokio::test]
async fn the_site_wide_pair_adds_one_member() {
    let origin = Origin::new();
    let app = origin.site_wide(SiteCache::new().cache_status(true));
    assert_eq!(
        send(&app, get(&[])).await.members(),
        ["tower-cache; fwd=uri-miss; fwd-status=200; stored; ttl=600"]
    );
    let (member, _) = send(&app, get(&[])).await.member();
    assert_eq!(member, "tower-cache; hit");
    assert_eq!(
        members(&app, post()).await,
        ["tower-cache; fwd=method; fwd-status=200"]
    );
    let private = Origin::new().with("cache-control", "no-store");
    let app = private.site_wide(SiteCache::new().cache_status(true));
    assert_eq!(
        members(&app, get(&[])).await,
        ["tower-cache; fwd=uri-miss; fwd-status=200; detail=no-store"]
    );
}

/// The member of the layer nearer the origin comes first. On a hit of the
/// outer layer, the inner member stored with the page says how that page
/// was fetched (as in RFC 9211's two-cache example).
#[tokio::test]
async fn two_nested_layers_give_two_members() {
    let clock = Clock::system();
    let app = Origin::new()
        .router()
        .route_layer(
            ttl300(&clock)
                .cache(fresh_cache())
                .name("inner")
                .cache_status(true),
        )
        .route_layer(
            ttl300(&clock)
                .cache(fresh_cache())
                .name("Outer Cache")
                .cache_status(true),
        );
    let miss = send(&app, get(&[])).await;
    assert_eq!(
        miss.members(),
        [
            "inner; fwd=uri-miss; fwd-status=200; stored; ttl=300",
            "\"Outer Cache\"; fwd=uri-miss; fwd-status=200; stored; ttl=300",
        ]
    );
    let hit = send(&app, get(&[])).await;
    let members: Vec<String> = hit.members().iter().map(|m| without_ttl(m).0).collect();
    assert_eq!(
        members,
        [
            "inner; fwd=uri-miss; fwd-status=200; stored",
            "\"Outer Cache\"; hit"
        ]
    );
}

#[tokio::test]
async fn the_ttl_of_a_stored_page_is_its_spread_lifetime() {
    let app = Origin::new().per_route(
        cache_page(Duration::from_secs(100))
            .cache_status(true)
            .ttl_jitter(Jitter::seeded(20, 3)),
    );
    let miss = send(&app, get(&[])).await;
    let (member, ttl) = miss.member();
    assert_eq!(member, "tower-cache; fwd=uri-miss; fwd-status=200; stored");
    assert!((80..=120).contains(&ttl.unwrap()), "{ttl:?}");
    assert_eq!(
        miss.headers[header::CACHE_CONTROL],
        "max-age=100",
        "nominal"
    );
}
