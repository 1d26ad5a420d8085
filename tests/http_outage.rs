//! The HTTP layers over a shared cache that fails: a route behind
//! `cache_page` keeps answering 200 with the origin's page, in bounded time,
//! while its Redis server or one of its memcached servers is down, and serves
//! hits again once the server is back; a page larger than memcached's item
//! size limit reaches the client whole, uncached. Each test starts its own
//! servers (the redis-server and memcached programs; `./scripts/test`
//! installs them) and stops them by pid.
#![cfg(any(feature = "redis", feature = "memcached"))]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::Path;
use axum::routing::get;
use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use tower::ServiceExt;
use tower_cache::Cache;
use tower_cache::middleware::cache_page;

/// The most a request may take, cache outage or not.
const BOUND: Duration = Duration::from_secs(2);

/// How long a restarted server may take to serve hits again.
const RECOVERY: Duration = Duration::from_secs(10);

/// A route, `/{name}`, behind `cache_page(300 s)` on `cache`, whose origin
/// counts its calls.
struct Site {
    app: Router,
    calls: Arc<AtomicUsize>,
    page: fn(&str) -> Bytes,
}

impl Site {
    fn new(cache: Cache, max_body_size: u64, page: fn(&str) -> Bytes) -> Site {
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let handler = move |Path(name): Path<String>| {
            counter.fetch_add(1, Ordering::SeqCst);
            async move { page(&name) }
        };
        let app = Router::new().route("/{name}", get(handler)).route_layer(
            cache_page(Duration::from_secs(300))
                .max_body_size(max_body_size)
                .cache(cache),
        );
        Site { app, calls, page }
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// GET `/{name}`, which must be answered within [`BOUND`] with 200 and
    /// the origin's page, whole; whether it reached the origin (a miss).
    async fn fetch(&self, name: &str) -> bool {
        let request = Request::get(format!("/{name}"))
            .header(header::HOST, "example.com")
            .body(Body::empty())
            .unwrap();
        let before = self.calls();
        let started = Instant::now();
        let answer = async {
            let response = self.app.clone().oneshot(request).await.unwrap();
            let status = response.status();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            (status, body)
        };
        let (status, body) = tokio::time::timeout(BOUND, answer)
            .await
            .unwrap_or_else(|_| panic!("GET /{name} took more than {BOUND:?}"));
        let elapsed = started.elapsed();
        assert!(elapsed < BOUND, "GET /{name} took {elapsed:?}");
        assert_eq!(status, StatusCode::OK, "GET /{name}");
        assert!(
            body == (self.page)(name),
            "GET /{name}: {} bytes, not the origin's page",
            body.len()
        );
        match self.calls() - before {
            0 => false,
            1 => true,
            n => panic!("GET /{name} called the origin {n} times"),
        }
    }

    async fn expect_hit(&self, name: &str) {
        assert!(!self.fetch(name).await, "/{name}: a hit");
    }

    async fn expect_miss(&self, name: &str) {
        assert!(self.fetch(name).await, "/{name}: a miss");
    }

    /// Requests `/{name}` until one is a hit (the first ones, after a
    /// restart, store it again), for up to [`RECOVERY`].
    async fn recovers(&self, name: &str) {
        let deadline = Instant::now() + RECOVERY;
        while self.fetch(name).await {
            assert!(
                Instant::now() < deadline,
                "/{name} still misses {RECOVERY:?} after the restart"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn small_page(name: &str) -> Bytes {
    Bytes::from(format!("the page {name}"))
}

#[cfg(feature = "redis")]
mod redis {
    use super::common::Server;
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_redis_outage_serves_the_origin_and_hits_resume_after_it() {
        let mut server = Server::redis();
        let url = format!(
            "redis://{}/0?connect_timeout=300ms&command_timeout=300ms",
            server.address()
        );
        let cache = Cache::from_url(&url).await.unwrap();
        let site = Site::new(cache.clone(), 1024 * 1024, small_page);
        site.expect_miss("a").await;
        site.expect_hit("a").await;

        server.stop();
        assert!(
            cache.get_bytes("probe").await.is_err(),
            "the server is down"
        );
        for name in ["a", "a", "b", "b"] {
            site.expect_miss(name).await;
        }

        server.restart();
        site.recovers("a").await;
        let calls = site.calls();
        site.expect_hit("a").await;
        site.recovers("b").await;
        site.expect_hit("b").await;
        assert_eq!(site.calls(), calls + 1, "b was stored once, then hit");
    }
}

#[cfg(feature = "memcached")]
mod memcached {
    use http::{HeaderMap, HeaderValue, Method, Uri};
    use tower_cache::http::key::{VaryHeaders, header_key, page_key, url_hash};

    use super::common::{Server, memcached_over as over};
    use super::*;

    /// The two keys `cache_page` stores `/{name}` under: header list and page.
    fn page_keys(name: &str) -> [String; 2] {
        let mut request = HeaderMap::new();
        request.insert(header::HOST, HeaderValue::from_static("example.com"));
        let uri: Uri = format!("/{name}").parse().unwrap();
        let url = url_hash("http", &uri, &request).unwrap();
        let vary = VaryHeaders::default().hash(&request);
        [
            header_key("", &url, ""),
            page_key("", &Method::GET, &url, &vary, ""),
        ]
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_memcached_down_serves_the_origin_for_its_pages_only() {
        let mut servers: Vec<Server> = (0..3).map(|_| Server::memcached()).collect();
        let (backend, cache) = over(&[&servers[0], &servers[1], &servers[2]]).await;
        let site = Site::new(cache.clone(), 1024 * 1024, small_page);
        let names: Vec<String> = (0..60).map(|i| format!("page{i}")).collect();
        // The layer looks a page without `Vary` up under its page key first,
        // so a page is lost while the server holding that key is down
        // (wherever its header list is). Stop the server of page0's.
        let server_of = |name: &str| {
            let [_, page] = page_keys(name);
            backend
                .server_for(&cache.make_key(&page).unwrap())
                .to_owned()
        };
        let down = servers
            .iter()
            .position(|s| s.address() == server_of("page0"))
            .unwrap();
        let (lost, kept): (Vec<&String>, Vec<&String>) = names
            .iter()
            .partition(|name| server_of(name) == servers[down].address());
        assert!(!kept.is_empty(), "all 60 pages on one server");
        for name in &names {
            site.expect_miss(name).await;
            site.expect_hit(name).await;
        }

        servers[down].stop();
        let calls = site.calls();
        for name in &kept {
            site.expect_hit(name).await;
        }
        assert_eq!(site.calls(), calls, "the other servers' pages still hit");
        for name in lost.iter().chain(&lost) {
            site.expect_miss(name).await;
        }

        servers[down].restart();
        for name in &lost {
            site.recovers(name).await;
        }
        let calls = site.calls();
        for name in &names {
            site.expect_hit(name).await;
        }
        assert_eq!(site.calls(), calls, "every page hits again");
    }

    /// `/big...`: twice memcached's default item size limit (1 MiB, which
    /// `Server::memcached` keeps), under the layer's `max_body_size`; other
    /// names: a small page.
    fn page(name: &str) -> Bytes {
        if !name.starts_with("big") {
            return small_page(name);
        }
        let line = format!("{name} is a long page\n");
        Bytes::from(line.repeat(2 * 1024 * 1024 / line.len() + 1))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_page_over_the_item_size_limit_passes_through_uncached() {
        let server = Server::memcached();
        let (_, cache) = over(&[&server]).await;
        let site = Site::new(cache.clone(), 8 * 1024 * 1024, page);
        assert!(page("big").len() > 2 * 1024 * 1024);

        for _ in 0..3 {
            site.expect_miss("big").await;
        }
        // The layer tried: the header list is stored, the page is not.
        let [list, stored] = page_keys("big");
        assert!(cache.get_bytes(&list).await.unwrap().is_some());
        assert!(cache.get_bytes(&stored).await.unwrap().is_none());
        // The server and the connection are fine: a small page is cached.
        site.expect_miss("small").await;
        site.expect_hit("small").await;
        site.expect_miss("big").await;
    }
}
