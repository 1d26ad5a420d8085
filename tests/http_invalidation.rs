//! Invalidation on every backend: pages purged by tag and by URL, through
//! the API and the purge service, by one app instance and seen by another
//! that shares the cache (two layers, each with its own connections).
//! Servers come from `./scripts/test`.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Path;
use axum::response::IntoResponse;
use axum::routing::get;
use http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use tower::ServiceExt;
use tower_cache::http::tags::{CacheTags, TagHeader};
use tower_cache::middleware::{
    Answer, CachePageLayer, Invalidator, MissBecause, Outcome, cache_page,
};
use tower_cache::{Cache, CacheConfig};

const HOST: &str = "shop.example";

/// One app instance: `/p/{id}` tagged `product:{id}` and `catalog` in the
/// `Cache-Tag` header, `/x/{id}` tagged by extension, `/v` varying on
/// `Accept-Language`, `/slow` (tagged `slow`) telling `gate` it began and
/// waiting for it; every origin call counted in `calls`.
fn instance(calls: &Arc<AtomicUsize>, gate: &Arc<Gate>, layer: CachePageLayer) -> Router {
    let counted = |calls: &Arc<AtomicUsize>| calls.fetch_add(1, Ordering::SeqCst) + 1;
    let (c1, c2, c3, c4) = (calls.clone(), calls.clone(), calls.clone(), calls.clone());
    let gate = gate.clone();
    Router::new()
        .route(
            "/p/{id}",
            get(move |Path(id): Path<u32>| async move {
                let n = counted(&c1);
                let tags = format!("product:{id}, catalog");
                ([("cache-tag", tags)], format!("product {id} #{n}"))
            }),
        )
        .route(
            "/x/{id}",
            get(move |Path(id): Path<u32>| async move {
                let n = counted(&c2);
                let tags = CacheTags::new([format!("extension:{id}")]);
                (axum::Extension(tags), format!("x {id} #{n}")).into_response()
            }),
        )
        .route(
            "/v",
            get(move |request: Request<Body>| async move {
                let n = counted(&c3);
                let lang = request
                    .headers()
                    .get(header::ACCEPT_LANGUAGE)
                    .map(|v| v.to_str().unwrap().to_owned())
                    .unwrap_or_default();
                ([(header::VARY, "Accept-Language")], format!("{lang} #{n}"))
            }),
        )
        .route(
            "/slow",
            get(move || async move {
                gate.began.notify_one();
                gate.release.notified().await;
                let n = counted(&c4);
                ([("cache-tag", "slow")], format!("slow #{n}"))
            }),
        )
        .route_layer(layer)
}

/// Where `/slow` says it began, and waits to be let go.
#[derive(Default)]
struct Gate {
    began: tokio::sync::Notify,
    release: tokio::sync::Notify,
}

struct Reply {
    status: StatusCode,
    body: String,
    outcome: Outcome,
    headers: http::HeaderMap,
}

async fn send(app: &Router, method: Method, path: &str, lang: Option<&str>) -> Reply {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, HOST);
    if let Some(lang) = lang {
        request = request.header(header::ACCEPT_LANGUAGE, lang);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let outcome = *response.extensions().get::<Outcome>().unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        body: String::from_utf8(body.to_vec()).unwrap(),
        outcome,
        headers,
    }
}

async fn get_page(app: &Router, path: &str) -> Reply {
    send(app, Method::GET, path, None).await
}

fn is_hit(reply: &Reply) -> bool {
    reply.outcome.answer == Answer::Hit
}

fn invalidated(reply: &Reply) -> bool {
    reply.outcome.answer == Answer::Miss(MissBecause::Invalidated)
}

/// Two instances over `caches` (one cache each, sharing a backend), and
/// their layers' invalidators.
struct Site {
    a: Router,
    b: Router,
    purge_a: Invalidator,
    purge_b: Invalidator,
    calls: Arc<AtomicUsize>,
    gate: Arc<Gate>,
}

fn site([cache_a, cache_b]: [Cache; 2]) -> Site {
    let calls = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Gate::default());
    let layer_a = cache_page(Duration::from_secs(300)).cache(cache_a);
    let layer_b = cache_page(Duration::from_secs(300)).cache(cache_b);
    Site {
        purge_a: layer_a.invalidator(),
        purge_b: layer_b.invalidator(),
        a: instance(&calls, &gate, layer_a),
        b: instance(&calls, &gate, layer_b),
        calls,
        gate,
    }
}

/// Tags: a page tagged in its header or by extension is a miss on every
/// instance once one of its tags is invalidated; other pages stay; the
/// header never reaches the client.
async fn tags_purge_pages_on_every_instance(caches: [Cache; 2]) {
    let site = site(caches);
    let first = get_page(&site.a, "/p/1").await;
    assert_eq!(first.body, "product 1 #1");
    assert!(first.outcome.stored(), "{}", first.outcome);
    assert!(
        !first.headers.contains_key("cache-tag"),
        "the tag header is removed"
    );
    let hit = get_page(&site.b, "/p/1").await;
    assert!(is_hit(&hit), "{}", hit.outcome);
    assert!(!hit.headers.contains_key("cache-tag"), "not stored either");
    get_page(&site.a, "/p/2").await;
    assert!(is_hit(&get_page(&site.b, "/p/2").await));

    site.purge_a.invalidate_tags(["product:1"]).await.unwrap();
    let after = get_page(&site.b, "/p/1").await;
    assert!(invalidated(&after), "{}", after.outcome);
    assert_eq!(after.body, "product 1 #3");
    assert!(is_hit(&get_page(&site.a, "/p/1").await), "stored again");
    assert!(is_hit(&get_page(&site.a, "/p/2").await), "untouched");

    // A tag shared by both pages purges both.
    site.purge_b.invalidate_tags(["catalog"]).await.unwrap();
    assert!(invalidated(&get_page(&site.a, "/p/1").await));
    assert!(invalidated(&get_page(&site.a, "/p/2").await));

    // Tags from a response extension.
    get_page(&site.a, "/x/7").await;
    assert!(is_hit(&get_page(&site.b, "/x/7").await));
    site.purge_b.invalidate_tags(["extension:7"]).await.unwrap();
    assert!(invalidated(&get_page(&site.a, "/x/7").await));
    assert_eq!(site.calls.load(Ordering::SeqCst), 7);
}

/// URL purge: every variant of the URL and HEAD are misses, including the
/// variants not fetched again yet when another one is stored anew.
async fn url_purge_reaches_every_variant(caches: [Cache; 2]) {
    let site = site(caches);
    for lang in ["en", "fr"] {
        assert!(
            send(&site.a, Method::GET, "/v", Some(lang))
                .await
                .outcome
                .stored()
        );
        assert!(is_hit(&send(&site.b, Method::GET, "/v", Some(lang)).await));
    }
    assert!(is_hit(&send(&site.b, Method::HEAD, "/v", Some("en")).await));
    get_page(&site.a, "/p/1").await;

    site.purge_b
        .invalidate_url(&format!("https://{HOST}/v"))
        .await
        .unwrap();
    let en = send(&site.a, Method::GET, "/v", Some("en")).await;
    assert!(!is_hit(&en), "{}", en.outcome);
    assert!(en.body.starts_with("en #"), "{}", en.body);
    // `en` was stored again through a new header list: `fr` stays purged.
    let fr = send(&site.b, Method::GET, "/v", Some("fr")).await;
    assert!(!is_hit(&fr), "{}", fr.outcome);
    assert!(fr.body.starts_with("fr #"));
    assert!(is_hit(&send(&site.b, Method::HEAD, "/v", Some("en")).await));
    assert!(
        is_hit(&get_page(&site.b, "/p/1").await),
        "another URL stays"
    );

    // A page without Vary (read before any header list).
    site.purge_a
        .invalidate_url(&format!("http://{HOST}/p/1"))
        .await
        .unwrap();
    assert!(!is_hit(&send(&site.b, Method::HEAD, "/p/1", None).await));
    assert!(!is_hit(&get_page(&site.b, "/p/1").await));
    assert!(is_hit(&get_page(&site.a, "/p/1").await));
    assert!(site.purge_a.invalidate_url("/relative").await.is_err());
    assert!(site.purge_a.invalidate_url("ftp://host/x").await.is_err());
}

/// The purge service: `PURGE /path` with `Host`, `PURGE` in absolute form,
/// `POST` with JSON; bad requests are told apart.
async fn the_purge_service_purges(caches: [Cache; 2]) {
    let site = site(caches);
    let admin = Router::new().fallback_service(site.purge_a.purge_service());
    let call = |method: &str, uri: &str, host: Option<&str>, body: &str| {
        let admin = admin.clone();
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(host) = host {
            request = request.header(header::HOST, host);
        }
        let request = request.body(Body::from(body.to_owned())).unwrap();
        async move {
            let response = admin.oneshot(request).await.unwrap();
            let status = response.status();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            (status, String::from_utf8(body.to_vec()).unwrap())
        }
    };
    get_page(&site.b, "/p/1").await;
    get_page(&site.b, "/p/2").await;
    get_page(&site.b, "/p/3").await;

    let (status, body) = call("PURGE", "/p/1", Some(HOST), "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(!is_hit(&get_page(&site.b, "/p/1").await));
    assert!(is_hit(&get_page(&site.b, "/p/2").await));

    let (status, _) = call(
        "PURGE",
        &format!("http://{HOST}/p/2"),
        Some("admin:9000"),
        "",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(!is_hit(&get_page(&site.b, "/p/2").await));

    let (status, body) = call("POST", "/", None, r#"{"tags": ["product:3"]}"#).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("product:3"), "{body}");
    assert!(invalidated(&get_page(&site.b, "/p/3").await));
    let (status, _) = call(
        "POST",
        "/",
        None,
        &format!(r#"{{"urls": ["http://{HOST}/p/3"]}}"#),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(!is_hit(&get_page(&site.b, "/p/3").await));

    assert_eq!(
        call("PURGE", "/p/1", None, "").await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        call("POST", "/", None, "{not json").await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        call("POST", "/", None, r#"{"urls": ["/relative"]}"#)
            .await
            .0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        call("POST", "/", None, r#"{"keys": []}"#).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        call("GET", "/p/1", Some(HOST), "").await.0,
        StatusCode::METHOD_NOT_ALLOWED
    );
}

/// A page whose fetch began before one of its tags was invalidated is not
/// stored: it may have been rendered from the data the purge is about.
async fn a_page_fetched_across_an_invalidation_is_not_stored(caches: [Cache; 2]) {
    let site = site(caches);
    let app = site.a.clone();
    let fetch = tokio::spawn(async move { get_page(&app, "/slow").await });
    site.gate.began.notified().await;
    site.purge_b.invalidate_tags(["slow"]).await.unwrap();
    site.gate.release.notify_one();
    assert_eq!(fetch.await.unwrap().body, "slow #1");
    let next = site.a.clone();
    let second = tokio::spawn(async move { get_page(&next, "/slow").await });
    site.gate.began.notified().await;
    site.gate.release.notify_one();
    let second = second.await.unwrap();
    assert_eq!(second.body, "slow #2", "the first was not stored");
    assert!(is_hit(&get_page(&site.b, "/slow").await), "the second was");
}

/// Two caches over `url`'s backend with one prefix no other test uses, as
/// two app instances have.
async fn two_caches(url: &str) -> [Cache; 2] {
    let prefix = common::unique("purge");
    let make = async || {
        let mut config = CacheConfig::from_url(url);
        config.key_prefix = Some(prefix.clone());
        config.build().await.unwrap()
    };
    [make().await, make().await]
}

/// The four checks, each on a fresh pair of caches from `caches`.
macro_rules! on_backend {
    ($module:ident, $cfg:meta, $caches:expr) => {
        #[$cfg]
        mod $module {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn tags_purge_pages_on_every_instance() {
                super::tags_purge_pages_on_every_instance($caches).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn url_purge_reaches_every_variant() {
                super::url_purge_reaches_every_variant($caches).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn the_purge_service_purges() {
                super::the_purge_service_purges($caches).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_page_fetched_across_an_invalidation_is_not_stored() {
                super::a_page_fetched_across_an_invalidation_is_not_stored($caches).await;
            }
        }
    };
}

async fn memory() -> [Cache; 2] {
    let cache = Cache::from_url("memory://").await.unwrap();
    [cache.clone(), cache]
}

on_backend!(memory, cfg(all()), memory().await);
on_backend!(file, cfg(feature = "file"), {
    let dir = tempfile::tempdir().unwrap().keep();
    two_caches(&format!("file://{}", dir.display())).await
});
on_backend!(sqlite, cfg(feature = "sqlite"), {
    let dir = tempfile::tempdir().unwrap().keep();
    two_caches(&format!("sqlite://{}", dir.join("cache.db").display())).await
});
on_backend!(
    redis,
    cfg(feature = "redis"),
    two_caches(&common::server_url("REDIS_URL")).await
);
on_backend!(
    redis_cluster,
    cfg(feature = "redis"),
    two_caches(&common::server_url("REDIS_CLUSTER_URL")).await
);
// Two instances, each with an L1 of its own: a purge on one reaches the
// other's L1 through Redis pub/sub (the only path between the two L1s).
on_backend!(
    tiered_redis,
    cfg(feature = "redis"),
    two_caches(&common::with_option(
        &common::server_url("REDIS_URL"),
        "l1_max_bytes=64MiB"
    ))
    .await
);
on_backend!(
    tiered_redis_cluster,
    cfg(feature = "redis"),
    two_caches(&common::with_option(
        &common::server_url("REDIS_CLUSTER_URL"),
        "l1_max_bytes=64MiB"
    ))
    .await
);
on_backend!(
    memcached_three_servers,
    cfg(feature = "memcached"),
    two_caches(&common::server_url("MEMCACHED_URLS")).await
);
on_backend!(
    postgres,
    cfg(feature = "postgres"),
    on_server_table("DATABASE_URL").await
);
on_backend!(
    mysql,
    cfg(feature = "mysql"),
    on_server_table("MYSQL_URL").await
);

/// Two caches on a table of their own in the database server at `var`.
#[allow(dead_code)]
async fn on_server_table(var: &str) -> [Cache; 2] {
    let table = common::unique("purge").replace('-', "_");
    two_caches(&format!("{}?table={table}", common::server_url(var))).await
}

/// `Surrogate-Key`, kept in responses for a CDN in front.
#[tokio::test]
async fn surrogate_keys_can_be_kept_for_a_cdn() {
    let cache = Cache::from_url("memory://").await.unwrap();
    let layer = cache_page(Duration::from_secs(60))
        .cache(cache.clone())
        .tag_header(TagHeader::surrogate_key().keep());
    let app = Router::new()
        .route("/", get(|| async { ([("surrogate-key", "a b")], "page") }))
        .route_layer(layer);
    let miss = get_page(&app, "/").await;
    assert_eq!(miss.headers["surrogate-key"], "a b");
    let hit = get_page(&app, "/").await;
    assert!(is_hit(&hit));
    assert_eq!(hit.headers["surrogate-key"], "a b");
    cache.invalidate_tags(["b"]).await.unwrap();
    assert!(invalidated(&get_page(&app, "/").await));
}

/// A tag header that cannot be read keeps the page out of the cache (it
/// could not be purged by its tags), and is removed all the same.
#[tokio::test]
async fn unreadable_tags_are_not_stored() {
    let cache = Cache::from_url("memory://").await.unwrap();
    let app = Router::new()
        .route(
            "/",
            get(|| async {
                let value = http::HeaderValue::from_bytes(b"caf\xe9").unwrap();
                (
                    [(http::HeaderName::from_static("cache-tag"), value)],
                    "page",
                )
            }),
        )
        .route_layer(cache_page(Duration::from_secs(60)).cache(cache));
    let first = get_page(&app, "/").await;
    assert!(!first.outcome.stored(), "{}", first.outcome);
    assert!(!first.headers.contains_key("cache-tag"));
    assert_eq!(first.status, StatusCode::OK);
    assert!(!is_hit(&get_page(&app, "/").await));
}

/// On Redis a tagged page's hit reads the page and its tags' versions in one
/// round trip, once the layer has seen the page's tags (a page with `Vary`:
/// two, not three): backend calls counted. A page stored again with other
/// tags is checked against its own tags (the guess read the old ones), and
/// every invalidation still misses.
#[cfg(feature = "redis")]
#[tokio::test]
async fn a_tagged_hit_on_redis_is_one_round_trip() {
    use tower_cache::testing::Instrumented;
    let mut config = CacheConfig::from_url(common::server_url("REDIS_URL"));
    config.key_prefix = Some(common::unique("hint"));
    let redis = config.build().await.unwrap();
    let counted = Arc::new(Instrumented::new(redis.backend().clone(), false));
    let cache = Cache::builder(counted.clone())
        .key_prefix(config.key_prefix.clone().unwrap())
        .build();
    let tag = Arc::new(std::sync::Mutex::new("a"));
    let current = tag.clone();
    let app = Router::new()
        .route(
            "/t",
            get(move || {
                let tag = *current.lock().unwrap();
                async move { ([("cache-tag", tag)], format!("tagged {tag}")) }
            }),
        )
        .route(
            "/varies",
            get(|| async {
                (
                    [("cache-tag", "v"), ("vary", "accept-language")],
                    "tagged and varying",
                )
            }),
        )
        .route_layer(cache_page(Duration::from_secs(300)).cache(cache.clone()));
    // The number of backend calls `path`'s request made, and its reply.
    let calls = async |path: &str| {
        let before = counted.calls();
        let reply = get_page(&app, path).await;
        (counted.calls() - before, reply)
    };
    assert!(!is_hit(&calls("/t").await.1));
    let (first_hit, reply) = calls("/t").await;
    assert!(is_hit(&reply));
    assert_eq!(first_hit, 2, "the page and its header list, then its tags");
    let (hit, reply) = calls("/t").await;
    assert!(is_hit(&reply));
    assert_eq!(hit, 1, "the page, its header list and its tags in one read");
    cache.invalidate_tags(["a"]).await.unwrap();
    let (_, reply) = calls("/t").await;
    assert!(invalidated(&reply), "{:?}", reply.outcome);
    // Stored again, now tagged `b`: the hint still names `a`.
    *tag.lock().unwrap() = "b";
    cache.invalidate_tags(["a"]).await.unwrap();
    let (_, reply) = calls("/t").await;
    assert_eq!(reply.body, "tagged b");
    let (guessed_wrong, reply) = calls("/t").await;
    assert!(is_hit(&reply));
    assert_eq!(guessed_wrong, 2, "the entry's own tags read after");
    let (hit, reply) = calls("/t").await;
    assert!(is_hit(&reply));
    assert_eq!(hit, 1);
    cache.invalidate_tags(["b"]).await.unwrap();
    assert!(invalidated(&calls("/t").await.1));
    // A page with `Vary`: the plain entry and the header list, then the
    // varied entry with its tags' versions.
    assert!(!is_hit(&calls("/varies").await.1));
    let (first_hit, reply) = calls("/varies").await;
    assert!(is_hit(&reply));
    assert_eq!(first_hit, 3);
    let (hit, reply) = calls("/varies").await;
    assert!(is_hit(&reply));
    assert_eq!(hit, 2, "the varied entry and its tags in one read");
    cache.invalidate_tags(["v"]).await.unwrap();
    assert!(invalidated(&calls("/varies").await.1));
}

/// Two instances, each with its own L1 in front of Redis: an L1 hit that
/// trusted its tag versions (found unchanged earlier in the same second,
/// with L1's write count unchanged since) sees a purge made on the other
/// instance, which reaches its L1 through the invalidation channel.
#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_l1_hit_that_trusts_its_tag_versions_sees_a_purge_on_another_instance() {
    let url = common::with_option(&common::server_url("REDIS_URL"), "l1_max_bytes=64MiB");
    let site = site(two_caches(&url).await);
    let second = || std::time::UNIX_EPOCH.elapsed().unwrap().as_secs();
    // Each try on a page of its own; one within a single second is what
    // is under test (across a second the versions are read anyway).
    for page in 1..=20 {
        let path = format!("/p/{page}");
        let began = second();
        get_page(&site.a, &path).await;
        for _ in 0..3 {
            assert!(is_hit(&get_page(&site.b, &path).await));
        }
        site.purge_a
            .invalidate_tags([format!("product:{page}")])
            .await
            .unwrap();
        let after = get_page(&site.b, &path).await;
        assert!(invalidated(&after), "{}", after.outcome);
        if second() == began {
            return;
        }
    }
    panic!("no try within one second");
}
