//! The built-in backends, each behind its cargo feature (memory and dummy are
//! always there).

mod dummy;
#[cfg(feature = "memcached")]
mod memcached;
mod memory;
#[cfg(feature = "redis")]
mod redis;

pub use dummy::DummyBackend;
#[cfg(feature = "memcached")]
#[cfg_attr(docsrs, doc(cfg(feature = "memcached")))]
pub use memcached::{MemcachedBackend, MemcachedBackendBuilder};
pub use memory::{MemoryBackend, MemoryBackendBuilder};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use redis::{RedisBackend, RedisBackendBuilder};
