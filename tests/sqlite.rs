//! The database backend on SQLite (embedded, no server): the conformance
//! suite on a database file and in memory, Django's culling cases, races,
//! corrupt rows and URL handling.
#![cfg(feature = "sqlite")]

mod support;

use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::SqlitePool;
use support::database::{fresh, unique_table};
use tower_cache::backends::DatabaseBackend;
use tower_cache::{Cache, CacheBackend, CacheError, DynBackend, Timeout};

/// One database file per test (per test thread), in Cargo's temporary
/// directory for tests, replacing the last run's. Each test has its own
/// tables in it. Sixty tests creating tables in one shared file made
/// SQLite answer "database is locked" at once now and then (a schema
/// change under way), which no busy timeout waits out.
fn database_file() -> String {
    static DIR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("sqlite-tests");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a directory for the test databases");
        dir
    });
    thread_local! {
        static FILE: String = format!("{}.db", support::database::unique_table());
    }
    let path = dir.join(FILE.with(Clone::clone));
    path.to_str().expect("UTF-8 path").to_owned()
}

fn url() -> Option<String> {
    Some(format!("sqlite://{}", database_file()))
}

/// The conformance suite on a database file shared by every case.
mod on_file {
    use super::*;

    async fn backend() -> DynBackend {
        Arc::new(fresh(&url().unwrap(), |b| b).await)
    }

    tower_cache::conformance_suite!(backend);
}

/// The conformance suite on `sqlite::memory:`, a database per case.
mod in_memory {
    use super::*;

    async fn backend() -> DynBackend {
        Arc::new(DatabaseBackend::connect("sqlite::memory:").await.unwrap())
    }

    tower_cache::conformance_suite!(backend);

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn incr_race() {
        support::database::incr_race("sqlite::memory:").await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn add_race() {
        support::database::add_race("sqlite::memory:").await;
    }

    #[tokio::test]
    async fn cull() {
        support::database::cull("sqlite::memory:").await;
    }

    #[tokio::test]
    async fn zero_cull() {
        support::database::zero_cull("sqlite::memory:").await;
    }

    #[tokio::test]
    async fn the_database_lives_as_long_as_the_backend() {
        let cache = Cache::from_url("sqlite::memory:").await.unwrap();
        cache.set("k", &1, Timeout::Forever).await.unwrap();
        let clone = cache.clone();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(clone.get::<i64>("k").await.unwrap(), Some(1));
        // Another backend is another database.
        let other = Cache::from_url("sqlite::memory:").await.unwrap();
        assert_eq!(other.get::<i64>("k").await.unwrap(), None);
    }
}

crate::database_tests!();

async fn raw_pool() -> SqlitePool {
    SqlitePool::connect(&format!("sqlite://{}", database_file()))
        .await
        .unwrap()
}

async fn row_count(pool: &SqlitePool, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT COUNT(*) FROM \"{table}\""))
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn corrupt_rows_are_misses_and_are_removed() {
    let table = unique_table();
    let backend = fresh(&url().unwrap(), |b| b.table(&table)).await;
    let cache = Cache::new(Arc::new(backend));
    cache.set("good", &1, Timeout::Default).await.unwrap();
    let pool = raw_pool().await;
    // SQLite stores whatever it is given: an expiry that is no time, values
    // and expiries of the wrong type.
    for row in [
        "(':1:bad_time', X'31', 'not a time')",
        "(':1:int_value', 42, '2999-01-01 00:00:00.000000')",
        "(':1:int_time', X'31', 12345)",
        "(':1:many_a', X'31', 'garbage')",
        "(':1:many_b', 7.5, '2999-01-01 00:00:00.000000')",
    ] {
        sqlx::query(&format!(
            "INSERT INTO \"{table}\" (cache_key, value, expires) VALUES {row}"
        ))
        .execute(&pool)
        .await
        .unwrap();
    }
    assert_eq!(row_count(&pool, &table).await, 6);

    assert_eq!(cache.get::<i64>("bad_time").await.unwrap(), None);
    assert!(!cache.has_key("int_value").await.unwrap());
    assert_eq!(cache.get_bytes("int_time").await.unwrap(), None);
    let many = cache
        .get_many::<i64, _, _>(["many_a", "many_b", "good"])
        .await
        .unwrap();
    assert_eq!(many.len(), 1);
    assert_eq!(many["good"], 1);
    // Every corrupt row is gone; the good one stays.
    assert_eq!(row_count(&pool, &table).await, 1);
    assert_eq!(cache.get::<i64>("good").await.unwrap(), Some(1));
}

#[tokio::test]
async fn expired_rows_are_removed_by_get() {
    let table = unique_table();
    let backend = fresh(&url().unwrap(), |b| b.table(&table)).await;
    let cache = Cache::new(Arc::new(backend));
    cache
        .set("a", &1, Duration::from_millis(100))
        .await
        .unwrap();
    cache
        .set("b", &2, Duration::from_millis(100))
        .await
        .unwrap();
    cache.set("c", &3, Timeout::Forever).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let pool = raw_pool().await;
    assert_eq!(row_count(&pool, &table).await, 3);
    assert_eq!(cache.get::<i64>("a").await.unwrap(), None);
    assert_eq!(row_count(&pool, &table).await, 2);
    assert_eq!(
        cache.get_many::<i64, _, _>(["b", "c"]).await.unwrap().len(),
        1
    );
    assert_eq!(row_count(&pool, &table).await, 1);
}

#[tokio::test]
async fn schema_and_pragmas() {
    let table = unique_table();
    let backend = fresh(&url().unwrap(), |b| b.table(&table)).await;
    assert_eq!(backend.name(), "sqlite");
    assert!(backend.create_table_sql()[0].starts_with(&format!(
        "CREATE TABLE IF NOT EXISTS \"{table}\" (cache_key VARCHAR(255) NOT NULL PRIMARY KEY, value BLOB NOT NULL, expires DATETIME NOT NULL)"
    )));
    let cache = Cache::new(Arc::new(backend));
    cache.set("k", &1, Duration::from_secs(60)).await.unwrap();
    let pool = raw_pool().await;
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    // Expiry: UTC text with microseconds, about a minute from now.
    let expires: String = sqlx::query_scalar(&format!("SELECT expires FROM \"{table}\""))
        .fetch_one(&pool)
        .await
        .unwrap();
    let utc_in_a_minute: String =
        sqlx::query_scalar("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now', '+60 seconds')")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        expires.len(),
        "2026-01-01 00:00:00.000000".len(),
        "{expires}"
    );
    assert_eq!(
        &expires[..16],
        &utc_in_a_minute[..16],
        "{expires} vs {utc_in_a_minute}"
    );
    let value: Vec<u8> = sqlx::query_scalar(&format!("SELECT value FROM \"{table}\""))
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(value, b"1");
}

#[tokio::test]
async fn urls_and_options() {
    let table = unique_table();
    let cache = Cache::from_url(&format!(
        "sqlite://{}?table={table}&max_entries=5&cull_frequency=0&command_timeout=2s&pool_size=2&mode=rwc",
        database_file()
    ))
    .await
    .unwrap();
    for i in 0..7 {
        cache
            .set(&format!("k{i}"), &i, Timeout::Default)
            .await
            .unwrap();
    }
    // The sixth row made the seventh set empty the table first.
    let pool = raw_pool().await;
    assert_eq!(row_count(&pool, &table).await, 1);

    let err = Cache::from_url("sqlite::memory:?max_entries=lots")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("max_entries"), "{err}");
    // Unknown parameters go to the driver, which names them.
    let err = Cache::from_url("sqlite::memory:?max_entires=5")
        .await
        .unwrap_err();
    let mut message = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    assert!(message.contains("max_entires"), "{message}");
    // Cache-level options stay the cache's.
    let cache = Cache::from_url("sqlite::memory:?timeout=60&key_prefix=site")
        .await
        .unwrap();
    assert_eq!(cache.make_key("k").unwrap(), "site:1:k");
    let err = DatabaseBackend::connect("redis://localhost")
        .await
        .unwrap_err();
    assert!(matches!(err, CacheError::Config(_)), "{err:?}");
}

#[tokio::test]
async fn from_cache_url_builds_the_backend_createcachetable_uses() {
    let table = unique_table();
    let backend = DatabaseBackend::from_cache_url(&format!(
        "sqlite://{}?table={table}&timeout=60",
        database_file()
    ))
    .await
    .unwrap();
    assert_eq!(backend.table(), table);
    assert!(backend.create_table().await.unwrap());
    assert!(!backend.create_table().await.unwrap());
}

/// One name per meaning across backends: `pool_size` (the most connections)
/// and `command_timeout`; the old names are unknown options.
#[tokio::test]
async fn pool_size_and_command_timeout_are_the_only_names() {
    let cache = Cache::from_url("sqlite::memory:?pool_size=1&command_timeout=250ms")
        .await
        .unwrap();
    cache.set("k", &1, Timeout::Default).await.unwrap();
    // (In a SQLite URL's query an unknown name goes to the driver, which
    // refuses it; in `options` it is ours to name.)
    for (name, value) in [("max_connections", "2"), ("query_timeout", "\"2s\"")] {
        let config: tower_cache::CacheConfig = serde_json::from_str(&format!(
            r#"{{"url": "sqlite::memory:", "options": {{"{name}": {value}}}}}"#
        ))
        .unwrap();
        let err = config.build().await.unwrap_err();
        let message = err.to_string();
        assert!(
            matches!(
                err,
                CacheError::Config(tower_cache::ConfigError::UnknownOption { ref option, ref known, .. })
                    if option == name && known.contains(&"pool_size") && known.contains(&"command_timeout")
            ),
            "{message}"
        );
    }
}
