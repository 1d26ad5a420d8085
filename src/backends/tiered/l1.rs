//! The in-process tier: a memory store bounded by bytes, and the
//! invalidation epochs that keep a copy read from the shared tier from
//! coming back after its key was invalidated.
//!
//! # The fill rule
//!
//! A read that misses in L1 reads the key's epoch, then the shared tier,
//! then stores the copy and reads the epoch again: the copy stays only if
//! the epoch did not move. An invalidation moves the epoch *before* it
//! removes the key. So whichever order the two run in, a copy read before
//! an invalidation is gone after it: either the fill sees the new epoch and
//! removes its own copy, or the invalidation's removal comes after the
//! copy was stored.
//!
//! Epochs are striped by key (64 stripes), so that an invalidation of one
//! key rarely costs a concurrent fill of another its copy.

use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;

use crate::backend::CacheBackend;
use crate::backends::MemoryBackend;
use crate::memo::Memo;

/// How many epochs the keys are spread over.
const STRIPES: usize = 64;

/// What an invalidation removes from L1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Invalidation<'a> {
    /// These keys.
    Keys(&'a [&'a str]),
    /// Everything: a `clear` (whatever its scope: a shared tier may clear
    /// more than the prefix it is given, as memcached does), or a channel
    /// that was down.
    All,
}

/// The L1 of one tiered backend.
#[derive(Debug)]
pub(super) struct L1 {
    entries: MemoryBackend,
    epochs: [AtomicU64; STRIPES],
    hasher: RandomState,
}

impl L1 {
    /// An empty L1 of at most `max_bytes` (keys, values and bookkeeping).
    pub(super) fn new(max_bytes: u64) -> L1 {
        L1 {
            entries: MemoryBackend::builder().max_bytes(max_bytes).finish(),
            epochs: std::array::from_fn(|_| AtomicU64::new(0)),
            hasher: RandomState::new(),
        }
    }

    fn stripe(&self, key: &str) -> &AtomicU64 {
        // The remainder is below STRIPES, so the cast cannot truncate.
        #[allow(clippy::cast_possible_truncation)]
        let index = (self.hasher.hash_one(key) % STRIPES as u64) as usize;
        &self.epochs[index]
    }

    /// The live copy of `key`.
    pub(super) fn get(&self, key: &str) -> Option<Bytes> {
        self.get_memoized(key).map(|(value, _)| value)
    }

    /// The live copy of `key`, with its memo.
    pub(super) fn get_memoized(&self, key: &str) -> Option<(Bytes, Memo)> {
        self.entries.get_live(key)
    }

    /// The count of writes to this L1 (see [`CacheBackend::write_count`]).
    pub(super) fn write_count(&self) -> Option<u64> {
        self.entries.write_count()
    }

    /// The epoch of `key`, to read before the shared tier is.
    pub(super) fn epoch(&self, key: &str) -> u64 {
        self.stripe(key).load(Ordering::SeqCst)
    }

    /// Keeps `value` for `lifetime` unless `key` was invalidated since its
    /// epoch was `epoch` (see the module docs).
    pub(super) async fn fill(&self, key: &str, value: Bytes, lifetime: Duration, epoch: u64) {
        let stripe = self.stripe(key);
        if lifetime.is_zero() || stripe.load(Ordering::SeqCst) != epoch {
            return;
        }
        // The memory backend never fails.
        let _ = self.entries.set(key, value, Some(lifetime)).await;
        if stripe.load(Ordering::SeqCst) != epoch {
            let _ = self.entries.delete(key).await;
        }
    }

    /// Removes what `what` names, moving the epochs first.
    pub(super) async fn invalidate(&self, what: Invalidation<'_>) {
        match what {
            Invalidation::Keys(keys) => {
                for key in keys {
                    self.stripe(key).fetch_add(1, Ordering::SeqCst);
                }
                for key in keys {
                    let _ = self.entries.delete(key).await;
                }
            }
            Invalidation::All => self.invalidate_all(),
        }
    }

    /// Removes everything, at once (it awaits nothing, so a task being
    /// dropped can call it).
    pub(super) fn invalidate_all(&self) {
        for epoch in &self.epochs {
            epoch.fetch_add(1, Ordering::SeqCst);
        }
        self.entries.invalidate_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[tokio::test]
    async fn a_fill_after_an_invalidation_is_dropped() {
        let l1 = L1::new(1 << 20);
        let epoch = l1.epoch("k");
        l1.invalidate(Invalidation::Keys(&["k"])).await;
        l1.fill("k", Bytes::from_static(b"old"), SECOND, epoch)
            .await;
        assert_eq!(l1.get("k"), None);
        // A fill that read its epoch after the invalidation stays.
        let epoch = l1.epoch("k");
        l1.fill("k", Bytes::from_static(b"new"), SECOND, epoch)
            .await;
        assert_eq!(l1.get("k").as_deref(), Some(&b"new"[..]));
        // Clearing moves every epoch.
        let epoch = l1.epoch("k");
        l1.invalidate(Invalidation::All).await;
        assert_eq!(l1.get("k"), None);
        l1.fill("k", Bytes::from_static(b"old"), SECOND, epoch)
            .await;
        assert_eq!(l1.get("k"), None);
    }

    #[tokio::test]
    async fn a_zero_lifetime_keeps_nothing() {
        let l1 = L1::new(1 << 20);
        let epoch = l1.epoch("k");
        l1.fill("k", Bytes::from_static(b"v"), Duration::ZERO, epoch)
            .await;
        assert_eq!(l1.get("k"), None);
    }
}
