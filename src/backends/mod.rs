//! The built-in backends, each behind its cargo feature (memory and dummy are
//! always there).

mod dummy;
mod memory;

pub use dummy::DummyBackend;
pub use memory::{MemoryBackend, MemoryBackendBuilder};
