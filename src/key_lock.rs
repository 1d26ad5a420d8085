//! [`KeyLocks`]: one async lock per key, made on demand and dropped with its
//! last holder, so that concurrent computations of one key's value in one
//! process run one at a time (`Cache::get_or_set`'s single flight).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OwnedMutexGuard;

/// Locks by key. The table holds only keys that someone holds or waits for.
#[derive(Debug, Default)]
pub(crate) struct KeyLocks {
    table: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// A held key lock; dropping it (also by cancellation) lets the next waiter
/// in, and removes the key from the table when nobody else wants it.
#[derive(Debug)]
pub(crate) struct KeyGuard<'a> {
    locks: &'a KeyLocks,
    key: String,
    guard: Option<OwnedMutexGuard<()>>,
}

impl KeyLocks {
    /// Waits for the lock of `key`.
    pub(crate) async fn lock(&self, key: &str) -> KeyGuard<'_> {
        let lock = self
            .table
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key.to_owned())
            .or_default()
            .clone();
        // Made before the wait, so a waiter cancelled here still cleans up.
        let mut held = KeyGuard {
            locks: self,
            key: key.to_owned(),
            guard: None,
        };
        held.guard = Some(lock.lock_owned().await);
        held
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.table.lock().unwrap().len()
    }
}

impl Drop for KeyGuard<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut table = self.locks.table.lock().unwrap_or_else(|e| e.into_inner());
        // Only the table's own reference left: nobody holds or waits.
        if table
            .get(&self.key)
            .is_some_and(|lock| Arc::strong_count(lock) == 1)
        {
            table.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Locks with `k` held, and a task waiting for it.
    async fn held_and_waiting() -> (
        &'static KeyLocks,
        KeyGuard<'static>,
        tokio::task::JoinHandle<()>,
    ) {
        let locks: &'static KeyLocks = Box::leak(Box::default());
        let first = locks.lock("k").await;
        let waiting = tokio::spawn(async move {
            let _second = locks.lock("k").await;
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        (locks, first, waiting)
    }

    #[tokio::test]
    async fn one_holder_at_a_time_and_the_table_empties() {
        let (locks, first, waiting) = held_and_waiting().await;
        assert!(!waiting.is_finished(), "the second waits");
        let _other = locks.lock("other").await; // another key does not
        drop(first);
        waiting.await.unwrap();
        drop(_other);
        assert_eq!(locks.len(), 0);
    }

    #[tokio::test]
    async fn a_cancelled_waiter_leaves_nothing() {
        let (locks, first, waiting) = held_and_waiting().await;
        waiting.abort();
        let _ = waiting.await;
        drop(first);
        assert_eq!(locks.len(), 0);
    }
}
