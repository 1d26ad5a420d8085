//! memcached over one or several servers, with a stable hash.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use memcache::exp::{
    Arithmetic, AsyncMetaClient, Delete, Error as McError, Get, Meta, MutationStatus, Router, Set,
};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use url::Url;

use crate::backend::{CacheBackend, ClearScope, Expiry, finite_lifetime};
use crate::clock;
use crate::error::{CacheError, ConfigError, Redacted, Result, redact};
use crate::options::{BackendOptions, ConnectionOptions};

mod meta;

use crate::backends::lanes::{Greeting, Lanes, ReadError};
use meta::{Found, MetaProtocol};

const NAME: &str = "memcached";

/// memcached reads an expiry time above this many seconds as an absolute
/// Unix time, not a lifetime (its `REALTIME_MAXDELTA`).
const MAX_RELATIVE_EXPIRY: u64 = 30 * 24 * 3600;

/// memcached's own [`LONGEST_EXPIRY`](crate::backend::LONGEST_EXPIRY):
/// longer lifetimes are stored without expiry, because memcached's absolute
/// times are 32-bit (now plus a century would not fit), and no cache needs
/// decades.
const LONGEST_MEMCACHED_EXPIRY: Duration = Duration::from_secs(50 * 365 * 24 * 3600);

/// memcached's port when the URL names none.
const DEFAULT_PORT: u16 = 11211;

/// A shared cache on memcached (Django's `PyMemcacheCache`), over one server
/// or several. URL: `memcached://127.0.0.1:11211` or
/// `memcached://10.0.0.1:11211,10.0.0.2:11211,10.0.0.3:11211`.
///
/// Asynchronous throughout, so no call blocks the runtime and no thread
/// pool is involved:
///
/// * **Reads** (`get`, `get_many` and their `_with_ttl` forms: the hit path)
///   go over one pipelined connection per server. Each is one meta get
///   (`mg <key> v`) written behind the reads already in flight there;
///   concurrent reads share one write and one read system call, where a
///   pool would take a connection and make a system call pair for each.
///   Measured on the demo's hits (callgrind, `--quiet`, a tagged page: two
///   reads per hit): 68.6k instructions per request through the pool, 57.5k
///   pipelined; under `wrk`, 0.17x (c10) and 0.14x (c50) of a bare handler
///   through the pool, 0.25x and 0.30x pipelined. The HTTP layers batch
///   their reads here ([`reads_are_round_trips`](CacheBackend::reads_are_round_trips)):
///   a tagged hit is then one batch, 52.3k instructions, 0.32x and 0.40x.
///   A connection that fails or does not answer within `command_timeout`
///   fails the reads it holds (misses, as below) and the next read makes a
///   new one.
/// * **Everything else** goes through the meta-protocol client of the
///   [`memcache`] crate (`memcache::exp`): each server has its own pool of up
///   to `pool_size` connections, all kept open when idle; a connection that
///   the server closed is found when it is taken from the pool and replaced,
///   so a restarted server is used again without rebuilding anything.
///
/// Keys are written the same way by both (raw, or base64 with the `b` flag
/// when a byte is a space, a control byte or DEL).
///
/// Options (URL query or [`CacheConfig::options`](crate::CacheConfig::options)):
///
/// | option | default | meaning |
/// |---|---|---|
/// | `pool_size` | `8` | the most pooled connections per server (writes, counters, compare-and-swap; reads share one pipelined connection); at the limit a command waits up to `connect_timeout` for one |
/// | `connect_timeout` | `500ms` | the longest wait to connect to a server |
/// | `command_timeout` | `500ms` | the longest wait for an answer |
///
/// # Several servers
///
/// Each key lives on one server, picked by rendezvous (highest random
/// weight) hashing of the key and the server's `host:port` as written in the
/// URL, with xxHash3, which gives the same answer in every process, build
/// and Rust version. The order of the servers does not matter, and adding a
/// fourth server to three moves only the quarter of the keys that now
/// belong to it.
///
/// A server that is down, or does not answer within the timeouts, turns
/// its keys into misses (`get`, `get_many`, `has_key`), while keys on the
/// other servers keep hitting; writes to it fail with an error. Keys are not
/// moved to the other servers meanwhile, so nothing is stored twice.
///
/// # Django's memcached rules
///
/// * Lifetimes are whole seconds, rounded up; over 30 days they are sent as
///   an absolute Unix time, as Django does; [`Timeout::Forever`](crate::Timeout::Forever)
///   is 0, memcached's "never".
/// * `add`, `incr`, `decr` and `touch` are memcached's own, atomic on the
///   server. `incr` keeps the entry's lifetime and never creates a key.
/// * `delete_if_equal` is compare-and-swap: `mg <key> v c` reads the value
///   with its CAS token, and only when the value is the expected one,
///   `md <key> C<token>` deletes it, which memcached refuses if the entry
///   changed in between. Two round trips, atomic; it needs CAS values
///   (memcached started with `-C` has none, and this fails with an error).
/// * `get_many`, `set_many` and `delete_many` send one pipelined batch per
///   server, to every server at once.
/// * A value larger than the server's item size limit (1 MiB unless
///   memcached runs with `-I`) fails: `set` returns an error, `set_many`
///   returns the key among the failed ones, and in both cases the key is
///   deleted so that an older value does not linger, as in Django.
/// * `clear` cannot select keys: it flushes every server (`flush_all`),
///   other caches' keys included, as Django does.
///
/// # Two tiers
///
/// With `l1_max_bytes` or `l1_ttl` in the URL, the cache is a
/// [`TieredBackend`](crate::backends::TieredBackend): an in-process L1 in
/// front of memcached, which has no pub/sub, so another instance's write is
/// seen here within `l1_ttl` (1 s by default): the staleness bound. L1
/// copies take the lifetime memcached reports (the `t` flag, one second
/// less, as memcached counts whole seconds).
///
/// # Differences from Django
///
/// * memcached counters are unsigned: `decr` stops at 0 (Django on
///   memcached gives 0 too; Django's other backends go negative), and a
///   negative number stored with `set` cannot be incremented
///   ([`CacheError::NotAnInteger`]).
/// * An increment past `i64::MAX` is undone and fails with
///   [`CacheError::Overflow`] (memcached itself would wrap around at 2^64).
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> tower_cache::Result<()> {
/// let cache = tower_cache::Cache::from_url("memcached://127.0.0.1:11211").await?;
/// cache.set("greeting", "hello", tower_cache::Timeout::Default).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct MemcachedBackend {
    /// Writes, `has_key`, compare-and-swap and arithmetic, over pooled
    /// connections.
    client: AsyncMetaClient,
    /// Reads, over one pipelined connection per server.
    lanes: Arc<Lanes<MetaProtocol>>,
    servers: Arc<[String]>,
    connect_timeout: Duration,
    command_timeout: Duration,
}

/// Builds a [`MemcachedBackend`]; see [`MemcachedBackend::builder`].
#[must_use]
#[derive(Clone)]
pub struct MemcachedBackendBuilder {
    servers: Vec<String>,
    pool_size: usize,
    connect_timeout: Duration,
    command_timeout: Duration,
}

// By hand: the server URLs may hold a password.
impl fmt::Debug for MemcachedBackendBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let servers: Vec<_> = self.servers.iter().map(|s| Redacted(s)).collect();
        f.debug_struct("MemcachedBackendBuilder")
            .field("servers", &servers)
            .field("pool_size", &self.pool_size)
            .field("connect_timeout", &self.connect_timeout)
            .field("command_timeout", &self.command_timeout)
            .finish()
    }
}

impl MemcachedBackendBuilder {
    /// The most pooled connections per server (default 8), all kept open
    /// when idle, for everything but reads (which share one pipelined
    /// connection per server). At the limit a command waits up to the
    /// connect timeout for a connection, then fails.
    pub fn pool_size(mut self, size: usize) -> Self {
        self.pool_size = size;
        self
    }

    /// The longest wait to connect to a server (default 500 ms).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The longest wait for a server's answer (default 500 ms).
    pub fn command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = timeout;
        self
    }

    /// The backend. Server names are resolved here (so it is `async`);
    /// connections are made on first use, so this succeeds while the servers
    /// are down.
    ///
    /// # Errors
    ///
    /// [`CacheError::Config`] when there is no server or a name does not
    /// resolve.
    pub async fn build(self) -> Result<MemcachedBackend> {
        if self.servers.is_empty() {
            return Err(ConfigError::InvalidOption {
                backend: NAME,
                option: "url".into(),
                value: String::new(),
                reason: "name at least one memcached server, as memcached://host:11211".into(),
            }
            .into());
        }
        let client = AsyncMetaClient::builder()
            .router(StableRendezvous)
            .max_idle(self.pool_size)
            .max_connections(Some(self.pool_size))
            .connect_timeout(Some(self.connect_timeout))
            .io_timeout(Some(self.command_timeout))
            .connect_multiple_async(self.servers.iter().map(String::as_str))
            .await
            .map_err(|e| ConfigError::InvalidOption {
                backend: NAME,
                option: "url".into(),
                value: self.servers.join(","),
                reason: e.to_string(),
            })?;
        Ok(MemcachedBackend {
            client,
            lanes: Arc::new(Lanes::new(
                self.servers
                    .iter()
                    .map(|server| (server.clone(), Greeting::default())),
                self.connect_timeout,
                self.command_timeout,
            )),
            servers: self.servers.into(),
            connect_timeout: self.connect_timeout,
            command_timeout: self.command_timeout,
        })
    }
}

/// Rendezvous hashing with xxHash3: a key's score on a server is the hash
/// of the key seeded with the hash of the server's name; the best score
/// wins. Unlike the default hasher of the standard library, xxHash3 is a
/// fixed algorithm, so every process agrees on where a key lives.
#[derive(Debug, Clone, Copy)]
struct StableRendezvous;

impl StableRendezvous {
    fn pick(key: &[u8], servers: &[String]) -> usize {
        // One server: no key to hash (two hashes a read, about 170
        // instructions).
        if servers.len() == 1 {
            return 0;
        }
        let mut best = (0, 0);
        for (index, server) in servers.iter().enumerate() {
            let seed = xxhash_rust::xxh3::xxh3_64(server.as_bytes());
            let score = xxhash_rust::xxh3::xxh3_64_with_seed(key, seed);
            if index == 0 || score > best.1 {
                best = (index, score);
            }
        }
        best.0
    }
}

impl Router for StableRendezvous {
    fn route(&self, key: &[u8], servers: &[String]) -> usize {
        StableRendezvous::pick(key, servers)
    }
}

/// The expiry time memcached is sent for a lifetime, by Django's rules:
/// 0 for "never", whole seconds (rounded up) up to 30 days, an absolute
/// Unix time beyond.
/// `now` is the time in seconds since the Unix epoch.
fn exptime(expiry: Expiry, now: u64) -> u32 {
    let Some(d) = finite_lifetime(expiry, LONGEST_MEMCACHED_EXPIRY) else {
        return 0;
    };
    let secs = d.as_nanos().div_ceil(1_000_000_000).max(1);
    let secs = u64::try_from(secs).unwrap_or(u64::MAX);
    let wire = if secs > MAX_RELATIVE_EXPIRY {
        now.saturating_add(secs)
    } else {
        secs
    };
    u32::try_from(wire).unwrap_or(u32::MAX)
}

/// The value of a plain hit.
fn hit_value(found: memcache::exp::GetResult) -> Option<Bytes> {
    if found.hit() {
        found.value.map(Bytes::from)
    } else {
        None
    }
}

/// Whether an error means the server could not be reached or did not answer
/// (rather than that it refused the command).
fn unreachable(err: &McError) -> bool {
    matches!(cause(err), McError::Io(_) | McError::Timeout { .. })
}

fn too_large(err: &McError) -> bool {
    matches!(cause(err), McError::Server(message) if message.contains("too large"))
}

/// What happened, under the client's note that a written request's outcome
/// is unknown (`Ambiguous`).
fn cause(err: &McError) -> &McError {
    match err {
        McError::Ambiguous { source, .. } => cause(source),
        other => other,
    }
}

/// The error for a value the server refused because of its size.
#[derive(Debug, thiserror::Error)]
#[error(
    "the value of {len} bytes is larger than the memcached item size limit \
     (1 MiB unless memcached runs with -I); the key was deleted"
)]
struct ValueTooLarge {
    len: usize,
    #[source]
    source: McError,
}

impl MemcachedBackend {
    /// Connect timeout when none is given.
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
    /// Command timeout when none is given.
    pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_millis(500);
    /// The most connections per server when no pool size is given.
    pub const DEFAULT_POOL_SIZE: usize = 8;

    /// A builder over servers given as `host:port`.
    pub fn builder<I, S>(servers: I) -> MemcachedBackendBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        MemcachedBackendBuilder {
            servers: servers.into_iter().map(Into::into).collect(),
            pool_size: MemcachedBackend::DEFAULT_POOL_SIZE,
            connect_timeout: MemcachedBackend::DEFAULT_CONNECT_TIMEOUT,
            command_timeout: MemcachedBackend::DEFAULT_COMMAND_TIMEOUT,
        }
    }

    /// From a cache URL and its options; see the type's docs.
    pub(crate) async fn from_url(
        url: &Url,
        servers: &[String],
        options: BackendOptions,
    ) -> Result<MemcachedBackend> {
        let ConnectionOptions {
            pool_size,
            connect_timeout,
            command_timeout,
        } = options.parse(NAME)?;
        if !url.username().is_empty() || url.password().is_some() || !matches!(url.path(), "" | "/")
        {
            return Err(ConfigError::InvalidOption {
                backend: NAME,
                option: "url".into(),
                value: redact(url.as_str()),
                reason: "a memcached URL is memcached://host:port[,host:port...], \
                         without credentials or path"
                    .into(),
            }
            .into());
        }
        let servers = servers
            .iter()
            .map(|server| match server.rsplit_once(':') {
                Some((_, port)) if !server.ends_with(']') && port.parse::<u16>().is_ok() => {
                    server.clone()
                }
                _ => format!("{server}:{DEFAULT_PORT}"),
            })
            .collect::<Vec<_>>();
        let mut builder = MemcachedBackend::builder(servers);
        if let Some(size) = pool_size {
            builder = builder.pool_size(size);
        }
        if let Some(timeout) = connect_timeout {
            builder = builder.connect_timeout(timeout);
        }
        if let Some(timeout) = command_timeout {
            builder = builder.command_timeout(timeout);
        }
        builder.build().await
    }

    /// The servers, as `host:port`, in the order given.
    pub fn servers(&self) -> &[String] {
        &self.servers
    }

    /// The server (`host:port`) that stores `key`, a key as the backend
    /// sees it (made by [`Cache::make_key`](crate::Cache::make_key)).
    pub fn server_for(&self, key: &str) -> &str {
        &self.servers[self.server_index(key)]
    }

    /// Where `key`'s server is in [`servers`](MemcachedBackend::servers)
    /// (and its read connection among the lanes).
    fn server_index(&self, key: &str) -> usize {
        StableRendezvous::pick(key.as_bytes(), &self.servers)
    }

    /// A read this backend cannot write (a key too long for memcached).
    fn refused(error: meta::KeyTooLong) -> CacheError {
        CacheError::backend(NAME, "get", error)
    }

    fn failed(operation: &'static str, err: McError) -> CacheError {
        CacheError::backend(NAME, operation, err)
    }

    /// Reads `key` (with its lifetime when `ttl` is asked) over its
    /// server's pipelined connection; an unreachable server is a miss.
    async fn read_one(&self, key: &str, ttl: bool) -> Result<Option<(Bytes, Option<Duration>)>> {
        let line = meta::get_line(key.as_bytes(), ttl).map_err(Self::refused)?;
        let read = self.lanes.get(self.server_index(key), line).await;
        self.found(key, read)
    }

    /// Reads `keys` (with their lifetimes when `ttl` is asked): every read
    /// is written before any answer is awaited, so each server gets them in
    /// one batch, and all servers at once. An unreachable server's keys are
    /// misses.
    async fn read_many(
        &self,
        keys: &[&str],
        ttl: bool,
    ) -> Result<Vec<Option<(Bytes, Option<Duration>)>>> {
        let lines = keys
            .iter()
            .map(|key| meta::get_line(key.as_bytes(), ttl))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(Self::refused)?;
        let sent: Vec<_> = keys
            .iter()
            .zip(lines)
            .map(|(key, line)| self.lanes.send(self.server_index(key), line))
            .collect();
        let mut found = Vec::with_capacity(keys.len());
        for (key, answer) in keys.iter().zip(sent) {
            let read = self.lanes.answer(answer).await;
            found.push(self.found(key, read)?);
        }
        Ok(found)
    }

    /// A read's value and remaining lifetime. memcached counts whole seconds
    /// on a clock that ticks once a second, so `t` seconds may be up to one
    /// second more than what is left: one second is taken off, so the
    /// lifetime is never overstated. `-1` never expires. A read that could
    /// not reach its server is a miss.
    fn found(
        &self,
        key: &str,
        read: std::result::Result<Found, ReadError>,
    ) -> Result<Option<(Bytes, Option<Duration>)>> {
        match read {
            Ok(Found::Hit { value, ttl }) => {
                let left = ttl
                    .and_then(|secs| u64::try_from(secs).ok())
                    .map(|secs| Duration::from_secs(secs.saturating_sub(1)));
                Ok(Some((value, left)))
            }
            Ok(Found::Miss) => Ok(None),
            Err(error) if error.unreachable() => {
                self.unreachable_is_a_miss(key, &error);
                Ok(None)
            }
            Err(error) => Err(CacheError::backend(NAME, "get", error)),
        }
    }

    /// Logs a read that could not reach `key`'s server, answered as a miss.
    fn unreachable_is_a_miss(&self, key: &str, error: &dyn std::fmt::Display) {
        tracing::warn!(
            server = self.server_for(key),
            error = %error,
            "memcached server unreachable; treating the read as a miss"
        );
    }

    async fn flush(&self, server: &str) -> Result<()> {
        let failed = |source: std::io::Error| CacheError::backend(NAME, "clear", source);
        let exchange = async {
            let mut stream = TcpStream::connect(server).await?;
            stream.write_all(b"flush_all\r\n").await?;
            let mut reply = String::new();
            BufReader::new(stream).read_line(&mut reply).await?;
            if reply == "OK\r\n" {
                Ok(())
            } else {
                Err(std::io::Error::other(format!(
                    "memcached {server} answered {reply:?} to flush_all"
                )))
            }
        };
        match tokio::time::timeout(self.connect_timeout + self.command_timeout, exchange).await {
            Ok(result) => result.map_err(failed),
            Err(_) => Err(CacheError::Timeout {
                backend: NAME,
                after: self.connect_timeout + self.command_timeout,
            }),
        }
    }

    /// Deletes keys whose write failed, so that no older value lingers;
    /// best effort (their server may be the reason the write failed).
    async fn forget(&self, keys: &[&str]) {
        if let Ok(results) = self.client.run_many(keys.iter().map(Delete::new)).await {
            for result in results.into_iter().filter_map(Result::err) {
                tracing::debug!(error = %result, "memcached: deleting a key after a failed write failed");
            }
        }
    }
}

impl fmt::Debug for MemcachedBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemcachedBackend")
            .field("servers", &self.servers)
            .field("connect_timeout", &self.connect_timeout)
            .field("command_timeout", &self.command_timeout)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl CacheBackend for MemcachedBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    fn reads_are_round_trips(&self) -> bool {
        true
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        Ok(self.read_one(key, false).await?.map(|(value, _)| value))
    }

    async fn get_with_ttl(&self, key: &str) -> Result<Option<(Bytes, Option<Duration>)>> {
        self.read_one(key, true).await
    }

    async fn get_many_with_ttl(
        &self,
        keys: &[&str],
    ) -> Result<Vec<Option<(Bytes, Option<Duration>)>>> {
        self.read_many(keys, true).await
    }

    async fn set(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<()> {
        let set = Set::new(key, &value).ttl_raw(exptime(expiry, clock::unix_secs()));
        match self.client.run(set).await {
            Ok(_) => Ok(()),
            Err(err) if too_large(&err) => {
                self.forget(&[key]).await;
                Err(CacheError::backend(
                    NAME,
                    "set",
                    ValueTooLarge {
                        len: value.len(),
                        source: err,
                    },
                ))
            }
            Err(err) => Err(MemcachedBackend::failed("set", err)),
        }
    }

    async fn add(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<bool> {
        let add = Set::new(key, &value)
            .ttl_raw(exptime(expiry, clock::unix_secs()))
            .add();
        match self.client.run(add).await {
            Ok(result) => Ok(result.applied()),
            Err(err) => Err(MemcachedBackend::failed("add", err)),
        }
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        self.client
            .run(Delete::new(key))
            .await
            .map(|result| result.applied())
            .map_err(|err| MemcachedBackend::failed("delete", err))
    }

    async fn delete_if_equal(&self, key: &str, expected: &[u8]) -> Result<bool> {
        const OPERATION: &str = "delete_if_equal";
        let read = Get::new(key).meta(Meta::NONE.cas());
        let found = self
            .client
            .run(read)
            .await
            .map_err(|err| MemcachedBackend::failed(OPERATION, err))?;
        let cas = found.item.cas;
        match hit_value(found) {
            Some(value) if value == expected => {}
            _ => return Ok(false),
        }
        // memcached started with -C keeps no CAS values (every item's is 0),
        // and `md ... C0` would delete whatever is stored by then.
        let cas = cas.filter(|&cas| cas != 0).ok_or_else(|| {
            CacheError::backend(
                NAME,
                OPERATION,
                std::io::Error::other(format!(
                    "memcached {} keeps no CAS values (it runs with -C), so \
                     delete_if_equal cannot be atomic; start it without -C",
                    self.server_for(key)
                )),
            )
        })?;
        self.client
            .run(Delete::new(key).compare_cas(cas))
            .await
            .map(|result| result.applied())
            .map_err(|err| MemcachedBackend::failed(OPERATION, err))
    }

    async fn touch(&self, key: &str, expiry: Expiry) -> Result<bool> {
        let touch = Get::new(key)
            .without_value()
            .touch_raw(exptime(expiry, clock::unix_secs()));
        self.client
            .run(touch)
            .await
            .map(|result| result.hit())
            .map_err(|err| MemcachedBackend::failed("touch", err))
    }

    async fn has_key(&self, key: &str) -> Result<bool> {
        match self.client.run(Get::new(key).without_value()).await {
            Ok(result) => Ok(result.hit()),
            Err(err) if unreachable(&err) => {
                self.unreachable_is_a_miss(key, &err);
                Ok(false)
            }
            Err(err) => Err(MemcachedBackend::failed("has_key", err)),
        }
    }

    async fn incr(&self, key: &str, delta: i64) -> Result<i64> {
        let not_an_integer = || CacheError::NotAnInteger {
            key: key.to_owned(),
        };
        let operation = Arithmetic::new(key).delta(delta.unsigned_abs());
        let operation = if delta < 0 {
            operation.decrement()
        } else {
            operation
        };
        let result = match self.client.run(operation).await {
            Ok(result) => result,
            Err(err) if matches!(cause(&err), McError::Rejected(_)) => return Err(not_an_integer()),
            Err(err) => return Err(MemcachedBackend::failed("incr", err)),
        };
        if result.status == MutationStatus::NotFound {
            return Err(CacheError::MissingKey {
                key: key.to_owned(),
            });
        }
        let value = result.value.ok_or_else(not_an_integer)?;
        match i64::try_from(value) {
            Ok(value) => Ok(value),
            Err(_) => {
                // Only an increment gets here, from a value that fitted an
                // i64: undo it exactly (no flooring at 0 is possible).
                let undo = Arithmetic::new(key).delta(delta.unsigned_abs()).decrement();
                if let Err(err) = self.client.run(undo).await {
                    tracing::warn!(error = %err, "memcached: undoing an overflowing incr failed");
                }
                Err(CacheError::Overflow {
                    key: key.to_owned(),
                })
            }
        }
    }

    async fn clear(&self, _scope: ClearScope<'_>) -> Result<()> {
        let flushes = self.servers.iter().map(|server| self.flush(server));
        futures_util::future::try_join_all(flushes).await.map(drop)
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        let found = self.read_many(keys, false).await?;
        Ok(found
            .into_iter()
            .map(|read| read.map(|(value, _)| value))
            .collect())
    }

    async fn set_many(&self, entries: Vec<(String, Bytes)>, expiry: Expiry) -> Result<Vec<String>> {
        let exptime = exptime(expiry, clock::unix_secs());
        let sets = entries
            .iter()
            .map(|(key, value)| Set::new(key, value).ttl_raw(exptime));
        let results = self
            .client
            .run_many(sets)
            .await
            .map_err(|err| MemcachedBackend::failed("set_many", err))?;
        let mut failed = Vec::new();
        for ((key, value), result) in entries.iter().zip(results) {
            let err = match result {
                Ok(done) if done.applied() => continue,
                Ok(_) => {
                    failed.push(key.as_str());
                    continue;
                }
                Err(err) => err,
            };
            // memcached answers an oversized value with an untagged
            // SERVER_ERROR, which fails the rest of that server's batch: the
            // refused keys are tried once more on their own.
            let retried = !unreachable(&err)
                && self
                    .client
                    .run(Set::new(key, value).ttl_raw(exptime))
                    .await
                    .is_ok_and(|done| done.applied());
            if !retried {
                tracing::warn!(key, error = %err, "memcached: set_many could not store a key");
                failed.push(key.as_str());
            }
        }
        if !failed.is_empty() {
            self.forget(&failed).await;
        }
        Ok(failed.into_iter().map(str::to_owned).collect())
    }

    async fn delete_many(&self, keys: &[&str]) -> Result<()> {
        let results = self
            .client
            .run_many(keys.iter().map(Delete::new))
            .await
            .map_err(|err| MemcachedBackend::failed("delete_many", err))?;
        match results.into_iter().find_map(Result::err) {
            Some(err) => Err(MemcachedBackend::failed("delete_many", err)),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exptime_follows_djangos_rules() {
        let now = 1_700_000_000;
        assert_eq!(exptime(None, now), 0);
        assert_eq!(exptime(Some(Duration::from_millis(1)), now), 1);
        assert_eq!(exptime(Some(Duration::from_millis(1500)), now), 2);
        assert_eq!(exptime(Some(Duration::from_secs(300)), now), 300);
        // Exactly 30 days stays relative, one second more is absolute.
        assert_eq!(
            exptime(Some(Duration::from_secs(2_592_000)), now),
            2_592_000
        );
        assert_eq!(
            exptime(Some(Duration::from_secs(2_592_001)), now),
            1_700_000_000 + 2_592_001
        );
        assert_eq!(exptime(Some(LONGEST_MEMCACHED_EXPIRY * 2), now), 0);
    }

    #[test]
    fn rendezvous_moves_only_the_new_servers_share() {
        let three: Vec<String> = (0..3).map(|i| format!("10.0.0.{i}:11211")).collect();
        let mut four = three.clone();
        four.push("10.0.0.3:11211".into());
        let keys = 20_000;
        let mut moved = 0;
        for i in 0..keys {
            let key = format!(":1:key{i}");
            let before = StableRendezvous::pick(key.as_bytes(), &three);
            let after = StableRendezvous::pick(key.as_bytes(), &four);
            if before != after {
                assert_eq!(after, 3, "a key moved between two old servers");
                moved += 1;
            }
        }
        let share = f64::from(moved) / f64::from(keys);
        assert!((0.22..0.28).contains(&share), "moved {share}");
        // The order of the servers does not matter.
        let mut shuffled = four.clone();
        shuffled.reverse();
        for i in 0..1000 {
            let key = format!("k{i}");
            assert_eq!(
                four[StableRendezvous::pick(key.as_bytes(), &four)],
                shuffled[StableRendezvous::pick(key.as_bytes(), &shuffled)]
            );
        }
    }
}
