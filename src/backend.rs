//! The storage contract every backend implements.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::Result;
use crate::memo::Memo;

/// A shared, type-erased backend: what [`Cache`](crate::Cache) holds.
pub type DynBackend = Arc<dyn CacheBackend>;

/// How long a backend keeps an entry: `None` never expires, `Some(d)` expires
/// `d` after the write.
///
/// [`Cache`](crate::Cache) never passes `Some(Duration::ZERO)`: Django's "do not
/// keep" timeouts are turned into deletes before they reach a backend, so a
/// backend only ever sees a positive lifetime.
pub type Expiry = Option<Duration>;

/// The longest lifetime the built-in backends keep as a lifetime: a longer
/// one is stored as "never expires" (Redis refuses expiry times that
/// overflow its clock, `Instant` arithmetic can overflow on some platforms,
/// and no cache needs one). memcached has a shorter limit of its own.
pub(crate) const LONGEST_EXPIRY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// `expiry` as the lifetime to store: `None` ("never expires") for `None`
/// and for lifetimes longer than `longest`.
pub(crate) fn finite_lifetime(expiry: Expiry, longest: Duration) -> Option<Duration> {
    expiry.filter(|lifetime| *lifetime <= longest)
}

/// Which entries [`CacheBackend::clear`] removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClearScope<'a> {
    /// Every entry the backend stores.
    All,
    /// Only the entries whose key starts with this prefix (the cache's
    /// `key_prefix:`), so that caches sharing a server do not wipe each
    /// other. A backend that cannot select keys by prefix clears everything
    /// and says so in its docs.
    Prefix(&'a str),
}

/// A cache store: bytes in, bytes out, under keys that are already made.
///
/// Backends know nothing of key prefixes, versions, validation, default
/// timeouts or serialization: [`Cache`](crate::Cache) does all of that once,
/// in front of every backend, so a backend is only storage.
///
/// The trait is object safe; it is used as [`DynBackend`] (`Arc<dyn CacheBackend>`).
///
/// # Contract
///
/// * Keys are at most [`MAX_KEY_LENGTH`](crate::MAX_KEY_LENGTH) bytes and contain
///   no control characters or white space.
/// * An expired entry is never returned, counted by `has_key`, touched or
///   incremented: it behaves as absent.
/// * `add` is atomic where the store allows it: of many concurrent `add`s of an
///   absent key, exactly one returns `true`. An expired entry may be replaced.
/// * `incr` parses the stored value as a decimal integer (ASCII, optional
///   leading `-`), adds the delta and stores the result as decimal text,
///   keeping the entry's expiry. It fails with
///   [`CacheError::MissingKey`](crate::CacheError::MissingKey) (no entry is
///   created) or [`CacheError::NotAnInteger`](crate::CacheError::NotAnInteger).
///   It is atomic where the store allows it; backends document where it is not.
/// * `delete_if_equal` compares the live value with the expected bytes and
///   deletes the entry only if they are equal, in one atomic step on every
///   built-in backend: of concurrent `delete_if_equal`s of one entry, at most
///   one returns `true`, and an entry replaced meanwhile (by `set`, or by an
///   `add` after the old entry expired) is never deleted by a caller that saw
///   the old value. An expired entry never matches. The default
///   implementation, for backends of other crates, is *not* atomic (see the
///   method).
/// * [`Expiry`] is never zero (see its docs).
/// * The `*_many` methods have default implementations that loop over the
///   single-key ones; a backend that can do them in one round trip overrides them.
/// * Errors from the store are [`CacheError::Backend`](crate::CacheError::Backend)
///   (or `Timeout`), never panics.
///
/// # Writing a backend
///
/// ```
/// use std::collections::HashMap;
/// use std::sync::Mutex;
/// use async_trait::async_trait;
/// use bytes::Bytes;
/// use tower_cache::{CacheBackend, CacheError, ClearScope, Expiry, Result};
///
/// /// Never expires anything: a toy, to show the shape.
/// #[derive(Debug, Default)]
/// struct MapBackend(Mutex<HashMap<String, Bytes>>);
///
/// #[async_trait]
/// impl CacheBackend for MapBackend {
///     fn name(&self) -> &'static str { "map" }
///     async fn get(&self, key: &str) -> Result<Option<Bytes>> {
///         Ok(self.0.lock().unwrap().get(key).cloned())
///     }
///     async fn set(&self, key: &str, value: Bytes, _: Expiry) -> Result<()> {
///         self.0.lock().unwrap().insert(key.to_owned(), value);
///         Ok(())
///     }
///     async fn add(&self, key: &str, value: Bytes, _: Expiry) -> Result<bool> {
///         let mut map = self.0.lock().unwrap();
///         if map.contains_key(key) { return Ok(false) }
///         map.insert(key.to_owned(), value);
///         Ok(true)
///     }
///     async fn delete(&self, key: &str) -> Result<bool> {
///         Ok(self.0.lock().unwrap().remove(key).is_some())
///     }
///     async fn touch(&self, key: &str, _: Expiry) -> Result<bool> {
///         Ok(self.0.lock().unwrap().contains_key(key))
///     }
///     async fn has_key(&self, key: &str) -> Result<bool> {
///         Ok(self.0.lock().unwrap().contains_key(key))
///     }
///     async fn incr(&self, key: &str, delta: i64) -> Result<i64> {
///         let mut map = self.0.lock().unwrap();
///         let current = map.get(key).ok_or_else(|| CacheError::MissingKey { key: key.into() })?;
///         let new = tower_cache::apply_incr(key, current, delta)?;
///         map.insert(key.to_owned(), Bytes::from(new.to_string()));
///         Ok(new)
///     }
///     async fn clear(&self, scope: ClearScope<'_>) -> Result<()> {
///         let mut map = self.0.lock().unwrap();
///         match scope {
///             ClearScope::Prefix(p) => map.retain(|k, _| !k.starts_with(p)),
///             _ => map.clear(),
///         }
///         Ok(())
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<()> {
/// let cache = tower_cache::Cache::new(std::sync::Arc::new(MapBackend::default()));
/// cache.set("answer", &42, tower_cache::Timeout::Default).await?;
/// assert_eq!(cache.incr("answer", 1).await?, 43);
/// // `delete_if_equal` is the default here: a get, a comparison and a delete.
/// cache.set_bytes("lock", &b"token"[..], tower_cache::Timeout::Default).await?;
/// assert!(!cache.delete_if_equal("lock", b"other").await?);
/// assert!(cache.delete_if_equal("lock", b"token").await?);
/// # Ok(()) }
/// ```
#[async_trait]
pub trait CacheBackend: Debug + Send + Sync + 'static {
    /// A short name for errors and logs, e.g. `"memory"`.
    fn name(&self) -> &'static str;

    /// Whether the HTTP layers should read together, with one
    /// [`get_many`](CacheBackend::get_many), what they would otherwise read
    /// one after another (a page's entry, its header list and the versions
    /// of the tags it had when last found): worth it when a read is a round
    /// trip and a batch costs little more than one read. `true` for Redis
    /// (`MGET`: a page with `Vary` then costs two round trips, not three,
    /// and a tagged page one, not two) and memcached (pipelined meta gets:
    /// the demo's tagged hit went from 57.5k to 52.3k instructions).
    /// `false` by default, and for the databases, whose batch of two cost
    /// 16k to 17k more instructions per hit than one read
    /// (`benches/hit_cost.rs`).
    fn reads_are_round_trips(&self) -> bool {
        false
    }

    /// [`get_memoized`](CacheBackend::get_memoized) answered at once,
    /// without waiting, when the backend can: the memory backend always,
    /// the tiered backend when its L1 holds the key. `None` when the answer
    /// would take waiting (I/O); the caller then awaits `get_memoized`. The
    /// HTTP layers try it for a fresh hit before they set up a lookup that
    /// can wait. `None` by default.
    fn get_now(&self, key: &str) -> Option<Result<Option<(Bytes, Memo)>>> {
        let _ = key;
        None
    }

    /// How many writes the backend has applied, when it sees every write
    /// made to its entries (the memory backend, whose entries live in this
    /// process; the tiered backend while its L1 is in use, as every write
    /// to the shared tier, this instance's or, through the invalidation
    /// channel, another's, is a write to L1); `None` by default, and for
    /// stores that others write to.
    ///
    /// The count is raised after each write (`set`, `add`, `delete`,
    /// `touch`, `incr`, `clear` and the batches) is visible to reads, so
    /// two equal counts mean that nothing was written in between: an entry
    /// can only have expired or been evicted. The HTTP layers use it to
    /// trust a tagged page's tag versions, found unchanged earlier in the
    /// same second, without reading them again.
    fn write_count(&self) -> Option<u64> {
        None
    }

    /// The value stored under `key`, or `None` when it is absent or expired.
    async fn get(&self, key: &str) -> Result<Option<Bytes>>;

    /// [`get`](CacheBackend::get), with the entry's [`Memo`]: room for a
    /// decoded form of the value that lives as long as the entry. Backends
    /// that keep entries in this process (memory, and the tiered backend's
    /// first tier) hand one out; the default is `get` with [`Memo::none`].
    async fn get_memoized(&self, key: &str) -> Result<Option<(Bytes, Memo)>> {
        Ok(self.get(key).await?.map(|value| (value, Memo::none())))
    }

    /// Stores `value` under `key`, replacing what was there.
    async fn set(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<()>;

    /// Stores `value` only if `key` is absent (or expired); returns whether it stored.
    async fn add(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<bool>;

    /// Removes `key`; returns whether something was removed.
    async fn delete(&self, key: &str) -> Result<bool>;

    /// Gives a live entry a new expiry; returns whether the key existed.
    async fn touch(&self, key: &str, expiry: Expiry) -> Result<bool>;

    /// Whether a live entry is stored under `key`.
    async fn has_key(&self, key: &str) -> Result<bool>;

    /// Adds `delta` to the decimal integer stored under `key` and returns the
    /// new value (see the contract above).
    async fn incr(&self, key: &str, delta: i64) -> Result<i64>;

    /// Deletes `key` only if its value is exactly `expected`; `Ok(true)` when it deleted it.
    ///
    /// The building block of a lock shared by several processes: take the
    /// lock with [`add`](Self::add) of a random token, release it with
    /// `delete_if_equal` of that token, so that a holder whose lock expired
    /// (and was taken by someone else) cannot release the new holder's lock.
    ///
    /// An absent or expired entry, or one holding other bytes, is left alone
    /// and the answer is `false`.
    ///
    /// # Atomicity
    ///
    /// Every built-in backend compares and deletes in one atomic step (see
    /// the contract above). This default implementation, for backends that
    /// do not override it, is a [`get`](Self::get), a comparison and a
    /// [`delete`](Self::delete): two round trips, and **not atomic**. If the
    /// entry is replaced between the `get` and the `delete` (it expired and
    /// another process `add`ed its own token, say), the new entry is deleted
    /// and `true` returned: with locks, a second holder's lock is released
    /// by the first. A backend that can compare and delete in one step
    /// should override it.
    async fn delete_if_equal(&self, key: &str, expected: &[u8]) -> Result<bool> {
        match self.get(key).await? {
            Some(value) if value == expected => self.delete(key).await,
            _ => Ok(false),
        }
    }

    /// Removes the entries selected by `scope`.
    async fn clear(&self, scope: ClearScope<'_>) -> Result<()>;

    /// The value stored under `key` with the entry's remaining lifetime, as
    /// the store saw it: `Some((value, Some(left)))` for an entry that
    /// expires in `left`, `Some((value, None))` for one that never expires
    /// or whose lifetime the store cannot tell, `None` when it is absent or
    /// expired.
    ///
    /// What [`TieredBackend`](crate::backends::TieredBackend) reads from its
    /// shared tier, so that a copy kept in process never outlives the shared
    /// entry. A backend that can tell the lifetime in the same round trip
    /// overrides it (every built-in backend does); the remaining lifetime
    /// may be rounded down, never up. The default is [`get`](Self::get)
    /// with an unknown lifetime.
    async fn get_with_ttl(&self, key: &str) -> Result<Option<(Bytes, Option<Duration>)>> {
        Ok(self.get(key).await?.map(|value| (value, None)))
    }

    /// [`get_with_ttl`](Self::get_with_ttl) of every key, in the same order.
    /// The default is [`get_many`](Self::get_many) (so it keeps the
    /// backend's batching) with unknown lifetimes.
    async fn get_many_with_ttl(
        &self,
        keys: &[&str],
    ) -> Result<Vec<Option<(Bytes, Option<Duration>)>>> {
        let values = self.get_many(keys).await?;
        Ok(values
            .into_iter()
            .map(|value| value.map(|value| (value, None)))
            .collect())
    }

    /// The values of `keys`, in the same order, `None` for each miss.
    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        let mut values = Vec::with_capacity(keys.len());
        for key in keys {
            values.push(self.get(key).await?);
        }
        Ok(values)
    }

    /// Stores every entry; returns the keys that could not be stored (a value
    /// too large for the store, say). An `Err` means the store failed as a whole.
    async fn set_many(&self, entries: Vec<(String, Bytes)>, expiry: Expiry) -> Result<Vec<String>> {
        for (key, value) in entries {
            self.set(&key, value, expiry).await?;
        }
        Ok(Vec::new())
    }

    /// Removes every key in `keys`.
    async fn delete_many(&self, keys: &[&str]) -> Result<()> {
        for key in keys {
            self.delete(key).await?;
        }
        Ok(())
    }

    /// Releases connections. The backend stays usable: the next call
    /// reconnects (Django closes caches at the end of every request).
    async fn close(&self) -> Result<()> {
        Ok(())
    }
}

/// Parses `current` as a decimal integer and adds `delta`, as
/// [`CacheBackend::incr`] requires: a helper for backends that increment in
/// process rather than on a server.
///
/// # Errors
///
/// [`CacheError::NotAnInteger`](crate::CacheError::NotAnInteger) when `current`
/// is not decimal text, [`CacheError::Overflow`](crate::CacheError::Overflow)
/// when the sum does not fit an `i64`.
pub fn apply_incr(key: &str, current: &[u8], delta: i64) -> Result<i64> {
    let value = parse_integer(current).ok_or_else(|| crate::CacheError::NotAnInteger {
        key: key.to_owned(),
    })?;
    value
        .checked_add(delta)
        .ok_or_else(|| crate::CacheError::Overflow {
            key: key.to_owned(),
        })
}

/// The value of decimal integer text (what the codec writes for integers),
/// or `None` for anything else.
pub fn parse_integer(bytes: &[u8]) -> Option<i64> {
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

/// What `future` gives when polled once, if it is ready then: for reads of
/// an in-process store, which never waits but is reached through `async`.
pub(crate) fn poll_once<F: std::future::Future>(future: F) -> Option<F::Output> {
    use std::task::{Context, Poll, Waker};
    match std::pin::pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => Some(output),
        Poll::Pending => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incr_parses_decimal_text_only() {
        assert_eq!(apply_incr("k", b"41", 1).unwrap(), 42);
        assert_eq!(apply_incr("k", b"-5", -10).unwrap(), -15);
        assert!(matches!(
            apply_incr("k", b"null", 1),
            Err(crate::CacheError::NotAnInteger { .. })
        ));
        assert!(matches!(
            apply_incr("k", b"1.5", 1),
            Err(crate::CacheError::NotAnInteger { .. })
        ));
        assert!(matches!(
            apply_incr("k", i64::MAX.to_string().as_bytes(), 1),
            Err(crate::CacheError::Overflow { .. })
        ));
    }
}
