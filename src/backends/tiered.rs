//! Two-tier caching: an in-process L1 in front of a shared backend, kept
//! coherent across app instances.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use serde::Deserialize;

use crate::backend::{CacheBackend, ClearScope, DynBackend, Expiry};
use crate::backends::MemoryBackend;
use crate::error::{CacheError, ConfigError, Result};
use crate::memo::Memo;
use crate::options::{self, BackendOptions};

#[cfg(feature = "redis")]
mod coherence;
mod l1;

#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use coherence::RedisInvalidation;
use l1::{Invalidation, L1};

#[cfg(feature = "redis")]
use coherence::Channel;

/// Without the `redis` feature there is no invalidation channel: an
/// `Option<Channel>` is always `None`.
#[cfg(not(feature = "redis"))]
#[derive(Debug)]
enum Channel {}

#[cfg(not(feature = "redis"))]
impl Channel {
    fn is_live(&self) -> bool {
        match *self {}
    }

    async fn publish(&self, _: Invalidation<'_>) -> Result<()> {
        match *self {}
    }
}

/// A shared cache with an in-process copy of what this instance reads: an
/// L1 [`MemoryBackend`] bounded by bytes in front of any backend (the L2:
/// Redis, memcached, a database, a directory). URL: any shared backend's
/// URL with `l1_max_bytes` or `l1_ttl`, e.g.
/// `redis://127.0.0.1:6379/0?l1_max_bytes=64MiB`.
///
/// # What it costs
///
/// * **A hit in L1** is a hash lookup and a reference-count increment (the
///   cost of the memory backend), instead of a round trip to the shared
///   store.
/// * **A miss in L1** is one read of the shared tier, which also tells the
///   entry's remaining lifetime
///   ([`get_with_ttl`](CacheBackend::get_with_ttl): `GET` + `PTTL` in one
///   pipeline on Redis, the `t` flag of a meta get on memcached, the
///   `expires` column on a database, the file header); the copy is kept in
///   L1 for that lifetime, at most `l1_ttl`.
/// * **A write** (`set`, `delete`, `clear`, ...) goes to the shared tier,
///   removes the key(s) from L1 and, with [Redis
///   invalidations](RedisInvalidation), announces them to every instance:
///   one more round trip (see below). A write never stores into L1: the
///   next read fills it, with the lifetime the shared tier reports. Storing
///   the written value instead would race with other instances' writes of
///   the same key (this instance could keep its value after the shared
///   tier took theirs), and would trust a lifetime the shared tier may
///   round or cap; a write is rare beside the reads it serves, so one more
///   read after it costs little.
///
/// # How stale a copy can be
///
/// | shared tier | other instances' copies after a write here | option |
/// |---|---|---|
/// | Redis (one server, replicas, Cluster), built from a URL | removed within a millisecond on loopback (the publisher's own process: before the write returns) | `l1_ttl` default 60 s: the bound for writes that bypass this crate (`redis-cli`) and for a failed `PUBLISH` |
/// | memcached, databases, files | kept until their L1 lifetime ends | `l1_ttl` default **1 s**: the staleness bound |
///
/// Writes made through this backend are seen at once by reads through it
/// (and through every tiered backend of the process on the same Redis
/// channel). While the Redis subscriber is down (a restart, a network
/// loss), L1 is cleared and not used: reads go to the shared tier until the
/// subscription is back, so nothing that was invalidated meanwhile is
/// served. See [`RedisInvalidation`] for the details and Redis Cluster.
///
/// With Redis read replicas (a primary and replicas, or a cluster with
/// `read_from_replicas`), a read that follows an invalidation may reach a
/// replica that has not replicated the write yet, and keep the old value
/// in L1 for up to `l1_ttl`. Set `wait_replicas` to the number of replicas
/// (a primary with replicas), so that a write, and so its announcement,
/// waits until every replica has it; or read from the primary.
///
/// # Guarantees
///
/// * A copy in L1 never outlives the shared entry (its lifetime is the
///   entry's remaining lifetime, measured from before the read), nor
///   `l1_ttl`.
/// * A fill never brings back a value removed meanwhile: a delete or a
///   received invalidation that comes while the shared tier is read wins
///   over the fill.
/// * `add`, `incr`, `touch` and `delete_if_equal` run on the shared tier
///   (atomic there, as its docs say) and drop the copies.
/// * An error of the shared tier is an error: L1 never answers for a write
///   that failed, and a failed write drops the key from L1 all the same
///   (the write may have happened).
/// * `clear` clears the whole L1 whatever the prefix, as a shared tier may
///   clear more than the prefix (memcached flushes everything).
///
/// [`name`](CacheBackend::name) is the shared tier's, so the layers treat
/// a tiered Redis as Redis (coalescing across instances on by default).
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use tower_cache::Cache;
/// use tower_cache::backends::{MemoryBackend, TieredBackend};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> tower_cache::Result<()> {
/// // A memory backend stands in for a shared one here.
/// let shared = Arc::new(MemoryBackend::new());
/// let tiered = TieredBackend::builder(shared)
///     .l1_max_bytes(16 * 1024 * 1024)
///     .l1_ttl(Duration::from_secs(5))
///     .build()
///     .await?;
/// let cache = Cache::new(Arc::new(tiered));
/// cache.set("greeting", "hello", tower_cache::Timeout::Default).await?;
/// // The first read fills L1; the second is served from it.
/// assert_eq!(cache.get::<String>("greeting").await?.as_deref(), Some("hello"));
/// assert_eq!(cache.get::<String>("greeting").await?.as_deref(), Some("hello"));
/// # Ok(()) }
/// ```
///
/// Or from a URL, coherent through Redis pub/sub (feature `redis`):
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> tower_cache::Result<()> {
/// let cache = tower_cache::Cache::from_url("redis://127.0.0.1:6379/0?l1_max_bytes=64MiB").await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct TieredBackend {
    inner: Arc<Inner>,
}

struct Inner {
    l2: DynBackend,
    l1: Arc<L1>,
    l1_max_bytes: u64,
    l1_ttl: Duration,
    channel: Option<Channel>,
}

/// Builds a [`TieredBackend`]; see [`TieredBackend::builder`].
#[must_use]
#[derive(Debug, Clone)]
pub struct TieredBackendBuilder {
    l2: DynBackend,
    l1_max_bytes: u64,
    l1_ttl: Option<Duration>,
    #[cfg(feature = "redis")]
    coherence: Option<RedisInvalidation>,
}

impl TieredBackendBuilder {
    /// The most bytes L1 keeps, keys, values and about 430 bytes per entry (and a page's decoded head)
    /// counted (default 64 MiB); L1 evicts by S3-FIFO (see [`MemoryBackend`]).
    pub fn l1_max_bytes(mut self, bytes: u64) -> Self {
        self.l1_max_bytes = bytes;
        self
    }

    /// The longest a copy stays in L1 (it never outlives the shared entry
    /// either). Default: [`TieredBackend::DEFAULT_L1_TTL`] (1 s) without an
    /// invalidation channel, where it is the staleness bound;
    /// [`TieredBackend::DEFAULT_L1_TTL_WITH_CHANNEL`] (60 s) with one.
    pub fn l1_ttl(mut self, ttl: Duration) -> Self {
        self.l1_ttl = Some(ttl);
        self
    }

    /// Keeps the L1s of every app instance coherent through Redis pub/sub.
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub fn coherence(mut self, invalidation: RedisInvalidation) -> Self {
        self.coherence = Some(invalidation);
        self
    }

    /// The backend. With Redis invalidations, joins the process's
    /// subscriber for that Redis and channel (starting it if needed) and
    /// waits for its first attempt to subscribe, at most the Redis connect
    /// and command timeouts; a Redis that is down is no error (L1 stays
    /// unused until the subscription succeeds).
    ///
    /// # Errors
    ///
    /// [`CacheError::Config`] when called outside a tokio runtime with
    /// Redis invalidations.
    pub async fn build(self) -> Result<TieredBackend> {
        let l1 = Arc::new(L1::new(self.l1_max_bytes));
        #[cfg(feature = "redis")]
        let channel = match &self.coherence {
            Some(invalidation) => Some(Channel::join(invalidation, &l1).await?),
            None => None,
        };
        #[cfg(not(feature = "redis"))]
        let channel = None;
        let l1_ttl = self.l1_ttl.unwrap_or(if channel.is_some() {
            TieredBackend::DEFAULT_L1_TTL_WITH_CHANNEL
        } else {
            TieredBackend::DEFAULT_L1_TTL
        });
        Ok(TieredBackend {
            inner: Arc::new(Inner {
                l2: self.l2,
                l1,
                l1_max_bytes: self.l1_max_bytes,
                l1_ttl,
                channel,
            }),
        })
    }
}

/// The `l1_*` options of a shared backend's URL.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct L1Options {
    #[serde(default, deserialize_with = "options::size")]
    l1_max_bytes: Option<u64>,
    #[serde(default, deserialize_with = "options::duration")]
    l1_ttl: Option<Duration>,
    #[serde(default)]
    l1_channel: Option<String>,
}

/// How a tiered backend built from a URL hears of other instances' writes.
#[cfg_attr(
    not(any(
        feature = "memcached",
        feature = "sqlite",
        feature = "postgres",
        feature = "mysql",
        feature = "file"
    )),
    allow(dead_code)
)]
pub(crate) enum Invalidations {
    /// It does not: `l1_ttl` bounds staleness.
    Ttl,
    /// Through this Redis's pub/sub.
    #[cfg(feature = "redis")]
    Redis(crate::backends::RedisBackend),
}

impl L1Options {
    /// The `l1_*` options among a URL's, for `backend` (named in errors):
    /// `None` when there are none, and the L1 stays off.
    pub(crate) fn take(
        options: &mut BackendOptions,
        backend: &'static str,
    ) -> Result<Option<L1Options>> {
        let ours = options.split_fields::<L1Options>();
        if ours.is_empty() {
            return Ok(None);
        }
        ours.parse(backend).map(Some)
    }

    /// `l2` behind an L1 as these options ask, hearing of writes by `via`.
    pub(crate) async fn wrap(self, l2: DynBackend, via: Invalidations) -> Result<DynBackend> {
        let backend = l2.name();
        let mut builder = TieredBackend::builder(l2);
        if let Some(bytes) = self.l1_max_bytes {
            builder = builder.l1_max_bytes(bytes);
        }
        if let Some(ttl) = self.l1_ttl {
            builder = builder.l1_ttl(ttl);
        }
        match via {
            #[cfg(feature = "redis")]
            Invalidations::Redis(redis) => {
                let mut invalidation = RedisInvalidation::new(&redis);
                if let Some(channel) = self.l1_channel {
                    invalidation = invalidation.channel(channel);
                }
                builder = builder.coherence(invalidation);
            }
            Invalidations::Ttl => {
                if let Some(channel) = self.l1_channel {
                    return Err(ConfigError::InvalidOption {
                        backend,
                        option: "l1_channel".into(),
                        value: channel,
                        reason: "only a redis:// cache announces writes on a channel; \
                                 elsewhere l1_ttl bounds how stale an L1 copy may be"
                            .into(),
                    }
                    .into());
                }
            }
        }
        Ok(Arc::new(builder.build().await?))
    }

    /// The error for `l1_*` options on a backend that is itself in
    /// process (`memory://`, `dummy://`).
    pub(crate) fn refuse(scheme: &str) -> CacheError {
        ConfigError::InvalidOption {
            backend: "cache",
            option: "l1_max_bytes".into(),
            value: format!("({scheme}://)"),
            reason: format!(
                "an L1 goes in front of a shared backend (redis, memcached, a database, \
                 a directory); a {scheme}:// cache is already in process"
            ),
        }
        .into()
    }
}

impl TieredBackend {
    /// `l1_ttl` when there is no invalidation channel: the staleness bound
    /// of memcached, database and file caches with an L1.
    pub const DEFAULT_L1_TTL: Duration = Duration::from_secs(1);

    /// `l1_ttl` with Redis invalidations: what bounds staleness only for
    /// writes that bypass the tiered backends (`redis-cli`, another
    /// application) or whose announcement failed.
    pub const DEFAULT_L1_TTL_WITH_CHANNEL: Duration = Duration::from_secs(60);

    /// A builder over the shared tier `l2`, with an L1 of
    /// [`MemoryBackend::DEFAULT_MAX_BYTES`] (64 MiB) and no invalidation
    /// channel.
    pub fn builder(l2: DynBackend) -> TieredBackendBuilder {
        TieredBackendBuilder {
            l2,
            l1_max_bytes: MemoryBackend::DEFAULT_MAX_BYTES,
            l1_ttl: None,
            #[cfg(feature = "redis")]
            coherence: None,
        }
    }

    /// The shared tier.
    pub fn l2(&self) -> &DynBackend {
        &self.inner.l2
    }

    /// The longest a copy stays in L1.
    pub fn l1_ttl(&self) -> Duration {
        self.inner.l1_ttl
    }

    /// Whether L1 is in use now: always without an invalidation channel;
    /// with one, while its subscriber is up (reads go to the shared tier
    /// otherwise). Cheap (one atomic load): fit for a health check.
    pub fn l1_active(&self) -> bool {
        self.inner.channel.as_ref().is_none_or(Channel::is_live)
    }

    /// How long a copy read at `started` may stay in L1: what the shared
    /// tier said was left, less the time since, at most `l1_ttl`.
    fn lifetime(&self, left: Option<Duration>, started: Instant) -> Duration {
        let cap = self.inner.l1_ttl;
        left.map_or(cap, |left| cap.min(left.saturating_sub(started.elapsed())))
    }

    /// After a write to the shared tier that `changed` it (or may have):
    /// drops the copies here, then announces the write to the other
    /// instances. A failed announcement of a successful write is an error;
    /// after a failed write it is only tried, and only while the
    /// subscriber is up.
    async fn wrote<T>(
        &self,
        result: Result<T>,
        what: Invalidation<'_>,
        changed: bool,
    ) -> Result<T> {
        self.inner.l1.invalidate(what).await;
        let Some(channel) = &self.inner.channel else {
            return result;
        };
        if what == Invalidation::Keys(&[]) {
            return result;
        }
        match result {
            Ok(value) if changed => channel.publish(what).await.map(|()| value),
            Ok(value) => Ok(value),
            // With the subscriber down too, Redis is most likely out of
            // reach: a second timeout would only slow the error down.
            Err(err) if unchanged_by(&err) || !channel.is_live() => Err(err),
            Err(err) => {
                if let Err(lost) = channel.publish(what).await {
                    tracing::warn!(error = %lost, "could not announce a failed write to the other L1s");
                }
                Err(err)
            }
        }
    }
}

/// Whether the shared tier refused the operation without changing anything.
fn unchanged_by(err: &CacheError) -> bool {
    matches!(
        err,
        CacheError::MissingKey { .. }
            | CacheError::NotAnInteger { .. }
            | CacheError::Overflow { .. }
    )
}

impl fmt::Debug for TieredBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TieredBackend")
            .field("l2", &self.inner.l2)
            .field("l1_max_bytes", &self.inner.l1_max_bytes)
            .field("l1_ttl", &self.inner.l1_ttl)
            .field("channel", &self.inner.channel)
            .finish()
    }
}

#[async_trait]
impl CacheBackend for TieredBackend {
    fn name(&self) -> &'static str {
        self.inner.l2.name()
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        Ok(self.get_memoized(key).await?.map(|(value, _)| value))
    }

    /// L1's count of writes, while L1 is in use. Every write to the shared
    /// tier is one to L1 too: this instance's drops its copies, another's
    /// comes through the invalidation channel and drops them. While the
    /// channel is down the count is not given (L1 is not read then), and
    /// going down clears L1, which raises the count.
    fn write_count(&self) -> Option<u64> {
        if !self.l1_active() {
            return None;
        }
        self.inner.l1.write_count()
    }

    /// A copy in L1, at once; the shared tier is never read here.
    fn get_now(&self, key: &str) -> Option<Result<Option<(Bytes, Memo)>>> {
        if !self.l1_active() {
            return None;
        }
        self.inner.l1.get_memoized(key).map(|found| Ok(Some(found)))
    }

    /// A copy in L1 comes with its memo; a value read from L2 with none
    /// (its copy in L1, filled now, gets one for the next reads).
    async fn get_memoized(&self, key: &str) -> Result<Option<(Bytes, Memo)>> {
        let Inner { l1, l2, .. } = &*self.inner;
        if self.l1_active() {
            if let Some(found) = l1.get_memoized(key) {
                return Ok(Some(found));
            }
        }
        // The epoch is read before the channel's state, so that a
        // subscriber lost after this check moves it (see `l1`).
        let epoch = l1.epoch(key);
        if !self.l1_active() {
            return l2.get_memoized(key).await;
        }
        let started = Instant::now();
        let Some((value, left)) = l2.get_with_ttl(key).await? else {
            return Ok(None);
        };
        l1.fill(key, value.clone(), self.lifetime(left, started), epoch)
            .await;
        Ok(Some((value, Memo::none())))
    }

    async fn get_with_ttl(&self, key: &str) -> Result<Option<(Bytes, Option<Duration>)>> {
        // A copy's own lifetime is not the shared entry's: ask the shared tier.
        self.inner.l2.get_with_ttl(key).await
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        let Inner { l1, l2, .. } = &*self.inner;
        if !self.l1_active() {
            return l2.get_many(keys).await;
        }
        let mut found = Vec::with_capacity(keys.len());
        let mut missing = Vec::new();
        for (index, key) in keys.iter().enumerate() {
            let copy = l1.get(key);
            if copy.is_none() {
                missing.push(index);
            }
            found.push(copy);
        }
        if missing.is_empty() {
            return Ok(found);
        }
        let wanted: Vec<&str> = missing.iter().map(|&index| keys[index]).collect();
        let epochs: Vec<u64> = wanted.iter().map(|key| l1.epoch(key)).collect();
        if !self.l1_active() {
            let values = l2.get_many(&wanted).await?;
            for (index, value) in missing.into_iter().zip(values) {
                found[index] = value;
            }
            return Ok(found);
        }
        let started = Instant::now();
        let values = l2.get_many_with_ttl(&wanted).await?;
        for ((index, epoch), value) in missing.into_iter().zip(epochs).zip(values) {
            if let Some((value, left)) = value {
                let lifetime = self.lifetime(left, started);
                l1.fill(keys[index], value.clone(), lifetime, epoch).await;
                found[index] = Some(value);
            }
        }
        Ok(found)
    }

    async fn get_many_with_ttl(
        &self,
        keys: &[&str],
    ) -> Result<Vec<Option<(Bytes, Option<Duration>)>>> {
        self.inner.l2.get_many_with_ttl(keys).await
    }

    async fn has_key(&self, key: &str) -> Result<bool> {
        if self.l1_active() && self.inner.l1.get(key).is_some() {
            return Ok(true);
        }
        self.inner.l2.has_key(key).await
    }

    async fn set(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<()> {
        let result = self.inner.l2.set(key, value, expiry).await;
        self.wrote(result, Invalidation::Keys(&[key]), true).await
    }

    async fn add(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<bool> {
        let result = self.inner.l2.add(key, value, expiry).await;
        let added = matches!(result, Ok(true));
        self.wrote(result, Invalidation::Keys(&[key]), added).await
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        let result = self.inner.l2.delete(key).await;
        // Announced even when nothing was deleted: another instance may hold
        // a copy of an entry the shared tier evicted or expired early.
        self.wrote(result, Invalidation::Keys(&[key]), true).await
    }

    async fn delete_if_equal(&self, key: &str, expected: &[u8]) -> Result<bool> {
        let result = self.inner.l2.delete_if_equal(key, expected).await;
        let deleted = matches!(result, Ok(true));
        self.wrote(result, Invalidation::Keys(&[key]), deleted)
            .await
    }

    async fn touch(&self, key: &str, expiry: Expiry) -> Result<bool> {
        // A shorter lifetime must reach the copies, which keep the old one.
        let result = self.inner.l2.touch(key, expiry).await;
        let touched = matches!(result, Ok(true));
        self.wrote(result, Invalidation::Keys(&[key]), touched)
            .await
    }

    async fn incr(&self, key: &str, delta: i64) -> Result<i64> {
        let result = self.inner.l2.incr(key, delta).await;
        self.wrote(result, Invalidation::Keys(&[key]), true).await
    }

    async fn clear(&self, scope: ClearScope<'_>) -> Result<()> {
        let result = self.inner.l2.clear(scope).await;
        self.wrote(result, Invalidation::All, true).await
    }

    async fn set_many(&self, entries: Vec<(String, Bytes)>, expiry: Expiry) -> Result<Vec<String>> {
        let keys: Vec<String> = entries.iter().map(|(key, _)| key.clone()).collect();
        let result = self.inner.l2.set_many(entries, expiry).await;
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        self.wrote(result, Invalidation::Keys(&keys), true).await
    }

    async fn delete_many(&self, keys: &[&str]) -> Result<()> {
        let result = self.inner.l2.delete_many(keys).await;
        self.wrote(result, Invalidation::Keys(keys), true).await
    }

    async fn close(&self) -> Result<()> {
        self.inner.l2.close().await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use tokio::sync::Semaphore;

    use super::*;
    use crate::Cache;

    /// A memory backend that counts reads, can hold reads of the lifetime
    /// until let go, and can fail every call.
    #[derive(Debug)]
    struct Shared {
        store: MemoryBackend,
        reads: AtomicUsize,
        held: AtomicBool,
        gate: Semaphore,
        failing: AtomicBool,
    }

    impl Shared {
        fn new() -> Arc<Shared> {
            Arc::new(Shared {
                store: MemoryBackend::new(),
                reads: AtomicUsize::new(0),
                held: AtomicBool::new(false),
                gate: Semaphore::new(0),
                failing: AtomicBool::new(false),
            })
        }

        fn check(&self) -> Result<&MemoryBackend> {
            if self.failing.load(Ordering::SeqCst) {
                return Err(CacheError::backend(
                    "shared",
                    "any",
                    std::io::Error::other("down"),
                ));
            }
            Ok(&self.store)
        }

        fn reads(&self) -> usize {
            self.reads.load(Ordering::SeqCst)
        }
    }

    #[async_trait]
    impl CacheBackend for Shared {
        fn name(&self) -> &'static str {
            "shared"
        }
        async fn get(&self, key: &str) -> Result<Option<Bytes>> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            self.check()?.get(key).await
        }
        async fn get_with_ttl(&self, key: &str) -> Result<Option<(Bytes, Option<Duration>)>> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            let found = self.check()?.get_with_ttl(key).await;
            if self.held.load(Ordering::SeqCst) {
                self.gate.acquire().await.unwrap().forget();
            }
            found
        }
        async fn set(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<()> {
            self.check()?.set(key, value, expiry).await
        }
        async fn add(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<bool> {
            self.check()?.add(key, value, expiry).await
        }
        async fn delete(&self, key: &str) -> Result<bool> {
            self.check()?.delete(key).await
        }
        async fn touch(&self, key: &str, expiry: Expiry) -> Result<bool> {
            self.check()?.touch(key, expiry).await
        }
        async fn has_key(&self, key: &str) -> Result<bool> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            self.check()?.has_key(key).await
        }
        async fn incr(&self, key: &str, delta: i64) -> Result<i64> {
            self.check()?.incr(key, delta).await
        }
        async fn clear(&self, scope: ClearScope<'_>) -> Result<()> {
            self.check()?.clear(scope).await
        }
    }

    async fn tiered(shared: &Arc<Shared>, l1_ttl: Duration) -> Cache {
        let backend = TieredBackend::builder(shared.clone())
            .l1_ttl(l1_ttl)
            .build()
            .await
            .unwrap();
        assert!(backend.l1_active());
        Cache::new(Arc::new(backend))
    }

    const LONG: Duration = Duration::from_secs(60);

    #[tokio::test]
    async fn a_second_read_is_served_from_l1() {
        let shared = Shared::new();
        let cache = tiered(&shared, LONG).await;
        cache.set("k", &1, LONG).await.unwrap();
        assert_eq!(cache.get::<i64>("k").await.unwrap(), Some(1));
        assert_eq!(shared.reads(), 1);
        assert_eq!(cache.get::<i64>("k").await.unwrap(), Some(1));
        assert!(cache.has_key("k").await.unwrap());
        assert_eq!(shared.reads(), 1, "served from L1");
        // A miss is not kept: it is asked again.
        assert_eq!(cache.get::<i64>("absent").await.unwrap(), None);
        assert_eq!(cache.get::<i64>("absent").await.unwrap(), None);
        assert_eq!(shared.reads(), 3);
        // A write here drops the copy: the next read sees the new value.
        cache.set("k", &2, LONG).await.unwrap();
        assert_eq!(cache.get::<i64>("k").await.unwrap(), Some(2));
        assert_eq!(cache.incr("k", 1).await.unwrap(), 3);
        assert_eq!(cache.get::<i64>("k").await.unwrap(), Some(3));
        assert!(cache.delete("k").await.unwrap());
        assert_eq!(cache.get::<i64>("k").await.unwrap(), None);
    }

    /// `get_now` answers from L1 only: a key L1 lacks is "ask again
    /// later" (`None`), never a miss, and the shared tier is not read.
    #[tokio::test]
    async fn get_now_answers_from_l1_and_never_calls_a_shared_miss_a_miss() {
        let shared = Shared::new();
        let cache = tiered(&shared, LONG).await;
        cache.set("k", &1, LONG).await.unwrap();
        let made = cache.make_key("k").unwrap();
        assert!(cache.backend().get_now(&made).is_none(), "not in L1 yet");
        assert_eq!(shared.reads(), 0);
        let (_, memo) = cache.get_memoized("k").await.unwrap().unwrap();
        assert!(!memo.is_some(), "read from the shared tier: no memo");
        let (bytes, memo) = cache.backend().get_now(&made).unwrap().unwrap().unwrap();
        assert_eq!(&bytes[..], b"1");
        assert!(memo.is_some(), "L1's copy has one");
        assert_eq!(shared.reads(), 1);
        assert!(
            cache
                .backend()
                .get_now(&cache.make_key("absent").unwrap())
                .is_none()
        );
    }

    #[tokio::test]
    async fn get_many_reads_only_what_l1_lacks() {
        let shared = Shared::new();
        let cache = tiered(&shared, LONG).await;
        cache
            .set_many([("a", 1), ("b", 2), ("c", 3)], LONG)
            .await
            .unwrap();
        assert_eq!(cache.get::<i64>("a").await.unwrap(), Some(1));
        let before = shared.reads();
        let found = cache
            .get_many::<i64, _, _>(["a", "b", "c", "d"])
            .await
            .unwrap();
        assert_eq!(found.len(), 3);
        // The default get_many_with_ttl loops over get: b, c and d.
        assert_eq!(shared.reads() - before, 3);
        let before = shared.reads();
        let found = cache.get_many::<i64, _, _>(["a", "b", "c"]).await.unwrap();
        assert_eq!((found["a"], found["b"], found["c"]), (1, 2, 3));
        assert_eq!(shared.reads(), before, "all three from L1");
    }

    #[tokio::test]
    async fn a_copy_never_outlives_the_shared_entry_or_the_cap() {
        let shared = Shared::new();
        let cache = tiered(&shared, LONG).await;
        cache
            .set("short", &1, Duration::from_millis(300))
            .await
            .unwrap();
        assert_eq!(cache.get::<i64>("short").await.unwrap(), Some(1));
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(cache.get::<i64>("short").await.unwrap(), None);

        // With a cap, a write that bypasses the tiered backend is seen once
        // the copy's time is up.
        let capped = tiered(&shared, Duration::from_millis(200)).await;
        capped.set("k", &1, LONG).await.unwrap();
        assert_eq!(capped.get::<i64>("k").await.unwrap(), Some(1));
        shared
            .store
            .set(":1:k", Bytes::from_static(b"2"), None)
            .await
            .unwrap();
        assert_eq!(capped.get::<i64>("k").await.unwrap(), Some(1), "the copy");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(capped.get::<i64>("k").await.unwrap(), Some(2));
    }

    #[tokio::test]
    async fn a_fill_does_not_bring_back_a_value_deleted_meanwhile() {
        let shared = Shared::new();
        let backend = Arc::new(
            TieredBackend::builder(shared.clone())
                .l1_ttl(LONG)
                .build()
                .await
                .unwrap(),
        );
        backend
            .set("k", Bytes::from_static(b"old"), None)
            .await
            .unwrap();
        shared.held.store(true, Ordering::SeqCst);
        let reader = {
            let backend = backend.clone();
            tokio::spawn(async move { backend.get("k").await })
        };
        // The read has the old value in hand and waits to fill L1.
        while shared.reads() == 0 {
            tokio::task::yield_now().await;
        }
        backend.delete("k").await.unwrap();
        shared.held.store(false, Ordering::SeqCst);
        shared.gate.add_permits(1);
        assert_eq!(reader.await.unwrap().unwrap().as_deref(), Some(&b"old"[..]));
        assert_eq!(backend.get("k").await.unwrap(), None, "not resurrected");
    }

    #[tokio::test]
    async fn errors_of_the_shared_tier_are_errors_and_drop_the_copy() {
        let shared = Shared::new();
        let cache = tiered(&shared, LONG).await;
        cache.set("k", &1, LONG).await.unwrap();
        assert_eq!(cache.get::<i64>("k").await.unwrap(), Some(1));
        shared.failing.store(true, Ordering::SeqCst);
        assert!(cache.set("k", &2, LONG).await.is_err());
        // The failed write may have happened: the copy is not served.
        assert!(cache.get::<i64>("k").await.is_err());
        shared.failing.store(false, Ordering::SeqCst);
        assert_eq!(cache.get::<i64>("k").await.unwrap(), Some(1));
    }

    #[tokio::test]
    async fn clear_empties_l1_whatever_the_prefix() {
        let shared = Shared::new();
        let backend: DynBackend = Arc::new(
            TieredBackend::builder(shared.clone())
                .l1_ttl(LONG)
                .build()
                .await
                .unwrap(),
        );
        let a = Cache::builder(backend.clone()).key_prefix("a").build();
        let b = Cache::builder(backend).key_prefix("b").build();
        a.set("k", &1, LONG).await.unwrap();
        b.set("k", &2, LONG).await.unwrap();
        assert_eq!(b.get::<i64>("k").await.unwrap(), Some(2));
        a.clear().await.unwrap();
        let before = shared.reads();
        assert_eq!(a.get::<i64>("k").await.unwrap(), None);
        assert_eq!(b.get::<i64>("k").await.unwrap(), Some(2));
        assert_eq!(shared.reads() - before, 2, "both read from the shared tier");
    }

    #[tokio::test]
    async fn the_name_is_the_shared_tiers() {
        let shared = Shared::new();
        let backend = TieredBackend::builder(shared).build().await.unwrap();
        assert_eq!(backend.name(), "shared");
        assert_eq!(backend.l1_ttl(), TieredBackend::DEFAULT_L1_TTL);
    }
}
