//! The memory backend: the conformance suite, plus its own guarantees
//! (atomicity under concurrency, bounds).

use std::sync::Arc;
use std::time::Duration;

use tower_cache::backends::{MemoryBackend, MemoryBackendBuilder};
use tower_cache::testing::{concurrent_add, concurrent_incr};
use tower_cache::{Cache, DynBackend, Timeout};

async fn backend() -> DynBackend {
    Arc::new(MemoryBackend::new())
}

tower_cache::conformance_suite!(backend);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_incr_is_atomic() {
    let cache = Cache::new(backend().await);
    cache.set("counter", &0, Timeout::Forever).await.unwrap();
    assert_eq!(
        concurrent_incr(std::slice::from_ref(&cache), "counter", 100, 100).await,
        10_000
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_add_has_exactly_one_winner() {
    let cache = Cache::new(backend().await);
    for round in 0..20 {
        let key = format!("contested-{round}");
        assert_eq!(
            concurrent_add(std::slice::from_ref(&cache), &key, 50).await,
            1,
            "round {round}"
        );
    }
}

#[tokio::test]
async fn incr_keeps_the_expiry() {
    // Django's test_incr_decr_timeout (LocMemCacheTests).
    let cache = Cache::new(backend().await);
    cache
        .set("n", &1, Duration::from_millis(600))
        .await
        .unwrap();
    assert_eq!(cache.incr("n", 1).await.unwrap(), 2);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(cache.decr("n", 1).await.unwrap(), 1);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(cache.get::<i64>("n").await.unwrap(), None);
}

/// A memory cache built by `builder`, with its backend to look into.
async fn bounded(builder: MemoryBackendBuilder) -> (MemoryBackend, Cache) {
    let memory = builder.build().await.unwrap();
    (memory.clone(), Cache::new(Arc::new(memory)))
}

#[tokio::test]
async fn entry_bound_evicts() {
    let (memory, cache) = bounded(MemoryBackend::builder().max_capacity(100)).await;
    for i in 0..1_000 {
        cache
            .set(&format!("k{i}"), &i, Timeout::Default)
            .await
            .unwrap();
    }
    assert!(
        memory.entry_count() <= 100,
        "{} entries",
        memory.entry_count()
    );
}

/// 1,000 entries (key `key(i)`, `value`) written to a memory cache of
/// 64 KiB: how many it keeps once its evictions have run.
async fn kept_in_64_kib(key: fn(usize) -> String, value: bytes::Bytes) -> u64 {
    let (memory, cache) = bounded(MemoryBackend::builder().max_bytes(64 * 1024)).await;
    for i in 0..1_000 {
        cache
            .set_bytes(&key(i), value.clone(), Timeout::Default)
            .await
            .unwrap();
    }
    memory.entry_count()
}

#[tokio::test]
async fn byte_bound_evicts() {
    let kept = kept_in_64_kib(|i| format!("k{i}"), bytes::Bytes::from(vec![7u8; 1024])).await;
    // Each entry weighs about 1 KiB + key + 64: at most ~60 fit in 64 KiB.
    assert!(kept <= 64, "{kept} entries");
    assert!(kept > 0);
}

/// Attack (issue 12, bug 7): many tiny values under long keys. The byte
/// bound weighs each entry's key and bookkeeping as well as its value:
/// were it the value alone, 1,000 one-byte values (a kilobyte by that
/// measure) would all fit in 64 KiB while their keys alone took 200 KiB.
#[tokio::test]
async fn tiny_values_under_long_keys_are_bounded_by_their_keys_too() {
    let kept = kept_in_64_kib(|i| format!("{i:0>200}"), bytes::Bytes::from_static(b"x")).await;
    // Each weighs at least its 200-byte key and 64 bytes of bookkeeping.
    let most = 64 * 1024 / (200 + 64);
    assert!(
        kept <= most,
        "{kept} entries of a 200-byte key each, at most {most} fit"
    );
    assert!(kept > 0);
}

#[tokio::test]
async fn separate_stores_are_isolated() {
    // Django's test_multiple_caches: different LOCATIONs do not share entries.
    let a = Cache::new(backend().await);
    let b = Cache::new(backend().await);
    a.set("value", &42, Timeout::Default).await.unwrap();
    assert_eq!(b.get::<i64>("value").await.unwrap(), None);
}

#[tokio::test]
async fn clones_share_entries() {
    let memory = MemoryBackend::new();
    let a = Cache::new(Arc::new(memory.clone()));
    let b = Cache::new(Arc::new(memory));
    a.set("value", &42, Timeout::Default).await.unwrap();
    assert_eq!(b.get::<i64>("value").await.unwrap(), Some(42));
}

/// Attack (or just a big site): many large pages in a default memory cache.
/// It is bounded by bytes, not entries: 256 pages of 1 MiB keep at most
/// 64 MiB (about 63 of them), not 256 MiB.
#[tokio::test]
async fn the_default_memory_cache_is_bounded_by_bytes() {
    let memory = MemoryBackend::new();
    let cache = Cache::new(Arc::new(memory.clone()));
    let page = bytes::Bytes::from(vec![b'x'; 1024 * 1024]);
    for i in 0..256 {
        cache
            .set_bytes(&format!("page{i}"), page.clone(), Timeout::Default)
            .await
            .unwrap();
    }
    assert!(
        memory.entry_count() <= 64,
        "{} pages kept",
        memory.entry_count()
    );
    assert!(memory.entry_count() > 0);
}

/// A memo lives with its entry: the next read sees what the first kept, a
/// new value gets an empty one (a decoded form never outlives its bytes),
/// `touch` keeps it (the same bytes), and a remote backend keeps none.
#[tokio::test]
async fn a_memo_lives_and_dies_with_its_entry() {
    let cache = Cache::new(backend().await);
    cache
        .set_bytes("k", &b"1"[..], Timeout::Default)
        .await
        .unwrap();
    let (_, memo) = cache.get_memoized("k").await.unwrap().unwrap();
    assert!(memo.is_some());
    memo.set(1_u8);
    let (_, memo) = cache.get_memoized("k").await.unwrap().unwrap();
    assert_eq!(memo.get::<u8>(), Some(&1));

    cache.touch("k", Timeout::Forever).await.unwrap();
    let (_, memo) = cache.get_memoized("k").await.unwrap().unwrap();
    assert_eq!(memo.get::<u8>(), Some(&1), "touch keeps the same bytes");

    cache
        .set_bytes("k", &b"2"[..], Timeout::Default)
        .await
        .unwrap();
    let (bytes, memo) = cache.get_memoized("k").await.unwrap().unwrap();
    assert_eq!(&bytes[..], b"2");
    assert_eq!(memo.get::<u8>(), None, "a new value has a new memo");

    cache.incr("k", 1).await.unwrap();
    let (_, memo) = cache.get_memoized("k").await.unwrap().unwrap();
    memo.set(3_u8);
    cache.incr("k", 1).await.unwrap();
    let (_, memo) = cache.get_memoized("k").await.unwrap().unwrap();
    assert_eq!(memo.get::<u8>(), None, "incr makes new bytes");

    assert!(cache.get_memoized("absent").await.unwrap().is_none());
    let dummy = Cache::new(Arc::new(tower_cache::backends::DummyBackend));
    assert!(dummy.get_memoized("k").await.unwrap().is_none());
}

/// A page's entry is weighed with the decoded head a hit keeps beside it,
/// so a bound in bytes still bounds what the memos hold.
#[tokio::test]
async fn a_page_weighs_its_decoded_head() {
    use http::{HeaderMap, HeaderValue, StatusCode, header};
    use tower_cache::http::stored::{Freshness, StoredResponse};

    let mut headers = HeaderMap::new();
    for n in 0..8 {
        headers.insert(
            http::HeaderName::try_from(format!("x-header-{n}")).unwrap(),
            HeaderValue::from_static("value"),
        );
    }
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
    let page =
        StoredResponse::encode(StatusCode::OK, &headers, b"body", &Freshness::default()).unwrap();
    let plain = bytes::Bytes::from(vec![b'x'; page.len()]);
    let pages = kept_in_64_kib(|i| format!("p{i}"), page).await;
    let others = kept_in_64_kib(|i| format!("p{i}"), plain).await;
    assert!(
        pages < others,
        "{pages} pages and {others} other values of the same size fit in 64 KiB"
    );
}

#[tokio::test]
async fn every_write_raises_the_write_count_and_a_read_does_not() {
    use tower_cache::{CacheBackend, ClearScope};
    let backend = MemoryBackend::new();
    let clone = backend.clone();
    let count = || backend.write_count().expect("the memory backend counts");
    let forever = None;
    let mut last = count();
    let mut wrote = |what: &str, raised: bool| {
        let now = count();
        assert_eq!(now > last, raised, "{what}");
        assert_eq!(clone.write_count(), Some(now), "clones share the count");
        last = now;
    };
    backend.set("k", "1".into(), forever).await.unwrap();
    wrote("set", true);
    backend.get("k").await.unwrap();
    backend.has_key("k").await.unwrap();
    backend.get_many(&["k", "x"]).await.unwrap();
    wrote("reads", false);
    backend.add("k", "2".into(), forever).await.unwrap();
    wrote("add that loses", true);
    backend.add("a", "2".into(), forever).await.unwrap();
    wrote("add", true);
    backend.incr("k", 1).await.unwrap();
    wrote("incr", true);
    backend.touch("k", forever).await.unwrap();
    wrote("touch", true);
    backend.delete_if_equal("k", b"2").await.unwrap();
    wrote("delete_if_equal", true);
    backend.delete("a").await.unwrap();
    wrote("delete", true);
    backend
        .set_many(vec![("m".into(), "1".into())], forever)
        .await
        .unwrap();
    wrote("set_many", true);
    backend.delete_many(&["m"]).await.unwrap();
    wrote("delete_many", true);
    backend.clear(ClearScope::Prefix("p")).await.unwrap();
    wrote("clear by prefix", true);
    backend.clear(ClearScope::All).await.unwrap();
    wrote("clear", true);
}

/// A value heavier than its shard's share of the bound is not kept, and
/// writing it removes what the key held: a read never returns the value
/// the write replaced.
#[tokio::test]
async fn a_value_heavier_than_the_bound_allows_is_not_kept_and_replaces_the_old_one() {
    let (memory, cache) = bounded(MemoryBackend::builder().max_bytes(64 * 1024)).await;
    cache.set("k", &"small", Timeout::Default).await.unwrap();
    let heavy = bytes::Bytes::from(vec![b'x'; 100 * 1024]);
    cache.set_bytes("k", heavy, Timeout::Default).await.unwrap();
    assert_eq!(cache.get_bytes("k").await.unwrap(), None);
    assert_eq!(memory.entry_count(), 0);
    assert_eq!(memory.weighed_size(), 0);
}

/// Scan resistance (S3-FIFO): an entry read once since it was written
/// survives a flood of entries written once and never read, ten times
/// what the store holds, which would push it out of an LRU.
#[tokio::test]
async fn an_entry_read_again_outlives_a_flood_of_entries_never_read() {
    let (memory, cache) = bounded(MemoryBackend::builder().max_capacity(100)).await;
    cache.set("hot", &1, Timeout::Default).await.unwrap();
    assert_eq!(cache.get::<i64>("hot").await.unwrap(), Some(1));
    // Ten times what the store holds, none of it read.
    for i in 0..1_000 {
        cache
            .set(&format!("once{i}"), &i, Timeout::Default)
            .await
            .unwrap();
    }
    assert_eq!(cache.get::<i64>("hot").await.unwrap(), Some(1));
    assert!(memory.entry_count() <= 100);
    assert!(memory.weighed_size() <= 100);
}
