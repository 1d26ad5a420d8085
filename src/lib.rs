//! Django's cache framework for Tower and Axum.
//!
//! `tower-cache` gives async Rust the whole of Django's low-level cache API
//! ([`Cache`]: get, set, add, get_or_set, incr, versions, key prefixes, ...)
//! over pluggable backends chosen by URL ([`Caches`]), with Django's key
//! layout and timeout rules, so that keys and integers stored by one are
//! readable by the other.
//!
//! # Quick start
//!
//! ```
//! use std::time::Duration;
//! use tower_cache::{Cache, Timeout};
//!
//! #[tokio::main]
//! async fn main() -> tower_cache::Result<()> {
//!     // Any backend by URL: memory://, dummy://, redis://, memcached://, sqlite://, file:///...
//!     let cache = Cache::from_url("memory://?max_bytes=64MiB").await?;
//!
//!     // Typed values through serde.
//!     cache.set("user:1:name", "Ada", Duration::from_secs(300)).await?;
//!     let name: Option<String> = cache.get("user:1:name").await?;
//!     assert_eq!(name.as_deref(), Some("Ada"));
//!
//!     // Compute on a miss, store, and return.
//!     let report: Vec<u32> = cache
//!         .get_or_set("report", || async { vec![1, 2, 3] }, Timeout::Default)
//!         .await?;
//!     assert_eq!(report, [1, 2, 3]);
//!
//!     // Atomic counters, stored as decimal text.
//!     cache.add("visits", &0, Timeout::Forever).await?;
//!     assert_eq!(cache.incr("visits", 1).await?, 1);
//!     Ok(())
//! }
//! ```
//!
//! # Backends and features
//!
//! | Feature | URL | Backend |
//! |---|---|---|
//! | (always) | `memory://?max_capacity=10000` or `?max_bytes=64MiB` | [`MemoryBackend`](backends::MemoryBackend), in process, on quick_cache |
//! | (always) | `dummy://` | [`DummyBackend`](backends::DummyBackend), stores nothing |
//! | `redis` | `redis://host:6379/0`, `rediss://...`, `redis://primary,replica/0`, `redis+cluster://h1,h2,h3` | `RedisBackend`: one server, a primary with read replicas, or Redis Cluster |
//! | `memcached` | `memcached://host:11211[,host:11211...]` | `MemcachedBackend`: one or several servers, rendezvous-hashed |
//! | `sqlite` | `sqlite://cache.db`, `sqlite::memory:` | `DatabaseBackend` on SQLite: embedded (bundled), WAL, no server |
//! | `postgres` | `postgres://user:pass@host/db` | `DatabaseBackend` on PostgreSQL |
//! | `mysql` | `mysql://user:pass@host/db`, `mariadb://...` | `DatabaseBackend` on MySQL or MariaDB |
//! | `file` | `file:///absolute/dir` | `FileBackend`: one file per key, Django's layout |
//! | `minijinja` | | [`fragment::CacheTag`]: Django's `{% cache %}` tag for minijinja |
//! | `testing` | | [`testing`]: the conformance suite every backend passes |
//!
//! The backends live in [`backends`] (`tower_cache::backends::RedisBackend`,
//! ...); everything else of the cache itself is at the crate root.
//! Build a backend with its own builder and wrap it in [`Cache::new`], or
//! configure caches by name with [`Caches`] (Django's `CACHES`), from a
//! config file or the `CACHE_URL` environment variable.
//!
//! # Caching whole responses
//!
//! [`middleware`] has Django's per-view and per-site caches as Tower layers,
//! in the default build: [`cache_page(ttl)`](middleware::cache_page) for a
//! route, and [`SiteCache`](middleware::SiteCache), whose two layers cache a
//! whole router, with Django 6.1's page keys and rules ([`http`]).
//!
//! ```
//! use std::time::Duration;
//! use axum::{Router, routing::get};
//! use tower_cache::middleware::cache_page;
//!
//! let app: Router = Router::new()
//!     .route("/", get(|| async { "rendered once every five minutes" }))
//!     .route_layer(cache_page(Duration::from_secs(300)));
//! ```
//!
//! # Keys
//!
//! Keys are made as Django makes them, `key_prefix:version:key` (`:1:k` by
//! default), then validated: a made key over 250 bytes, or with control
//! characters or white space, is rejected on every backend
//! ([`CacheError::InvalidKey`]), so code that works on memory works on
//! memcached. [`KeyFunction::hashed`] hashes such keys instead.
//!
//! # Timeouts
//!
//! [`Timeout::Default`] is the cache's default (300 s), [`Timeout::Forever`]
//! never expires, and a zero duration means "do not keep": a `set` with it
//! deletes the key. [`CacheBuilder::ttl_jitter`] (or `?ttl_jitter=10` in the
//! URL) spreads every other timeout by up to ± a percentage, so that entries
//! written together do not expire together.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod backend;
pub mod backends;
mod cache;
mod clock;
mod codec;
mod error;
pub mod fragment;
mod hex;
pub mod http;
mod jitter;
mod key;
mod key_lock;
mod memo;
pub mod middleware;
mod options;
mod registry;
pub mod tags;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;
mod timeout;

pub use backend::{CacheBackend, ClearScope, DynBackend, Expiry, apply_incr, parse_integer};
pub use cache::{Cache, CacheBuilder};
pub use error::{BoxError, CacheError, ConfigError, InvalidKeyReason, Result};
pub use jitter::Jitter;
pub use key::{KeyFunction, MAX_KEY_LENGTH, validate_key};
pub use memo::Memo;
pub use registry::{
    CACHE_URL_ENV, CacheConfig, Caches, CachesConfig, DEFAULT_CACHE_ALIAS, OptionValue,
};
pub use timeout::Timeout;

// The README's code blocks are compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
