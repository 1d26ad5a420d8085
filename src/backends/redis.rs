//! Redis: one server, a primary with read replicas, or Redis Cluster.

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use deadpool_redis::redis::aio::ConnectionLike;
use deadpool_redis::redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use deadpool_redis::redis::{
    self, Cmd, ErrorKind, FromRedisValue, IntoConnectionInfo, Pipeline, RedisError, RedisFuture,
    Script, ServerErrorKind, Value,
};
use deadpool_redis::{PoolConfig, Runtime, Timeouts};
use futures_util::future::BoxFuture;
use serde::Deserialize;
use url::Url;

use crate::backend::{CacheBackend, ClearScope, Expiry, LONGEST_EXPIRY, finite_lifetime};
use crate::backends::lanes::Lanes;
use crate::error::{CacheError, ConfigError, Redacted, Result, redact};
use crate::options::{BackendOptions, ConnectionOptions};

mod reads;
mod resp;

use reads::{integer_of, mget, read_lanes, value_of, values_of};
use resp::RespProtocol;

const NAME: &str = "redis";

/// The options of a `redis://` URL besides the [`ConnectionOptions`]; see
/// [`RedisBackend`]'s table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RedisOptions {
    #[serde(default)]
    wait_replicas: usize,
    #[serde(default)]
    cluster: bool,
    #[serde(default)]
    read_from_replicas: bool,
    #[serde(default)]
    ca_file: Option<PathBuf>,
}

/// `incr` that never creates a key: `INCRBY` only when the key exists, in
/// one atomic step on the server (Django checks `EXISTS` first, in a
/// separate round trip, so an entry expiring in between comes back as a
/// fresh counter there).
const INCR_EXISTING: &str = "if redis.call('EXISTS', KEYS[1]) == 1 then \
     return redis.call('INCRBY', KEYS[1], ARGV[1]) end return false";

/// `touch` to "never expires": `PERSIST` answers 0 for a key that has no
/// expiry, so existence is checked in the same atomic step.
const PERSIST_EXISTING: &str = "if redis.call('EXISTS', KEYS[1]) == 1 then \
     redis.call('PERSIST', KEYS[1]) return 1 end return 0";

/// `delete_if_equal`: `DEL` only when the value is the expected one, in one
/// atomic step on the server (a missing key's `GET` is `false` in Lua, equal
/// to no string).
static DELETE_IF_EQUAL: LazyLock<LuaScript> = LazyLock::new(|| {
    LuaScript::new(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then \
         return redis.call('DEL', KEYS[1]) else return 0 end",
    )
});

/// A Lua script: its code, for `EVAL`, and its SHA-1, for `EVALSHA`.
struct LuaScript {
    code: &'static str,
    sha1: String,
}

impl LuaScript {
    fn new(code: &'static str) -> LuaScript {
        let sha1 = Script::new(code).get_hash().to_owned();
        LuaScript { code, sha1 }
    }
}

/// Keys asked for per `SCAN` step by `clear`.
const SCAN_COUNT: usize = 1000;

/// A shared cache on Redis (Django's `RedisCache`).
///
/// Reads (`GET`, `MGET`, `GET` with `PTTL`, `EXISTS`) go over one pipelined
/// connection per server that the backend speaks RESP2 on itself:
/// concurrent reads share one write and one read of the socket, on this
/// side and on the server's, and a value is copied once, out of the read
/// buffer into an allocation of its own. That is on one server or
/// a primary with replicas, over plain TCP. Writes, and every command of a
/// cluster or over TLS, go over a few multiplexed connections per server,
/// taken from a [deadpool-redis](deadpool_redis) pool and replaced when
/// they break (no checkout `PING`). Either way a read is one round trip.
///
/// | URL | topology |
/// |---|---|
/// | `redis://127.0.0.1:6379/0` | one server, database 0 |
/// | `rediss://:password@host:6380/0` | the same over TLS (rustls; the system's root certificates, or `ca_file`) |
/// | `redis://primary:6379,replica1:6379,replica2:6379/0` | writes on the first server, reads on a replica picked at random (Django's `LOCATION` list) |
/// | `redis+cluster://h1:7000,h2:7001,h3:7002` (or `redis://...?cluster=true`) | Redis Cluster, through the redis crate's cluster client; any subset of the nodes will do |
///
/// Options (URL query or [`CacheConfig::options`](crate::CacheConfig::options)):
///
/// | option | default | meaning |
/// |---|---|---|
/// | `pool_size` | `2` | the multiplexed connections per server that writes (and, in a cluster or over TLS, reads) are spread over, round robin (for a cluster: cluster connections) |
/// | `connect_timeout` | `1s` | the longest wait for a new connection, including connecting |
/// | `command_timeout` | `500ms` | the longest wait for a command's answer (on the redis crate's connections, which also give up after 500 ms on their own, longer values do not help) |
/// | `wait_replicas` | `0` | after each write, `WAIT` until this many replicas have it (read-your-writes on replicas) |
/// | `cluster` | `false` | the URL's servers are Redis Cluster nodes |
/// | `read_from_replicas` | `false` | in a cluster, read from replica nodes |
/// | `ca_file` | the system's roots | `rediss://`: a PEM file of certificate authorities to trust instead |
///
/// So a dead server gives an error within `connect_timeout + command_timeout`,
/// never a hung request, and the connections are made again by themselves
/// once the server is back: the same backend recovers without being
/// rebuilt. A read connection that times out is closed, and the reads
/// waiting on it get the error; the next read connects again (with `AUTH`
/// and `SELECT` as the URL asks).
///
/// # Commands
///
/// `get` is `GET`, `set` is `SET ... PX` (no expiry for `Forever`), `add` is
/// `SET ... NX PX`, `touch` is `PEXPIRE` (or `PERSIST`), `delete` is `DEL`,
/// `has_key` is `EXISTS`, `delete_if_equal` is a Lua script (`GET`, compare,
/// `DEL`, atomic on the server; sent as `EVALSHA`, and as `EVAL` the first
/// time a server lacks it), `get_many` is one `MGET`, `set_many` is one
/// pipeline, `delete_many` is one `DEL`, and `incr` is `INCRBY` on the
/// decimal text the codec stores (so `redis-cli INCRBY` works on the same
/// keys), run in a script that refuses a missing key instead of creating it.
/// In a cluster, `MGET` and `DEL` are split by hash slot by the redis crate
/// and `set_many` sends its writes concurrently.
///
/// # Two tiers
///
/// With `l1_max_bytes` (or `l1_ttl`, `l1_channel`) in the URL, the cache is a
/// [`TieredBackend`](crate::backends::TieredBackend): an in-process L1 in
/// front of Redis, kept coherent across app instances by pub/sub (see
/// [`RedisInvalidation`](crate::backends::RedisInvalidation)).
///
/// # Differences from Django
///
/// `clear` removes only this cache's keys: those under its `key_prefix:`
/// (every version), found with `SCAN` and removed with `UNLINK`, on every
/// primary of a cluster. Django sends `FLUSHDB`, which also wipes whatever
/// else shares the database (sessions, queues, another site's cache). A
/// cache whose key function makes keys of unknown shape still flushes the
/// database, as Django does.
///
/// Replicas are read at random as in Django; Redis replicates
/// asynchronously, so without `wait_replicas` a read right after a write may
/// miss or see the old value there.
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> tower_cache::Result<()> {
/// let cache = tower_cache::Cache::from_url("redis://127.0.0.1:6379/0?pool_size=16").await?;
/// cache.set("greeting", "hello", tower_cache::Timeout::Default).await?;
/// // redis-cli GET :1:greeting  =>  "\"hello\""
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisBackend {
    topology: Topology,
    settings: Arc<Settings>,
    shared: Arc<SharedConnections>,
    /// Reads, over one pipelined connection per server (see [`Lanes`]):
    /// on one server or a primary with replicas, over plain TCP. `None`
    /// for a cluster, TLS and Unix sockets, whose reads take the shared
    /// connections.
    reads: Option<Arc<Lanes<RespProtocol>>>,
}

/// The connections commands share: for each server (or the cluster), a few
/// multiplexed connections taken from its pool when first needed and cloned
/// for each command, round robin. A pooled connection is checked with a
/// `PING` on every checkout (deadpool-redis's recycling), which doubled the
/// round trips of a single `GET`; a multiplexed connection needs no checkout
/// and pipelines concurrent commands. A connection that fails (an I/O
/// error, a dropped connection, a timeout) leaves its slot, and the next
/// command takes a new one from the pool, which connects within
/// `connect_timeout`.
struct SharedConnections {
    /// `per_server` slots for the primary (or the cluster), then as many
    /// for each replica.
    slots: Box<[std::sync::Mutex<Option<Connection>>]>,
    per_server: usize,
    next: std::sync::atomic::AtomicUsize,
}

impl SharedConnections {
    fn new(servers: usize, per_server: usize) -> SharedConnections {
        SharedConnections {
            slots: (0..servers * per_server)
                .map(|_| std::sync::Mutex::new(None))
                .collect(),
            per_server,
            next: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// The slot of the next command on `server` (round robin).
    fn pick(&self, server: usize) -> usize {
        let turn = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        server * self.per_server + turn % self.per_server
    }

    fn lock(&self, slot: usize) -> std::sync::MutexGuard<'_, Option<Connection>> {
        self.slots[slot].lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Multiplexed connections per server unless `pool_size` says otherwise.
const SHARED_PER_SERVER: usize = 2;

#[derive(Clone)]
enum Topology {
    Single {
        primary: deadpool_redis::Pool,
        replicas: Arc<[deadpool_redis::Pool]>,
    },
    Cluster(deadpool_redis::cluster::Pool),
}

#[derive(Debug)]
struct Settings {
    servers: Vec<String>,
    connect_timeout: Duration,
    command_timeout: Duration,
    wait_replicas: usize,
    /// Where a subscriber connection may go, in order of preference: the
    /// primary, or every cluster node given.
    subscribe_to: Vec<redis::ConnectionInfo>,
}

/// Which server an operation needs: replicas may serve reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Read,
    Write,
}

/// Builds a [`RedisBackend`]; see [`RedisBackend::builder`].
#[must_use]
#[derive(Clone)]
pub struct RedisBackendBuilder {
    servers: Vec<String>,
    cluster: bool,
    read_from_replicas: bool,
    pool_size: Option<usize>,
    connect_timeout: Duration,
    command_timeout: Duration,
    wait_replicas: usize,
    ca_file: Option<PathBuf>,
}

// By hand: the server URLs may hold a password.
impl std::fmt::Debug for RedisBackendBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let servers: Vec<_> = self.servers.iter().map(|s| Redacted(s)).collect();
        f.debug_struct("RedisBackendBuilder")
            .field("servers", &servers)
            .field("cluster", &self.cluster)
            .field("read_from_replicas", &self.read_from_replicas)
            .field("pool_size", &self.pool_size)
            .field("connect_timeout", &self.connect_timeout)
            .field("command_timeout", &self.command_timeout)
            .field("wait_replicas", &self.wait_replicas)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

impl RedisBackendBuilder {
    /// The first server is the primary, the others read replicas; or, with
    /// [`cluster`](Self::cluster), some nodes of the cluster.
    fn new(servers: Vec<String>) -> Self {
        RedisBackendBuilder {
            servers,
            cluster: false,
            read_from_replicas: false,
            pool_size: None,
            connect_timeout: RedisBackend::DEFAULT_CONNECT_TIMEOUT,
            command_timeout: RedisBackend::DEFAULT_COMMAND_TIMEOUT,
            wait_replicas: 0,
            ca_file: None,
        }
    }

    /// For `rediss://` servers: trust the certificate authorities in this
    /// PEM file instead of the system's (a private CA, as Redis TLS setups
    /// usually have).
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }

    /// The servers are Redis Cluster nodes.
    pub fn cluster(mut self, cluster: bool) -> Self {
        self.cluster = cluster;
        self
    }

    /// In a cluster, send reads to replica nodes.
    pub fn read_from_replicas(mut self, read_from_replicas: bool) -> Self {
        self.read_from_replicas = read_from_replicas;
        self
    }

    /// The multiplexed connections per server that writes are spread
    /// over, round robin (and reads, in a cluster or over TLS; for a
    /// cluster, cluster connections; default 2, at most 64). One connection
    /// pipelines any number of concurrent commands; a few keep one large
    /// value from delaying every other. Reads on one server or a primary
    /// with replicas over plain TCP share one connection per server,
    /// whatever this says: batching them is what makes them cheap.
    pub fn pool_size(mut self, size: usize) -> Self {
        self.pool_size = Some(size);
        self
    }

    /// The longest wait for a new connection, connecting included (default
    /// 1 s): when a command first needs one, and after one broke.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The longest wait for a command's answer (default 500 ms). The redis
    /// crate's connections (writes; a cluster's and TLS reads) give up on
    /// their own after 500 ms, so longer values help only the reads of the
    /// backend's own connections.
    pub fn command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = timeout;
        self
    }

    /// After every write, wait (`WAIT`, up to the command timeout) until this
    /// many replicas have it, so that reads on replicas see it (default 0:
    /// do not wait, as Django).
    pub fn wait_replicas(mut self, replicas: usize) -> Self {
        self.wait_replicas = replicas;
        self
    }

    /// The backend. Connections are made on first use, so this succeeds
    /// while the servers are down (it is `async` as every backend builder's
    /// `build()` is).
    ///
    /// # Errors
    ///
    /// [`CacheError::Config`] for a server URL the redis crate refuses, or a
    /// `ca_file` that cannot be read.
    pub async fn build(self) -> Result<RedisBackend> {
        let invalid = |reason: String| ConfigError::InvalidOption {
            backend: NAME,
            option: "url".into(),
            value: redact(&self.servers.join(",")),
            reason: redact(&reason),
        };
        let mut pool_config = match self.pool_size {
            Some(size) => PoolConfig::new(size),
            None => PoolConfig::default(),
        };
        pool_config.timeouts = Timeouts {
            wait: Some(self.connect_timeout),
            create: Some(self.connect_timeout),
            recycle: Some(self.command_timeout),
        };
        let root_cert = match &self.ca_file {
            Some(path) => Some(std::fs::read(path).map_err(|e| ConfigError::InvalidOption {
                backend: NAME,
                option: "ca_file".into(),
                value: path.display().to_string(),
                reason: e.to_string(),
            })?),
            None => None,
        };
        let mut infos = Vec::with_capacity(self.servers.len());
        for server in &self.servers {
            let info = match &root_cert {
                Some(pem) => {
                    let certs = redis::TlsCertificates {
                        client_tls: None,
                        root_cert: Some(pem.clone()),
                    };
                    redis::Client::build_with_tls(server.as_str(), certs)
                        .map(|client| client.get_connection_info().clone())
                }
                None => server.as_str().into_connection_info(),
            };
            infos.push(info.map_err(|e| invalid(e.to_string()))?);
        }
        // Classic pub/sub reaches every node of a cluster, so any node will
        // do for a subscriber; on one server, the primary.
        let subscribe_to = if self.cluster {
            infos.clone()
        } else {
            infos.iter().take(1).cloned().collect()
        };
        let reads = if self.cluster {
            None
        } else {
            read_lanes(&infos, self.connect_timeout, self.command_timeout).map(Arc::new)
        };
        let topology = if self.cluster {
            let manager = deadpool_redis::cluster::Manager::new(infos, self.read_from_replicas)
                .map_err(|e| invalid(e.to_string()))?;
            let pool = deadpool_redis::cluster::Pool::builder(manager)
                .config(pool_config)
                .runtime(Runtime::Tokio1)
                .build()
                .map_err(|e| invalid(e.to_string()))?;
            Topology::Cluster(pool)
        } else {
            let mut pools = Vec::with_capacity(infos.len());
            for info in infos {
                let manager =
                    deadpool_redis::Manager::new(info).map_err(|e| invalid(e.to_string()))?;
                let pool = deadpool_redis::Pool::builder(manager)
                    .config(pool_config)
                    .runtime(Runtime::Tokio1)
                    .build()
                    .map_err(|e| invalid(e.to_string()))?;
                pools.push(pool);
            }
            if pools.is_empty() {
                return Err(invalid("no server given".into()).into());
            }
            let primary = pools.remove(0);
            Topology::Single {
                primary,
                replicas: pools.into(),
            }
        };
        let server_count = match &topology {
            Topology::Single { replicas, .. } => 1 + replicas.len(),
            Topology::Cluster(_) => 1,
        };
        let per_server = self.pool_size.unwrap_or(SHARED_PER_SERVER).clamp(1, 64);
        let servers = self.servers.iter().map(|s| redact(s)).collect();
        Ok(RedisBackend {
            shared: Arc::new(SharedConnections::new(server_count, per_server)),
            reads,
            topology,
            settings: Arc::new(Settings {
                servers,
                connect_timeout: self.connect_timeout,
                command_timeout: self.command_timeout,
                wait_replicas: self.wait_replicas,
                subscribe_to,
            }),
        })
    }
}

/// A multiplexed connection of either topology (cheap to clone: clones
/// share one socket).
#[derive(Clone)]
enum Connection {
    Single(deadpool_redis::redis::aio::MultiplexedConnection),
    Cluster(deadpool_redis::cluster::ClusterConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Connection::Single(c) => c.req_packed_command(cmd),
            Connection::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Connection::Single(c) => c.req_packed_commands(cmd, offset, count),
            Connection::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Single(c) => c.get_db(),
            Connection::Cluster(c) => c.get_db(),
        }
    }
}

/// The lifetime argument of `SET ... PX` / `PEXPIRE`: whole milliseconds,
/// rounded up so that a sub-millisecond lifetime is not "no lifetime";
/// `None` for "never expires".
fn expiry_millis(expiry: Expiry) -> Option<u64> {
    let d = finite_lifetime(expiry, LONGEST_EXPIRY)?;
    let millis = d.as_nanos().div_ceil(1_000_000).max(1);
    Some(u64::try_from(millis).unwrap_or(u64::MAX))
}

fn set_command(key: &str, value: &[u8], expiry: Expiry, only_if_absent: bool) -> Cmd {
    let mut cmd = redis::cmd("SET");
    cmd.arg(key).arg(value);
    if only_if_absent {
        cmd.arg("NX");
    }
    if let Some(ms) = expiry_millis(expiry) {
        cmd.arg("PX").arg(ms);
    }
    cmd
}

/// Sends `cmd`, followed in the same round trip by `wait` (`WAIT` for
/// replicas) when given; the answer is `cmd`'s.
async fn query<T: FromRedisValue>(
    connection: &mut Connection,
    cmd: Cmd,
    wait: Option<Cmd>,
) -> redis::RedisResult<T> {
    match wait {
        None => cmd.query_async(connection).await,
        Some(wait) => {
            let mut pipe = redis::pipe();
            pipe.add_command(cmd).add_command(wait).ignore();
            let (value,): (T,) = pipe.query_async(connection).await?;
            Ok(value)
        }
    }
}

/// `GET` and `PTTL` of `key` in one pipeline (one slot in a cluster).
async fn get_with_ttl_on<C: ConnectionLike + Send>(
    connection: &mut C,
    key: &str,
) -> redis::RedisResult<Option<(Bytes, Option<Duration>)>> {
    let mut pipe = redis::pipe();
    pipe.cmd("GET").arg(key).cmd("PTTL").arg(key);
    let (value, ttl): (Option<Vec<u8>>, i64) = pipe.query_async(connection).await?;
    Ok(value.map(|value| (Bytes::from(value), pttl(ttl))))
}

/// A `PTTL` answer as a remaining lifetime: milliseconds, or `None` for
/// "no expiry" (-1) and "no such key" (-2, a key deleted between the `GET`
/// and the `PTTL` of one pipeline: whatever deleted it also announced it).
fn pttl(millis: i64) -> Option<Duration> {
    u64::try_from(millis).ok().map(Duration::from_millis)
}

/// `*` `?` `[` `]` `\` taken literally in a `SCAN MATCH` pattern.
fn glob_escape(prefix: &str) -> String {
    let mut pattern = String::with_capacity(prefix.len() + 2);
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('*');
    pattern
}

/// The primaries of a cluster, from `CLUSTER NODES`: `host:port` pairs.
fn cluster_primaries(nodes: &str) -> Vec<(String, u16)> {
    nodes
        .lines()
        .filter_map(|line| {
            let mut fields = line.split(' ');
            let _id = fields.next()?;
            let address = fields.next()?;
            let flags = fields.next()?;
            let is_primary = flags.split(',').any(|f| f == "master")
                && !flags.split(',').any(|f| f == "fail" || f == "noaddr");
            if !is_primary {
                return None;
            }
            // ip:port@cport[,hostname]
            let address = address.split(['@', ',']).next()?;
            let (host, port) = address.rsplit_once(':')?;
            Some((host.to_owned(), port.parse().ok()?))
        })
        .collect()
}

impl RedisBackend {
    /// Connect timeout when none is given.
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
    /// Command timeout when none is given (the redis crate's own).
    pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_millis(500);

    /// A builder over server URLs (`redis://host:port/db`, `rediss://...`):
    /// the first is the primary, the others read replicas; or, with
    /// [`cluster`](RedisBackendBuilder::cluster), cluster nodes.
    pub fn builder<I, S>(servers: I) -> RedisBackendBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        RedisBackendBuilder::new(servers.into_iter().map(Into::into).collect())
    }

    /// From a cache URL and its options; see the type's docs.
    pub(crate) async fn from_url(
        url: &Url,
        servers: &[String],
        options: BackendOptions,
    ) -> Result<RedisBackend> {
        let (connection, options): (ConnectionOptions, RedisOptions) = options.parse_both(NAME)?;
        let (scheme, cluster) = match url.scheme() {
            "redis+cluster" => ("redis", true),
            "rediss+cluster" => ("rediss", true),
            other => (other, options.cluster),
        };
        let mut builder = RedisBackend::builder(server_urls(url, servers, scheme)?)
            .cluster(cluster)
            .read_from_replicas(options.read_from_replicas)
            .wait_replicas(options.wait_replicas);
        if let Some(size) = connection.pool_size {
            builder = builder.pool_size(size);
        }
        if let Some(timeout) = connection.connect_timeout {
            builder = builder.connect_timeout(timeout);
        }
        if let Some(timeout) = connection.command_timeout {
            builder = builder.command_timeout(timeout);
        }
        if let Some(path) = options.ca_file {
            builder = builder.ca_file(path);
        }
        builder.build().await
    }

    /// The server an operation of `role` goes to: a replica picked at
    /// random for a read when there are replicas, else the primary (or the
    /// cluster).
    fn server_for(&self, role: Role) -> usize {
        match &self.topology {
            Topology::Single { replicas, .. } if role == Role::Read && !replicas.is_empty() => {
                1 + rand::random_range(0..replicas.len())
            }
            _ => 0,
        }
    }

    /// A shared connection for `role`, and its slot: a clone of the slot's
    /// connection, or one taken from the pool within the connect timeout.
    async fn connection(&self, role: Role) -> Result<(Connection, usize)> {
        let server = self.server_for(role);
        let slot = self.shared.pick(server);
        if let Some(connection) = self.shared.lock(slot).clone() {
            return Ok((connection, slot));
        }
        // Boxed: the pool's futures (a wait, a check, a new connection) and
        // a timer would otherwise size every command's future, which is
        // moved whole into its box on every call.
        Box::pin(self.connect(server, slot)).await
    }

    /// A connection taken from server `server`'s pool within the connect
    /// timeout, kept in `slot` for the next commands.
    async fn connect(&self, server: usize, slot: usize) -> Result<(Connection, usize)> {
        let failed = |source| CacheError::backend(NAME, "connect", source);
        let get = async {
            let connection: Result<Connection> = match &self.topology {
                Topology::Single { primary, replicas } => {
                    let pool = if server == 0 {
                        primary
                    } else {
                        &replicas[server - 1]
                    };
                    let pooled = pool.get().await.map_err(failed)?;
                    Ok(Connection::Single(deadpool_redis::Connection::take(pooled)))
                }
                Topology::Cluster(pool) => {
                    let pooled = pool.get().await.map_err(failed)?;
                    Ok(Connection::Cluster(
                        deadpool_redis::cluster::Connection::take(pooled),
                    ))
                }
            };
            connection
        };
        // deadpool bounds each step on its own: the wait for a slot, then
        // the check (a PING) of each idle connection it tries, then a new
        // connection. A frozen server (SIGSTOP, a hung host) fails every
        // idle connection's check, so without this bound a `get` would
        // cost one command timeout per idle connection in the pool.
        let connection = match tokio::time::timeout(self.settings.connect_timeout, get).await {
            Ok(result) => result?,
            Err(_) => {
                return Err(CacheError::Timeout {
                    backend: NAME,
                    after: self.settings.connect_timeout,
                });
            }
        };
        *self.shared.lock(slot) = Some(connection.clone());
        Ok((connection, slot))
    }

    /// Runs `work` on a connection for `role`, within the command timeout.
    /// A connection that failed leaves its slot.
    async fn with_connection<T, F>(&self, operation: &'static str, role: Role, work: F) -> Result<T>
    where
        F: for<'c> FnOnce(&'c mut Connection) -> BoxFuture<'c, redis::RedisResult<T>>,
    {
        let (mut connection, slot) = self.connection(role).await?;
        let result =
            tokio::time::timeout(self.settings.command_timeout, work(&mut connection)).await;
        let broken = match &result {
            Ok(Ok(_)) => false,
            Ok(Err(error)) => {
                error.is_io_error()
                    || error.is_connection_dropped()
                    || error.is_connection_refusal()
                    || error.is_timeout()
                    || error.is_unrecoverable_error()
            }
            Err(_) => true,
        };
        if broken {
            self.shared.lock(slot).take();
        }
        match result {
            Ok(result) => result.map_err(|e| CacheError::backend(NAME, operation, e)),
            Err(_) => Err(CacheError::Timeout {
                backend: NAME,
                after: self.settings.command_timeout,
            }),
        }
    }

    /// One command. Writes on a primary with replicas to wait for are
    /// followed by `WAIT` in the same round trip.
    async fn run<T: FromRedisValue + 'static>(
        &self,
        operation: &'static str,
        role: Role,
        cmd: Cmd,
    ) -> Result<T> {
        let wait = self.wait_command(role);
        self.with_connection(operation, role, move |connection| {
            Box::pin(query(connection, cmd, wait))
        })
        .await
    }

    /// `PUBLISH`es `message` on `channel` (through the primary, or any
    /// cluster node: a cluster passes classic pub/sub messages to every node).
    /// Never followed by `WAIT`: a message is not data to replicate.
    pub(crate) async fn publish(&self, channel: &str, message: Vec<u8>) -> Result<()> {
        let mut cmd = redis::cmd("PUBLISH");
        cmd.arg(channel).arg(message);
        self.with_connection("publish", Role::Write, move |connection| {
            Box::pin(async move { cmd.query_async::<i64>(connection).await.map(drop) })
        })
        .await
    }

    /// The servers a subscriber connection may use, in order of preference.
    pub(crate) fn subscribe_to(&self) -> &[redis::ConnectionInfo] {
        &self.settings.subscribe_to
    }

    /// The database number of the URL (0 in a cluster).
    pub(crate) fn database(&self) -> i64 {
        self.settings
            .subscribe_to
            .first()
            .map_or(0, |info| info.redis_settings().db())
    }

    /// The longest wait to connect, and for an answer.
    pub(crate) fn timeouts(&self) -> (Duration, Duration) {
        (self.settings.connect_timeout, self.settings.command_timeout)
    }

    /// A write that runs `script` on `key` with `args`: `EVALSHA`, then, if
    /// the server does not have the script yet (`NOSCRIPT`), `EVAL` on the
    /// same connection, which also caches it there for the next `EVALSHA`.
    /// In a cluster both are routed by the key.
    async fn run_script<T: FromRedisValue + Send + 'static>(
        &self,
        operation: &'static str,
        script: &LuaScript,
        key: &str,
        args: &[&[u8]],
    ) -> Result<T> {
        let invocation = |verb: &str, body: &str| {
            let mut cmd = redis::cmd(verb);
            cmd.arg(body).arg(1).arg(key);
            for arg in args {
                cmd.arg(*arg);
            }
            cmd
        };
        let evalsha = invocation("EVALSHA", &script.sha1);
        let eval = invocation("EVAL", script.code);
        let wait = self.wait_command(Role::Write);
        self.with_connection(operation, Role::Write, move |connection| {
            Box::pin(async move {
                match query(connection, evalsha, wait.clone()).await {
                    Err(err) if err.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                        query(connection, eval, wait).await
                    }
                    outcome => outcome,
                }
            })
        })
        .await
    }

    fn wait_command(&self, role: Role) -> Option<Cmd> {
        let waits = role == Role::Write
            && self.settings.wait_replicas > 0
            && matches!(self.topology, Topology::Single { .. });
        waits.then(|| {
            let mut wait = redis::cmd("WAIT");
            let millis = self.settings.command_timeout.as_millis().max(1);
            wait.arg(self.settings.wait_replicas)
                .arg(u64::try_from(millis).unwrap_or(u64::MAX));
            wait
        })
    }

    async fn clear_prefix(&self, prefix: &str) -> Result<()> {
        let pattern = glob_escape(prefix);
        match &self.topology {
            Topology::Single { .. } => self.clear_node(&pattern, None).await,
            Topology::Cluster(_) => {
                let nodes: String = self
                    .run("clear", Role::Write, {
                        let mut cmd = redis::cmd("CLUSTER");
                        cmd.arg("NODES");
                        cmd
                    })
                    .await?;
                for (host, port) in cluster_primaries(&nodes) {
                    self.clear_node(&pattern, Some((host, port))).await?;
                }
                Ok(())
            }
        }
    }

    /// `SCAN` one server (the primary, or the given cluster node) for keys
    /// matching `pattern` and `UNLINK` them, batch by batch.
    async fn clear_node(&self, pattern: &str, node: Option<(String, u16)>) -> Result<()> {
        let mut cursor: u64 = 0;
        loop {
            let mut scan = redis::cmd("SCAN");
            scan.arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(SCAN_COUNT);
            let (next, keys): (u64, Vec<String>) = match &node {
                None => self.run("clear", Role::Write, scan).await?,
                Some((host, port)) => {
                    let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                        host: host.clone(),
                        port: *port,
                    });
                    self.with_connection("clear", Role::Write, move |connection| {
                        Box::pin(async move {
                            let Connection::Cluster(cluster) = connection else {
                                unreachable!("node addresses are only used in a cluster")
                            };
                            let reply = cluster.route_command(scan, routing).await?;
                            FromRedisValue::from_redis_value(reply).map_err(RedisError::from)
                        })
                    })
                    .await?
                }
            };
            if !keys.is_empty() {
                let mut unlink = redis::cmd("UNLINK");
                unlink.arg(&keys);
                let _: i64 = self.run("clear", Role::Write, unlink).await?;
            }
            if next == 0 {
                return Ok(());
            }
            cursor = next;
        }
    }
}

/// The redis URL of every server: the cache URL's scheme, credentials and
/// database with each server's host and port, without the query (those are
/// this crate's options, already taken).
fn server_urls(url: &Url, servers: &[String], scheme: &str) -> Result<Vec<String>> {
    let invalid = |value: String, reason: String| ConfigError::InvalidOption {
        backend: NAME,
        option: "url".into(),
        value: redact(&value),
        reason,
    };
    let mut base = url.clone();
    base.set_query(None);
    base.set_fragment(None);
    if base.scheme() != scheme {
        base.set_scheme(scheme)
            .map_err(|()| invalid(url.to_string(), format!("cannot use the scheme {scheme}")))?;
    }
    if servers.len() <= 1 {
        return Ok(vec![base.to_string()]);
    }
    servers
        .iter()
        .map(|server| {
            let parsed = Url::parse(&format!("{scheme}://{server}"))
                .map_err(|e| invalid(server.clone(), e.to_string()))?;
            let mut each = base.clone();
            each.set_host(parsed.host_str())
                .map_err(|e| invalid(server.clone(), e.to_string()))?;
            each.set_port(parsed.port())
                .map_err(|()| invalid(server.clone(), "bad port".into()))?;
            Ok(each.to_string())
        })
        .collect()
}

impl fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let topology = match &self.topology {
            Topology::Single { replicas, .. } if replicas.is_empty() => "single",
            Topology::Single { .. } => "primary+replicas",
            Topology::Cluster(_) => "cluster",
        };
        f.debug_struct("RedisBackend")
            .field("topology", &topology)
            .field("servers", &self.settings.servers)
            .field("connect_timeout", &self.settings.connect_timeout)
            .field("command_timeout", &self.settings.command_timeout)
            .field("wait_replicas", &self.settings.wait_replicas)
            .field("read_lanes", &self.reads.is_some())
            .finish()
    }
}

/// The error of an `incr` script, as the cache's own.
fn incr_error(key: &str, err: CacheError) -> CacheError {
    let CacheError::Backend { source, .. } = &err else {
        return err;
    };
    let message = source.to_string();
    if message.contains("not an integer") {
        CacheError::NotAnInteger {
            key: key.to_owned(),
        }
    } else if message.contains("overflow") {
        CacheError::Overflow {
            key: key.to_owned(),
        }
    } else {
        err
    }
}

#[async_trait]
impl CacheBackend for RedisBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    fn reads_are_round_trips(&self) -> bool {
        true
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        if let Some(lanes) = &self.reads {
            let line = resp::command([b"GET".as_slice(), key.as_bytes()]);
            return value_of("get", self.read_one(lanes, "get", line).await?);
        }
        let mut cmd = redis::cmd("GET");
        cmd.arg(key);
        let value: Option<Vec<u8>> = self.run("get", Role::Read, cmd).await?;
        Ok(value.map(Bytes::from))
    }

    async fn get_with_ttl(&self, key: &str) -> Result<Option<(Bytes, Option<Duration>)>> {
        if let Some(lanes) = &self.reads {
            let mut found = self.read_with_ttl(lanes, "get", &[key]).await?;
            return Ok(found.pop().flatten());
        }
        let key = key.to_owned();
        self.with_connection("get", Role::Read, move |connection| {
            Box::pin(async move { get_with_ttl_on(connection, &key).await })
        })
        .await
    }

    async fn get_many_with_ttl(
        &self,
        keys: &[&str],
    ) -> Result<Vec<Option<(Bytes, Option<Duration>)>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(lanes) = &self.reads {
            return self.read_with_ttl(lanes, "get_many", keys).await;
        }
        let keys: Vec<String> = keys.iter().map(|&key| key.to_owned()).collect();
        match &self.topology {
            // One round trip: `MGET` and a `PTTL` per key in one pipeline.
            Topology::Single { .. } => {
                let mut pipe = redis::pipe();
                pipe.cmd("MGET").arg(&keys);
                for key in &keys {
                    pipe.cmd("PTTL").arg(key);
                }
                self.with_connection("get_many", Role::Read, move |connection| {
                    Box::pin(async move {
                        let mut answers: Vec<Value> = pipe.query_async(connection).await?;
                        let ttls = answers.split_off(1);
                        let values: Vec<Option<Vec<u8>>> =
                            FromRedisValue::from_redis_value(answers.remove(0))?;
                        let mut found = Vec::with_capacity(values.len());
                        for (value, ttl) in values.into_iter().zip(ttls) {
                            let ttl: i64 = FromRedisValue::from_redis_value(ttl)?;
                            found.push(value.map(|value| (Bytes::from(value), pttl(ttl))));
                        }
                        Ok(found)
                    })
                })
                .await
            }
            // Keys live in different slots: a `GET` + `PTTL` pipeline per
            // key, all at once on the multiplexed cluster connection, which
            // pipelines them per node (one round trip per node, in parallel).
            Topology::Cluster(_) => {
                self.with_connection("get_many", Role::Read, move |connection| {
                    Box::pin(async move {
                        let Connection::Cluster(cluster) = connection else {
                            unreachable!("a cluster pool gives cluster connections")
                        };
                        let cluster: &deadpool_redis::cluster::ClusterConnection = cluster;
                        let reads = keys.iter().map(|key| {
                            let mut each = cluster.clone();
                            async move { get_with_ttl_on(&mut each, key).await }
                        });
                        futures_util::future::try_join_all(reads).await
                    })
                })
                .await
            }
        }
    }

    async fn set(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<()> {
        let () = self
            .run("set", Role::Write, set_command(key, &value, expiry, false))
            .await?;
        Ok(())
    }

    async fn add(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<bool> {
        let stored: Option<String> = self
            .run("add", Role::Write, set_command(key, &value, expiry, true))
            .await?;
        Ok(stored.is_some())
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        let mut cmd = redis::cmd("DEL");
        cmd.arg(key);
        let removed: i64 = self.run("delete", Role::Write, cmd).await?;
        Ok(removed > 0)
    }

    async fn delete_if_equal(&self, key: &str, expected: &[u8]) -> Result<bool> {
        let removed: i64 = self
            .run_script("delete_if_equal", &DELETE_IF_EQUAL, key, &[expected])
            .await?;
        Ok(removed > 0)
    }

    async fn touch(&self, key: &str, expiry: Expiry) -> Result<bool> {
        let cmd = match expiry_millis(expiry) {
            Some(ms) => {
                let mut cmd = redis::cmd("PEXPIRE");
                cmd.arg(key).arg(ms);
                cmd
            }
            None => {
                let mut cmd = redis::cmd("EVAL");
                cmd.arg(PERSIST_EXISTING).arg(1).arg(key);
                cmd
            }
        };
        let touched: i64 = self.run("touch", Role::Write, cmd).await?;
        Ok(touched == 1)
    }

    async fn has_key(&self, key: &str) -> Result<bool> {
        if let Some(lanes) = &self.reads {
            let line = resp::command([b"EXISTS".as_slice(), key.as_bytes()]);
            let found = integer_of("has_key", self.read_one(lanes, "has_key", line).await?)?;
            return Ok(found > 0);
        }
        let mut cmd = redis::cmd("EXISTS");
        cmd.arg(key);
        let found: i64 = self.run("has_key", Role::Read, cmd).await?;
        Ok(found > 0)
    }

    async fn incr(&self, key: &str, delta: i64) -> Result<i64> {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(INCR_EXISTING).arg(1).arg(key).arg(delta);
        let value: Option<i64> = self
            .run("incr", Role::Write, cmd)
            .await
            .map_err(|err| incr_error(key, err))?;
        value.ok_or_else(|| CacheError::MissingKey {
            key: key.to_owned(),
        })
    }

    async fn clear(&self, scope: ClearScope<'_>) -> Result<()> {
        match scope {
            ClearScope::Prefix(prefix) => self.clear_prefix(prefix).await,
            _ => {
                let () = self
                    .run("clear", Role::Write, redis::cmd("FLUSHDB"))
                    .await?;
                Ok(())
            }
        }
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(lanes) = &self.reads {
            let reply = self.read_one(lanes, "get_many", mget(keys)).await?;
            return values_of("get_many", reply, keys.len());
        }
        let mut cmd = redis::cmd("MGET");
        cmd.arg(keys);
        let values: Vec<Option<Vec<u8>>> = self.run("get_many", Role::Read, cmd).await?;
        Ok(values.into_iter().map(|v| v.map(Bytes::from)).collect())
    }

    async fn set_many(&self, entries: Vec<(String, Bytes)>, expiry: Expiry) -> Result<Vec<String>> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let commands = entries
            .iter()
            .map(|(key, value)| set_command(key, value, expiry, false));
        match &self.topology {
            Topology::Single { .. } => {
                let mut pipe = redis::pipe();
                for cmd in commands {
                    pipe.add_command(cmd).ignore();
                }
                if let Some(wait) = self.wait_command(Role::Write) {
                    pipe.add_command(wait).ignore();
                }
                self.with_connection("set_many", Role::Write, move |connection| {
                    Box::pin(async move { pipe.query_async::<()>(connection).await })
                })
                .await?;
            }
            Topology::Cluster(_) => {
                // A cluster pipeline goes to one node; concurrent commands on
                // the multiplexed cluster connection are pipelined per node.
                let commands: Vec<Cmd> = commands.collect();
                self.with_connection("set_many", Role::Write, move |connection| {
                    Box::pin(async move {
                        let Connection::Cluster(cluster) = connection else {
                            unreachable!("a cluster pool gives cluster connections")
                        };
                        let cluster: &deadpool_redis::cluster::ClusterConnection = cluster;
                        let writes = commands.into_iter().map(|cmd| {
                            let mut each = cluster.clone();
                            async move { cmd.query_async::<()>(&mut each).await }
                        });
                        futures_util::future::try_join_all(writes).await.map(drop)
                    })
                })
                .await?;
            }
        }
        Ok(Vec::new())
    }

    async fn delete_many(&self, keys: &[&str]) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let mut cmd = redis::cmd("DEL");
        cmd.arg(keys);
        let _: i64 = self.run("delete_many", Role::Write, cmd).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_is_whole_milliseconds_rounded_up() {
        assert_eq!(expiry_millis(None), None);
        assert_eq!(expiry_millis(Some(Duration::from_micros(1))), Some(1));
        assert_eq!(expiry_millis(Some(Duration::from_micros(1500))), Some(2));
        assert_eq!(expiry_millis(Some(Duration::from_secs(300))), Some(300_000));
        assert_eq!(expiry_millis(Some(LONGEST_EXPIRY * 2)), None);
    }

    #[test]
    fn scripts_are_sent_by_the_sha1_of_their_code() {
        // `printf '%s' "$code" | sha1sum`: what Redis names the script.
        assert_eq!(
            DELETE_IF_EQUAL.sha1,
            "d02e481a9c91ceec59c5822a58a49d5d5d7ac80b"
        );
    }

    #[test]
    fn scan_patterns_take_the_prefix_literally() {
        assert_eq!(glob_escape("site:"), "site:*");
        assert_eq!(glob_escape("a*b?[c]\\:"), "a\\*b\\?\\[c\\]\\\\:*");
    }

    #[test]
    fn cluster_nodes_lists_live_primaries() {
        let nodes = "\
07c3 127.0.0.1:30004@31004,host.example replica e7d1 0 1426238317239 4 connected
67ed 127.0.0.1:30002@31002 master - 0 1426238316232 2 connected 5461-10922
292f 127.0.0.1:30003@31003 myself,master - 0 1426238318243 3 connected 10923-16383
6ec2 127.0.0.1:30005@31005 master,fail - 1426238316232 1426238316232 5 connected
";
        assert_eq!(
            cluster_primaries(nodes),
            [
                ("127.0.0.1".to_owned(), 30002),
                ("127.0.0.1".to_owned(), 30003)
            ]
        );
    }

    #[test]
    fn server_urls_keep_credentials_and_database() {
        let url = Url::parse("redis://:pw@h1:6379/2?pool_size=3").unwrap();
        let servers = vec!["h1:6379".to_owned(), "h2:6380".to_owned()];
        assert_eq!(
            server_urls(&url, &servers, "redis").unwrap(),
            ["redis://:pw@h1:6379/2", "redis://:pw@h2:6380/2"]
        );
        let cluster = Url::parse("redis+cluster://a:7000").unwrap();
        assert_eq!(
            server_urls(&cluster, &["a:7000".to_owned()], "redis").unwrap(),
            ["redis://a:7000"]
        );
    }
}
