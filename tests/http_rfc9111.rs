//! The RFC 9111 policy through the layers: freshness from the response
//! (`s-maxage`, `max-age`, `Expires`, heuristics) with its `Age`,
//! revalidation with conditional requests and 304s, request directives,
//! invalidation by unsafe methods, targeted fields, ranges, `Vary`
//! normalisation; through `cache_page` and the site-wide pair, on the
//! memory backend and on Redis (whose lookups wait). The public suite's
//! score is `scripts/cache-tests`'s.

mod common;
mod http_support;

use http_support::Reply;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request as AxumRequest, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use tower::{ServiceBuilder, ServiceExt};
use tower_cache::Cache;
use tower_cache::backends::MemoryBackend;
use tower_cache::http::policy::{Bypass, Semantics, SetCookiePolicy};
use tower_cache::http::rfc9111::Rfc9111;
use tower_cache::middleware::{Answer, Clock, MissBecause, SiteCache, Store, cache_page};

/// An origin whose reply the test sets: status, headers, and a body of
/// `v<call number>`; a request whose `If-None-Match` names the reply's
/// `ETag` gets a 304 with the reply's headers. Every request it sees is
/// kept (method, path, headers).
#[derive(Clone, Default)]
struct Origin {
    state: Arc<Mutex<OriginState>>,
}

#[derive(Default)]
struct OriginState {
    status: u16,
    headers: Vec<(String, String)>,
    seen: Vec<(Method, String, HeaderMap)>,
}

impl Origin {
    fn new(headers: &[(&str, &str)]) -> Origin {
        let origin = Origin::default();
        origin.reply(200, headers);
        origin
    }

    /// Answers with `status` and `headers` from now on.
    fn reply(&self, status: u16, headers: &[(&str, &str)]) {
        let mut state = self.state.lock().unwrap();
        state.status = status;
        state.headers = headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
    }

    fn calls(&self) -> usize {
        self.state.lock().unwrap().seen.len()
    }

    /// The headers of the last request the origin saw.
    fn last_request(&self) -> HeaderMap {
        self.state.lock().unwrap().seen.last().unwrap().2.clone()
    }

    fn router(&self) -> Router {
        async fn page(State(origin): State<Origin>, request: AxumRequest) -> Response {
            let mut state = origin.state.lock().unwrap();
            let path = request.uri().path().to_owned();
            state
                .seen
                .push((request.method().clone(), path, request.headers().clone()));
            let n = state.seen.len();
            let etag = state
                .headers
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case("etag"))
                .map(|(_, value)| value.clone());
            let matches = etag.is_some_and(|etag| {
                request
                    .headers()
                    .get(header::IF_NONE_MATCH)
                    .is_some_and(|inm| inm.to_str().unwrap() == etag)
            });
            let status = if matches { 304 } else { state.status };
            let body = if matches {
                Body::empty()
            } else {
                Body::from(format!("v{n}"))
            };
            let mut response = (StatusCode::from_u16(status).unwrap(), body).into_response();
            for (name, value) in &state.headers {
                response.headers_mut().append(
                    HeaderName::from_bytes(name.as_bytes()).unwrap(),
                    HeaderValue::from_str(value).unwrap(),
                );
            }
            response
        }
        Router::new()
            .route("/", any(page))
            .route("/other", any(page))
            .with_state(self.clone())
    }
}

fn memory() -> Cache {
    Cache::new(Arc::new(MemoryBackend::new()))
}

fn rfc9111() -> Semantics {
    Semantics::Rfc9111(Rfc9111::new())
}

/// `origin` behind `cache_page` in the RFC 9111 policy on `clock`, with
/// `rules`.
fn per_route(origin: &Origin, clock: &Clock, rules: Rfc9111, cache: Cache) -> Router {
    origin.router().route_layer(
        cache_page(Duration::from_secs(300))
            .semantics(Semantics::Rfc9111(rules))
            .clock(clock.clone())
            .cache(cache),
    )
}

fn site_wide(origin: &Origin, clock: &Clock, cache: Cache) -> Router {
    let (update, fetch) = SiteCache::new()
        .semantics(rfc9111())
        .clock(clock.clone())
        .cache(cache)
        .layers();
    origin
        .router()
        .layer(ServiceBuilder::new().layer(update).layer(fetch))
}

/// How a reply was answered.
fn answer(reply: &Reply) -> Answer {
    reply.outcome.expect("every response has an outcome").answer
}

async fn send(app: &Router, method: Method, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, "example.com");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    http_support::send(app, request.body(Body::empty()).unwrap()).await
}

async fn get(app: &Router, headers: &[(&str, &str)]) -> Reply {
    send(app, Method::GET, "/", headers).await
}

fn age(reply: &Reply) -> u64 {
    reply.headers[header::AGE]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn max_age_is_the_lifetime_less_the_age_the_response_arrived_with() {
    let origin = Origin::new(&[("cache-control", "max-age=60"), ("age", "50")]);
    let clock = Clock::adjustable();
    let app = per_route(&origin, &clock, Rfc9111::new(), memory());
    let miss = get(&app, &[]).await;
    // Passed through untouched: no Expires, no rewritten max-age.
    assert_eq!(miss.headers[header::CACHE_CONTROL], "max-age=60");
    assert!(!miss.headers.contains_key(header::EXPIRES));
    assert_eq!(miss.headers[header::AGE], "50");
    clock.advance(Duration::from_secs(5));
    let hit = get(&app, &[]).await;
    assert_eq!(answer(&hit), Answer::Hit);
    assert_eq!(hit.body, "v1");
    assert!((55..=56).contains(&age(&hit)), "Age {}", age(&hit));
    clock.advance(Duration::from_secs(6));
    let stale = get(&app, &[]).await;
    assert_eq!(answer(&stale), Answer::Miss(MissBecause::Stale));
    assert_eq!(origin.calls(), 2);
}

#[tokio::test]
async fn s_maxage_wins_over_max_age_and_forbids_stale_use() {
    let origin = Origin::new(&[("cache-control", "max-age=5, s-maxage=100")]);
    let clock = Clock::adjustable();
    let app = per_route(&origin, &clock, Rfc9111::new(), memory());
    get(&app, &[]).await;
    clock.advance(Duration::from_secs(50));
    assert_eq!(answer(&get(&app, &[]).await), Answer::Hit);
    clock.advance(Duration::from_secs(60));
    // Stale, and s-maxage forbids max-stale.
    let reply = get(&app, &[("cache-control", "max-stale")]).await;
    assert_eq!(answer(&reply), Answer::Miss(MissBecause::Stale));
}

#[tokio::test]
async fn expires_minus_date_and_invalid_values_mean_stale() {
    let date = httpdate::fmt_http_date(std::time::SystemTime::now());
    let in_an_hour =
        httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(3600));
    let origin = Origin::new(&[("date", date.as_str()), ("expires", in_an_hour.as_str())]);
    let clock = Clock::adjustable();
    let app = per_route(&origin, &clock, Rfc9111::new(), memory());
    get(&app, &[]).await;
    assert_eq!(answer(&get(&app, &[]).await), Answer::Hit);

    for stale in [
        vec![("expires", "0")],
        vec![("cache-control", "max-age=\"3600\"")],
        vec![("cache-control", "max-age=3600"), ("age", "abc")],
        vec![("cache-control", "max-age=3600"), ("age", "3601")],
    ] {
        let origin = Origin::new(&stale);
        let app = per_route(&origin, &clock, Rfc9111::new(), memory());
        let miss = get(&app, &[]).await;
        assert_eq!(
            miss.outcome.unwrap().store,
            Some(Store::NotStored(Bypass::Stale)),
            "{stale:?}"
        );
        get(&app, &[]).await;
        assert_eq!(origin.calls(), 2, "{stale:?}");
    }
}

#[tokio::test]
async fn heuristic_freshness_for_the_listed_statuses_and_no_invented_lifetime() {
    let now = std::time::SystemTime::now();
    let date = httpdate::fmt_http_date(now);
    let ten_hours_ago = httpdate::fmt_http_date(now - Duration::from_secs(36_000));
    let clock = Clock::adjustable();
    for (status, stored) in [
        (200, true),
        (404, true),
        (410, true),
        (302, false),
        (201, false),
    ] {
        let validators = [
            ("date", date.as_str()),
            ("last-modified", ten_hours_ago.as_str()),
        ];
        let origin = Origin::new(&validators);
        origin.reply(status, &validators);
        let app = per_route(&origin, &clock, Rfc9111::new(), memory());
        let miss = get(&app, &[]).await;
        assert_eq!(miss.outcome.unwrap().stored(), stored, "{status}");
        if stored {
            // 10% of ten hours: an hour.
            assert!(
                matches!(miss.outcome.unwrap().store, Some(Store::Stored(d)) if (3599..=3600).contains(&d.as_secs()))
            );
        }
    }
    // No freshness, no Last-Modified, no validator: not stored, unless the
    // user gives a default lifetime.
    let origin = Origin::new(&[]);
    let app = per_route(&origin, &clock, Rfc9111::new(), memory());
    assert!(!get(&app, &[]).await.outcome.unwrap().stored());
    let rules = Rfc9111::new().default_lifetime(Duration::from_secs(30));
    let app = per_route(&origin, &clock, rules, memory());
    get(&app, &[]).await;
    assert_eq!(answer(&get(&app, &[]).await), Answer::Hit);
}

#[tokio::test]
async fn a_stale_entry_with_a_validator_is_revalidated_and_freshened_by_a_304() {
    let origin = Origin::new(&[
        ("cache-control", "max-age=10"),
        ("etag", "\"a\""),
        ("x-version", "1"),
    ]);
    let clock = Clock::adjustable();
    for app in [
        per_route(&origin, &clock, Rfc9111::new(), memory()),
        site_wide(&origin, &clock, memory()),
    ] {
        origin.reply(
            200,
            &[
                ("cache-control", "max-age=10"),
                ("etag", "\"a\""),
                ("x-version", "1"),
            ],
        );
        let first = get(&app, &[]).await;
        let calls = origin.calls();
        clock.advance(Duration::from_secs(11));
        origin.reply(
            200,
            &[
                ("cache-control", "max-age=100"),
                ("etag", "\"a\""),
                ("x-version", "2"),
            ],
        );
        let revalidated = get(&app, &[]).await;
        assert_eq!(origin.calls(), calls + 1);
        assert_eq!(origin.last_request()[header::IF_NONE_MATCH], "\"a\"");
        assert_eq!(revalidated.status, StatusCode::OK);
        assert_eq!(revalidated.body, first.body, "the stored body");
        assert_eq!(revalidated.headers["x-version"], "2", "updated by the 304");
        let outcome = revalidated.outcome.unwrap();
        assert_eq!(outcome.answer, Answer::Miss(MissBecause::Stale));
        assert_eq!(outcome.origin_status, Some(StatusCode::NOT_MODIFIED));
        // Fresh again for the 304's 100 s: no call.
        tokio::time::sleep(Duration::from_millis(50)).await;
        clock.advance(Duration::from_secs(50));
        let hit = get(&app, &[]).await;
        assert_eq!(answer(&hit), Answer::Hit);
        assert_eq!(hit.headers["x-version"], "2");
        assert_eq!(origin.calls(), calls + 1);
        // The client's own precondition is answered from the freshened entry.
        clock.advance(Duration::from_secs(60));
        let not_modified = get(&app, &[("if-none-match", "\"a\"")]).await;
        assert_eq!(not_modified.status, StatusCode::NOT_MODIFIED);
        assert_eq!(origin.calls(), calls + 2);
    }
}

#[tokio::test]
async fn no_cache_responses_are_stored_and_revalidated_every_time() {
    let origin = Origin::new(&[("cache-control", "no-cache"), ("etag", "\"n\"")]);
    let clock = Clock::adjustable();
    let app = per_route(&origin, &clock, Rfc9111::new(), memory());
    let miss = get(&app, &[]).await;
    assert!(miss.outcome.unwrap().stored());
    for _ in 0..3 {
        let reply = get(&app, &[]).await;
        assert_eq!(reply.body, "v1");
        assert_eq!(origin.last_request()[header::IF_NONE_MATCH], "\"n\"");
    }
    assert_eq!(origin.calls(), 4);
}

#[tokio::test]
async fn a_200_to_a_revalidation_replaces_the_entry() {
    let origin = Origin::new(&[("cache-control", "max-age=10"), ("etag", "\"a\"")]);
    let clock = Clock::adjustable();
    let app = per_route(&origin, &clock, Rfc9111::new(), memory());
    get(&app, &[]).await;
    clock.advance(Duration::from_secs(11));
    origin.reply(200, &[("cache-control", "max-age=10"), ("etag", "\"b\"")]);
    let replaced = get(&app, &[]).await;
    assert_eq!(replaced.body, "v2");
    assert!(replaced.outcome.unwrap().stored());
    let hit = get(&app, &[]).await;
    assert_eq!((answer(&hit), &hit.body[..]), (Answer::Hit, &b"v2"[..]));
}

#[tokio::test]
async fn request_directives() {
    let origin = Origin::new(&[("cache-control", "max-age=100"), ("etag", "\"r\"")]);
    let clock = Clock::adjustable();
    let app = per_route(&origin, &clock, Rfc9111::new(), memory());
    // only-if-cached with nothing stored: 504, and the origin is not asked.
    let empty = get(&app, &[("cache-control", "only-if-cached")]).await;
    assert_eq!(empty.status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(origin.calls(), 0);
    // no-store: the response is not stored.
    let unstored = get(&app, &[("cache-control", "no-store")]).await;
    assert_eq!(
        unstored.outcome.unwrap().store,
        Some(Store::NotStored(Bypass::RequestNoStore))
    );
    get(&app, &[]).await;
    clock.advance(Duration::from_secs(30));
    assert_eq!(answer(&get(&app, &[]).await), Answer::Hit);
    let only = get(&app, &[("cache-control", "only-if-cached")]).await;
    assert_eq!(answer(&only), Answer::Hit);
    // Fresh, but not for these requests: revalidated (304 from the origin).
    for asks in ["no-cache", "max-age=10", "min-fresh=90"] {
        let calls = origin.calls();
        let reply = get(&app, &[("cache-control", asks)]).await;
        assert_eq!(answer(&reply), Answer::Miss(MissBecause::Request), "{asks}");
        assert_eq!(origin.calls(), calls + 1, "{asks}");
        assert_eq!(reply.body, "v2", "{asks}: the stored body");
        clock.advance(Duration::from_secs(30));
    }
    let calls = origin.calls();
    assert_eq!(
        answer(&get(&app, &[("pragma", "no-cache")]).await),
        Answer::Miss(MissBecause::Request)
    );
    assert_eq!(origin.calls(), calls + 1);
    // Stale: max-stale serves it without asking.
    clock.advance(Duration::from_secs(200));
    let calls = origin.calls();
    let stale = get(&app, &[("cache-control", "max-stale=500")]).await;
    assert_eq!(answer(&stale), Answer::Hit);
    assert_eq!(origin.calls(), calls);
    let too_stale = get(&app, &[("cache-control", "max-stale=5")]).await;
    assert_eq!(answer(&too_stale), Answer::Miss(MissBecause::Stale));
}

#[tokio::test]
async fn request_directives_can_be_ignored() {
    let origin = Origin::new(&[("cache-control", "max-age=100"), ("etag", "\"r\"")]);
    let clock = Clock::adjustable();
    let rules = Rfc9111::new().honour_request_directives(false);
    let app = per_route(&origin, &clock, rules, memory());
    get(&app, &[]).await;
    for asks in ["no-cache", "max-age=0", "no-store", "only-if-cached"] {
        let reply = get(&app, &[("cache-control", asks)]).await;
        assert_eq!(answer(&reply), Answer::Hit, "{asks}");
    }
    assert_eq!(
        answer(&get(&app, &[("pragma", "no-cache")]).await),
        Answer::Hit
    );
    assert_eq!(origin.calls(), 1);
}

/// A herd on a stale page: one conditional request, every waiter answered
/// from the freshened entry.
#[tokio::test]
async fn a_herd_on_a_stale_page_revalidates_once() {
    let origin = Origin::new(&[("cache-control", "max-age=10"), ("etag", "\"h\"")]);
    let clock = Clock::adjustable();
    let slow = origin.clone();
    let app = Router::new()
        .route(
            "/",
            any(move |request: AxumRequest| {
                let origin = slow.clone();
                async move {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    origin.router().oneshot(request).await.unwrap()
                }
            }),
        )
        .route_layer(
            cache_page(Duration::from_secs(300))
                .semantics(rfc9111())
                .clock(clock.clone())
                .cache(memory()),
        );
    get(&app, &[]).await;
    clock.advance(Duration::from_secs(11));
    let mut herd = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let app = app.clone();
        herd.spawn(async move { get(&app, &[]).await });
    }
    let replies = herd.join_all().await;
    assert_eq!(origin.calls(), 2, "one conditional request for the herd");
    for reply in &replies {
        assert_eq!(
            (reply.status, &reply.body[..]),
            (StatusCode::OK, &b"v1"[..])
        );
    }
    assert_eq!(origin.last_request()[header::IF_NONE_MATCH], "\"h\"");
}

#[tokio::test]
async fn must_revalidate_forbids_max_stale() {
    let origin = Origin::new(&[("cache-control", "max-age=10, must-revalidate")]);
    let clock = Clock::adjustable();
    let app = per_route(&origin, &clock, Rfc9111::new(), memory());
    get(&app, &[]).await;
    clock.advance(Duration::from_secs(20));
    let reply = get(&app, &[("cache-control", "max-stale")]).await;
    assert_eq!(answer(&reply), Answer::Miss(MissBecause::Stale));
}

#[tokio::test]
async fn what_is_stored() {
    let clock = Clock::adjustable();
    for (status, headers, stored) in [
        (200, vec![("cache-control", "max-age=60, private")], false),
        (200, vec![("cache-control", "max-age=60, no-store")], false),
        (
            200,
            vec![("cache-control", "max-age=60, no-store, must-understand")],
            true,
        ),
        (
            599,
            vec![("cache-control", "max-age=60, must-understand")],
            false,
        ),
        (599, vec![("cache-control", "max-age=60")], true),
        (500, vec![("cache-control", "max-age=60")], true),
        (302, vec![("cache-control", "max-age=60")], true),
        (206, vec![("cache-control", "max-age=60")], false),
        (
            200,
            vec![("cache-control", "max-age=60"), ("vary", "*")],
            false,
        ),
        (
            200,
            vec![("cache-control", "max-age=60"), ("set-cookie", "a=1")],
            false,
        ),
    ] {
        let origin = Origin::new(&[]);
        origin.reply(status, &headers);
        let app = per_route(&origin, &clock, Rfc9111::new(), memory());
        let miss = get(&app, &[]).await;
        assert_eq!(miss.status.as_u16(), status);
        assert_eq!(
            miss.outcome.unwrap().stored(),
            stored,
            "{status} {headers:?}"
        );
    }
    // Cookies are stored when asked to, as RFC 9111 does.
    let origin = Origin::new(&[("cache-control", "max-age=60"), ("set-cookie", "a=1")]);
    let app = origin.router().route_layer(
        cache_page(Duration::from_secs(300))
            .semantics(rfc9111())
            .set_cookie(SetCookiePolicy::Store)
            .cache(memory()),
    );
    get(&app, &[]).await;
    let hit = get(&app, &[]).await;
    assert_eq!(answer(&hit), Answer::Hit);
    assert_eq!(hit.headers[header::SET_COOKIE], "a=1");
}

#[tokio::test]
async fn authorization_needs_a_shareable_response() {
    let clock = Clock::adjustable();
    for (cc, stored) in [
        ("max-age=60", false),
        ("max-age=60, public", true),
        ("s-maxage=60", true),
        ("max-age=60, must-revalidate", true),
    ] {
        let origin = Origin::new(&[("cache-control", cc)]);
        let app = per_route(&origin, &clock, Rfc9111::new(), memory());
        let miss = get(&app, &[("authorization", "Basic dTpw")]).await;
        assert_eq!(miss.outcome.unwrap().stored(), stored, "{cc}");
    }
}

#[tokio::test]
async fn unsafe_methods_invalidate_their_url_and_same_host_locations() {
    let origin = Origin::new(&[("cache-control", "max-age=600")]);
    let clock = Clock::adjustable();
    for app in [
        per_route(&origin, &clock, Rfc9111::new(), memory()),
        site_wide(&origin, &clock, memory()),
    ] {
        let warm = |app: Router| async move {
            send(&app, Method::GET, "/", &[]).await;
            send(&app, Method::GET, "/other", &[]).await;
        };
        let cached = |app: Router, path: &'static str| async move {
            answer(&send(&app, Method::GET, path, &[]).await) == Answer::Hit
        };
        origin.reply(200, &[("cache-control", "max-age=600")]);
        warm(app.clone()).await;
        assert!(cached(app.clone(), "/").await && cached(app.clone(), "/other").await);
        // An error changes nothing.
        origin.reply(500, &[]);
        send(&app, Method::POST, "/", &[]).await;
        assert!(cached(app.clone(), "/").await);
        // A success purges the URL, and a same-host Location.
        origin.reply(201, &[("location", "/other")]);
        send(&app, Method::POST, "/", &[]).await;
        assert!(!cached(app.clone(), "/").await);
        assert!(!cached(app.clone(), "/other").await);
        origin.reply(200, &[("cache-control", "max-age=600")]);
        warm(app.clone()).await;
        // Content-Location, absolute on this host; another host's is left.
        origin.reply(200, &[("content-location", "http://example.com/other")]);
        send(&app, Method::DELETE, "/", &[]).await;
        assert!(!cached(app.clone(), "/other").await);
        origin.reply(200, &[("cache-control", "max-age=600")]);
        warm(app.clone()).await;
        origin.reply(200, &[("location", "http://elsewhere.example/other")]);
        send(&app, Method::PUT, "/", &[]).await;
        assert!(cached(app.clone(), "/other").await);
    }
}

#[tokio::test]
async fn a_targeted_field_governs_and_is_not_passed_on() {
    let origin = Origin::new(&[
        ("cache-control", "no-store"),
        ("cdn-cache-control", "max-age=600"),
    ]);
    let clock = Clock::adjustable();
    let rules = Rfc9111::new().targeted_field(HeaderName::from_static("cdn-cache-control"));
    let app = per_route(&origin, &clock, rules, memory());
    let miss = get(&app, &[]).await;
    assert!(miss.outcome.unwrap().stored());
    assert!(!miss.headers.contains_key("cdn-cache-control"));
    let hit = get(&app, &[]).await;
    assert_eq!(answer(&hit), Answer::Hit);
    assert_eq!(hit.headers[header::CACHE_CONTROL], "no-store");
    assert!(!hit.headers.contains_key("cdn-cache-control"));
    // A targeted field that cannot be read keeps the page out (it may hide
    // a `private`), as an unreadable Cache-Control does.
    let raw = Router::new().route(
        "/",
        any(|| async {
            let mut response = "page".into_response();
            response.headers_mut().insert(
                "cdn-cache-control",
                HeaderValue::from_bytes(b"\xc2\xa0private, max-age=600").unwrap(),
            );
            response
        }),
    );
    let rules = Rfc9111::new().targeted_field(HeaderName::from_static("cdn-cache-control"));
    let app = raw.route_layer(
        cache_page(Duration::from_secs(300))
            .semantics(Semantics::Rfc9111(rules))
            .cache(memory()),
    );
    let miss = get(&app, &[]).await;
    assert_eq!(
        miss.outcome.unwrap().store,
        Some(Store::NotStored(Bypass::Unreadable("Cache-Control")))
    );
    // Without the switch, Cache-Control governs.
    let app = per_route(&origin, &clock, Rfc9111::new(), memory());
    assert!(!get(&app, &[]).await.outcome.unwrap().stored());
}

#[tokio::test]
async fn ranges_are_served_from_a_stored_complete_response() {
    let origin = Origin::new(&[("cache-control", "max-age=600")]);
    let clock = Clock::adjustable();
    let app = per_route(&origin, &clock, Rfc9111::new(), memory());
    get(&app, &[]).await; // "v1"
    let partial = get(&app, &[("range", "bytes=1-")]).await;
    assert_eq!(partial.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(partial.body, "1");
    assert_eq!(partial.headers[header::CONTENT_RANGE], "bytes 1-1/2");
    let whole = get(&app, &[("range", "bytes=0-0, 1-1")]).await;
    assert_eq!(
        (whole.status, &whole.body[..]),
        (StatusCode::OK, &b"v1"[..])
    );
}

#[tokio::test]
async fn vary_values_are_normalised() {
    let origin = Origin::new(&[
        ("cache-control", "max-age=600"),
        ("vary", "Accept-Language, X-Foo"),
    ]);
    let clock = Clock::adjustable();
    let app = per_route(&origin, &clock, Rfc9111::new(), memory());
    get(&app, &[("accept-language", "en, de"), ("x-foo", "1,2")]).await;
    let same = get(&app, &[("accept-language", " EN ,de"), ("x-foo", "1, 2")]).await;
    assert_eq!(answer(&same), Answer::Hit);
    let other = get(&app, &[("accept-language", "fr"), ("x-foo", "1, 2")]).await;
    assert_eq!(answer(&other), Answer::Miss(MissBecause::Vary));
}

/// Revalidation and invalidation on a backend whose lookups wait.
#[tokio::test]
async fn on_redis() {
    let url = common::server_url("REDIS_URL");
    let cache = Cache::from_url(&common::with_option(
        &url,
        &format!("key_prefix={}", common::unique("rfc9111")),
    ))
    .await
    .unwrap();
    let origin = Origin::new(&[("cache-control", "max-age=10"), ("etag", "\"x\"")]);
    let clock = Clock::adjustable();
    for app in [
        per_route(&origin, &clock, Rfc9111::new(), cache.clone()),
        site_wide(&origin, &clock, cache.clone()),
    ] {
        send(&app, Method::DELETE, "/", &[]).await;
        let calls = origin.calls();
        get(&app, &[]).await;
        assert_eq!(answer(&get(&app, &[]).await), Answer::Hit);
        clock.advance(Duration::from_secs(11));
        let revalidated = get(&app, &[]).await;
        assert_eq!(
            revalidated.outcome.unwrap().origin_status,
            Some(StatusCode::NOT_MODIFIED)
        );
        common::eventually(Duration::from_secs(2), || {
            let app = app.clone();
            async move {
                match answer(&get(&app, &[]).await) {
                    Answer::Hit => Ok(()),
                    other => Err(other),
                }
            }
        })
        .await;
        send(&app, Method::POST, "/", &[]).await;
        assert_ne!(answer(&get(&app, &[]).await), Answer::Hit);
        assert!(origin.calls() >= calls + 4);
    }
}

#[tokio::test]
async fn if_modified_since_is_answered_by_the_date_of_a_response_without_last_modified() {
    let origin = Origin::new(&[("cache-control", "max-age=100")]);
    let clock = Clock::adjustable();
    let app = per_route(&origin, &clock, Rfc9111::new(), memory());
    get(&app, &[]).await;
    let later = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(3600));
    let not_modified = get(&app, &[("if-modified-since", &later)]).await;
    assert_eq!(not_modified.status, StatusCode::NOT_MODIFIED);
    assert_eq!(answer(&not_modified), Answer::Hit);
    // A client whose copy is older than the stored one gets the page.
    let whole = get(
        &app,
        &[("if-modified-since", "Sat, 01 Jan 2000 00:00:00 GMT")],
    )
    .await;
    assert_eq!(whole.status, StatusCode::OK);
    assert_eq!(whole.body, "v1");
    // The stored Date governs when there is one.
    let date = std::time::SystemTime::now() - Duration::from_secs(60);
    let (date, before) = (
        httpdate::fmt_http_date(date),
        httpdate::fmt_http_date(date - Duration::from_secs(1)),
    );
    let dated = Origin::new(&[("cache-control", "max-age=100"), ("date", &date)]);
    let app = per_route(&dated, &clock, Rfc9111::new(), memory());
    get(&app, &[]).await;
    let since_date = get(&app, &[("if-modified-since", &date)]).await;
    assert_eq!(since_date.status, StatusCode::NOT_MODIFIED);
    let since_before = get(&app, &[("if-modified-since", &before)]).await;
    assert_eq!(since_before.status, StatusCode::OK);
    assert_eq!(dated.calls(), 1);
    // Django's policy answers only by a validator the response carries.
    let django = origin.router().route_layer(
        cache_page(Duration::from_secs(300))
            .clock(clock.clone())
            .cache(memory()),
    );
    get(&django, &[]).await;
    let served = get(&django, &[("if-modified-since", &later)]).await;
    assert_eq!(served.status, StatusCode::OK);
}

/// A hit on a decoded entry serves a header map made ready with stand-ins
/// for what hits add (`Age`, `Cache-Status`, `Content-Length`). None of them
/// may reach anything but that hit: not the conditional request, the
/// freshened entry stored again, its later hits, nor a stale answer.
///
/// On the memory backend the decoded page is kept in the entry's memo; on
/// a backend without memos (a remote one, here a counting wrapper) the layer
/// keeps it by the entry's bytes, and the lookup, which every hit goes
/// through, finds the ready map too.
#[tokio::test]
async fn stand_ins_never_leak_into_a_revalidated_stored_or_stale_entry() {
    use tower_cache::backends::MemoryBackend;
    use tower_cache::testing::Instrumented;
    stand_ins_never_leak_on(memory()).await;
    let remote = Instrumented::new(Arc::new(MemoryBackend::new()), false);
    stand_ins_never_leak_on(tower_cache::Cache::new(Arc::new(remote))).await;
}

async fn stand_ins_never_leak_on(cache: tower_cache::Cache) {
    let origin = Origin::new(&[
        ("cache-control", "max-age=10, stale-if-error=60"),
        ("etag", "\"a\""),
    ]);
    let clock = Clock::adjustable();
    let app = origin.router().route_layer(
        cache_page(Duration::from_secs(300))
            .semantics(rfc9111())
            .cache_status(true)
            .clock(clock.clone())
            .cache(cache),
    );
    let only_its_own = |reply: &Reply, what: &str| {
        let members = reply.members();
        assert_eq!(members.len(), 1, "{what}: {members:?}");
        assert!(
            members[0].starts_with("tower-cache;"),
            "{what}: {members:?}"
        );
        assert_eq!(
            reply.headers.get_all(header::AGE).iter().count(),
            1,
            "{what}"
        );
        if let Some(length) = reply.headers.get(header::CONTENT_LENGTH) {
            assert_eq!(
                length.to_str().unwrap(),
                reply.body.len().to_string(),
                "{what}"
            );
        }
    };
    get(&app, &[]).await;
    for _ in 0..3 {
        let hit = get(&app, &[]).await;
        assert_eq!(answer(&hit), Answer::Hit);
        only_its_own(&hit, "hit");
    }
    clock.advance(Duration::from_secs(11));
    let revalidated = get(&app, &[]).await;
    assert_eq!(origin.last_request()[header::IF_NONE_MATCH], "\"a\"");
    assert_eq!(
        revalidated.outcome.unwrap().origin_status,
        Some(StatusCode::NOT_MODIFIED)
    );
    only_its_own(&revalidated, "revalidated");
    tokio::time::sleep(Duration::from_millis(50)).await;
    for _ in 0..3 {
        let hit = get(&app, &[]).await;
        assert_eq!(answer(&hit), Answer::Hit);
        only_its_own(&hit, "hit on the freshened entry");
    }
    // The origin fails: the stale entry answers.
    clock.advance(Duration::from_secs(11));
    origin.reply(500, &[]);
    let stale = get(&app, &[]).await;
    assert_eq!(stale.status, StatusCode::OK);
    assert!(
        matches!(answer(&stale), Answer::Stale(_)),
        "{:?}",
        answer(&stale)
    );
    only_its_own(&stale, "stale");
}
