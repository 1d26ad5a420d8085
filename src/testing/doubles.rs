//! Test doubles: backends that count, wait or fail, and a value that cannot
//! be encoded.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use serde::Serialize;

use crate::backend::{CacheBackend, ClearScope, DynBackend, Expiry};
use crate::error::{CacheError, Result};

/// A backend wrapper that counts calls and can make `add` lose every race,
/// as Django's tests do with mocks.
#[derive(Debug)]
pub struct Instrumented {
    inner: DynBackend,
    calls: AtomicUsize,
    add_always_loses: bool,
}

impl Instrumented {
    /// Wraps `inner`; `add_always_loses` makes `add` return `false` without storing.
    pub fn new(inner: DynBackend, add_always_loses: bool) -> Instrumented {
        Instrumented {
            inner,
            calls: AtomicUsize::new(0),
            add_always_loses,
        }
    }

    /// How many backend calls were made.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn count(&self) -> &DynBackend {
        self.calls.fetch_add(1, Ordering::SeqCst);
        &self.inner
    }
}

#[async_trait]
impl CacheBackend for Instrumented {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn reads_are_round_trips(&self) -> bool {
        self.inner.reads_are_round_trips()
    }
    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        self.count().get(key).await
    }
    async fn set(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<()> {
        self.count().set(key, value, expiry).await
    }
    async fn add(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<bool> {
        if self.add_always_loses {
            self.count();
            return Ok(false);
        }
        self.count().add(key, value, expiry).await
    }
    async fn delete(&self, key: &str) -> Result<bool> {
        self.count().delete(key).await
    }
    async fn delete_if_equal(&self, key: &str, expected: &[u8]) -> Result<bool> {
        self.count().delete_if_equal(key, expected).await
    }
    async fn touch(&self, key: &str, expiry: Expiry) -> Result<bool> {
        self.count().touch(key, expiry).await
    }
    async fn has_key(&self, key: &str) -> Result<bool> {
        self.count().has_key(key).await
    }
    async fn incr(&self, key: &str, delta: i64) -> Result<i64> {
        self.count().incr(key, delta).await
    }
    async fn clear(&self, scope: ClearScope<'_>) -> Result<()> {
        self.count().clear(scope).await
    }
    async fn get_with_ttl(&self, key: &str) -> Result<Option<(Bytes, Option<Duration>)>> {
        self.count().get_with_ttl(key).await
    }
    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        self.count().get_many(keys).await
    }
    async fn get_many_with_ttl(
        &self,
        keys: &[&str],
    ) -> Result<Vec<Option<(Bytes, Option<Duration>)>>> {
        self.count().get_many_with_ttl(keys).await
    }
    async fn set_many(&self, entries: Vec<(String, Bytes)>, expiry: Expiry) -> Result<Vec<String>> {
        self.count().set_many(entries, expiry).await
    }
    async fn delete_many(&self, keys: &[&str]) -> Result<()> {
        self.count().delete_many(keys).await
    }
    async fn close(&self) -> Result<()> {
        self.count().close().await
    }
}

/// A backend whose every operation fails, as a dead server's would: for
/// testing that callers degrade (serve the origin, render the fragment)
/// instead of failing.
#[derive(Debug, Default, Clone, Copy)]
pub struct FailingBackend;

impl FailingBackend {
    fn fail<T>(operation: &'static str) -> Result<T> {
        Err(CacheError::backend(
            "failing",
            operation,
            std::io::Error::new(
                std::io::ErrorKind::ConnectionRefused,
                "the test backend is down",
            ),
        ))
    }
}

#[async_trait]
impl CacheBackend for FailingBackend {
    fn name(&self) -> &'static str {
        "failing"
    }
    async fn get(&self, _: &str) -> Result<Option<Bytes>> {
        Self::fail("get")
    }
    async fn set(&self, _: &str, _: Bytes, _: Expiry) -> Result<()> {
        Self::fail("set")
    }
    async fn add(&self, _: &str, _: Bytes, _: Expiry) -> Result<bool> {
        Self::fail("add")
    }
    async fn delete(&self, _: &str) -> Result<bool> {
        Self::fail("delete")
    }
    async fn delete_if_equal(&self, _: &str, _: &[u8]) -> Result<bool> {
        Self::fail("delete_if_equal")
    }
    async fn touch(&self, _: &str, _: Expiry) -> Result<bool> {
        Self::fail("touch")
    }
    async fn has_key(&self, _: &str) -> Result<bool> {
        Self::fail("has_key")
    }
    async fn incr(&self, _: &str, _: i64) -> Result<i64> {
        Self::fail("incr")
    }
    async fn clear(&self, _: ClearScope<'_>) -> Result<()> {
        Self::fail("clear")
    }
}

/// A value whose serialization always fails (Django's `Unpicklable`).
#[derive(Debug)]
pub struct Unserializable;

impl Serialize for Unserializable {
    fn serialize<S: serde::Serializer>(&self, _: S) -> std::result::Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom(
            "Unserializable cannot be serialized",
        ))
    }
}

/// A call a [`Hooked`] backend is asked to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Call {
    /// `get` (and the reads built on it).
    Get,
    /// `set`.
    Set,
    /// `add`.
    Add,
    /// `delete`.
    Delete,
    /// `touch`.
    Touch,
    /// `has_key`.
    HasKey,
    /// `incr`.
    Incr,
    /// `clear` (its key is empty).
    Clear,
}

/// What a [`Hooked`] backend's hook returns: awaited before the call.
pub type HookFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

type Hook = Box<dyn Fn(Call, &str) -> HookFuture + Send + Sync>;

/// A backend wrapper that awaits `hook(call, key)` before every call: a
/// backend that waits, as one over the network does
/// (`Box::pin(tokio::task::yield_now())`), or one that holds chosen writes
/// until a test lets them through.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use std::sync::Arc;
/// use tower_cache::backends::MemoryBackend;
/// use tower_cache::testing::{Call, Hooked};
/// use tower_cache::{Cache, Timeout};
///
/// // Every call yields once before it is made.
/// let waiting = Hooked::new(Arc::new(MemoryBackend::new()), |_, _| {
///     Box::pin(tokio::task::yield_now())
/// });
/// let cache = Cache::new(Arc::new(waiting));
/// cache.set("k", &1, Timeout::Default).await.unwrap();
/// assert_eq!(cache.get::<i32>("k").await.unwrap(), Some(1));
/// # let _ = Call::Get;
/// # }
/// ```
pub struct Hooked {
    inner: DynBackend,
    hook: Hook,
}

impl Hooked {
    /// Wraps `inner`, awaiting `hook` before every call.
    pub fn new(
        inner: DynBackend,
        hook: impl Fn(Call, &str) -> HookFuture + Send + Sync + 'static,
    ) -> Hooked {
        Hooked {
            inner,
            hook: Box::new(hook),
        }
    }

    async fn before(&self, call: Call, key: &str) -> &DynBackend {
        (self.hook)(call, key).await;
        &self.inner
    }
}

impl fmt::Debug for Hooked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hooked")
            .field("inner", &self.inner)
            .finish()
    }
}

#[async_trait]
impl CacheBackend for Hooked {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        self.before(Call::Get, key).await.get(key).await
    }
    async fn set(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<()> {
        self.before(Call::Set, key)
            .await
            .set(key, value, expiry)
            .await
    }
    async fn add(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<bool> {
        self.before(Call::Add, key)
            .await
            .add(key, value, expiry)
            .await
    }
    async fn delete(&self, key: &str) -> Result<bool> {
        self.before(Call::Delete, key).await.delete(key).await
    }
    async fn touch(&self, key: &str, expiry: Expiry) -> Result<bool> {
        self.before(Call::Touch, key).await.touch(key, expiry).await
    }
    async fn has_key(&self, key: &str) -> Result<bool> {
        self.before(Call::HasKey, key).await.has_key(key).await
    }
    async fn incr(&self, key: &str, delta: i64) -> Result<i64> {
        self.before(Call::Incr, key).await.incr(key, delta).await
    }
    async fn clear(&self, scope: ClearScope<'_>) -> Result<()> {
        self.before(Call::Clear, "").await.clear(scope).await
    }
}
