//! Tests every database runs (SQLite, PostgreSQL, MySQL/MariaDB): Django's
//! culling cases, atomicity races, expiry, table creation, corrupt rows.
//!
//! A test file defines `fn url() -> Option<String>` (the database to test)
//! and calls `database_tests!()`.

#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tower_cache::backends::{DatabaseBackend, DatabaseBackendBuilder};
use tower_cache::testing::{concurrent_add, concurrent_incr};
use tower_cache::{Cache, Timeout};

/// The URL in `var`. When it is missing the test fails under CI, and
/// elsewhere says loudly that it is skipped.
pub(crate) fn server_url(var: &str, what: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").as_deref() == Ok("true") => panic!(
            "{var} is not set: the {what} tests need a server. Run ./scripts/test, \
             which starts one, or set {var}."
        ),
        _ => {
            eprintln!(
                "\n*** SKIPPED: {var} is not set, so the {what} tests did not run. \
                 Run ./scripts/test, which starts a server, or set {var}. ***\n"
            );
            None
        }
    }
}

/// [`server_url`] for the conformance suite, which cannot skip: a missing
/// URL is a failure with the way to fix it.
pub(crate) fn required_url(var: &str, what: &str) -> String {
    std::env::var(var)
        .ok()
        .filter(|url| !url.is_empty())
        .unwrap_or_else(|| {
            panic!(
                "{var} is not set: the {what} tests need a server. Run ./scripts/test, \
             which starts one, or set {var}."
            )
        })
}

/// A table name no other test (or run) uses, so tests sharing a server do
/// not cull or clear each other's rows.
pub(crate) fn unique_table() -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "tc_test_{}_{nanos:x}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A backend on a fresh table of the database at `url`.
pub(crate) async fn fresh(
    url: &str,
    configure: impl FnOnce(DatabaseBackendBuilder) -> DatabaseBackendBuilder,
) -> DatabaseBackend {
    // Every test of a binary shares one SQLite file (as processes share
    // one): on a loaded machine a writer may queue behind the others for
    // longer than the 5 s default before SQLite's busy handler gives up.
    let builder = DatabaseBackend::builder(url)
        .table(unique_table())
        .command_timeout(Duration::from_secs(30));
    configure(builder).build().await.expect("backend")
}

fn cache_over(backend: &DatabaseBackend) -> Cache {
    Cache::new(Arc::new(backend.clone()))
}

/// Django's `test_cull`: `MAX_ENTRIES = 30`, 49 sets leave 29.
pub(crate) async fn cull(url: &str) {
    let backend = fresh(url, |b| b.max_entries(30)).await;
    assert_eq!(
        super::perform_cull_test(&cache_over(&backend), 50).await,
        29
    );
}

/// `DBCacheTests.test_zero_cull`: `CULL_FREQUENCY = 0` empties the table when
/// it holds 31 rows, which leaves 18 (not locmem's 19).
pub(crate) async fn zero_cull(url: &str) {
    let backend = fresh(url, |b| b.max_entries(30).cull_frequency(0)).await;
    assert_eq!(
        super::perform_cull_test(&cache_over(&backend), 50).await,
        18
    );
}

/// Django's `test_cull_delete_when_store_empty`: with nothing to cull, a set
/// still stores (Django uses `MAX_ENTRIES = -1`; 0 is the closest bound here).
pub(crate) async fn cull_delete_when_store_empty(url: &str) {
    let backend = fresh(url, |b| b.max_entries(0)).await;
    let cache = cache_over(&backend);
    cache
        .set("force_cull_delete", "value", Timeout::Default)
        .await
        .unwrap();
    assert!(cache.has_key("force_cull_delete").await.unwrap());
}

/// A cull takes the rows whose keys sort first, after the expired ones.
pub(crate) async fn cull_removes_expired_rows_then_the_smallest_keys(url: &str) {
    let backend = fresh(url, |b| b.max_entries(30)).await;
    let cache = cache_over(&backend);
    for i in 0..31 {
        cache
            .set(&format!("k{i:02}"), &i, Timeout::Forever)
            .await
            .unwrap();
    }
    // 31 rows > 30: the next write deletes the 10 smallest keys.
    cache.set("z", &0, Timeout::Forever).await.unwrap();
    for i in 0..31 {
        let expected = i >= 10;
        assert_eq!(
            cache.has_key(&format!("k{i:02}")).await.unwrap(),
            expected,
            "k{i:02}"
        );
    }

    // Expired rows go first: with 25 of 31 rows expired, nothing live is culled.
    let backend = fresh(url, |b| b.max_entries(30)).await;
    let cache = cache_over(&backend);
    for i in 0..25 {
        cache
            .set(&format!("a{i:02}"), &i, Duration::from_millis(300))
            .await
            .unwrap();
    }
    for i in 0..6 {
        cache
            .set(&format!("b{i}"), &i, Timeout::Forever)
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    cache.set("c", &0, Timeout::Forever).await.unwrap();
    for i in 0..6 {
        assert!(cache.has_key(&format!("b{i}")).await.unwrap(), "b{i}");
    }
    assert!(cache.has_key("c").await.unwrap());
}

/// 1,000 concurrent increments of one key end at exactly 1,000.
pub(crate) async fn incr_race(url: &str) {
    let backend = fresh(url, |b| b).await;
    let cache = cache_over(&backend);
    cache.set("counter", &0, Timeout::Forever).await.unwrap();
    assert_eq!(
        concurrent_incr(std::slice::from_ref(&cache), "counter", 1000, 1).await,
        1000
    );
}

/// Of many concurrent `add`s of an absent (or expired) key, one wins.
pub(crate) async fn add_race(url: &str) {
    let backend = fresh(url, |b| b).await;
    let cache = cache_over(&backend);
    for round in 0..10 {
        let key = format!("contested-{round}");
        if round % 2 == 1 {
            // An expired row is there: it may be replaced, by one adder only.
            cache
                .set(&key, &-1, Duration::from_millis(1))
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(
            concurrent_add(std::slice::from_ref(&cache), &key, 20).await,
            1,
            "round {round}"
        );
    }
}

/// `add` keeps a live entry and replaces an expired one, which `get` has
/// not yet removed.
pub(crate) async fn add_replaces_only_expired_entries(url: &str) {
    let backend = fresh(url, |b| b).await;
    let cache = cache_over(&backend);
    cache
        .set("k", "old", Duration::from_millis(300))
        .await
        .unwrap();
    assert!(!cache.add("k", "new", Timeout::Default).await.unwrap());
    assert_eq!(
        cache.get::<String>("k").await.unwrap().as_deref(),
        Some("old")
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    // The expired row is still in the table; add replaces it.
    assert!(cache.add("k", "new", Timeout::Default).await.unwrap());
    assert_eq!(
        cache.get::<String>("k").await.unwrap().as_deref(),
        Some("new")
    );
    assert!(!cache.add("k", "newer", Timeout::Default).await.unwrap());
}

/// Expired rows are misses everywhere, and touch and incr leave them alone.
pub(crate) async fn expired_rows_are_misses(url: &str) {
    let backend = fresh(url, |b| b).await;
    let cache = cache_over(&backend);
    cache
        .set("gone", &1, Duration::from_millis(200))
        .await
        .unwrap();
    cache.set("kept", &2, Timeout::Forever).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!cache.has_key("gone").await.unwrap());
    assert!(!cache.touch("gone", Timeout::Forever).await.unwrap());
    assert!(cache.incr("gone", 1).await.is_err());
    let many = cache.get_many::<i64, _, _>(["gone", "kept"]).await.unwrap();
    assert_eq!(many.len(), 1);
    assert_eq!(many["kept"], 2);
    assert!(!cache.delete("gone").await.unwrap());
    assert_eq!(cache.get::<i64>("gone").await.unwrap(), None);
}

/// `incr` keeps the expiry (Django's database backend resets it).
pub(crate) async fn incr_keeps_the_expiry(url: &str) {
    let backend = fresh(url, |b| b).await;
    let cache = cache_over(&backend);
    cache
        .set("n", &1, Duration::from_millis(500))
        .await
        .unwrap();
    assert_eq!(cache.incr("n", 1).await.unwrap(), 2);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(cache.get::<i64>("n").await.unwrap(), None);
}

/// `create_table` is idempotent; with creation on first use off, a missing
/// table is an error until it is created.
pub(crate) async fn create_table(url: &str) {
    let table = format!("{} with spaces", unique_table());
    let backend = DatabaseBackend::builder(url)
        .table(&table)
        .create_table(false)
        .build()
        .await
        .unwrap();
    let cache = cache_over(&backend);
    let err = cache.set("k", &1, Timeout::Default).await.unwrap_err();
    assert!(
        matches!(err, tower_cache::CacheError::Backend { .. }),
        "{err:?}"
    );
    assert!(backend.create_table().await.unwrap(), "created");
    assert!(!backend.create_table().await.unwrap(), "already exists");
    cache.set("k", &1, Timeout::Default).await.unwrap();
    assert_eq!(cache.get::<i64>("k").await.unwrap(), Some(1));
    assert_eq!(backend.table(), table);
    assert!(backend.create_table_sql()[0].contains(&table));

    // Creation on first use, by two backends at once.
    let shared = unique_table();
    let a = DatabaseBackend::builder(url)
        .table(&shared)
        .build()
        .await
        .unwrap();
    let b = DatabaseBackend::builder(url)
        .table(&shared)
        .build()
        .await
        .unwrap();
    let (a, b) = (cache_over(&a), cache_over(&b));
    let (ra, rb) = tokio::join!(
        a.set("a", &1, Timeout::Default),
        b.set("b", &2, Timeout::Default)
    );
    ra.unwrap();
    rb.unwrap();
    assert_eq!(a.get::<i64>("b").await.unwrap(), Some(2));
}

/// `clear` removes only the keys under the cache's prefix.
pub(crate) async fn clear_is_limited_to_the_prefix(url: &str) {
    let backend = fresh(url, |b| b).await;
    let a = Cache::builder(Arc::new(backend.clone()))
        .key_prefix("a")
        .build();
    let ab = Cache::builder(Arc::new(backend.clone()))
        .key_prefix("ab")
        .build();
    a.set("k", &1, Timeout::Default).await.unwrap();
    ab.set("k", &2, Timeout::Default).await.unwrap();
    a.clear().await.unwrap();
    assert_eq!(a.get::<i64>("k").await.unwrap(), None);
    assert_eq!(ab.get::<i64>("k").await.unwrap(), Some(2));
    // Keys differing only in case are two keys (MySQL's default collations fold case).
    ab.set("K", &3, Timeout::Default).await.unwrap();
    assert_eq!(ab.get::<i64>("k").await.unwrap(), Some(2));
    assert_eq!(ab.get::<i64>("K").await.unwrap(), Some(3));
}

/// `set_many` and `get_many` beyond one statement's worth of keys.
pub(crate) async fn many_keys(url: &str) {
    let backend = fresh(url, |b| b.max_entries(10_000)).await;
    let cache = cache_over(&backend);
    let entries: Vec<(String, usize)> = (0..1200).map(|i| (format!("k{i}"), i)).collect();
    assert!(
        cache
            .set_many(entries.clone(), Timeout::Default)
            .await
            .unwrap()
            .is_empty()
    );
    let keys: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
    let found = cache
        .get_many::<usize, _, _>(keys.iter().chain(["missing"].iter()))
        .await
        .unwrap();
    assert_eq!(found.len(), 1200);
    assert_eq!(found["k1199"], 1199);
    // Duplicate keys in one set_many: the last value wins, as with a loop of sets.
    cache
        .set_many([("dup", 1), ("dup", 2)], Timeout::Default)
        .await
        .unwrap();
    assert_eq!(cache.get::<i64>("dup").await.unwrap(), Some(2));
    cache.delete_many(&keys).await.unwrap();
    assert!(
        cache
            .get_many::<usize, _, _>(&keys)
            .await
            .unwrap()
            .is_empty()
    );
}

/// The backend stores bytes as given: a value that is not what the reader
/// expects is the codec's error, naming the key, not a panic.
pub(crate) async fn garbage_values_are_codec_errors(url: &str) {
    let backend = fresh(url, |b| b).await;
    let cache = cache_over(&backend);
    let garbage: &[u8] = b"\xff\x00\xfe garbage";
    cache
        .set_bytes("g", garbage, Timeout::Default)
        .await
        .unwrap();
    assert_eq!(
        cache.get_bytes("g").await.unwrap().as_deref(),
        Some(garbage)
    );
    let err = cache.get::<String>("g").await.unwrap_err();
    assert!(
        matches!(err, tower_cache::CacheError::Codec { ref key, .. } if key == "g"),
        "{err:?}"
    );
    let err = cache.incr("g", 1).await.unwrap_err();
    assert!(
        matches!(err, tower_cache::CacheError::NotAnInteger { .. }),
        "{err:?}"
    );
}

/// The stored expiry is UTC, whatever the session's time zone: `url_a` and
/// `url_b` reach the same database in two far-apart time zones.
pub(crate) async fn time_zones_do_not_matter(url_a: &str, url_b: &str) {
    let table = unique_table();
    let a = DatabaseBackend::builder(url_a)
        .table(&table)
        .build()
        .await
        .unwrap();
    let b = DatabaseBackend::builder(url_b)
        .table(&table)
        .build()
        .await
        .unwrap();
    let (a, b) = (cache_over(&a), cache_over(&b));
    a.set("short", &1, Duration::from_millis(1500))
        .await
        .unwrap();
    a.set("long", &2, Duration::from_secs(3600)).await.unwrap();
    assert_eq!(b.get::<i64>("short").await.unwrap(), Some(1));
    assert_eq!(b.get::<i64>("long").await.unwrap(), Some(2));
    b.set("from_b", &3, Duration::from_millis(1500))
        .await
        .unwrap();
    assert_eq!(a.get::<i64>("from_b").await.unwrap(), Some(3));
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert_eq!(b.get::<i64>("short").await.unwrap(), None);
    assert_eq!(a.get::<i64>("from_b").await.unwrap(), None);
    assert_eq!(a.get::<i64>("long").await.unwrap(), Some(2));
}

/// `url` with one more query parameter.
pub(crate) fn with_query(url: &str, name: &str, value: &str) -> String {
    let mut parsed = url::Url::parse(url).expect("a URL");
    parsed.query_pairs_mut().append_pair(name, value);
    parsed.into()
}

/// A server that is down (a closed port) and one that accepts connections
/// but never answers: both give an error within the query timeout.
/// `template` is a URL with `{port}` in it.
pub(crate) async fn unreachable_server_fails_in_bounded_time(template: &str) {
    use std::time::Instant;
    let timeout = Duration::from_millis(500);

    // Nothing listens: the port of a listener that is gone.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    // A listener that accepts and then says nothing.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let held = tokio::spawn(async move {
        let mut sockets = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            sockets.push(socket);
        }
    });

    for port in [port, silent_port] {
        let url = template.replace("{port}", &port.to_string());
        let backend = DatabaseBackend::builder(&url)
            .command_timeout(timeout)
            .build()
            .await
            .expect("building does not connect");
        let cache = cache_over(&backend);
        let started = Instant::now();
        let err = cache.get::<i64>("k").await.unwrap_err();
        let took = started.elapsed();
        assert!(
            matches!(
                err,
                tower_cache::CacheError::Timeout { .. } | tower_cache::CacheError::Backend { .. }
            ),
            "{url}: {err:?}"
        );
        assert!(
            took < timeout + Duration::from_millis(500),
            "{url}: took {took:?}"
        );
    }
    held.abort();
}

/// Declares one `#[tokio::test]` per shared database test (all of them
/// when none is named), each reading the URL from the test file's `url()`
/// (skipping loudly outside CI when it is unset).
#[macro_export]
macro_rules! database_tests {
    () => {
        $crate::database_tests!(
            cull,
            zero_cull,
            cull_delete_when_store_empty,
            cull_removes_expired_rows_then_the_smallest_keys,
            incr_race,
            add_race,
            add_replaces_only_expired_entries,
            expired_rows_are_misses,
            incr_keeps_the_expiry,
            create_table,
            clear_is_limited_to_the_prefix,
            many_keys,
            garbage_values_are_codec_errors,
        );
    };
    ($($case:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some(url) = url() else { return };
                support::database::$case(&url).await;
            }
        )*
    };
}

/// Everything a database server runs: the conformance suite on a fresh
/// table per case, the shared database tests, the time-zone test (the URL
/// parameter `$tz` set to each of two far-apart zones) and the outage test
/// (`$unreachable` is a URL with `{port}` in it).
#[macro_export]
macro_rules! server_database_suite {
    (
        var: $var:literal,
        name: $what:literal,
        time_zones: $tz:literal = [$east:literal, $west:literal],
        unreachable: $unreachable:literal $(,)?
    ) => {
        fn url() -> Option<String> {
            support::database::server_url($var, $what)
        }

        async fn backend() -> tower_cache::DynBackend {
            let url = support::database::required_url($var, $what);
            std::sync::Arc::new(support::database::fresh(&url, |b| b).await)
        }

        tower_cache::conformance_suite!(backend);

        $crate::database_tests!();

        #[tokio::test]
        async fn session_time_zones_do_not_matter() {
            let Some(url) = url() else { return };
            support::database::time_zones_do_not_matter(
                &support::database::with_query(&url, $tz, $east),
                &support::database::with_query(&url, $tz, $west),
            )
            .await;
        }

        #[tokio::test]
        async fn an_unreachable_server_fails_in_bounded_time() {
            support::database::unreachable_server_fails_in_bounded_time($unreachable).await;
        }
    };
}
