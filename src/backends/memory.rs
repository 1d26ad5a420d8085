//! An in-process backend on quick_cache's concurrent, sharded cache.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use quick_cache::sync::{Cache as Store, EntryAction, EntryResult};
use quick_cache::{OptionsBuilder, Weighter};
use serde::Deserialize;

use crate::backend::{
    CacheBackend, ClearScope, Expiry, LONGEST_EXPIRY, apply_incr, finite_lifetime,
};
use crate::error::{CacheError, ConfigError, Result};
use crate::http::stored::decoded_head_size;
use crate::memo::Memo;
use crate::options::{self, BackendOptions};

/// How keys are hashed: foldhash, seeded at random per process. Every hit
/// hashes its key (a page key is about 140 bytes); SipHash costs several
/// times as much, and a random seed keeps the buckets unpredictable to
/// clients, who choose the URLs keys are made of.
type KeyHasher = foldhash::quality::RandomState;

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

/// The heap an entry holds beyond its key and value (the store's slot and
/// hash-table index, the entry itself, its [`Memo`] slot), for the byte
/// weigher: measured with `cargo bench --bench memory_bound`, so that the
/// heap the backend holds stays within about 5% of `max_bytes`.
const ENTRY_OVERHEAD: usize = 432;

/// The smallest share of a byte bound one shard of the store holds: a
/// value heavier than its shard's share is not kept, so shards are made
/// no smaller than this (fewer shards for a small bound).
const SHARD_BYTES_AT_LEAST: u64 = 4 * 1024 * 1024;

/// An entry's weight estimate when only the byte bound is known, to size
/// the store's bookkeeping (its "ghost" list of recently evicted keys).
const TYPICAL_ENTRY_BYTES: u64 = 4096;

/// An in-process cache (Django's `LocMemCache`) on [`quick_cache`]'s
/// concurrent, sharded cache. URL: `memory://?max_capacity=10000` or
/// `memory://?max_bytes=64MiB`.
///
/// * Bounded by bytes ([`max_bytes`](MemoryBackendBuilder::max_bytes), default
///   64 MiB: key + value + about 430 bytes of bookkeeping per entry, and for a page the decoded head a hit keeps beside it, so a
///   default cache never grows past about 64 MiB whatever its pages weigh),
///   or by entries ([`max_capacity`](MemoryBackendBuilder::max_capacity)).
///   The bound holds at every write: the store evicts as it inserts, by
///   S3-FIFO (a new entry that is not read again goes first; one read again
///   stays), not Django's pure LRU.
/// * The store is cut into shards (up to four per core), each with its
///   share of the bound, so a value heavier than about 97% of a shard's
///   share (a share is at least 4 MiB, or the whole bound when that is
///   smaller) is not kept: writing it removes the key. Under the default
///   64 MiB, a page of about 4 MiB or more is not kept on a machine of
///   three cores or more (16 shards); raise `max_bytes` to keep larger
///   ones.
/// * Per-entry expiry; `get` never returns an expired entry. As in Django,
///   an expired entry is removed when it is next read, and those nobody
///   reads are removed by a sweep at most a minute apart (started by a
///   write).
/// * A read takes its shard's read lock and copies two reference counts,
///   with no allocation: a [`Cache::get_bytes`](crate::Cache::get_bytes)
///   hit costs about 640 instructions (`scripts/hit-cost`), half a raw
///   moka read.
/// * `add`, `incr`, `touch` and `delete_if_equal` are atomic: each runs
///   under its shard's write lock.
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
    entries: Arc<Store<String, Entry, Bound, KeyHasher>>,
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
        Entry {
            value,
            expires_at: expires_at(expiry),
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

/// When an entry written now with `expiry` expires (`None`: never).
fn expires_at(expiry: Expiry) -> Option<Instant> {
    finite_lifetime(expiry, LONGEST_EXPIRY).and_then(|d| Instant::now().checked_add(d))
}

/// What the store is bounded by, and so how it weighs an entry.
#[derive(Debug, Clone, Copy)]
enum Bound {
    /// Each entry weighs 1.
    Entries,
    /// An entry weighs its key, its value (a page's headers and body), the
    /// decoded head a hit keeps beside a page, and the bookkeeping.
    Bytes,
}

impl Weighter<String, Entry> for Bound {
    fn weight(&self, key: &String, entry: &Entry) -> u64 {
        match self {
            Bound::Entries => 1,
            // A pure function of the key and the value's bytes: the store
            // requires an entry's weight not to change while it is kept.
            Bound::Bytes => {
                (key.len() + entry.value.len() + ENTRY_OVERHEAD + decoded_head_size(&entry.value))
                    as u64
            }
        }
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
    /// Replaces the entry bound: the store is bounded by one measure.
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
        let (bound, capacity, items) = match (self.max_bytes, self.max_capacity) {
            (None, Some(entries)) => (Bound::Entries, entries, entries),
            (bytes, _) => {
                let bytes = bytes.unwrap_or(MemoryBackend::DEFAULT_MAX_BYTES);
                (Bound::Bytes, bytes, bytes / TYPICAL_ENTRY_BYTES)
            }
        };
        let most_shards = std::thread::available_parallelism().map_or(4, |n| n.get() * 4);
        let shards = match bound {
            Bound::Entries => most_shards,
            Bound::Bytes => {
                // The store rounds the count up to a power of two: the
                // largest power of two that leaves each its share.
                let fit = (capacity / SHARD_BYTES_AT_LEAST).max(1);
                most_shards.min(1 << fit.ilog2().min(16))
            }
        };
        let options = OptionsBuilder::new()
            .weight_capacity(capacity.max(1))
            .estimated_items_capacity(usize::try_from(items.max(1)).unwrap_or(usize::MAX))
            .shards(shards)
            .build()
            .expect("every option is set");
        let entries = Store::with_options(options, bound, KeyHasher::default(), Default::default());
        MemoryBackend {
            entries: Arc::new(entries),
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

    /// How many entries are stored (expired ones not yet removed counted).
    pub fn entry_count(&self) -> u64 {
        self.entries.len() as u64
    }

    /// What the entries weigh: their count when bounded by entries, their
    /// bytes with bookkeeping when bounded by bytes. Never above the bound.
    pub fn weighed_size(&self) -> u64 {
        self.entries.weight()
    }

    /// The entry under `key` if it has not expired; an expired one is
    /// removed.
    fn live(&self, key: &str) -> Option<Entry> {
        let entry = self.entries.get(key)?;
        if entry.is_live() {
            return Some(entry);
        }
        self.remove_expired(key);
        None
    }

    /// Removes the entry under `key` if it is expired (not one written
    /// since it was found expired).
    fn remove_expired(&self, key: &str) {
        self.entries.remove_if(key, |entry| !entry.is_live());
    }

    /// Starts a sweep of the expired entries when the last began
    /// [`SWEEP_EVERY`] ago or more: in a task of its own on a Tokio
    /// runtime, else here.
    fn sweep_when_due(&self) {
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
            Ok(runtime) => drop(runtime.spawn(async move { store.sweep() })),
            Err(_) => store.sweep(),
        }
    }

    /// Removes every expired entry, one shard at a time.
    fn sweep(&self) {
        let now = Instant::now();
        self.entries
            .retain(|_, entry| entry.expires_at.is_none_or(|t| t > now));
    }

    /// The live value of `key` and its memo:
    /// [`get_memoized`](CacheBackend::get_memoized) without a future, for
    /// the tiered backend's hits.
    pub(crate) fn get_live(&self, key: &str) -> Option<(Bytes, Memo)> {
        self.live(key).map(|entry| (entry.value, entry.memo))
    }

    /// Drops every entry at once; usable where nothing can be awaited.
    pub(crate) fn invalidate_all(&self) {
        self.entries.clear();
        self.wrote();
    }

    /// Drops `key` as an expiry or an eviction would, without counting a
    /// write: for tests of what [`write_count`](CacheBackend::write_count)
    /// cannot see.
    #[cfg(test)]
    pub(crate) fn forget_uncounted(&self, key: &str) {
        self.entries.remove(key);
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
        Some(Ok(self.get_live(key)))
    }

    fn write_count(&self) -> Option<u64> {
        Some(self.writes.load(Ordering::Acquire))
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        Ok(self.live(key).map(|entry| entry.value))
    }

    async fn get_memoized(&self, key: &str) -> Result<Option<(Bytes, Memo)>> {
        Ok(self.get_live(key))
    }

    async fn get_with_ttl(&self, key: &str) -> Result<Option<(Bytes, Option<Duration>)>> {
        Ok(self.live(key).map(Entry::with_ttl))
    }

    async fn get_many_with_ttl(
        &self,
        keys: &[&str],
    ) -> Result<Vec<Option<(Bytes, Option<Duration>)>>> {
        Ok(keys
            .iter()
            .map(|key| self.live(key).map(Entry::with_ttl))
            .collect())
    }

    async fn set(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<()> {
        self.entries
            .insert(key.to_owned(), Entry::new(value, expiry));
        self.wrote();
        self.sweep_when_due();
        Ok(())
    }

    async fn add(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<bool> {
        let mut fresh = Some(Entry::new(value, expiry));
        let found = self.entries.entry(key, None, |_, entry| {
            if entry.is_live() {
                return EntryAction::Retain(false);
            }
            // Expired: replaced where it lies.
            if let Some(fresh) = fresh.take() {
                *entry = fresh;
            }
            EntryAction::Retain(true)
        });
        let stored = match found {
            EntryResult::Retained(stored) => stored,
            EntryResult::Vacant(slot) => {
                // An error means a `set` filled the slot meanwhile: this
                // add came first, and that write replaced it.
                if let Some(fresh) = fresh {
                    let _ = slot.insert(fresh);
                }
                true
            }
            EntryResult::Removed(..) | EntryResult::Replaced(..) | EntryResult::Timeout => false,
        };
        self.wrote();
        self.sweep_when_due();
        Ok(stored)
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        let removed = self.entries.remove(key);
        self.wrote();
        Ok(removed.is_some_and(|(_, entry)| entry.is_live()))
    }

    async fn delete_if_equal(&self, key: &str, expected: &[u8]) -> Result<bool> {
        let mut deleted = false;
        self.entries.entry(key, None, |_, entry| {
            let live = entry.is_live();
            deleted = live && entry.value == expected;
            if deleted || !live {
                EntryAction::Remove
            } else {
                EntryAction::Retain(())
            }
        });
        self.wrote();
        Ok(deleted)
    }

    async fn touch(&self, key: &str, expiry: Expiry) -> Result<bool> {
        let found = self.entries.entry(key, None, |_, entry| {
            if !entry.is_live() {
                return EntryAction::Remove;
            }
            // The same bytes: their decoded form stays valid.
            entry.expires_at = expires_at(expiry);
            EntryAction::Retain(())
        });
        self.wrote();
        Ok(matches!(found, EntryResult::Retained(())))
    }

    async fn has_key(&self, key: &str) -> Result<bool> {
        Ok(self.live(key).is_some())
    }

    async fn incr(&self, key: &str, delta: i64) -> Result<i64> {
        let mut outcome = Err(CacheError::MissingKey {
            key: key.to_owned(),
        });
        self.entries.entry(key, None, |_, entry| {
            if !entry.is_live() {
                return EntryAction::Remove;
            }
            outcome = apply_incr(key, &entry.value, delta);
            if let Ok(new) = outcome {
                // New bytes: the expiry stays, the memo goes.
                entry.value = Bytes::from(new.to_string());
                entry.memo = Memo::new();
            }
            EntryAction::Retain(())
        });
        self.wrote();
        outcome
    }

    async fn clear(&self, scope: ClearScope<'_>) -> Result<()> {
        match scope {
            ClearScope::Prefix(prefix) => {
                self.entries.retain(|key, _| !key.starts_with(prefix));
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
        let count = async || backend.entry_count();
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
