//! [`Cache`]: Django's low-level cache API over any backend.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::backend::{ClearScope, DynBackend};
use crate::codec;
use crate::error::{CacheError, Result};
use crate::jitter::Jitter;
use crate::key::{
    KeyFunction, MAX_KEY_LENGTH, MadeKey, is_visible_ascii, push_default_prefix, validate_key,
};
use crate::key_lock::KeyLocks;
use crate::memo::Memo;
use crate::timeout::Timeout;

/// Django's low-level cache API (`django.core.cache.cache`), async, typed,
/// over any [`CacheBackend`](crate::CacheBackend).
///
/// A `Cache` makes keys (`key_prefix:version:key`), validates them, applies the
/// default timeout, and encodes typed values (JSON; integers as decimal text,
/// see the crate docs on values); the backend only stores bytes.
///
/// Cloning is cheap (two `Arc`s and an integer); clones share the backend.
///
/// ```
/// use std::time::Duration;
/// use tower_cache::{Cache, Timeout};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> tower_cache::Result<()> {
/// let cache = Cache::from_url("memory://").await?;
///
/// cache.set("greeting", "hello", Timeout::Default).await?;
/// assert_eq!(cache.get::<String>("greeting").await?.as_deref(), Some("hello"));
///
/// cache.set("hits", &0, Duration::from_secs(60)).await?;
/// assert_eq!(cache.incr("hits", 1).await?, 1);
///
/// let answer: u32 = cache.get_or_set("answer", || async { 42 }, Timeout::Forever).await?;
/// assert_eq!(answer, 42);
/// # Ok(()) }
/// ```
///
/// # Differences from Django
///
/// * Invalid keys are an error on every backend (Django only warns, except on memcached).
/// * Values are JSON, not pickle: any `serde` type, readable by other languages.
/// * `clear` removes only keys under this cache's `key_prefix:` when the
///   backend can select keys (Django flushes the whole store).
#[derive(Clone)]
pub struct Cache {
    backend: DynBackend,
    settings: Arc<Settings>,
    version: i64,
    /// `prefix:version:`, what the default key function writes before
    /// every key, when it is all visible ASCII (a valid start for a key):
    /// made once, so a read on an in-process backend only copies it.
    key_head: Option<Arc<str>>,
}

struct Settings {
    key_prefix: String,
    default_timeout: Option<Duration>,
    key_function: KeyFunction,
    /// `key_prefix:` when the key function puts it in front of every key.
    clear_prefix: Option<String>,
    /// `get_or_set`'s single flight in this process.
    computing: KeyLocks,
    ttl_jitter: Jitter,
}

/// Builds a [`Cache`]; see [`Cache::builder`].
#[must_use]
#[derive(Debug)]
pub struct CacheBuilder {
    backend: DynBackend,
    key_prefix: String,
    version: i64,
    default_timeout: Timeout,
    key_function: KeyFunction,
    ttl_jitter: Jitter,
}

impl CacheBuilder {
    /// Django's `KEY_PREFIX`: put in front of every key (default empty).
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }

    /// Django's `VERSION`: the default version of every key (default 1).
    pub fn version(mut self, version: i64) -> Self {
        self.version = version;
        self
    }

    /// Django's `TIMEOUT`: what [`Timeout::Default`] means for this cache
    /// (default 300 s; [`Timeout::Forever`] makes entries never expire).
    pub fn default_timeout(mut self, timeout: impl Into<Timeout>) -> Self {
        self.default_timeout = timeout.into();
        self
    }

    /// Django's `KEY_FUNCTION` (default `prefix:version:key`).
    pub fn key_function(mut self, key_function: KeyFunction) -> Self {
        self.key_function = key_function;
        self
    }

    /// Spreads every timeout a write resolves to (given or default) by up to
    /// ± this percentage, uniformly at random, so that entries written
    /// together expire over a window instead of at one moment (default: no
    /// jitter). [`Timeout::Forever`] and zero ("do not keep") are never
    /// spread. A percentage (`10`) or a [`Jitter`] (`Jitter::seeded(10, 1)`
    /// for reproducible tests); the URL option is `ttl_jitter=10`.
    ///
    /// It applies to every write with a timeout: `set`, `add`, `touch`,
    /// `set_many`, `get_or_set`, and the pages and locks the HTTP layers
    /// write through this cache (their freshness is not spread: that is the
    /// layers' own [`ttl_jitter`](crate::middleware::CachePageLayer::ttl_jitter)).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_cache::{Cache, backends::MemoryBackend};
    ///
    /// let cache = Cache::builder(std::sync::Arc::new(MemoryBackend::new()))
    ///     .ttl_jitter(10)
    ///     .build();
    /// assert_eq!(cache.ttl_jitter().percentage(), 10);
    /// ```
    ///
    /// # Panics
    ///
    /// When the percentage is over 50 ([`Jitter::percent`]).
    pub fn ttl_jitter(mut self, jitter: impl Into<Jitter>) -> Self {
        self.ttl_jitter = jitter.into();
        self
    }

    /// The cache.
    pub fn build(self) -> Cache {
        let default_timeout = self.default_timeout.resolve(Some(Timeout::DJANGO_DEFAULT));
        let clear_prefix = self
            .key_function
            .is_prefixed()
            .then(|| format!("{}:", self.key_prefix));
        let settings = Arc::new(Settings {
            key_prefix: self.key_prefix,
            default_timeout,
            key_function: self.key_function,
            clear_prefix,
            computing: KeyLocks::default(),
            ttl_jitter: self.ttl_jitter,
        });
        Cache {
            backend: self.backend,
            key_head: key_head(&settings, self.version),
            settings,
            version: self.version,
        }
    }
}

/// `prefix:version:` for a cache with `settings` and `version`, when its key
/// function is the default one and that is all visible ASCII (a valid start
/// for a key): what `Cache::key_head` keeps.
fn key_head(settings: &Settings, version: i64) -> Option<Arc<str>> {
    if !settings.key_function.is_default() {
        return None;
    }
    let mut head = String::new();
    push_default_prefix(&mut head, &settings.key_prefix, version);
    is_visible_ascii(&head).then(|| Arc::from(head))
}

/// What a write asks of the backend once the timeout is resolved.
enum Write {
    /// Keep the entry for this long (`None`: forever).
    Keep(Option<Duration>),
    /// Django's zero or negative timeout: the entry must not be kept.
    Discard,
}

impl Cache {
    /// A cache over `backend` with Django's defaults: empty prefix, version 1,
    /// 300 s timeout, `prefix:version:key` keys.
    pub fn new(backend: DynBackend) -> Cache {
        Cache::builder(backend).build()
    }

    /// A builder for a cache over `backend`.
    pub fn builder(backend: DynBackend) -> CacheBuilder {
        CacheBuilder {
            backend,
            key_prefix: String::new(),
            version: 1,
            default_timeout: Timeout::Default,
            key_function: KeyFunction::default(),
            ttl_jitter: Jitter::none(),
        }
    }

    /// A cache from a URL such as `memory://?max_capacity=10000` or `dummy://`;
    /// see [`Caches`](crate::Caches) for the schemes and options.
    ///
    /// # Errors
    ///
    /// [`CacheError::Config`] for a bad URL, an unknown scheme, a scheme whose
    /// feature is off or a bad option.
    pub async fn from_url(url: &str) -> Result<Cache> {
        crate::registry::CacheConfig::from_url(url).build().await
    }

    /// The same cache, but with `version` as the default version of every call:
    /// Django's per-call `version=` argument.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> tower_cache::Result<()> {
    /// let cache = tower_cache::Cache::from_url("memory://").await?;
    /// cache.with_version(2).set("k", "v2", tower_cache::Timeout::Default).await?;
    /// assert_eq!(cache.get::<String>("k").await?, None);
    /// assert_eq!(cache.with_version(2).get::<String>("k").await?.as_deref(), Some("v2"));
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn with_version(&self, version: i64) -> Cache {
        Cache {
            version,
            key_head: key_head(&self.settings, version),
            ..self.clone()
        }
    }

    /// The version this handle reads and writes.
    pub fn version(&self) -> i64 {
        self.version
    }

    /// The key prefix.
    pub fn key_prefix(&self) -> &str {
        &self.settings.key_prefix
    }

    /// What [`Timeout::Default`] means here: `None` is "never expires".
    pub fn default_timeout(&self) -> Option<Duration> {
        self.settings.default_timeout
    }

    /// How timeouts are spread ([`CacheBuilder::ttl_jitter`]).
    pub fn ttl_jitter(&self) -> &Jitter {
        &self.settings.ttl_jitter
    }

    /// The backend.
    pub fn backend(&self) -> &DynBackend {
        &self.backend
    }

    /// The key the backend stores `key` under, validated.
    ///
    /// # Errors
    ///
    /// [`CacheError::InvalidKey`] when the made key is too long or contains
    /// control characters or white space.
    pub fn make_key(&self, key: &str) -> Result<String> {
        let made = self
            .settings
            .key_function
            .make(key, &self.settings.key_prefix, self.version);
        validate_key(&made)?;
        Ok(made)
    }

    /// What tells this cache's made keys from another's: its key settings
    /// (shared by its clones) and its version. Live caches never share it.
    pub(crate) fn identity(&self) -> (usize, i64) {
        (Arc::as_ptr(&self.settings) as usize, self.version)
    }

    /// The backend's entry for `key` when it can tell without waiting
    /// ([`CacheBackend::get_now`]), the key made by the default key
    /// function in a buffer each thread keeps: no allocation. `None`: the
    /// read would wait, or the key is made another way (a key function of
    /// the user's, a key too long to be valid): the caller makes it.
    fn read_now(&self, key: &str) -> Option<Result<Option<(Bytes, Memo)>>> {
        thread_local! {
            static MADE: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
        }
        let head = self.key_head.as_deref()?;
        // A key that is too long, or not all visible ASCII (an error, or
        // a valid key of other characters), is left to the caller, which
        // makes it in full; so is any key while the buffer cannot grow for
        // good.
        if head.len() + key.len() > MAX_KEY_LENGTH || !is_visible_ascii(key) {
            return None;
        }
        MADE.try_with(|made| {
            // Busy only if a backend's read re-entered the cache: read as usual.
            let mut made = made.try_borrow_mut().ok()?;
            made.clear();
            made.push_str(head);
            made.push_str(key);
            self.backend.get_now(&made)
        })
        .ok()
        .flatten()
    }

    /// The key the user's key that `write` writes (about `len` bytes) is
    /// stored under, with the user's key beside it: one allocation for
    /// both with the default key function.
    pub(crate) fn make_key_with(
        &self,
        len: usize,
        write: impl FnOnce(&mut String),
    ) -> Result<MadeKey> {
        MadeKey::new(
            &self.settings.key_function,
            &self.settings.key_prefix,
            self.version,
            len,
            write,
        )
    }

    fn write(&self, timeout: Timeout) -> Write {
        match timeout.resolve(self.settings.default_timeout) {
            Some(d) if d.is_zero() => Write::Discard,
            // Spread after the zero check: a jitter never turns "keep" into
            // "discard" (nor the reverse), and forever stays forever.
            keep => Write::Keep(keep.map(|d| self.settings.ttl_jitter.spread(d))),
        }
    }

    /// Puts the user's key into errors that carry the made one.
    fn user_key(key: &str, err: CacheError) -> CacheError {
        match err {
            CacheError::MissingKey { .. } => CacheError::MissingKey { key: key.into() },
            CacheError::NotAnInteger { .. } => CacheError::NotAnInteger { key: key.into() },
            CacheError::Overflow { .. } => CacheError::Overflow { key: key.into() },
            other => other,
        }
    }

    // ---- reads -------------------------------------------------------------

    /// The raw bytes stored under `key`, or `None` on a miss.
    pub async fn get_bytes(&self, key: &str) -> Result<Option<Bytes>> {
        // An in-process backend answers at once, without a boxed future
        // (and without allocating the key).
        if let Some(found) = self.read_now(key) {
            return found.map(|found| found.map(|(value, _)| value));
        }
        let key = self.make_key(key)?;
        if let Some(found) = self.backend.get_now(&key) {
            return found.map(|found| found.map(|(value, _)| value));
        }
        self.backend.get(&key).await
    }

    /// The raw bytes stored under `key` with the entry's [`Memo`], or `None`
    /// on a miss: room for a decoded form of the bytes, which lives as long
    /// as the entry, so that the next reader need not decode them again.
    /// Only in-process backends keep one (memory, and the tiered backend's
    /// first tier); the others hand out [`Memo::none`], which keeps nothing.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> tower_cache::Result<()> {
    /// use tower_cache::{Cache, Timeout};
    ///
    /// let cache = Cache::from_url("memory://").await?;
    /// cache.set_bytes("n", &b"42"[..], Timeout::Default).await?;
    /// let (bytes, memo) = cache.get_memoized("n").await?.unwrap();
    /// memo.set(std::str::from_utf8(&bytes).unwrap().parse::<u64>().unwrap());
    /// let (_, memo) = cache.get_memoized("n").await?.unwrap();
    /// assert_eq!(memo.get::<u64>(), Some(&42)); // parsed once
    /// # Ok(()) }
    /// ```
    pub async fn get_memoized(&self, key: &str) -> Result<Option<(Bytes, Memo)>> {
        self.backend.get_memoized(&self.make_key(key)?).await
    }

    /// The value stored under `key`, or `None` on a miss.
    ///
    /// A stored `None` (of an `Option<T>`) is a hit: `get::<Option<T>>` returns
    /// `Some(None)`.
    ///
    /// # Errors
    ///
    /// [`CacheError::Codec`] when the stored bytes are not a `T`.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        match self.get_bytes(key).await? {
            Some(bytes) => codec::decode(key, &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// The value stored under `key`, or `default` on a miss: Django's
    /// `get(key, default)`.
    pub async fn get_or<T: DeserializeOwned>(&self, key: &str, default: T) -> Result<T> {
        Ok(self.get(key).await?.unwrap_or(default))
    }

    /// The values of those `keys` that are in the cache, by the user's key;
    /// misses are absent from the map.
    pub async fn get_many<T, I, K>(&self, keys: I) -> Result<HashMap<String, T>>
    where
        T: DeserializeOwned,
        I: IntoIterator<Item = K>,
        K: AsRef<str>,
    {
        let (users, made) = self.make_keys(keys)?;
        if made.is_empty() {
            return Ok(HashMap::new());
        }
        let refs: Vec<&str> = made.iter().map(String::as_str).collect();
        let values = self.backend.get_many(&refs).await?;
        let mut found = HashMap::with_capacity(values.len());
        for (user, value) in users.into_iter().zip(values) {
            if let Some(bytes) = value {
                let decoded = codec::decode(&user, &bytes)?;
                found.insert(user, decoded);
            }
        }
        Ok(found)
    }

    /// The raw bytes stored under each of `keys`, in their order (`None` for
    /// a miss): one backend round trip (on Redis Cluster, one per hash slot).
    pub async fn get_many_bytes<K: AsRef<str>>(&self, keys: &[K]) -> Result<Vec<Option<Bytes>>> {
        let made = keys
            .iter()
            .map(|key| self.make_key(key.as_ref()))
            .collect::<Result<Vec<_>>>()?;
        if made.is_empty() {
            return Ok(Vec::new());
        }
        let refs: Vec<&str> = made.iter().map(String::as_str).collect();
        self.backend.get_many(&refs).await
    }

    fn make_keys<I, K>(&self, keys: I) -> Result<(Vec<String>, Vec<String>)>
    where
        I: IntoIterator<Item = K>,
        K: AsRef<str>,
    {
        let mut users = Vec::new();
        let mut made = Vec::new();
        for key in keys {
            let key = key.as_ref();
            made.push(self.make_key(key)?);
            users.push(key.to_owned());
        }
        Ok((users, made))
    }

    /// Whether a live entry is stored under `key` (Django's `has_key` and `in`).
    pub async fn has_key(&self, key: &str) -> Result<bool> {
        self.backend.has_key(&self.make_key(key)?).await
    }

    // ---- writes ------------------------------------------------------------

    /// Stores `value` under `key`. A zero timeout deletes the key instead.
    pub async fn set<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        timeout: impl Into<Timeout>,
    ) -> Result<()> {
        let made = self.make_key(key)?;
        let bytes = codec::encode(key, value)?;
        self.store(&made, bytes, timeout.into()).await
    }

    /// Stores raw bytes under `key`, bypassing the codec.
    pub async fn set_bytes(
        &self,
        key: &str,
        value: impl Into<Bytes>,
        timeout: impl Into<Timeout>,
    ) -> Result<()> {
        let made = self.make_key(key)?;
        self.store(&made, value.into(), timeout.into()).await
    }

    async fn store(&self, made: &str, value: Bytes, timeout: Timeout) -> Result<()> {
        match self.write(timeout) {
            Write::Keep(expiry) => self.backend.set(made, value, expiry).await,
            Write::Discard => self.backend.delete(made).await.map(drop),
        }
    }

    /// Stores `value` only if `key` is not in the cache; returns whether it did.
    ///
    /// With a zero timeout nothing is stored, and the answer is whether it
    /// would have been (Django returns `True` then too).
    pub async fn add<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        timeout: impl Into<Timeout>,
    ) -> Result<bool> {
        let made = self.make_key(key)?;
        let bytes = codec::encode(key, value)?;
        self.add_made(&made, bytes, timeout.into()).await
    }

    /// [`add`](Cache::add) of raw bytes.
    pub async fn add_bytes(
        &self,
        key: &str,
        value: impl Into<Bytes>,
        timeout: impl Into<Timeout>,
    ) -> Result<bool> {
        let made = self.make_key(key)?;
        self.add_made(&made, value.into(), timeout.into()).await
    }

    async fn add_made(&self, made: &str, value: Bytes, timeout: Timeout) -> Result<bool> {
        match self.write(timeout) {
            Write::Keep(expiry) => self.backend.add(made, value, expiry).await,
            Write::Discard => Ok(!self.backend.has_key(made).await?),
        }
    }

    /// The value under `key`; on a miss, calls `make`, adds its value and
    /// returns what is then in the cache (another writer's value if one won
    /// the race, else the computed one): Django's `get_or_set` with a callable.
    ///
    /// `make` runs only on a miss, and once for concurrent callers of the
    /// same key in this process: the others wait for it and return the
    /// value it stored (one more backend get each). A caller cancelled while
    /// computing lets the next one compute. Across processes, `add` decides
    /// which value wins.
    pub async fn get_or_set<T, F, Fut>(
        &self,
        key: &str,
        make: F,
        timeout: impl Into<Timeout>,
    ) -> Result<T>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = T>,
    {
        self.try_get_or_set(key, || async { Ok::<T, CacheError>(make().await) }, timeout)
            .await
    }

    /// [`get_or_set`](Cache::get_or_set) with a plain value, as Django allows.
    pub async fn get_or_set_value<T>(
        &self,
        key: &str,
        value: T,
        timeout: impl Into<Timeout>,
    ) -> Result<T>
    where
        T: Serialize + DeserializeOwned,
    {
        self.get_or_set(key, || async { value }, timeout).await
    }

    /// [`get_or_set`](Cache::get_or_set) with a fallible `make`: its error is
    /// returned and nothing is stored. Cache errors convert into `E`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let cache = tower_cache::Cache::from_url("memory://").await?;
    /// let body: String = cache
    ///     .try_get_or_set("page", || async { Ok::<_, Box<dyn std::error::Error>>("html".to_owned()) },
    ///         tower_cache::Timeout::Default)
    ///     .await?;
    /// assert_eq!(body, "html");
    /// # Ok(()) }
    /// ```
    pub async fn try_get_or_set<T, E, F, Fut>(
        &self,
        key: &str,
        make: F,
        timeout: impl Into<Timeout>,
    ) -> Result<T, E>
    where
        T: Serialize + DeserializeOwned,
        E: From<CacheError>,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let made = self.make_key(key)?;
        if let Some(bytes) = self.backend.get(&made).await? {
            return Ok(codec::decode(key, &bytes)?);
        }
        // Single flight: concurrent callers for this key in this process
        // wait for the first, then find its value.
        let _computing = self.settings.computing.lock(&made).await;
        if let Some(bytes) = self.backend.get(&made).await? {
            return Ok(codec::decode(key, &bytes)?);
        }
        let value = make().await?;
        let bytes = codec::encode(key, &value)?;
        self.add_made(&made, bytes, timeout.into()).await?;
        match self.backend.get(&made).await? {
            Some(bytes) => Ok(codec::decode(key, &bytes)?),
            None => Ok(value),
        }
    }

    /// Stores every entry; returns the user keys that the backend could not
    /// store (memcached refuses values over its item size, for one).
    pub async fn set_many<K, T, I>(
        &self,
        entries: I,
        timeout: impl Into<Timeout>,
    ) -> Result<Vec<String>>
    where
        I: IntoIterator<Item = (K, T)>,
        K: AsRef<str>,
        T: Serialize,
    {
        let mut encoded = Vec::new();
        for (key, value) in entries {
            let key = key.as_ref();
            encoded.push((key.to_owned(), codec::encode(key, &value)?));
        }
        self.set_many_bytes(encoded, timeout).await
    }

    /// [`set_many`](Cache::set_many) of raw bytes; returns the keys that the
    /// backend could not store.
    pub async fn set_many_bytes(
        &self,
        entries: Vec<(String, Bytes)>,
        timeout: impl Into<Timeout>,
    ) -> Result<Vec<String>> {
        // Made key -> the user's, to report failures by the user's key.
        let mut users = HashMap::with_capacity(entries.len());
        let mut made = Vec::with_capacity(entries.len());
        for (key, value) in entries {
            let made_key = self.make_key(&key)?;
            users.insert(made_key.clone(), key);
            made.push((made_key, value));
        }
        if made.is_empty() {
            return Ok(Vec::new());
        }
        match self.write(timeout.into()) {
            Write::Keep(expiry) => {
                let failed = self.backend.set_many(made, expiry).await?;
                Ok(failed
                    .into_iter()
                    .map(|made| users.remove(&made).unwrap_or(made))
                    .collect())
            }
            Write::Discard => {
                let refs: Vec<&str> = made.iter().map(|(k, _)| k.as_str()).collect();
                self.backend.delete_many(&refs).await?;
                Ok(Vec::new())
            }
        }
    }

    /// Removes `key`; returns whether something was removed.
    pub async fn delete(&self, key: &str) -> Result<bool> {
        self.backend.delete(&self.make_key(key)?).await
    }

    /// Removes `key` only if its value is exactly the bytes `expected`;
    /// returns whether it removed it. A missing or expired key, or one holding
    /// other bytes, is left alone (`false`).
    ///
    /// The release of a lock shared by several processes: take it with
    /// [`add_bytes`](Cache::add_bytes) of a random token, release it with
    /// `delete_if_equal` of the same token, so that a holder whose lock
    /// expired and was taken by another cannot release the other's lock.
    /// `expected` is compared with the stored bytes: the raw bytes of
    /// [`set_bytes`](Cache::set_bytes)/[`add_bytes`](Cache::add_bytes), or the
    /// encoding of a typed value (JSON; integers as decimal text).
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> tower_cache::Result<()> {
    /// let cache = tower_cache::Cache::from_url("memory://").await?;
    /// let token = b"6f1c2a9e"; // a random token, one per holder
    /// if cache.add_bytes("lock:report", &token[..], Duration::from_secs(30)).await? {
    ///     // ... the work the lock protects ...
    ///     assert!(cache.delete_if_equal("lock:report", token).await?);
    /// }
    /// // Another holder's token does not release it.
    /// cache.add_bytes("lock:report", &b"other"[..], Duration::from_secs(30)).await?;
    /// assert!(!cache.delete_if_equal("lock:report", token).await?);
    /// # Ok(()) }
    /// ```
    ///
    /// # Guarantees
    ///
    /// Atomic on every built-in backend: the comparison and the delete are
    /// one step, so of concurrent calls at most one returns `true`, and an
    /// entry written meanwhile is never deleted on the strength of the old
    /// value. Round trips: one on Redis (a Lua script, `EVALSHA`; the first
    /// call on a server that does not have the script yet also sends it with
    /// `EVAL`), one statement on the database backends, two on memcached
    /// (`mg` with the CAS token, then `md` with it), none on memory and file
    /// (the file backend holds its directory lock meanwhile).
    /// A backend of another crate that does not override
    /// [`CacheBackend::delete_if_equal`](crate::CacheBackend::delete_if_equal)
    /// gets the default: a `get` and a `delete`, two round trips and **not**
    /// atomic (see its docs).
    ///
    /// # Errors
    ///
    /// [`CacheError::InvalidKey`] for an invalid key (before any I/O), or the
    /// backend's error.
    pub async fn delete_if_equal(&self, key: &str, expected: &[u8]) -> Result<bool> {
        self.backend
            .delete_if_equal(&self.make_key(key)?, expected)
            .await
    }

    /// Removes every key in `keys`.
    pub async fn delete_many<I, K>(&self, keys: I) -> Result<()>
    where
        I: IntoIterator<Item = K>,
        K: AsRef<str>,
    {
        let (_, made) = self.make_keys(keys)?;
        if made.is_empty() {
            return Ok(());
        }
        let refs: Vec<&str> = made.iter().map(String::as_str).collect();
        self.backend.delete_many(&refs).await
    }

    /// Gives `key` a new expiry; returns whether it was in the cache.
    /// A zero timeout removes it (and returns whether it was there).
    pub async fn touch(&self, key: &str, timeout: impl Into<Timeout>) -> Result<bool> {
        let made = self.make_key(key)?;
        match self.write(timeout.into()) {
            Write::Keep(expiry) => self.backend.touch(&made, expiry).await,
            Write::Discard => self.backend.delete(&made).await,
        }
    }

    /// Adds `delta` to the integer under `key` and returns the new value,
    /// atomically on backends that can (all built-in ones but file and database
    /// backends' documented cases).
    ///
    /// # Errors
    ///
    /// [`CacheError::MissingKey`] when the key is not in the cache (nothing is
    /// created), [`CacheError::NotAnInteger`] when its value is not an integer.
    pub async fn incr(&self, key: &str, delta: i64) -> Result<i64> {
        let made = self.make_key(key)?;
        self.backend
            .incr(&made, delta)
            .await
            .map_err(|err| Cache::user_key(key, err))
    }

    /// Subtracts `delta`: `incr(key, -delta)`.
    pub async fn decr(&self, key: &str, delta: i64) -> Result<i64> {
        let negated = delta.checked_neg().ok_or_else(|| CacheError::Overflow {
            key: key.to_owned(),
        })?;
        self.incr(key, negated).await
    }

    /// Moves `key` from this handle's version to `version + delta` and returns
    /// the new version. The entry gets the default timeout, as in Django.
    ///
    /// # Errors
    ///
    /// [`CacheError::MissingKey`] when the key is not in the cache.
    pub async fn incr_version(&self, key: &str, delta: i64) -> Result<i64> {
        let new_version = self
            .version
            .checked_add(delta)
            .ok_or_else(|| CacheError::Overflow {
                key: key.to_owned(),
            })?;
        let value = self
            .get_bytes(key)
            .await?
            .ok_or_else(|| CacheError::MissingKey {
                key: key.to_owned(),
            })?;
        let moved = self.with_version(new_version);
        moved.set_bytes(key, value, Timeout::Default).await?;
        self.delete(key).await?;
        Ok(new_version)
    }

    /// `incr_version(key, -delta)`.
    pub async fn decr_version(&self, key: &str, delta: i64) -> Result<i64> {
        let negated = delta.checked_neg().ok_or_else(|| CacheError::Overflow {
            key: key.to_owned(),
        })?;
        self.incr_version(key, negated).await
    }

    /// Removes this cache's entries: every key under `key_prefix:` (all
    /// versions), or everything in the backend when a custom key function
    /// makes keys of unknown shape, or when the backend cannot select keys
    /// (memcached).
    pub async fn clear(&self) -> Result<()> {
        let scope = match &self.settings.clear_prefix {
            Some(prefix) => ClearScope::Prefix(prefix),
            None => ClearScope::All,
        };
        self.backend.clear(scope).await
    }

    /// Releases the backend's connections; the cache stays usable.
    pub async fn close(&self) -> Result<()> {
        self.backend.close().await
    }
}

impl fmt::Debug for Cache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache")
            .field("backend", &self.backend)
            .field("key_prefix", &self.settings.key_prefix)
            .field("version", &self.version)
            .field("default_timeout", &self.settings.default_timeout)
            .field("key_function", &self.settings.key_function)
            .field("ttl_jitter", &self.settings.ttl_jitter)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::backends::MemoryBackend;

    /// `get_bytes` makes short keys in a buffer each thread keeps, others
    /// as every call does: both find the same entries and refuse the same
    /// keys, and a key too long to be valid leaves the buffer as it was.
    #[tokio::test]
    async fn keys_made_in_the_threads_buffer_read_and_fail_as_made_ones() {
        let cache = Cache::builder(Arc::new(MemoryBackend::new()))
            .key_prefix("site")
            .version(3)
            .build();
        cache
            .set_bytes("k", &b"v"[..], Timeout::Default)
            .await
            .unwrap();
        assert!(cache.read_now("k").is_some());
        assert_eq!(cache.get_bytes("k").await.unwrap().unwrap(), "v");
        assert_eq!(cache.with_version(4).get_bytes("k").await.unwrap(), None);
        for bad in ["a b", "tab\t", &"x".repeat(300)] {
            let made = cache.make_key(bad).unwrap_err().to_string();
            let read = cache.get_bytes(bad).await.unwrap_err().to_string();
            assert_eq!(made, read);
        }
        // Longest valid key: in the buffer; one byte more: refused.
        let longest = "x".repeat(MAX_KEY_LENGTH - "site:3:".len());
        cache
            .set_bytes(&longest, &b"l"[..], Timeout::Default)
            .await
            .unwrap();
        assert_eq!(cache.get_bytes(&longest).await.unwrap().unwrap(), "l");
        assert!(cache.get_bytes(&format!("{longest}x")).await.is_err());
        // A key function of the user's: made as before.
        let custom = Cache::builder(Arc::new(MemoryBackend::new()))
            .key_function(KeyFunction::new(|key, _, _| format!("custom/{key}")))
            .build();
        custom
            .set_bytes("k", &b"c"[..], Timeout::Default)
            .await
            .unwrap();
        assert!(custom.read_now("k").is_none());
        assert_eq!(custom.get_bytes("k").await.unwrap().unwrap(), "c");
    }

    fn jittered(percent: u8, seed: u64) -> Cache {
        Cache::builder(Arc::new(MemoryBackend::new()))
            .ttl_jitter(Jitter::seeded(percent, seed))
            .build()
    }

    fn kept(cache: &Cache, timeout: Timeout) -> Option<Option<Duration>> {
        match cache.write(timeout) {
            Write::Keep(expiry) => Some(expiry),
            Write::Discard => None,
        }
    }

    #[test]
    fn ttl_jitter_spreads_timeouts_within_the_bounds() {
        let cache = jittered(10, 7);
        let minute = Duration::from_secs(60);
        let spread: Vec<Duration> = (0..100)
            .map(|_| kept(&cache, minute.into()).unwrap().unwrap())
            .collect();
        for d in &spread {
            assert!(
                (Duration::from_secs(54)..=Duration::from_secs(66)).contains(d),
                "{d:?}"
            );
        }
        assert!(spread.windows(2).all(|w| w[0] != w[1]), "they differ");
        // The default timeout is spread too.
        let default = kept(&cache, Timeout::Default).unwrap().unwrap();
        assert_ne!(default, Duration::from_secs(300));
        // Forever and zero never are.
        assert_eq!(kept(&cache, Timeout::Forever), Some(None));
        assert_eq!(kept(&cache, Timeout::ZERO), None);
        // Without a jitter, the timeout is kept as given.
        let plain = Cache::new(Arc::new(MemoryBackend::new()));
        assert_eq!(kept(&plain, minute.into()), Some(Some(minute)));
    }

    /// The memory backend expires entries written together at different
    /// times: with the same seed, the lifetimes `set` gave are known, and
    /// halfway through the widest spread the short ones are gone and the
    /// long ones still there.
    #[tokio::test]
    async fn ttl_jitter_gives_different_expiries_on_the_memory_backend() {
        let (seed, lifetime) = (11, Duration::from_secs(2));
        let cache = jittered(50, seed);
        let same = Jitter::seeded(50, seed);
        let start = Instant::now();
        let mut lifetimes = Vec::new();
        for i in 0..40 {
            cache.set(&format!("k{i}"), &i, lifetime).await.unwrap();
            lifetimes.push(same.spread(lifetime));
        }
        // Margins for the time the writes took and for a late wake-up.
        let gone = |d: &Duration| *d < Duration::from_millis(1600);
        let there = |d: &Duration| *d > Duration::from_millis(2600);
        assert!(lifetimes.iter().any(gone) && lifetimes.iter().any(there));
        tokio::time::sleep((start + lifetime).saturating_duration_since(Instant::now())).await;
        for (i, d) in lifetimes.iter().enumerate() {
            let found = cache.get::<i32>(&format!("k{i}")).await.unwrap();
            if gone(d) {
                assert_eq!(found, None, "k{i} lived {d:?}");
            } else if there(d) {
                assert_eq!(found, Some(i as i32), "k{i} lives {d:?}");
            }
        }
    }
}
