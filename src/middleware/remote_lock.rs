//! Coalescing across instances: app servers that share a cache (Redis,
//! memcached, a database) send one request per page to the origin, not one
//! per server.
//!
//! The request that leads its own process's flight also takes a lock key
//! next to the page key, with the backend's atomic `add`, holding a random
//! token; the lock lives as long as the coalescing wait, so a holder that
//! dies stalls no one for longer. It is released only by its holder, with
//! the backend's compare-and-delete (a Lua script on Redis, a CAS on
//! memcached, one `DELETE ... WHERE value = ?` on databases), once the page
//! is stored or found not storable. A leader that finds the lock taken polls
//! the cache instead, backing off from 10 ms to 200 ms, until the page is
//! there, the lock is gone (it then takes it), or the wait bound passes (it
//! then calls the origin itself). A miss costs one `add` and one
//! compare-and-delete more; a hit costs nothing.

use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;

use super::TARGET;
use crate::cache::Cache;

/// The first and the longest pause between two polls of the cache.
pub(crate) const FIRST_POLL: Duration = Duration::from_millis(10);
pub(crate) const LONGEST_POLL: Duration = Duration::from_millis(200);

/// A lock key held by this process.
#[derive(Debug)]
pub(crate) struct RemoteLock {
    cache: Cache,
    key: String,
    token: Bytes,
    held: bool,
}

/// What taking the lock gave.
pub(crate) enum Took {
    Held(RemoteLock),
    /// Another instance holds it.
    Busy,
    /// The backend failed: go on without it.
    Failed,
}

/// The lock key of a flight key.
pub(crate) fn lock_key(flight_key: &str) -> String {
    format!("{flight_key}.lock")
}

/// A token no other holder has: 128 random bits from the standard
/// library's per-process random keys and a counter.
fn token() -> Bytes {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let random = RandomState::new();
    let a = random.hash_one((n, std::process::id()));
    let b = random.hash_one((a, std::time::SystemTime::now()));
    Bytes::from(format!("{a:016x}{b:016x}"))
}

/// Tries to take the lock `key` for `ttl`.
pub(crate) async fn take(cache: &Cache, key: &str, ttl: Duration) -> Took {
    let token = token();
    match cache.add_bytes(key, token.clone(), ttl).await {
        Ok(true) => Took::Held(RemoteLock {
            cache: cache.clone(),
            key: key.to_owned(),
            token,
            held: true,
        }),
        Ok(false) => Took::Busy,
        Err(error) => {
            tracing::warn!(target: TARGET, key, error = &error as &dyn std::error::Error,
                "could not take the coalescing lock; fetching without it");
            Took::Failed
        }
    }
}

impl RemoteLock {
    /// Releases the lock if this holder still holds it.
    pub(crate) async fn release(mut self) {
        self.held = false;
        release(&self.cache, &self.key, &self.token).await;
    }
}

async fn release(cache: &Cache, key: &str, token: &[u8]) {
    if let Err(error) = cache.delete_if_equal(key, token).await {
        tracing::warn!(target: TARGET, key, error = &error as &dyn std::error::Error,
            "could not release the coalescing lock; it expires by itself");
    }
}

impl Drop for RemoteLock {
    fn drop(&mut self) {
        if !self.held {
            return;
        }
        // Not stored (or given up): release in the background; without a
        // runtime, the lock expires by itself.
        let (cache, key, token) = (self.cache.clone(), self.key.clone(), self.token.clone());
        super::spawn_or_skip("release a coalescing lock", async move {
            release(&cache, &key, &token).await
        });
    }
}

/// Whether the layers coalesce across instances on `cache` by default: on
/// the backends app servers share over the network and that answer a poll
/// fast (Redis, memcached); databases and files say so with the switch.
pub(crate) fn on_by_default(cache: &Cache) -> bool {
    matches!(cache.backend().name(), "redis" | "memcached")
}
