//! The built-in backends, each behind its cargo feature (memory and dummy are
//! always there). This module is their only path: `tower_cache::backends::RedisBackend`.
//!
//! # Builders
//!
//! Every backend but [`DummyBackend`] (and `CompressedBackend`, a wrapper
//! made with `new`) has a builder, `XBackend::builder(..)`,
//! whose setters are named after the URL options, and every builder ends the
//! same way: `build().await?`, an `async fn build(self) -> Result<XBackend>`.
//! Some builders need neither (memory, file), but one form means code does
//! not change shape with the backend. None of them connects: connections are
//! made on first use, so building succeeds while a server is down.
//! [`MemoryBackend::new`] and `FileBackend::new` are the synchronous
//! shortcuts for the defaults.
//!
//! ```
//! use std::sync::Arc;
//! use tower_cache::Cache;
//! use tower_cache::backends::MemoryBackend;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> tower_cache::Result<()> {
//! let backend = MemoryBackend::builder().max_capacity(1000).build().await?;
//! let cache = Cache::new(Arc::new(backend));
//! # Ok(()) }
//! ```
//!
//! # Options
//!
//! One name means one thing on every backend that has it: `pool_size` is
//! the most connections (per server), `connect_timeout` the longest wait
//! for a connection, `command_timeout` the longest wait for an answer. Each
//! backend's docs list its options and their defaults.

#[cfg(feature = "zstd")]
mod compressed;
mod compression;
#[cfg(any(
    feature = "sqlite",
    feature = "postgres",
    feature = "mysql",
    feature = "file"
))]
mod culling;
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
mod database;
mod dummy;
#[cfg(feature = "file")]
mod file;
#[cfg(any(feature = "memcached", feature = "redis"))]
mod lanes;
#[cfg(feature = "memcached")]
mod memcached;
mod memory;
#[cfg(feature = "redis")]
mod redis;
mod tiered;

#[cfg(feature = "zstd")]
#[cfg_attr(docsrs, doc(cfg(feature = "zstd")))]
pub use compressed::CompressedBackend;
pub(crate) use compression::CompressionOptions;
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
#[cfg_attr(
    docsrs,
    doc(cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql")))
)]
pub use database::{DatabaseBackend, DatabaseBackendBuilder};
pub use dummy::DummyBackend;
#[cfg(feature = "file")]
#[cfg_attr(docsrs, doc(cfg(feature = "file")))]
pub use file::{FileBackend, FileBackendBuilder};
#[cfg(feature = "memcached")]
#[cfg_attr(docsrs, doc(cfg(feature = "memcached")))]
pub use memcached::{MemcachedBackend, MemcachedBackendBuilder};
pub use memory::{MemoryBackend, MemoryBackendBuilder};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use redis::{RedisBackend, RedisBackendBuilder};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use tiered::RedisInvalidation;
pub(crate) use tiered::{Invalidations, L1Options};
pub use tiered::{TieredBackend, TieredBackendBuilder};
