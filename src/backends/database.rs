//! Django's `DatabaseCache` on sqlx: one backend for SQLite, PostgreSQL and
//! MySQL/MariaDB.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use serde::Deserialize;
use sqlx::Row;
use tokio::sync::{Mutex, MutexGuard, OnceCell};
use url::Url;

use crate::backend::{CacheBackend, ClearScope, Expiry, apply_incr};
use crate::backends::culling::{Culling, deadline};
use crate::error::{CacheError, ConfigError, Redacted, Result, redact};
use crate::options::{self, BackendOptions};

mod sql;
mod stamp;

use sql::{Dialect, Statements};
use stamp::Stamp;

/// Keys per statement in the `*_many` operations (SQLite allows 32,766
/// parameters per statement, PostgreSQL and MySQL 65,535).
const KEYS_PER_STATEMENT: usize = 500;

/// How often an operation the database aborted as a deadlock victim (or
/// SQLite found busy at once) is tried again.
/// (The operation as a whole stays bounded by the command timeout.)
const MAX_RETRIES: u32 = 40;

/// An SQL cache table (Django's `DatabaseCache`), on SQLite, PostgreSQL or
/// MySQL/MariaDB through [`sqlx`].
///
/// | URL | database | feature |
/// |---|---|---|
/// | `sqlite://cache.db` (relative to the working directory), `sqlite:///abs/cache.db`, `sqlite::memory:` | SQLite, embedded (bundled; WAL, `synchronous=NORMAL`; the file is created if missing) | `sqlite` |
/// | `postgres://user:pass@host/db` (or `postgresql://`) | PostgreSQL | `postgres` |
/// | `mysql://user:pass@host/db` (or `mariadb://`) | MySQL or MariaDB | `mysql` |
///
/// Options (URL query or [`CacheConfig::options`](crate::CacheConfig::options)),
/// each also a [`DatabaseBackendBuilder`] method of the same name:
///
/// | option | default | meaning |
/// |---|---|---|
/// | `table` | `tower_cache` | the cache table |
/// | `max_entries` | `300` | the most rows before a write culls |
/// | `cull_frequency` | `3` | a cull deletes `1/cull_frequency` of the rows (0: all) |
/// | `create_table` | `true` | create the table on first use when it is missing |
/// | `pool_size` | `10` (`1` for an in-memory SQLite database) | the most connections |
/// | `command_timeout` | `5s` | the longest a cache operation may take, waiting for a connection included |
///
/// Any other URL query parameter goes to the driver (`sslmode=require`,
/// `statement-cache-capacity=100`, ...); on PostgreSQL and MySQL only the
/// parameters the driver knows, so a misspelt option is an error there too.
///
/// ```no_run
/// use std::sync::Arc;
/// use tower_cache::Cache;
/// use tower_cache::backends::DatabaseBackend;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> tower_cache::Result<()> {
/// // Or `Cache::from_url("sqlite://cache.db?max_entries=1000")`.
/// let backend = DatabaseBackend::builder("sqlite://cache.db")
///     .table("my_cache_table")
///     .max_entries(1000)
///     .build()
///     .await?;
/// let cache = Cache::new(Arc::new(backend));
/// cache.set("greeting", "hello", tower_cache::Timeout::Default).await?;
/// # Ok(()) }
/// ```
///
/// # Schema
///
/// One table, as Django's `createcachetable` makes it: `cache_key`
/// (`VARCHAR(255)`, primary key), `value` (`BLOB` / `BYTEA` / `LONGBLOB`) and
/// `expires` (a UTC timestamp, indexed). It is created when the backend is
/// first used, unless `create_table` is off; then create it with
/// [`create_table`](DatabaseBackend::create_table) or
/// `cargo run --example createcachetable --features sqlite,postgres -- URL`.
///
/// # Guarantees
///
/// * Expired rows are misses; `get` removes them, as Django does.
/// * `add` is atomic: one statement (PostgreSQL, SQLite) or a delete of the
///   expired row and an `INSERT IGNORE` (MySQL). It replaces an expired row.
/// * `incr` is atomic: a transaction that locks the row (`SELECT ... FOR
///   UPDATE`; SQLite's `BEGIN IMMEDIATE`), and it keeps the entry's expiry.
/// * `delete_if_equal` is atomic: one statement, `DELETE ... WHERE cache_key
///   = ? AND value = ? AND expires > now` (the values compare as bytes).
/// * `get_many` and `delete_many` are one statement per 500 keys, `set_many` is
///   one transaction.
/// * Times are the client's clock in UTC, stored with microseconds; the
///   database server's time zone and clock play no part.
/// * A row that cannot be read (a corrupt SQLite row, say) is a miss and is
///   removed.
/// * Every operation ends within `command_timeout`, waiting for a connection
///   included, or fails with [`CacheError::Timeout`].
///
/// # Culling
///
/// As Django: before `set` and `add` write, the backend counts the table's
/// rows; when there are more than `max_entries` it deletes the expired rows
/// and then, if still over, the `1/cull_frequency` of the rows whose keys
/// sort first. `cull_frequency = 0` empties the table. The count is one
/// `SELECT COUNT(*)` per write, so keep `max_entries` in the range Django
/// intends (hundreds to a few hundred thousand).
///
/// # Two tiers
///
/// With `l1_max_bytes` or `l1_ttl` in the URL, the cache is a
/// [`TieredBackend`](crate::backends::TieredBackend): an in-process L1 in
/// front of the table. A database has no pub/sub here, so another
/// instance's write is seen within `l1_ttl` (1 s by default): the staleness
/// bound. L1 copies take their lifetime from the `expires` column, read in
/// the same `SELECT`.
///
/// # Differences from Django
///
/// * `incr` is atomic and keeps the expiry (Django's is a get and a set that
///   resets the timeout). `touch` of an expired row returns `false` (Django's
///   revives it). `delete` of an expired row returns `false`.
/// * `set_many` culls once, before its transaction, not once per entry.
/// * Values are the bytes [`Cache`](crate::Cache) encodes (JSON), not
///   base64 pickles, so the table is not shared with Django's.
/// * `clear` removes only the keys under the cache's prefix (Django empties
///   the table).
/// * [`close`](CacheBackend::close) keeps the pool: sqlx closes idle
///   connections itself.
#[derive(Clone)]
pub struct DatabaseBackend {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    sql: Statements,
    table: String,
    culling: Culling,
    command_timeout: Duration,
    create_table: bool,
    /// Set once the table is known to exist (or creation is off).
    ready: OnceCell<()>,
    /// SQLite writes one transaction at a time; queueing this process's
    /// writers here, instead of in SQLite's sleeping busy handler, keeps
    /// concurrent writers fast. Other processes still wait through
    /// `busy_timeout`.
    write_lock: Option<Mutex<()>>,
}

#[derive(Clone)]
enum Pool {
    #[cfg(feature = "sqlite")]
    Sqlite(sqlx::SqlitePool),
    #[cfg(feature = "postgres")]
    Postgres(sqlx::PgPool),
    #[cfg(feature = "mysql")]
    MySql(sqlx::MySqlPool),
}

/// Runs `$body` with `$p` bound to the pool, whichever database it is: each
/// arm is compiled for its own driver's types.
macro_rules! with_pool {
    ($pool:expr, |$p:ident| $body:expr) => {
        match $pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite($p) => $body,
            #[cfg(feature = "postgres")]
            Pool::Postgres($p) => $body,
            #[cfg(feature = "mysql")]
            Pool::MySql($p) => $body,
        }
    };
}

/// The options of a database cache URL; the driver's own are split off
/// first.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DatabaseOptions {
    #[serde(default)]
    table: Option<String>,
    #[serde(default)]
    max_entries: Option<u64>,
    #[serde(default)]
    cull_frequency: Option<u64>,
    #[serde(default)]
    create_table: Option<bool>,
    #[serde(default)]
    pool_size: Option<u32>,
    #[serde(default, deserialize_with = "options::duration")]
    command_timeout: Option<Duration>,
}

/// Builds a [`DatabaseBackend`]; see [`DatabaseBackend::builder`].
#[must_use]
#[derive(Clone)]
pub struct DatabaseBackendBuilder {
    url: String,
    table: String,
    culling: Culling,
    create_table: bool,
    pool_size: Option<u32>,
    command_timeout: Duration,
}

// By hand: the URL may hold a password.
impl fmt::Debug for DatabaseBackendBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseBackendBuilder")
            .field("url", &Redacted(&self.url))
            .field("table", &self.table)
            .field("culling", &self.culling)
            .field("create_table", &self.create_table)
            .field("pool_size", &self.pool_size)
            .field("command_timeout", &self.command_timeout)
            .finish()
    }
}

impl DatabaseBackendBuilder {
    /// The cache table (Django's `LOCATION`; default `tower_cache`). Any
    /// name works: it is quoted.
    pub fn table(mut self, table: impl Into<String>) -> Self {
        self.table = table.into();
        self
    }

    /// Django's `MAX_ENTRIES`: the most rows before a write culls (default 300).
    pub fn max_entries(mut self, max_entries: u64) -> Self {
        self.culling.max_entries = max_entries;
        self
    }

    /// Django's `CULL_FREQUENCY`: a cull deletes `1/cull_frequency` of the
    /// rows; 0 deletes them all (default 3).
    pub fn cull_frequency(mut self, cull_frequency: u64) -> Self {
        self.culling.cull_frequency = cull_frequency;
        self
    }

    /// Whether the first use creates the table when it is missing (default
    /// `true`). Turn it off where the application's database user may not
    /// create tables, and run [`DatabaseBackend::create_table`] (or the
    /// `createcachetable` example) once instead.
    pub fn create_table(mut self, create: bool) -> Self {
        self.create_table = create;
        self
    }

    /// The most connections in the pool (default 10; an in-memory SQLite
    /// database always uses one).
    pub fn pool_size(mut self, size: u32) -> Self {
        self.pool_size = Some(size);
        self
    }

    /// How long one cache operation may take, waiting for a connection
    /// included (default 5 s); past it the operation fails with
    /// [`CacheError::Timeout`]. SQLite also waits this long for another
    /// process's write lock.
    pub fn command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = timeout;
        self
    }

    /// The backend. Connections are opened when first needed, so this does
    /// not fail when the database is down; the first operation does.
    ///
    /// # Errors
    ///
    /// [`CacheError::Config`] for a URL that is not a database URL, or whose
    /// database's feature is off; [`CacheError::Backend`] when the driver
    /// rejects the URL's options.
    pub async fn build(self) -> Result<DatabaseBackend> {
        let url = Url::parse(&self.url).map_err(|source| ConfigError::InvalidUrl {
            url: redact(&self.url),
            source,
        })?;
        let dialect = dialect_of(&url)?;
        let pool = connect(dialect, &url, &self)?;
        Ok(DatabaseBackend {
            inner: Arc::new(Inner {
                sql: Statements::new(dialect, &self.table),
                write_lock: matches!(dialect, Dialect::Sqlite).then(|| Mutex::new(())),
                pool,
                table: self.table,
                culling: self.culling,
                command_timeout: self.command_timeout,
                create_table: self.create_table,
                ready: OnceCell::new(),
            }),
        })
    }
}

fn dialect_of(url: &Url) -> Result<Dialect> {
    let disabled = |feature: &'static str| {
        Err(ConfigError::FeatureDisabled {
            scheme: url.scheme().to_owned(),
            feature,
        }
        .into())
    };
    match url.scheme() {
        "sqlite" if cfg!(feature = "sqlite") => Ok(Dialect::Sqlite),
        "sqlite" => disabled("sqlite"),
        "postgres" | "postgresql" if cfg!(feature = "postgres") => Ok(Dialect::Postgres),
        "postgres" | "postgresql" => disabled("postgres"),
        "mysql" | "mariadb" if cfg!(feature = "mysql") => Ok(Dialect::MySql),
        "mysql" | "mariadb" => disabled("mysql"),
        scheme => Err(ConfigError::UnknownScheme {
            scheme: scheme.to_owned(),
        }
        .into()),
    }
}

/// The pool for `url`, opened lazily.
fn connect(dialect: Dialect, url: &Url, builder: &DatabaseBackendBuilder) -> Result<Pool> {
    use sqlx::ConnectOptions as _;
    use sqlx::pool::PoolOptions;

    fn pool_options<DB: sqlx::Database>(
        builder: &DatabaseBackendBuilder,
        max: u32,
    ) -> PoolOptions<DB> {
        PoolOptions::new()
            .max_connections(builder.pool_size.unwrap_or(max))
            .acquire_timeout(builder.command_timeout)
    }
    let bad_url = |e: sqlx::Error| CacheError::backend(dialect.name(), "connect", e);
    match dialect {
        #[cfg(feature = "sqlite")]
        Dialect::Sqlite => {
            use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
            let options = SqliteConnectOptions::from_url(url).map_err(bad_url)?;
            let in_memory = url.path() == ":memory:"
                || url.query_pairs().any(|(k, v)| k == "mode" && v == "memory");
            let explicit_mode = url.query_pairs().any(|(k, _)| k == "mode");
            // A `mode=` in the URL says whether to create the file (`rwc`
            // does); without one, the file is created if missing.
            let options = if explicit_mode {
                options
            } else {
                options.create_if_missing(true)
            };
            let options = options
                .busy_timeout(builder.command_timeout)
                .synchronous(SqliteSynchronous::Normal);
            let pool = if in_memory {
                // Every connection of the pool would be a database of its own
                // (or share one through SQLite's shared cache, with table
                // locks); one connection, kept forever, is the database.
                pool_options(builder, 1)
                    .max_connections(1)
                    .min_connections(1)
                    .idle_timeout(None)
                    .max_lifetime(None)
                    .connect_lazy_with(options)
            } else {
                pool_options(builder, 10)
                    .connect_lazy_with(options.journal_mode(SqliteJournalMode::Wal))
            };
            Ok(Pool::Sqlite(pool))
        }
        #[cfg(feature = "postgres")]
        Dialect::Postgres => {
            let options = sqlx::postgres::PgConnectOptions::from_url(url).map_err(bad_url)?;
            Ok(Pool::Postgres(
                pool_options(builder, 10).connect_lazy_with(options),
            ))
        }
        #[cfg(feature = "mysql")]
        Dialect::MySql => {
            let mut url = url.clone();
            if url.scheme() == "mariadb" {
                // sqlx knows MariaDB by the MySQL scheme; both schemes are
                // non-special, so the change cannot fail.
                let _ = url.set_scheme("mysql");
            }
            let options = sqlx::mysql::MySqlConnectOptions::from_url(&url).map_err(bad_url)?;
            Ok(Pool::MySql(
                pool_options(builder, 10).connect_lazy_with(options),
            ))
        }
        #[allow(unreachable_patterns)]
        _ => Err(ConfigError::FeatureDisabled {
            scheme: url.scheme().to_owned(),
            feature: dialect.name(),
        }
        .into()),
    }
}

impl DatabaseBackend {
    /// Command timeout when none is given.
    pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

    /// A builder for the database at `url`, with Django's defaults.
    pub fn builder(url: impl Into<String>) -> DatabaseBackendBuilder {
        DatabaseBackendBuilder {
            url: url.into(),
            table: "tower_cache".to_owned(),
            culling: Culling::default(),
            create_table: true,
            pool_size: None,
            command_timeout: DatabaseBackend::DEFAULT_COMMAND_TIMEOUT,
        }
    }

    /// The backend for `url` with the defaults; see [`builder`](Self::builder).
    ///
    /// # Errors
    ///
    /// As [`DatabaseBackendBuilder::build`].
    pub async fn connect(url: &str) -> Result<DatabaseBackend> {
        DatabaseBackend::builder(url).build().await
    }

    /// The backend a cache URL such as `sqlite://cache.db?table=my_cache`
    /// describes, as [`Caches`](crate::Caches) would build it. The cache-level
    /// options (`timeout`, `key_prefix`, `version`) are accepted and ignored.
    ///
    /// # Errors
    ///
    /// [`CacheError::Config`] for a bad URL or option.
    pub async fn from_cache_url(url: &str) -> Result<DatabaseBackend> {
        let parsed = Url::parse(url).map_err(|source| ConfigError::InvalidUrl {
            url: redact(url),
            source,
        })?;
        let mut options = BackendOptions::default();
        for (name, value) in parsed.query_pairs() {
            if !matches!(&*name, "timeout" | "key_prefix" | "version") {
                options.insert(name.into_owned(), value.into_owned())?;
            }
        }
        DatabaseBackend::from_url(&parsed, options).await
    }

    /// From a cache URL and its options (the registry's entry point): the
    /// backend's options are parsed, the driver's stay in the URL.
    pub(crate) async fn from_url(
        url: &Url,
        mut options: BackendOptions,
    ) -> Result<DatabaseBackend> {
        let dialect = dialect_of(url)?;
        let mut ours = options.split_fields::<DatabaseOptions>();
        let from_query: Vec<_> = url.query_pairs().map(|(name, _)| name).collect();
        let driver = options.split_off(|name| {
            from_query.iter().any(|q| q == name) && dialect.is_driver_option(name) != Some(false)
        });
        // What is left is unknown: parsed with ours, it is named in the error.
        for (name, value) in options.into_pairs() {
            ours.insert(name, value)?;
        }
        let parsed: DatabaseOptions = ours.parse(dialect.name())?;

        let mut builder = DatabaseBackend::builder(String::new());
        builder.table = parsed.table.unwrap_or(builder.table);
        builder
            .culling
            .override_with(parsed.max_entries, parsed.cull_frequency);
        builder.create_table = parsed.create_table.unwrap_or(builder.create_table);
        builder.pool_size = parsed.pool_size;
        builder.command_timeout = parsed.command_timeout.unwrap_or(builder.command_timeout);

        let mut driver_url = url.clone();
        driver_url.set_query(None);
        let driver: Vec<_> = driver.into_pairs().collect();
        if !driver.is_empty() {
            driver_url.query_pairs_mut().extend_pairs(driver);
        }
        builder.url = driver_url.into();
        builder.build().await
    }

    /// The cache table's name.
    pub fn table(&self) -> &str {
        &self.inner.table
    }

    /// The statements that create the cache table and its index (what
    /// Django's `createcachetable --dry-run` prints).
    pub fn create_table_sql(&self) -> &[String] {
        &self.inner.sql.create
    }

    /// Creates the cache table and its index unless the table exists
    /// (Django's `createcachetable`). Returns `true` when it created the table,
    /// `false` when it was already there. Safe to run at every start-up.
    ///
    /// # Errors
    ///
    /// [`CacheError::Backend`] when the database refuses (no permission, say).
    pub async fn create_table(&self) -> Result<bool> {
        self.inner
            .bounded("create_table", self.inner.create_table_now())
            .await
    }
}

impl Inner {
    fn name(&self) -> &'static str {
        self.sql.dialect.name()
    }

    /// Runs `work` within the query timeout, naming `operation` in errors.
    async fn bounded<T>(
        &self,
        operation: &'static str,
        work: impl Future<Output = Result<T, sqlx::Error>>,
    ) -> Result<T> {
        match tokio::time::timeout(self.command_timeout, work).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(source)) => Err(CacheError::backend(self.name(), operation, source)),
            Err(_) => Err(CacheError::Timeout {
                backend: self.name(),
                after: self.command_timeout,
            }),
        }
    }

    /// [`bounded`](Self::bounded), once the table exists; `work` runs again
    /// (a few times) when the database broke a deadlock by aborting it, as
    /// InnoDB does to concurrent inserts of one key.
    async fn run<T, F, Fut>(&self, operation: &'static str, work: F) -> Result<T>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, sqlx::Error>>,
    {
        self.bounded(operation, async {
            if self.create_table {
                self.ready
                    .get_or_try_init(|| async { self.create_table_now().await.map(drop) })
                    .await?;
            }
            let mut retries = 0;
            loop {
                match work().await {
                    Err(err) if retries < MAX_RETRIES && is_deadlock(&err) => {
                        retries += 1;
                        let pause = fastrand::u64(1..=(5 * u64::from(retries)).min(50));
                        tokio::time::sleep(Duration::from_millis(pause)).await;
                    }
                    outcome => return outcome,
                }
            }
        })
        .await
    }

    async fn create_table_now(&self) -> Result<bool, sqlx::Error> {
        if self.table_exists().await? {
            return Ok(false);
        }
        for statement in &self.sql.create {
            let created = with_pool!(&self.pool, |p| sqlx::query(statement)
                .execute(p)
                .await
                .map(drop));
            if let Err(err) = created {
                // Another process may have created it at the same moment.
                if self.table_exists().await? {
                    return Ok(false);
                }
                return Err(err);
            }
        }
        Ok(true)
    }

    async fn table_exists(&self) -> Result<bool, sqlx::Error> {
        let sql = &self.sql.table_exists;
        let table = self.table.as_str();
        with_pool!(&self.pool, |p| Ok(sqlx::query(sql)
            .bind(table)
            .fetch_optional(p)
            .await?
            .is_some()))
    }

    /// Holds this process's SQLite writers in line (see `write_lock`).
    async fn lock_writes(&self) -> Option<MutexGuard<'_, ()>> {
        match &self.write_lock {
            Some(lock) => Some(lock.lock().await),
            None => None,
        }
    }

    /// Runs a statement whose parameters are a key and a time.
    async fn execute_key_at(&self, sql: &str, key: &str, at: Stamp) -> Result<u64, sqlx::Error> {
        with_pool!(&self.pool, |p| Ok(sqlx::query(sql)
            .bind(key)
            .bind(at)
            .execute(p)
            .await?
            .rows_affected()))
    }

    /// Runs a statement whose parameters are the `keys` (after `now`, when
    /// given), `KEYS_PER_STATEMENT` at a time.
    async fn execute_keys(
        &self,
        sql: impl Fn(usize) -> String,
        now: Option<Stamp>,
        keys: &[&str],
    ) -> Result<(), sqlx::Error> {
        for chunk in keys.chunks(KEYS_PER_STATEMENT) {
            let sql = sql(chunk.len());
            with_pool!(&self.pool, |p| {
                let mut query = sqlx::query(&sql);
                if let Some(now) = now {
                    query = query.bind(now);
                }
                for key in chunk {
                    query = query.bind(*key);
                }
                query.execute(p).await?;
            });
        }
        Ok(())
    }

    /// Django's `_cull`, run before a write.
    async fn cull(&self) -> Result<(), sqlx::Error> {
        let sql = &self.sql;
        let count: i64 = with_pool!(&self.pool, |p| sqlx::query_scalar(&sql.count)
            .fetch_one(p)
            .await?);
        let count = u64::try_from(count).unwrap_or(0);
        let max = self.culling.max_entries;
        if count <= max {
            return Ok(());
        }
        if self.culling.cull_frequency == 0 {
            with_pool!(&self.pool, |p| {
                sqlx::query(&sql.clear).execute(p).await?;
            });
            return Ok(());
        }
        let now = Stamp::now();
        let purged = with_pool!(&self.pool, |p| sqlx::query(&sql.purge_expired)
            .bind(now)
            .execute(p)
            .await?
            .rows_affected());
        let remaining = count.saturating_sub(purged);
        if remaining <= max {
            return Ok(());
        }
        let offset = i64::try_from(self.culling.cull_count(remaining)).unwrap_or(i64::MAX);
        let first_kept: Option<String> =
            with_pool!(&self.pool, |p| sqlx::query_scalar(&sql.key_at)
                .bind(offset)
                .fetch_optional(p)
                .await?);
        if let Some(first_kept) = first_kept {
            with_pool!(&self.pool, |p| {
                sqlx::query(&sql.delete_below)
                    .bind(first_kept.as_str())
                    .execute(p)
                    .await?;
            });
        }
        Ok(())
    }

    /// The live value of `key` and its expiry; an expired or unreadable row
    /// is removed.
    async fn read(&self, key: &str) -> Result<Option<(Bytes, Stamp)>, sqlx::Error> {
        let now = Stamp::now();
        let row: Option<Read> = with_pool!(&self.pool, |p| sqlx::query(&self.sql.get)
            .bind(key)
            .fetch_optional(p)
            .await?
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?))));
        match row {
            None => Ok(None),
            Some(Ok((value, expires))) if expires.is_live(now) => Ok(Some((value.into(), expires))),
            Some(Ok(_)) => {
                let _writing = self.lock_writes().await;
                self.execute_key_at(&self.sql.purge_key, key, now).await?;
                Ok(None)
            }
            Some(Err(error)) => {
                let _writing = self.lock_writes().await;
                self.drop_corrupt(&[key], &error).await?;
                Ok(None)
            }
        }
    }

    /// The live value and expiry of each of `keys`, in order, one statement
    /// per [`KEYS_PER_STATEMENT`] keys; expired and unreadable rows are
    /// removed.
    async fn read_many(&self, keys: &[&str]) -> Result<Vec<Option<(Bytes, Stamp)>>, sqlx::Error> {
        let now = Stamp::now();
        let mut found: HashMap<String, (Bytes, Stamp)> = HashMap::with_capacity(keys.len());
        let mut expired = Vec::new();
        let mut corrupt = Vec::new();
        for chunk in keys.chunks(KEYS_PER_STATEMENT) {
            let sql = self.sql.get_many(chunk.len());
            let rows: Vec<(String, Read)> = with_pool!(&self.pool, |p| {
                let mut query = sqlx::query(&sql);
                for key in chunk {
                    query = query.bind(*key);
                }
                let rows = query.fetch_all(p).await?;
                let mut read = Vec::with_capacity(rows.len());
                for row in rows {
                    let key: String = row.try_get(0)?;
                    let entry = row
                        .try_get(1)
                        .and_then(|value| Ok((value, row.try_get(2)?)));
                    read.push((key, entry));
                }
                read
            });
            for (key, row) in rows {
                match row {
                    Ok((value, expires)) if expires.is_live(now) => {
                        found.insert(key, (value.into(), expires));
                    }
                    Ok(_) => expired.push(key),
                    Err(error) => corrupt.push((key, error)),
                }
            }
        }
        if !expired.is_empty() {
            let expired: Vec<&str> = expired.iter().map(String::as_str).collect();
            let _writing = self.lock_writes().await;
            self.execute_keys(|n| self.sql.purge_many(n), Some(now), &expired)
                .await?;
        }
        if let Some((_, error)) = corrupt.first() {
            let keys: Vec<&str> = corrupt.iter().map(|(k, _)| k.as_str()).collect();
            let _writing = self.lock_writes().await;
            self.drop_corrupt(&keys, error).await?;
        }
        Ok(keys.iter().map(|key| found.get(*key).cloned()).collect())
    }

    /// Removes rows that could not be read, so they are read as misses once.
    /// The caller holds the write lock.
    async fn drop_corrupt(&self, keys: &[&str], error: &sqlx::Error) -> Result<(), sqlx::Error> {
        tracing::warn!(
            backend = self.name(),
            table = %self.table,
            ?keys,
            %error,
            "removing cache rows that cannot be read"
        );
        self.execute_keys(|n| self.sql.delete_many(n), None, keys)
            .await
    }
}

/// Whether the database aborted the statement to break a deadlock (or a
/// serialization conflict), asking the client to try again: PostgreSQL's
/// and MySQL's SQLSTATEs, and SQLite's `SQLITE_BUSY` codes, which SQLite
/// returns at once, without waiting out `busy_timeout`, where waiting could
/// deadlock (a WAL snapshot gone stale, a WAL being recovered), and which
/// its documentation answers with "roll back and try again".
fn is_deadlock(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Database(db) => matches!(
            db.code().as_deref(),
            Some("40001" | "40P01" | "5" | "261" | "517")
        ),
        _ => false,
    }
}

/// One row as read: its value and expiry, or why it cannot be read.
type Read = Result<(Vec<u8>, Stamp), sqlx::Error>;

#[async_trait]
impl CacheBackend for DatabaseBackend {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn reads_are_round_trips(&self) -> bool {
        true
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        let inner = &*self.inner;
        let found = inner.run("get", || inner.read(key)).await?;
        Ok(found.map(|(value, _)| value))
    }

    async fn get_with_ttl(&self, key: &str) -> Result<Option<(Bytes, Option<Duration>)>> {
        let inner = &*self.inner;
        let now = Stamp::now();
        let found = inner.run("get", || inner.read(key)).await?;
        Ok(found.map(|(value, expires)| (value, expires.remaining(now))))
    }

    async fn set(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<()> {
        let (inner, value) = (&*self.inner, &value);
        inner
            .run("set", || async move {
                let _writing = inner.lock_writes().await;
                inner.cull().await?;
                let expires = Stamp::from_epoch(deadline(expiry));
                with_pool!(&inner.pool, |p| {
                    sqlx::query(&inner.sql.set)
                        .bind(key)
                        .bind(&value[..])
                        .bind(expires)
                        .execute(p)
                        .await?;
                });
                Ok(())
            })
            .await
    }

    async fn add(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<bool> {
        let (inner, value) = (&*self.inner, &value);
        inner
            .run("add", || async move {
                let _writing = inner.lock_writes().await;
                inner.cull().await?;
                let now = Stamp::now();
                let expires = Stamp::from_epoch(deadline(expiry));
                let replaces_expired = inner.sql.dialect != Dialect::MySql;
                if !replaces_expired {
                    inner.execute_key_at(&inner.sql.purge_key, key, now).await?;
                }
                let stored = with_pool!(&inner.pool, |p| {
                    let mut query = sqlx::query(&inner.sql.add)
                        .bind(key)
                        .bind(&value[..])
                        .bind(expires);
                    if replaces_expired {
                        query = query.bind(now);
                    }
                    query.execute(p).await?.rows_affected()
                });
                Ok(stored > 0)
            })
            .await
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        let inner = &*self.inner;
        inner
            .run("delete", || async move {
                let _writing = inner.lock_writes().await;
                let now = Stamp::now();
                if inner
                    .execute_key_at(&inner.sql.delete_live, key, now)
                    .await?
                    > 0
                {
                    return Ok(true);
                }
                // An expired row goes too, but was not there to delete.
                with_pool!(&inner.pool, |p| {
                    sqlx::query(&inner.sql.delete).bind(key).execute(p).await?;
                });
                Ok(false)
            })
            .await
    }

    async fn delete_if_equal(&self, key: &str, expected: &[u8]) -> Result<bool> {
        let inner = &*self.inner;
        inner
            .run("delete_if_equal", || async move {
                let _writing = inner.lock_writes().await;
                let now = Stamp::now();
                let deleted = with_pool!(&inner.pool, |p| sqlx::query(&inner.sql.delete_if_equal)
                    .bind(key)
                    .bind(expected)
                    .bind(now)
                    .execute(p)
                    .await?
                    .rows_affected());
                Ok(deleted > 0)
            })
            .await
    }

    async fn touch(&self, key: &str, expiry: Expiry) -> Result<bool> {
        let inner = &*self.inner;
        inner
            .run("touch", || async move {
                let _writing = inner.lock_writes().await;
                let now = Stamp::now();
                let expires = Stamp::from_epoch(deadline(expiry));
                let touched = with_pool!(&inner.pool, |p| sqlx::query(&inner.sql.touch)
                    .bind(expires)
                    .bind(key)
                    .bind(now)
                    .execute(p)
                    .await?
                    .rows_affected());
                Ok(touched > 0)
            })
            .await
    }

    async fn has_key(&self, key: &str) -> Result<bool> {
        // The row is read as `get` reads it, so that the two agree on rows
        // that are expired or cannot be read.
        let inner = &*self.inner;
        inner
            .run(
                "has_key",
                || async move { Ok(inner.read(key).await?.is_some()) },
            )
            .await
    }

    async fn incr(&self, key: &str, delta: i64) -> Result<i64> {
        let inner = &*self.inner;
        inner
            .run("incr", || async move {
                let _writing = inner.lock_writes().await;
                let now = Stamp::now();
                let sql = &inner.sql;
                let outcome: Result<Result<i64>, sqlx::Error> = with_pool!(&inner.pool, |p| {
                    let mut tx = p.begin_with(sql.begin).await?;
                    let row = sqlx::query(&sql.select_for_update)
                        .bind(key)
                        .bind(now)
                        .fetch_optional(&mut *tx)
                        .await?;
                    let current: Option<Result<Vec<u8>, sqlx::Error>> =
                        row.map(|row| row.try_get(0));
                    match current {
                        None => Ok(Err(CacheError::MissingKey { key: key.into() })),
                        Some(Err(error)) => {
                            tx.rollback().await?;
                            inner.drop_corrupt(&[key], &error).await?;
                            Ok(Err(CacheError::MissingKey { key: key.into() }))
                        }
                        Some(Ok(current)) => match apply_incr(key, &current, delta) {
                            Err(err) => Ok(Err(err)),
                            Ok(new) => {
                                sqlx::query(&sql.update_value)
                                    .bind(new.to_string().into_bytes())
                                    .bind(key)
                                    .execute(&mut *tx)
                                    .await?;
                                tx.commit().await?;
                                Ok(Ok(new))
                            }
                        },
                    }
                });
                outcome
            })
            .await?
    }

    async fn clear(&self, scope: ClearScope<'_>) -> Result<()> {
        let inner = &*self.inner;
        inner
            .run("clear", || async move {
                let _writing = inner.lock_writes().await;
                match scope {
                    ClearScope::Prefix(prefix) => {
                        let length = i32::try_from(prefix.chars().count()).unwrap_or(i32::MAX);
                        with_pool!(&inner.pool, |p| {
                            sqlx::query(&inner.sql.clear_prefix)
                                .bind(length)
                                .bind(prefix)
                                .execute(p)
                                .await?;
                        });
                    }
                    _ => {
                        with_pool!(&inner.pool, |p| {
                            sqlx::query(&inner.sql.clear).execute(p).await?;
                        });
                    }
                }
                Ok(())
            })
            .await
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        self.read_many(keys, |value, _| value).await
    }

    async fn get_many_with_ttl(
        &self,
        keys: &[&str],
    ) -> Result<Vec<Option<(Bytes, Option<Duration>)>>> {
        let now = Stamp::now();
        self.read_many(keys, |value, expires| (value, expires.remaining(now)))
            .await
    }

    async fn set_many(&self, entries: Vec<(String, Bytes)>, expiry: Expiry) -> Result<Vec<String>> {
        let inner = &*self.inner;
        // One row per key, the last value winning, as a loop of sets would.
        let mut latest: HashMap<&str, &Bytes> = HashMap::with_capacity(entries.len());
        for (key, value) in &entries {
            latest.insert(key, value);
        }
        let rows: Vec<(&str, &Bytes)> = latest.into_iter().collect();
        let rows = &rows;
        inner
            .run("set_many", || async move {
                let _writing = inner.lock_writes().await;
                inner.cull().await?;
                let expires = Stamp::from_epoch(deadline(expiry));
                let sql = &inner.sql;
                with_pool!(&inner.pool, |p| {
                    let mut tx = p.begin_with(sql.begin).await?;
                    for chunk in rows.chunks(KEYS_PER_STATEMENT / 3) {
                        let statement = sql.set_many(chunk.len());
                        let mut query = sqlx::query(&statement);
                        for (key, value) in chunk {
                            query = query.bind(*key).bind(&value[..]).bind(expires);
                        }
                        query.execute(&mut *tx).await?;
                    }
                    tx.commit().await?;
                });
                Ok(Vec::new())
            })
            .await
    }

    async fn delete_many(&self, keys: &[&str]) -> Result<()> {
        let inner = &*self.inner;
        inner
            .run("delete_many", || async move {
                let _writing = inner.lock_writes().await;
                inner
                    .execute_keys(|n| inner.sql.delete_many(n), None, keys)
                    .await
            })
            .await
    }
}

impl DatabaseBackend {
    /// Every key's live row, as `view` makes it of its value and expiry.
    async fn read_many<T>(
        &self,
        keys: &[&str],
        view: impl Fn(Bytes, Stamp) -> T,
    ) -> Result<Vec<Option<T>>> {
        let inner = &*self.inner;
        let rows = inner.run("get_many", || inner.read_many(keys)).await?;
        Ok(rows
            .into_iter()
            .map(|row| row.map(|(value, expires)| view(value, expires)))
            .collect())
    }
}

impl fmt::Debug for DatabaseBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseBackend")
            .field("database", &self.inner.name())
            .field("table", &self.inner.table)
            .field("max_entries", &self.inner.culling.max_entries)
            .field("cull_frequency", &self.inner.culling.cull_frequency)
            .field("command_timeout", &self.inner.command_timeout)
            .finish_non_exhaustive()
    }
}
