//! Compression at rest (`compress_min_bytes`) against real servers: the
//! conformance suite through compressed Redis, memcached and SQLite (with
//! the smallest threshold, so that most values of the suite are
//! compressed) and through a compressed Redis behind an L1; what the server
//! holds; and the URL options' errors. Needs `./scripts/test` (REDIS_URL,
//! MEMCACHED_URL).
#![cfg(all(
    feature = "zstd",
    feature = "redis",
    feature = "memcached",
    feature = "sqlite"
))]

mod common;

use bytes::Bytes;
use common::{backend_from_url, server_url, unique, with_option};
use tower_cache::{Cache, DynBackend, Timeout};

/// The backend of `url` with values of 64 bytes and more compressed.
async fn compressed_from(url: &str) -> DynBackend {
    backend_from_url(&with_option(url, "compress_min_bytes=64")).await
}

mod redis {
    use super::*;

    async fn backend() -> DynBackend {
        compressed_from(&server_url("REDIS_URL")).await
    }

    tower_cache::conformance_suite!(backend);
}

mod memcached {
    use super::*;

    async fn backend() -> DynBackend {
        compressed_from(&server_url("MEMCACHED_URL")).await
    }

    tower_cache::conformance_suite!(backend, global_clear);
}

mod sqlite {
    use super::*;

    /// One database file per test thread (see tests/sqlite.rs for why).
    async fn backend() -> DynBackend {
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("compressed-sqlite");
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join(format!("{}.db", unique("cache")));
        compressed_from(&format!("sqlite://{}", file.display())).await
    }

    tower_cache::conformance_suite!(backend);
}

mod redis_behind_an_l1 {
    use super::*;

    async fn backend() -> DynBackend {
        compressed_from(&with_option(&server_url("REDIS_URL"), "l1_max_bytes=8MiB")).await
    }

    tower_cache::conformance_suite!(backend);
}

/// A page goes to the server compressed and comes back whole; a reader
/// without compression sees the envelope, and a value it writes is read
/// as it is.
#[tokio::test]
async fn the_server_holds_the_compressed_form() {
    let url = server_url("REDIS_URL");
    let compressed = Cache::from_url(&with_option(&url, "compress_min_bytes=1KiB"))
        .await
        .unwrap();
    let plain = Cache::from_url(&url).await.unwrap();
    let key = unique("page");
    let page = Bytes::from("<tr><td>the same row</td></tr>\n".repeat(200));
    compressed
        .set_bytes(&key, page.clone(), Timeout::Default)
        .await
        .unwrap();
    let stored = plain.get_bytes(&key).await.unwrap().unwrap();
    assert!(stored.starts_with(b"\0tcz\x01"));
    assert!(
        stored.len() * 20 < page.len(),
        "{} bytes stored for {}",
        stored.len(),
        page.len()
    );
    assert_eq!(compressed.get_bytes(&key).await.unwrap().unwrap(), page);
    // Below the threshold, and from a client that does not compress.
    compressed
        .set_bytes(&key, Bytes::from_static(b"short"), Timeout::Default)
        .await
        .unwrap();
    assert_eq!(plain.get_bytes(&key).await.unwrap().unwrap(), "short");
    plain
        .set_bytes(&key, page.clone(), Timeout::Default)
        .await
        .unwrap();
    assert_eq!(compressed.get_bytes(&key).await.unwrap().unwrap(), page);
    plain.delete(&key).await.unwrap();
}

#[tokio::test]
async fn compression_options_are_checked() {
    let redis = server_url("REDIS_URL");
    for (url, needle) in [
        (
            "memory://?compress_min_bytes=1KiB".to_owned(),
            "shared backends",
        ),
        (
            "dummy://?compress_min_bytes=1KiB".to_owned(),
            "shared backends",
        ),
        (
            with_option(&redis, "compress_min_bytes=10"),
            "at least 64 bytes",
        ),
        (
            with_option(&redis, "compress_min_bytes=lots"),
            "compress_min_bytes",
        ),
        (
            with_option(&redis, "compress_min_bytes=1KiB&compress_level=40"),
            "zstd level",
        ),
        (
            with_option(&redis, "compress_level=5"),
            "needs compress_min_bytes",
        ),
        (with_option(&redis, "compress_typo=5"), "compress_min_bytes"),
    ] {
        let err = Cache::from_url(&url).await.unwrap_err();
        assert!(err.to_string().contains(needle), "{url}: {err}");
    }
}
