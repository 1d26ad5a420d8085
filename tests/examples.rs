//! The examples' routers, exercised in process.

#[cfg(feature = "minijinja")]
#[allow(dead_code, unreachable_pub)]
#[path = "../examples/fragments.rs"]
mod fragments_example;

#[cfg(feature = "minijinja")]
mod fragments {
    use std::time::{Duration, Instant};

    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    use tower_cache::Caches;

    use super::fragments_example as example;

    async fn call(
        router: &axum::Router,
        method: &str,
        uri: &str,
    ) -> (StatusCode, String, Duration) {
        let started = Instant::now();
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .body(Body::empty())
            .unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            String::from_utf8(body.to_vec()).unwrap(),
            started.elapsed(),
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cached_list_per_user_header_and_invalidation() {
        let router = example::app(Caches::from_url("memory://").await.unwrap());

        let (status, ada, first) = call(&router, "GET", "/?user=ada@example.com").await;
        assert_eq!(status, StatusCode::OK);
        assert!(ada.contains("Signed in as ada@example.com"), "{ada}");
        assert!(ada.contains("<li>first</li><li>second</li>"), "{ada}");
        assert!(
            first >= example::SLOW_QUERY_FOR_TESTS,
            "the first render loads the list"
        );

        let (_, bob, second) = call(&router, "GET", "/?user=bob@example.com").await;
        assert!(bob.contains("Signed in as bob@example.com"), "{bob}");
        assert!(bob.contains("<li>first</li><li>second</li>"), "{bob}");
        assert!(
            second < example::SLOW_QUERY_FOR_TESTS,
            "the list came from the cache: {second:?}"
        );

        let (status, _, _) = call(&router, "POST", "/objects?name=third").await;
        assert_eq!(status, StatusCode::CREATED);
        let (_, after, _) = call(&router, "GET", "/?user=ada@example.com").await;
        assert!(
            after.contains("<li>third</li>"),
            "invalidation shows the new object: {after}"
        );
    }
}
