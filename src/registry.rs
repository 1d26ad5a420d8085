//! Named caches built from configuration: Django's `CACHES` setting and
//! `caches[alias]`.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer};
use url::Url;

use crate::backend::DynBackend;
use crate::backends::{CompressionOptions, DummyBackend, Invalidations, L1Options, MemoryBackend};
use crate::cache::Cache;
use crate::error::{CacheError, ConfigError, Result, redact};
use crate::jitter::Jitter;
use crate::options::{self, BackendOptions};
use crate::timeout::Timeout;

/// The alias of the cache used when none is named: Django's `DEFAULT_CACHE_ALIAS`.
pub const DEFAULT_CACHE_ALIAS: &str = "default";

/// The environment variable [`Caches::from_env`] reads.
pub const CACHE_URL_ENV: &str = "CACHE_URL";

/// One cache's configuration: a Rust mirror of one entry of Django's `CACHES`.
///
/// The backend and its location are one URL; cache-level settings (`timeout`,
/// `key_prefix`, `version`) may be given as fields or as URL query parameters,
/// and backend options as `options` or as the rest of the query. The query
/// (or `options`) also takes `ttl_jitter`, a percentage by which every
/// timeout is spread ([`CacheBuilder::ttl_jitter`](crate::CacheBuilder::ttl_jitter)).
///
/// ```
/// use tower_cache::CacheConfig;
///
/// let config: CacheConfig = serde_json::from_str(r#"{
///     "url": "memory://",
///     "timeout": 60,
///     "key_prefix": "site",
///     "options": { "max_bytes": "64MiB" }
/// }"#).unwrap();
/// assert_eq!(config.key_prefix.as_deref(), Some("site"));
///
/// // `"timeout": null` means "never expire", as Django's `TIMEOUT: None`.
/// let forever: CacheConfig = serde_json::from_str(r#"{"url": "memory://", "timeout": null}"#).unwrap();
/// assert_eq!(forever.timeout, Some(tower_cache::Timeout::Forever));
/// ```
#[derive(Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct CacheConfig {
    /// `memory://`, `dummy://`, `redis://host:6379/0`, `sqlite://cache.db`, ...
    pub url: String,
    /// Django's `TIMEOUT` in seconds (`null`: never expire; default 300).
    #[serde(default, deserialize_with = "timeout_seconds")]
    pub timeout: Option<Timeout>,
    /// Django's `KEY_PREFIX` (default empty).
    #[serde(default)]
    pub key_prefix: Option<String>,
    /// Django's `VERSION` (default 1).
    #[serde(default)]
    pub version: Option<i64>,
    /// Backend options (Django's `OPTIONS`), e.g. `max_bytes`, `pool_size`.
    #[serde(default)]
    pub options: BTreeMap<String, OptionValue>,
}

// By hand: the URL may hold a password.
impl std::fmt::Debug for CacheConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheConfig")
            .field("url", &crate::error::Redacted(&self.url))
            .field("timeout", &self.timeout)
            .field("key_prefix", &self.key_prefix)
            .field("version", &self.version)
            .field("options", &self.options)
            .finish()
    }
}

/// The `CACHES` setting: aliases to configurations. It must hold `"default"`.
pub type CachesConfig = BTreeMap<String, CacheConfig>;

/// An option's value as written in a config file: text, number or boolean.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum OptionValue {
    /// `"64MiB"`
    Text(String),
    /// `10000`
    Integer(i64),
    /// `0.5`
    Float(f64),
    /// `true`
    Bool(bool),
}

impl fmt::Display for OptionValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OptionValue::Text(s) => f.write_str(s),
            OptionValue::Integer(n) => write!(f, "{n}"),
            OptionValue::Float(n) => write!(f, "{n}"),
            OptionValue::Bool(b) => write!(f, "{b}"),
        }
    }
}

fn timeout_seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timeout>, D::Error> {
    Ok(Some(match Option::<f64>::deserialize(d)? {
        None => Timeout::Forever,
        Some(secs) => Timeout::from_secs_f64(secs),
    }))
}

impl CacheConfig {
    /// A configuration that is only a URL.
    pub fn from_url(url: impl Into<String>) -> CacheConfig {
        CacheConfig {
            url: url.into(),
            ..CacheConfig::default()
        }
    }

    /// Builds the backend and the [`Cache`] over it.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the bad URL, scheme or option; a backend error
    /// when a server must be reached to build the backend.
    pub async fn build(&self) -> Result<Cache> {
        let (url, servers) = parse_location(&self.url)?;
        let mut options = BackendOptions::default();
        for (name, value) in url.query_pairs() {
            options.insert(name.into_owned(), value.into_owned())?;
        }
        for (name, value) in &self.options {
            options.insert(name.clone(), value.to_string())?;
        }

        let query: CacheSettings = options.split_fields::<CacheSettings>().parse("cache")?;
        let ttl_jitter = query.ttl_jitter()?;
        let timeout = pick(self.timeout, query.timeout, "timeout")?;
        let key_prefix = pick(self.key_prefix.clone(), query.key_prefix, "key_prefix")?;
        let version = pick(self.version, query.version, "version")?;

        let backend = backend_from_url(&url, &servers, options).await?;
        let mut builder = Cache::builder(backend);
        if let Some(timeout) = timeout {
            builder = builder.default_timeout(timeout);
        }
        if let Some(prefix) = key_prefix {
            builder = builder.key_prefix(prefix);
        }
        if let Some(version) = version {
            builder = builder.version(version);
        }
        Ok(builder.ttl_jitter(ttl_jitter).build())
    }
}

/// The cache-level settings, when they are given in the URL query or the
/// `options` rather than as [`CacheConfig`] fields.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CacheSettings {
    #[serde(default, deserialize_with = "options::timeout")]
    timeout: Option<Timeout>,
    #[serde(default)]
    key_prefix: Option<String>,
    #[serde(default)]
    version: Option<i64>,
    /// Percent ([`CacheBuilder::ttl_jitter`](crate::CacheBuilder::ttl_jitter)).
    #[serde(default)]
    ttl_jitter: Option<u8>,
}

impl CacheSettings {
    /// The `ttl_jitter` option, checked here so that a bad value is a
    /// configuration error, not the builder's panic.
    fn ttl_jitter(&self) -> Result<Jitter> {
        match self.ttl_jitter {
            None => Ok(Jitter::none()),
            Some(percent) if percent <= 50 => Ok(Jitter::percent(percent)),
            Some(percent) => Err(ConfigError::InvalidOption {
                backend: "cache",
                option: "ttl_jitter".into(),
                value: percent.to_string(),
                reason: "a TTL jitter is at most 50 (percent); pass a smaller one".into(),
            }
            .into()),
        }
    }
}

/// What the dummy backend understands: nothing.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoOptions {}

fn pick<T>(field: Option<T>, query: Option<T>, name: &str) -> Result<Option<T>> {
    match (field, query) {
        (Some(_), Some(_)) => Err(ConfigError::InvalidOption {
            backend: "cache",
            option: name.to_owned(),
            value: "(given twice)".into(),
            reason: "set it either in the configuration or in the URL query, not both".into(),
        }
        .into()),
        (field, query) => Ok(field.or(query)),
    }
}

/// Parses a cache URL whose authority may list several servers, as
/// `redis://:pw@h1:6379,h2:6379/0` or `memcached://h1:11211,h2:11211`, which
/// [`Url`] alone cannot parse. Returns the URL with only the first server in
/// it, and every server of the authority (`host` or `host:port`, in order;
/// empty when the URL names no host).
fn parse_location(raw: &str) -> Result<(Url, Vec<String>)> {
    let invalid = |source| ConfigError::InvalidUrl {
        url: redact(raw),
        source,
    };
    let Some((scheme, rest)) = raw.split_once("://") else {
        return Ok((Url::parse(raw).map_err(invalid)?, Vec::new()));
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (userinfo, hosts) = match authority.rfind('@') {
        Some(at) => authority.split_at(at + 1),
        None => ("", authority),
    };
    let servers: Vec<String> = if hosts.is_empty() {
        Vec::new()
    } else {
        hosts.split(',').map(str::to_owned).collect()
    };
    if servers.len() <= 1 {
        return Ok((Url::parse(raw).map_err(invalid)?, servers));
    }
    if servers.iter().any(String::is_empty) {
        return Err(invalid(url::ParseError::EmptyHost).into());
    }
    let first = format!("{scheme}://{userinfo}{}{tail}", servers[0]);
    Ok((Url::parse(&first).map_err(invalid)?, servers))
}

/// Makes the backend a URL names. Schemes of backends whose feature is off
/// are a [`ConfigError::FeatureDisabled`], so a typo and a missing feature
/// read differently.
///
/// `servers` lists every server of the URL's authority (see
/// [`parse_location`]); only the redis and memcached schemes accept several.
async fn backend_from_url(
    url: &Url,
    servers: &[String],
    mut options: BackendOptions,
) -> Result<DynBackend> {
    let scheme = url.scheme();
    let l1 = L1Options::take(&mut options, "cache")?;
    let wants_l1 = l1.is_some();
    let compression = CompressionOptions::take(&mut options)?;
    let wants_compression = compression.is_some();
    // A shared backend, compressed when the `compress_*` options ask, behind
    // an L1 when the `l1_*` options ask for one (the L1 holds values as
    // they are). Unused when no shared backend's feature is on.
    #[allow(unused_variables)]
    let tiered = async |backend: DynBackend, via: Invalidations| -> Result<DynBackend> {
        let backend = match compression {
            Some(compression) => compression.wrap(backend)?,
            None => backend,
        };
        match l1 {
            Some(l1) => l1.wrap(backend, via).await,
            None => Ok(backend),
        }
    };
    let in_process = |backend: DynBackend| {
        if wants_l1 {
            Err(L1Options::refuse(scheme))
        } else if wants_compression {
            Err(CompressionOptions::refuse(scheme))
        } else {
            Ok(backend)
        }
    };
    let several = matches!(
        scheme,
        "redis" | "rediss" | "redis+cluster" | "rediss+cluster" | "memcached" | "memcache"
    );
    if servers.len() > 1 && !several {
        return Err(ConfigError::InvalidOption {
            backend: "cache",
            option: "(URL host)".into(),
            value: servers.join(","),
            reason: format!("a {scheme}:// URL names one location; only redis and memcached URLs list several servers"),
        }
        .into());
    }
    // Unused when every backend's feature is on.
    #[allow(unused_variables)]
    let disabled = |feature: &'static str| -> Result<DynBackend> {
        Err(ConfigError::FeatureDisabled {
            scheme: scheme.to_owned(),
            feature,
        }
        .into())
    };
    match scheme {
        "memory" | "locmem" => in_process(Arc::new(MemoryBackend::from_options(options)?)),
        "dummy" => {
            options.parse::<NoOptions>("dummy")?;
            in_process(Arc::new(DummyBackend))
        }
        "redis" | "rediss" | "redis+cluster" | "rediss+cluster" => {
            #[cfg(feature = "redis")]
            {
                let redis = crate::backends::RedisBackend::from_url(url, servers, options)
                    .await
                    .map_err(options::also_known::<L1Options>)
                    .map_err(options::also_known::<CompressionOptions>)?;
                return tiered(Arc::new(redis.clone()), Invalidations::Redis(redis)).await;
            }
            #[cfg(not(feature = "redis"))]
            disabled("redis")
        }
        "memcached" | "memcache" => {
            #[cfg(feature = "memcached")]
            {
                let shared = crate::backends::MemcachedBackend::from_url(url, servers, options)
                    .await
                    .map_err(options::also_known::<L1Options>)
                    .map_err(options::also_known::<CompressionOptions>)?;
                return tiered(Arc::new(shared), Invalidations::Ttl).await;
            }
            #[cfg(not(feature = "memcached"))]
            disabled("memcached")
        }
        "sqlite" => {
            #[cfg(feature = "sqlite")]
            {
                let shared = crate::backends::DatabaseBackend::from_url(url, options)
                    .await
                    .map_err(options::also_known::<L1Options>)
                    .map_err(options::also_known::<CompressionOptions>)?;
                return tiered(Arc::new(shared), Invalidations::Ttl).await;
            }
            #[cfg(not(feature = "sqlite"))]
            disabled("sqlite")
        }
        "postgres" | "postgresql" => {
            #[cfg(feature = "postgres")]
            {
                let shared = crate::backends::DatabaseBackend::from_url(url, options)
                    .await
                    .map_err(options::also_known::<L1Options>)
                    .map_err(options::also_known::<CompressionOptions>)?;
                return tiered(Arc::new(shared), Invalidations::Ttl).await;
            }
            #[cfg(not(feature = "postgres"))]
            disabled("postgres")
        }
        "mysql" | "mariadb" => {
            #[cfg(feature = "mysql")]
            {
                let shared = crate::backends::DatabaseBackend::from_url(url, options)
                    .await
                    .map_err(options::also_known::<L1Options>)
                    .map_err(options::also_known::<CompressionOptions>)?;
                return tiered(Arc::new(shared), Invalidations::Ttl).await;
            }
            #[cfg(not(feature = "mysql"))]
            disabled("mysql")
        }
        "file" => {
            #[cfg(feature = "file")]
            {
                let shared = crate::backends::FileBackend::from_url(url, options)
                    .await
                    .map_err(options::also_known::<L1Options>)
                    .map_err(options::also_known::<CompressionOptions>)?;
                return tiered(Arc::new(shared), Invalidations::Ttl).await;
            }
            #[cfg(not(feature = "file"))]
            disabled("file")
        }
        _ => Err(ConfigError::UnknownScheme {
            scheme: scheme.to_owned(),
        }
        .into()),
    }
}

/// Every configured cache, by alias: Django's `caches`.
///
/// Build it once at start-up and share it (cloning is cheap); each alias is one
/// [`Cache`] whose clones share one backend and its connection pool.
///
/// ```
/// use tower_cache::{Caches, CachesConfig};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> tower_cache::Result<()> {
/// let config: CachesConfig = serde_json::from_str(r#"{
///     "default": { "url": "memory://?max_capacity=10000" },
///     "sessions": { "url": "memory://", "timeout": null, "key_prefix": "s" }
/// }"#).unwrap();
/// let caches = Caches::from_config(&config).await?;
/// caches.default().set("k", "v", tower_cache::Timeout::Default).await?;
/// assert!(caches.get("sessions")?.get::<String>("k").await?.is_none());
/// assert!(caches.get("nonexistent").is_err());
/// # Ok(()) }
/// ```
///
/// # Differences from Django
///
/// Django keeps one cache object per alias per thread; here one `Cache` per
/// alias serves every task, as async backends pool their connections.
#[derive(Debug, Clone)]
pub struct Caches {
    caches: Arc<BTreeMap<String, Cache>>,
}

/// The process-wide caches of [`Caches::global`], built once.
static GLOBAL: tokio::sync::OnceCell<Result<Caches>> = tokio::sync::OnceCell::const_new();

impl Caches {
    /// Builds every alias of `config`, which must have `"default"`.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] for a missing `"default"` or any bad entry (the error
    /// names it).
    pub async fn from_config(config: &CachesConfig) -> Result<Caches> {
        let mut caches = BTreeMap::new();
        for (alias, entry) in config {
            caches.insert(alias.clone(), entry.build().await?);
        }
        Caches::from_caches(caches)
    }

    /// A registry of caches built elsewhere (over backends of your own, say);
    /// one must be `"default"`.
    pub fn from_caches(caches: impl IntoIterator<Item = (String, Cache)>) -> Result<Caches> {
        let caches: BTreeMap<String, Cache> = caches.into_iter().collect();
        if !caches.contains_key(DEFAULT_CACHE_ALIAS) {
            return Err(ConfigError::UnknownAlias {
                alias: DEFAULT_CACHE_ALIAS.to_owned(),
            }
            .into());
        }
        Ok(Caches {
            caches: Arc::new(caches),
        })
    }

    /// One `"default"` cache from a URL.
    pub async fn from_url(url: &str) -> Result<Caches> {
        let config =
            CachesConfig::from([(DEFAULT_CACHE_ALIAS.to_owned(), CacheConfig::from_url(url))]);
        Caches::from_config(&config).await
    }

    /// One `"default"` cache from the `CACHE_URL` environment variable, or
    /// `memory://` when it is not set.
    pub async fn from_env() -> Result<Caches> {
        let url = std::env::var(CACHE_URL_ENV).unwrap_or_else(|_| "memory://".to_owned());
        Caches::from_url(&url).await
    }

    /// The process-wide caches, built once, at the first call, by
    /// [`Caches::from_env`] (`CACHE_URL`, or `memory://` when it is unset):
    /// what the cache layers use when they are given no cache, as Django's
    /// `cache_page` uses `caches['default']`.
    ///
    /// Concurrent first calls build it once. A backend that holds
    /// connections (Redis, memcached, databases) keeps them on the runtime of
    /// the first call: use one runtime for the process, or give the layers a
    /// cache of your own.
    ///
    /// # Errors
    ///
    /// The error of that one build (a bad `CACHE_URL`, say), logged once
    /// (target `tower_cache`, level `error`) and returned on every call; the
    /// layers then pass requests through uncached rather than fail them. It
    /// is not retried: fix the variable and restart.
    pub async fn global() -> std::result::Result<&'static Caches, &'static CacheError> {
        GLOBAL
            .get_or_init(|| async {
                let built = Caches::from_env().await;
                if let Err(error) = &built {
                    tracing::error!(target: "tower_cache", error = error as &dyn std::error::Error,
                        "the default cache (CACHE_URL) could not be built; \
                         cache layers without a cache of their own pass requests through");
                }
                built
            })
            .await
            .as_ref()
    }

    /// [`Caches::global`] if it was built (and built without an error),
    /// without waiting: for the layers' hit path.
    pub(crate) fn global_if_built() -> Option<&'static Caches> {
        GLOBAL.get()?.as_ref().ok()
    }

    /// The cache under `alias`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::UnknownAlias`]: "The connection 'x' doesn't exist."
    pub fn get(&self, alias: &str) -> Result<&Cache> {
        self.caches.get(alias).ok_or_else(|| {
            ConfigError::UnknownAlias {
                alias: alias.to_owned(),
            }
            .into()
        })
    }

    /// The `"default"` cache.
    pub fn default(&self) -> &Cache {
        &self.caches[DEFAULT_CACHE_ALIAS]
    }

    /// Every alias with its cache.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Cache)> {
        self.caches
            .iter()
            .map(|(alias, cache)| (alias.as_str(), cache))
    }

    /// Closes every cache (Django's `close_caches`).
    pub async fn close_all(&self) -> Result<()> {
        for cache in self.caches.values() {
            cache.close().await?;
        }
        Ok(())
    }
}
