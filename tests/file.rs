//! The file-system backend: the conformance suite, Django's
//! `FileBasedCacheTests` and culling cases, concurrent writers sharing a
//! directory, and damaged files.
#![cfg(feature = "file")]

mod support;

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use tower_cache::backends::FileBackend;
use tower_cache::testing::{concurrent_add, concurrent_delete_if_equal, concurrent_incr};
use tower_cache::{Cache, CacheBackend, CacheError, DynBackend, Timeout};

/// This test binary's directory in Cargo's temporary directory for tests,
/// emptied of the last run's leftovers.
fn tests_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("file-backend-tests");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("tests dir");
        dir
    })
}

/// A fresh directory for one test, removed when the test ends.
fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir_in(tests_dir()).expect("temp dir")
}

/// The conformance suite, each case on a directory of its own (kept until
/// the next run: the suite owns only the backend).
async fn backend() -> DynBackend {
    let dir = temp_dir().keep();
    Arc::new(FileBackend::new(dir.join("cache")))
}

tower_cache::conformance_suite!(backend);

fn cache_in(dir: &Path) -> (FileBackend, Cache) {
    let backend = FileBackend::new(dir);
    (backend.clone(), Cache::new(Arc::new(backend)))
}

fn cache_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.to_string_lossy().ends_with(".djcache"))
        .collect()
}

#[tokio::test]
async fn test_cull() {
    let dir = temp_dir();
    let backend = FileBackend::builder(dir.path())
        .max_entries(30)
        .build()
        .await
        .unwrap();
    assert_eq!(
        support::perform_cull_test(&Cache::new(Arc::new(backend)), 50).await,
        29
    );
    assert_eq!(cache_files(dir.path()).len(), 29);
}

#[tokio::test]
async fn test_zero_cull() {
    let dir = temp_dir();
    let backend = FileBackend::builder(dir.path())
        .max_entries(30)
        .cull_frequency(0)
        .build()
        .await
        .unwrap();
    assert_eq!(
        support::perform_cull_test(&Cache::new(Arc::new(backend)), 50).await,
        19
    );
}

#[tokio::test]
async fn test_cull_delete_when_store_empty() {
    let dir = temp_dir();
    let backend = FileBackend::builder(dir.path())
        .max_entries(0)
        .build()
        .await
        .unwrap();
    let cache = Cache::new(Arc::new(backend));
    cache
        .set("force_cull_delete", "value", Timeout::Default)
        .await
        .unwrap();
    assert!(cache.has_key("force_cull_delete").await.unwrap());
}

#[tokio::test]
async fn test_ignores_non_cache_files() {
    let dir = temp_dir();
    let (_, cache) = cache_in(dir.path());
    cache.set("foo", "bar", Timeout::Default).await.unwrap();
    let other = dir.path().join("not-a-cache-file");
    std::fs::write(&other, "keep me").unwrap();
    std::fs::create_dir(dir.path().join("subdir")).unwrap();
    cache.clear().await.unwrap();
    assert!(other.exists());
    assert!(dir.path().join("subdir").is_dir());
    assert!(cache_files(dir.path()).is_empty());
    // A custom key function clears every cache file, still nothing else.
    cache.set("foo", "bar", Timeout::Default).await.unwrap();
    let custom = Cache::builder(cache.backend().clone())
        .key_function(tower_cache::KeyFunction::new(|key, _, _| key.to_owned()))
        .build();
    custom.set("x", "y", Timeout::Default).await.unwrap();
    custom.clear().await.unwrap();
    assert!(cache_files(dir.path()).is_empty());
    assert!(other.exists());
}

#[tokio::test]
async fn test_clear_does_not_remove_cache_dir() {
    let dir = temp_dir();
    let (_, cache) = cache_in(dir.path());
    cache.set("foo", "bar", Timeout::Default).await.unwrap();
    cache.clear().await.unwrap();
    assert!(dir.path().is_dir());
}

#[tokio::test]
async fn clear_keeps_other_prefixes() {
    let dir = temp_dir();
    let backend: DynBackend = Arc::new(FileBackend::new(dir.path()));
    let a = Cache::builder(backend.clone()).key_prefix("a").build();
    let ab = Cache::builder(backend).key_prefix("ab").build();
    a.set("k", &1, Timeout::Default).await.unwrap();
    ab.set("k", &2, Timeout::Default).await.unwrap();
    a.clear().await.unwrap();
    assert_eq!(a.get::<i64>("k").await.unwrap(), None);
    assert_eq!(ab.get::<i64>("k").await.unwrap(), Some(2));
}

#[tokio::test]
async fn test_creates_cache_dir_if_nonexistent() {
    let dir = temp_dir();
    let cache_dir = dir.path().join("cache");
    let (_, cache) = cache_in(&cache_dir);
    cache.set("foo", "bar", Timeout::Default).await.unwrap();
    std::fs::remove_dir_all(&cache_dir).unwrap();
    assert_eq!(cache.get::<String>("foo").await.unwrap(), None);
    cache.set("foo", "baz", Timeout::Default).await.unwrap();
    assert!(cache_dir.is_dir());
    assert_eq!(
        cache.get::<String>("foo").await.unwrap().as_deref(),
        Some("baz")
    );
    // add, incr's lock and touch recreate it too.
    std::fs::remove_dir_all(&cache_dir).unwrap();
    assert!(cache.add("n", &1, Timeout::Default).await.unwrap());
}

#[cfg(unix)]
#[tokio::test]
async fn test_cache_dir_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let dir = temp_dir();
    let root = dir.path().join("nested");
    let cache_dir = root.join("cache").join("dir");
    let (_, cache) = cache_in(&cache_dir);
    cache.set("foo", "bar", Timeout::Default).await.unwrap();
    for path in [&cache_dir, &root.join("cache"), &root] {
        let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{}", path.display());
    }
    let file = &cache_files(&cache_dir)[0];
    let mode = std::fs::metadata(file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{}", file.display());
}

#[tokio::test]
async fn test_get_ignores_enoent() {
    let dir = temp_dir();
    let (backend, cache) = cache_in(dir.path());
    cache.set("foo", "bar", Timeout::Default).await.unwrap();
    std::fs::remove_file(backend.path_of(&cache.make_key("foo").unwrap())).unwrap();
    assert_eq!(cache.get_or("foo", "baz".to_owned()).await.unwrap(), "baz");
}

#[tokio::test]
async fn test_get_does_not_ignore_non_filenotfound_exceptions() {
    let dir = temp_dir();
    let (backend, cache) = cache_in(dir.path());
    // The key's file is a directory: reading it fails with an error that is
    // not "not found", which is reported.
    std::fs::create_dir_all(backend.path_of(&cache.make_key("foo").unwrap())).unwrap();
    let err = cache.get::<String>("foo").await.unwrap_err();
    assert!(
        matches!(
            err,
            CacheError::Backend {
                backend: "file",
                operation: "get",
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn test_empty_cache_file_considered_expired() {
    let dir = temp_dir();
    let (backend, cache) = cache_in(dir.path());
    let path = backend.path_of(&cache.make_key("foo").unwrap());
    std::fs::write(&path, b"").unwrap();
    assert!(!cache.has_key("foo").await.unwrap());
    assert!(!path.exists(), "the empty file is removed");
}

#[tokio::test]
async fn corrupt_and_truncated_files_are_misses_and_are_removed() {
    let dir = temp_dir();
    let (backend, cache) = cache_in(dir.path());
    cache
        .set("whole", "a value long enough to cut", Timeout::Default)
        .await
        .unwrap();
    let whole = backend.path_of(&cache.make_key("whole").unwrap());
    let bytes = std::fs::read(&whole).unwrap();

    let damaged: Vec<(&str, Vec<u8>)> = vec![
        ("garbage", b"\x80\x04\x95 not a cache file at all".to_vec()),
        ("truncated", bytes[..bytes.len() / 2].to_vec()),
        ("header_only", bytes[..10].to_vec()),
        ("flipped", {
            let mut b = bytes.clone();
            let last = b.len() - 8;
            b[last] ^= 0x40;
            b
        }),
    ];
    for (key, content) in &damaged {
        let path = backend.path_of(&cache.make_key(key).unwrap());
        std::fs::write(&path, content).unwrap();
    }
    for (key, _) in &damaged {
        let path = backend.path_of(&cache.make_key(key).unwrap());
        assert_eq!(cache.get_bytes(key).await.unwrap(), None, "{key}");
        assert!(!path.exists(), "{key}: the damaged file is removed");
    }
    // The other operations treat damage as absence too.
    for (key, content) in &damaged {
        std::fs::write(backend.path_of(&cache.make_key(key).unwrap()), content).unwrap();
    }
    assert!(!cache.has_key("garbage").await.unwrap());
    assert!(matches!(
        cache.incr("truncated", 1).await,
        Err(CacheError::MissingKey { .. })
    ));
    assert!(!cache.touch("header_only", Timeout::Default).await.unwrap());
    assert!(cache.add("flipped", "new", Timeout::Default).await.unwrap());
    assert_eq!(
        cache.get::<String>("flipped").await.unwrap().as_deref(),
        Some("new")
    );
    assert_eq!(
        cache.get::<String>("whole").await.unwrap().as_deref(),
        Some("a value long enough to cut")
    );
}

#[tokio::test]
async fn expired_files_are_removed() {
    let dir = temp_dir();
    let (backend, cache) = cache_in(dir.path());
    cache
        .set("short", &1, Duration::from_millis(100))
        .await
        .unwrap();
    let path = backend.path_of(&cache.make_key("short").unwrap());
    assert!(path.exists());
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(cache.get::<i64>("short").await.unwrap(), None);
    assert!(!path.exists());
    // delete of an expired file removes it, reporting nothing deleted.
    cache
        .set("short", &1, Duration::from_millis(50))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!cache.delete("short").await.unwrap());
    assert!(!path.exists());
}

#[tokio::test]
async fn file_names_are_djangos_and_no_temp_files_remain() {
    let dir = temp_dir();
    let (backend, cache) = cache_in(dir.path());
    cache.set("hello", "world", Timeout::Default).await.unwrap();
    assert_eq!(
        backend.path_of(":1:hello"),
        dir.path().join("95fb86ddcbbe84c9287b42f53f2181fb.djcache")
    );
    assert!(
        dir.path()
            .join("95fb86ddcbbe84c9287b42f53f2181fb.djcache")
            .exists()
    );
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names
            .iter()
            .all(|n| n.ends_with(".djcache") || n == "tower-cache.lock"),
        "{names:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_incr_add_and_delete_if_equal_are_atomic() {
    let dir = temp_dir();
    // Two backends on one directory: as two processes would share it.
    let (_, one) = cache_in(dir.path());
    let (_, two) = cache_in(dir.path());
    one.set("counter", &0, Timeout::Forever).await.unwrap();
    let (a, b) = tokio::join!(
        concurrent_incr(std::slice::from_ref(&one), "counter", 25, 4),
        concurrent_incr(std::slice::from_ref(&two), "counter", 25, 4)
    );
    assert_eq!(a.max(b), 200);
    assert_eq!(one.get::<i64>("counter").await.unwrap(), Some(200));
    for round in 0..5 {
        let key = format!("contested-{round}");
        let (x, y) = tokio::join!(
            concurrent_add(std::slice::from_ref(&one), &key, 10),
            concurrent_add(std::slice::from_ref(&two), &key, 10)
        );
        assert_eq!(x + y, 1, "round {round}");
        let token = one.get_bytes(&key).await.unwrap().unwrap();
        let (x, y) = tokio::join!(
            concurrent_delete_if_equal(std::slice::from_ref(&one), &key, &token, 10),
            concurrent_delete_if_equal(std::slice::from_ref(&two), &key, &token, 10)
        );
        assert_eq!(x + y, 1, "round {round}");
    }
}

/// Many writers and readers on a few keys, through two backends on one
/// directory: every read is a miss or one writer's whole value.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_never_expose_half_a_value() {
    let dir = temp_dir();
    let backends = [FileBackend::new(dir.path()), FileBackend::new(dir.path())];
    let keys = [":1:a", ":1:b", ":1:c"];
    let value_of = |writer: usize, round: usize| -> Bytes {
        // Large values, each byte naming its writer and round, so a torn or
        // mixed read cannot pass for a whole one.
        let byte = (writer * 31 + round) as u8;
        Bytes::from(vec![byte; 64 * 1024 + writer * 1000 + round])
    };
    let mut tasks = Vec::new();
    for writer in 0..6 {
        let backend = backends[writer % 2].clone();
        tasks.push(tokio::spawn(async move {
            for round in 0..30 {
                let key = keys[(writer + round) % keys.len()];
                backend
                    .set(key, value_of(writer, round), None)
                    .await
                    .unwrap();
                if round % 10 == 9 {
                    backend.delete(key).await.unwrap();
                }
            }
            0
        }));
    }
    for reader in 0..4 {
        let backend = backends[reader % 2].clone();
        tasks.push(tokio::spawn(async move {
            let mut hits = 0;
            for i in 0..150 {
                let key = keys[(reader + i) % keys.len()];
                if let Some(value) = backend.get(key).await.unwrap() {
                    let whole = (0..6).any(|w| (0..30).any(|r| value == value_of(w, r)));
                    assert!(whole, "a read returned {} bytes of no writer", value.len());
                    hits += 1;
                }
            }
            hits
        }));
    }
    let mut hits = 0;
    for task in tasks {
        hits += task.await.unwrap();
    }
    assert!(hits > 0, "the readers saw no value at all");
    // Every file left is whole; no temporary file is left behind.
    for path in std::fs::read_dir(dir.path()).unwrap() {
        let name = path.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            name.ends_with(".djcache") || name == "tower-cache.lock",
            "{name}"
        );
    }
}

#[tokio::test]
async fn urls_and_options() {
    let dir = temp_dir();
    let url = format!(
        "file://{}?max_entries=5&cull_frequency=0",
        dir.path().display()
    );
    let cache = Cache::from_url(&url).await.unwrap();
    for i in 0..7 {
        cache
            .set(&format!("k{i}"), &i, Timeout::Default)
            .await
            .unwrap();
    }
    // Five files made the sixth set empty the directory first.
    assert_eq!(cache_files(dir.path()).len(), 2);
    let err = Cache::from_url("file://relative/dir").await.unwrap_err();
    assert!(err.to_string().contains("file:///absolute/dir"), "{err}");
    let err = Cache::from_url(&format!("file://{}?table=x", dir.path().display()))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("table"), "{err}");
    assert_eq!(cache.backend().name(), "file");
}
