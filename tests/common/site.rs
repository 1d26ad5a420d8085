//! A route behind `cache_page` whose origin counts its calls, and the checks
//! every answer must pass while the cache fails: 200, the origin's page,
//! within [`BOUND`].

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
pub const BOUND: Duration = Duration::from_secs(2);

/// How long a restarted server may take to serve hits again.
pub const RECOVERY: Duration = Duration::from_secs(10);

/// A route, `/{name}`, behind `cache_page(300 s)` on `cache`, whose origin
/// counts its calls.
pub struct Site {
    pub app: Router,
    calls: Arc<AtomicUsize>,
    page: fn(&str) -> Bytes,
}

/// The page of `/{name}` when a test has no other: a few bytes naming it.
pub fn small_page(name: &str) -> Bytes {
    Bytes::from(format!("the page {name}"))
}

impl Site {
    pub fn new(cache: Cache, max_body_size: u64, page: fn(&str) -> Bytes) -> Site {
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

    /// The origin's calls so far.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// The page `/{name}` must be answered with.
    pub fn page(&self, name: &str) -> Bytes {
        (self.page)(name)
    }

    /// Why an answer to GET `/{name}` is wrong, if it is: not 200, or not
    /// the origin's page, whole.
    pub fn check(&self, name: &str, status: StatusCode, body: &[u8]) -> Result<(), String> {
        if status != StatusCode::OK {
            return Err(format!("GET /{name}: {status}"));
        }
        if body != self.page(name) {
            return Err(format!(
                "GET /{name}: {} bytes, not the origin's page",
                body.len()
            ));
        }
        Ok(())
    }

    /// GET `/{name}`, which must be answered within [`BOUND`] with 200 and
    /// the origin's page, whole; whether it reached the origin (a miss).
    pub async fn fetch(&self, name: &str) -> bool {
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
        if let Err(wrong) = self.check(name, status, &body) {
            panic!("{wrong}");
        }
        match self.calls() - before {
            0 => false,
            1 => true,
            n => panic!("GET /{name} called the origin {n} times"),
        }
    }

    pub async fn expect_hit(&self, name: &str) {
        assert!(!self.fetch(name).await, "/{name}: a hit");
    }

    pub async fn expect_miss(&self, name: &str) {
        assert!(self.fetch(name).await, "/{name}: a miss");
    }

    /// Requests `/{name}` until one is a hit (the first ones, after a
    /// restart, store it again), for up to [`RECOVERY`].
    pub async fn recovers(&self, name: &str) {
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
