//! The built-in backends, each behind its cargo feature (memory and dummy are
//! always there).

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
mod memory;

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
pub use memory::{MemoryBackend, MemoryBackendBuilder};
