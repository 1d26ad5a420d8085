//! The HTTP layers over a shared cache that fails: a route behind
//! `cache_page` keeps answering 200 with the origin's page, in bounded time,
//! while its Redis server or one of its memcached servers is down, and serves
//! hits again once the server is back; a page larger than memcached's item
//! size limit reaches the client whole, uncached. Each test starts its own
//! servers (the redis-server and memcached programs; `./scripts/test`
//! installs them) and stops them by pid.
#![cfg(any(feature = "redis", feature = "memcached"))]

mod common;

use bytes::Bytes;
use tower_cache::Cache;

use common::site::{Site, small_page};

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
    use http::{HeaderMap, HeaderValue, Method, Uri, header};
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
