//! An in-process backend on moka's concurrent cache.

use std::future::ready;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use moka::future::Cache as Moka;

/// How keys are hashed: foldhash, seeded at random per process. Every hit
/// hashes its key (a page key is about 140 bytes); moka's default SipHash
/// costs several times as much, and a random seed keeps the buckets
/// unpredictable to clients, who choose the URLs keys are made of.
type KeyHasher = foldhash::quality::RandomState;
use moka::ops::compute::Op;

use serde::Deserialize;

use crate::backend::{
    CacheBackend, ClearScope, Expiry, LONGEST_EXPIRY, apply_incr, finite_lifetime, poll_once,
};
use crate::error::{CacheError, ConfigError, Result};
use crate::http::stored::decoded_head_size;
use crate::memo::Memo;
use crate::options::{self, BackendOptions};

const NAME: &str = "memory";

/// The options of a `memory://` URL.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MemoryOptions {
    /// [`MemoryBackendBuilder::max_capacity`].
    #[serde(default)]
    max_capacity: Option<u64>,
    /// [`MemoryBackendBuilder::max_bytes`]: `67108864`, `64MiB`, `100 kB`.
    #[serde(default, deserialize_with = "options::size")]
    max_bytes: Option<u64>,
}

/// The heap an entry holds beyond its key and value (moka's node, its
/// hash-table slot, deque and timer-wheel entries, the entry itself), for
/// the byte weigher: measured with `cargo bench --bench memory_bound`
/// (about 410 bytes beside the 64 first assumed, for 1 KiB to 16 KiB pages),
/// so that the heap the backend holds stays within about 5% of `max_bytes`;
/// plus 48 for the entry's [`Memo`] slot.
const ENTRY_OVERHEAD: usize = 528;

/// An in-process cache (Django's `LocMemCache`) on [`moka`]'s concurrent,
/// bounded cache. URL: `memory://?max_capacity=10000` or `memory://?max_bytes=64MiB`.
///
/// * Bounded by bytes ([`max_bytes`](MemoryBackendBuilder::max_bytes), default
///   64 MiB: key + value + about 530 bytes of bookkeeping per entry, and for a page the decoded head a hit keeps beside it, so a
///   default cache never grows past about 64 MiB whatever its pages weigh),
///   or by entries ([`max_capacity`](MemoryBackendBuilder::max_capacity));
///   moka evicts by TinyLFU (frequency and recency), not Django's pure LRU.
/// * Per-entry expiry; `get` never returns an expired entry. As in Django,
///   an expired entry is removed when it is next read, and those nobody
///   reads are removed by a sweep at most a minute apart (started by a
///   write). moka's own per-entry expiry is not used: it cost about 300
///   instructions on every read, a sixth of a hit's.
/// * `add`, `incr`, `touch` and `delete_if_equal` are atomic: moka runs them
///   under the key's lock.
/// * Cloning is cheap; clones share the entries. Each `MemoryBackend::new()`
///   is a store of its own (Django's `LOCATION`).
/// * Values are `Bytes`: a hit is a reference-count increment, not a copy.
///
/// ```
/// use std::sync::Arc;
/// use tower_cache::Cache;
/// use tower_cache::backends::MemoryBackend;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> tower_cache::Result<()> {
/// let backend = MemoryBackend::builder().max_bytes(64 * 1024 * 1024).build().await?;
/// let cache = Cache::new(Arc::new(backend));
/// // Or, with the default bound of 64 MiB:
/// let cache = Cache::new(Arc::new(MemoryBackend::new()));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct MemoryBackend {
    entries: Moka<String, Entry, KeyHasher>,
    /// [`CacheBackend::write_count`]: raised after every write, shared by
    /// the clones.
    writes: Arc<AtomicU64>,
    /// When the last sweep of expired entries began (Unix seconds).
    swept: Arc<AtomicU64>,
}

#[derive(Debug, Clone)]
struct Entry {
    value: Bytes,
    expires_at: Option<Instant>,
    /// A decoded form of `value`, kept by its first reader for the next.
    memo: Memo,
}

impl Entry {
    fn new(value: Bytes, expiry: Expiry) -> Entry {
        let expires_at =
            finite_lifetime(expiry, LONGEST_EXPIRY).and_then(|d| Instant::now().checked_add(d));
        Entry {
            value,
            expires_at,
            memo: Memo::new(),
        }
    }

    fn is_live(&self) -> bool {
        self.expires_at.is_none_or(|t| t > Instant::now())
    }

    /// The value with its remaining lifetime (`None`: never expires).
    fn with_ttl(self) -> (Bytes, Option<Duration>) {
        let left = self
            .expires_at
            .map(|t| t.saturating_duration_since(Instant::now()));
        (self.value, left)
    }
}

/// How often the expired entries nobody reads are removed (a sweep of the
/// whole store, in a task of its own, started by a write).
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// Builds a [`MemoryBackend`].
#[must_use]
#[derive(Debug, Clone, Default)]
pub struct MemoryBackendBuilder {
    max_capacity: Option<u64>,
    max_bytes: Option<u64>,
}

impl MemoryBackendBuilder {
    /// The most entries kept, whatever their size, instead of the default
    /// byte bound. Ignored when [`max_bytes`](Self::max_bytes) is set.
    pub fn max_capacity(mut self, entries: u64) -> Self {
        self.max_capacity = Some(entries);
        self
    }

    /// The most bytes kept, counting keys, values and bookkeeping (default
    /// [`DEFAULT_MAX_BYTES`](MemoryBackend::DEFAULT_MAX_BYTES), 64 MiB).
    /// Replaces the entry bound: moka bounds a cache by one measure.
    pub fn max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = Some(bytes);
        self
    }

    /// The backend. Never fails; it returns a `Result` (and is `async`)
    /// as every backend builder's `build()` does.
    pub async fn build(self) -> Result<MemoryBackend> {
        Ok(self.finish())
    }

    pub(crate) fn finish(self) -> MemoryBackend {
        let builder = Moka::builder();
        let entries = match (self.max_bytes, self.max_capacity) {
            (None, Some(entries)) => builder
                .max_capacity(entries)
                .build_with_hasher(KeyHasher::default()),
            (bytes, _) => builder
                // The value holds a page's headers and body: all of it counts,
                // and so does the decoded head a hit keeps beside a page.
                .weigher(|key: &String, entry: &Entry| {
                    let weight = key.len()
                        + entry.value.len()
                        + ENTRY_OVERHEAD
                        + decoded_head_size(&entry.value);
                    u32::try_from(weight).unwrap_or(u32::MAX)
                })
                .max_capacity(bytes.unwrap_or(MemoryBackend::DEFAULT_MAX_BYTES))
                .build_with_hasher(KeyHasher::default()),
        };
        MemoryBackend {
            entries,
            writes: Arc::default(),
            swept: Arc::new(AtomicU64::new(crate::clock::unix_secs())),
        }
    }
}

impl MemoryBackend {
    /// The byte bound when no bound is given: 64 MiB, keys, values (a page's
    /// headers and body) and bookkeeping counted.
    pub const DEFAULT_MAX_BYTES: u64 = 64 * 1024 * 1024;

    /// A store bounded to [`DEFAULT_MAX_BYTES`](Self::DEFAULT_MAX_BYTES).
    pub fn new() -> MemoryBackend {
        MemoryBackendBuilder::default().finish()
    }

    /// A builder.
    pub fn builder() -> MemoryBackendBuilder {
        MemoryBackendBuilder::default()
    }

    /// From URL options (see [`MemoryOptions`]); giving both bounds is an
    /// error.
    pub(crate) fn from_options(options: BackendOptions) -> Result<MemoryBackend> {
        let options: MemoryOptions = options.parse(NAME)?;
        if options.max_capacity.is_some() && options.max_bytes.is_some() {
            return Err(ConfigError::InvalidOption {
                backend: NAME,
                option: "max_bytes".into(),
                value: "(with max_capacity)".into(),
                reason: "give max_capacity (entries) or max_bytes (bytes), not both: \
                         the memory backend is bounded by one measure"
                    .into(),
            }
            .into());
        }
        Ok(MemoryBackendBuilder {
            max_capacity: options.max_capacity,
            max_bytes: options.max_bytes,
        }
        .finish())
    }

    /// How many entries are stored: an estimate, as moka counts lazily.
    pub fn entry_count(&self) -> u64 {
        self.entries.entry_count()
    }

    /// Runs moka's pending housekeeping (evictions, and the removals made
    /// so far) now; useful in tests that check bounds. Expired entries are
    /// removed when read, or by the backend's own sweep, not by moka.
    pub async fn run_pending_tasks(&self) {
        self.entries.run_pending_tasks().await;
    }

    /// The entry under `key` if it has not expired; an expired one is
    /// removed.
    async fn live(&self, key: &str) -> Option<Entry> {
        let entry = self.entries.get(key).await?;
        if entry.is_live() {
            return Some(entry);
        }
        // Boxed: the rare path's future would make every read's larger.
        Box::pin(self.remove_expired(key)).await;
        None
    }

    /// Removes the entry under `key` if it is expired (not one written
    /// since it was found expired).
    async fn remove_expired(&self, key: &str) {
        self.entries
            .entry_by_ref(key)
            .and_compute_with(|existing| {
                ready(match existing {
                    Some(entry) if !entry.value().is_live() => Op::Remove,
                    _ => Op::Nop,
                })
            })
            .await;
    }

    /// Starts a sweep of the expired entries when the last began
    /// [`SWEEP_EVERY`] ago or more: in a task of its own on a Tokio
    /// runtime, else here.
    async fn sweep_when_due(&self) {
        let now = crate::clock::unix_secs();
        let last = self.swept.load(Ordering::Relaxed);
        let due = now.saturating_sub(last) >= SWEEP_EVERY.as_secs()
            && self
                .swept
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok();
        if !due {
            return;
        }
        let store = self.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn(async move { store.sweep().await })),
            Err(_) => store.sweep().await,
        }
    }

    /// Removes every expired entry.
    async fn sweep(&self) {
        let now = Instant::now();
        let expired: Vec<Arc<String>> = self
            .entries
            .iter()
            .filter(|(_, entry)| entry.expires_at.is_some_and(|t| t <= now))
            .map(|(key, _)| key)
            .collect();
        for key in expired {
            self.remove_expired(&key).await;
        }
    }

    /// The live value of `key` and its memo:
    /// [`get_memoized`](CacheBackend::get_memoized) without the boxed
    /// future, for the tiered backend's hits.
    pub(crate) async fn get_live(&self, key: &str) -> Option<(Bytes, Memo)> {
        self.live(key).await.map(|entry| (entry.value, entry.memo))
    }

    /// Drops every entry at once; usable where nothing can be awaited.
    pub(crate) fn invalidate_all(&self) {
        self.entries.invalidate_all();
        self.wrote();
    }

    /// Drops `key` as an expiry or an eviction would, without counting a
    /// write: for tests of what [`write_count`](CacheBackend::write_count)
    /// cannot see.
    #[cfg(test)]
    pub(crate) async fn forget_uncounted(&self, key: &str) {
        self.entries.invalidate(key).await;
    }

    /// Counts a write, once it is visible to reads: a reader that sees the
    /// new count (`Acquire`) then reads what was written.
    fn wrote(&self) {
        self.writes.fetch_add(1, Ordering::Release);
    }
}

impl Default for MemoryBackend {
    fn default() -> MemoryBackend {
        MemoryBackend::new()
    }
}

#[async_trait]
impl CacheBackend for MemoryBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    fn get_now(&self, key: &str) -> Option<Result<Option<(Bytes, Memo)>>> {
        poll_once(self.get_live(key)).map(Ok)
    }

    fn write_count(&self) -> Option<u64> {
        Some(self.writes.load(Ordering::Acquire))
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        Ok(self.live(key).await.map(|entry| entry.value))
    }

    async fn get_memoized(&self, key: &str) -> Result<Option<(Bytes, Memo)>> {
        Ok(self.get_live(key).await)
    }

    async fn get_with_ttl(&self, key: &str) -> Result<Option<(Bytes, Option<Duration>)>> {
        Ok(self.live(key).await.map(Entry::with_ttl))
    }

    async fn get_many_with_ttl(
        &self,
        keys: &[&str],
    ) -> Result<Vec<Option<(Bytes, Option<Duration>)>>> {
        let mut found = Vec::with_capacity(keys.len());
        for key in keys {
            found.push(self.live(key).await.map(Entry::with_ttl));
        }
        Ok(found)
    }

    async fn set(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<()> {
        self.entries
            .insert(key.to_owned(), Entry::new(value, expiry))
            .await;
        self.wrote();
        self.sweep_when_due().await;
        Ok(())
    }

    async fn add(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<bool> {
        let mut stored = false;
        self.entries
            .entry_by_ref(key)
            .and_compute_with(|existing| {
                let live = existing.is_some_and(|e| e.value().is_live());
                stored = !live;
                ready(if live {
                    Op::Nop
                } else {
                    Op::Put(Entry::new(value, expiry))
                })
            })
            .await;
        self.wrote();
        self.sweep_when_due().await;
        Ok(stored)
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        let removed = self.entries.remove(key).await;
        self.wrote();
        Ok(removed.is_some_and(|entry| entry.is_live()))
    }

    async fn delete_if_equal(&self, key: &str, expected: &[u8]) -> Result<bool> {
        let mut deleted = false;
        self.entries
            .entry_by_ref(key)
            .and_compute_with(|existing| {
                deleted = existing.is_some_and(|e| {
                    let entry = e.value();
                    entry.is_live() && entry.value == expected
                });
                ready(if deleted { Op::Remove } else { Op::Nop })
            })
            .await;
        self.wrote();
        Ok(deleted)
    }

    async fn touch(&self, key: &str, expiry: Expiry) -> Result<bool> {
        let mut touched = false;
        self.entries
            .entry_by_ref(key)
            .and_compute_with(|existing| {
                let op = match existing.filter(|e| e.value().is_live()) {
                    Some(e) => {
                        touched = true;
                        // The same bytes: their decoded form stays valid.
                        let Entry { value, memo, .. } = e.into_value();
                        Op::Put(Entry {
                            memo,
                            ..Entry::new(value, expiry)
                        })
                    }
                    None => Op::Nop,
                };
                ready(op)
            })
            .await;
        self.wrote();
        Ok(touched)
    }

    async fn has_key(&self, key: &str) -> Result<bool> {
        Ok(self.live(key).await.is_some())
    }

    async fn incr(&self, key: &str, delta: i64) -> Result<i64> {
        let mut outcome = Err(CacheError::MissingKey {
            key: key.to_owned(),
        });
        self.entries
            .entry_by_ref(key)
            .and_compute_with(|existing| {
                let op = match existing.filter(|e| e.value().is_live()) {
                    None => Op::Nop,
                    Some(e) => {
                        let entry = e.into_value();
                        outcome = apply_incr(key, &entry.value, delta);
                        match outcome {
                            Ok(new) => Op::Put(Entry {
                                value: Bytes::from(new.to_string()),
                                expires_at: entry.expires_at,
                                memo: Memo::new(),
                            }),
                            Err(_) => Op::Nop,
                        }
                    }
                };
                ready(op)
            })
            .await;
        self.wrote();
        outcome
    }

    async fn clear(&self, scope: ClearScope<'_>) -> Result<()> {
        match scope {
            ClearScope::Prefix(prefix) => {
                let doomed: Vec<_> = self
                    .entries
                    .iter()
                    .filter(|(key, _)| key.starts_with(prefix))
                    .map(|(key, _)| key)
                    .collect();
                for key in doomed {
                    self.entries.invalidate(key.as_str()).await;
                }
                self.wrote();
            }
            _ => self.invalidate_all(),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn expired_entries_are_removed_when_read_and_by_a_sweep_a_write_starts() {
        let backend = MemoryBackend::new();
        let soon = Some(Duration::from_millis(30));
        for key in ["read", "unread"] {
            backend
                .set(key, Bytes::from_static(b"v"), soon)
                .await
                .unwrap();
        }
        backend
            .set("kept", Bytes::from_static(b"v"), None)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(60)).await;
        let count = async || {
            backend.run_pending_tasks().await;
            backend.entry_count()
        };
        assert_eq!(count().await, 3);
        assert_eq!(backend.get("read").await.unwrap(), None);
        assert_eq!(count().await, 2, "removed when read");
        // Not due yet: a write starts no sweep.
        backend
            .set("kept", Bytes::from_static(b"w"), None)
            .await
            .unwrap();
        tokio::task::yield_now().await;
        assert_eq!(count().await, 2);
        // Due: the next write starts one, in a task of its own.
        backend.swept.store(0, Ordering::Relaxed);
        backend
            .set("kept", Bytes::from_static(b"x"), None)
            .await
            .unwrap();
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert_eq!(count().await, 1, "the unread one swept");
        assert_eq!(
            backend.get("kept").await.unwrap().as_deref(),
            Some(&b"x"[..])
        );
    }
}
