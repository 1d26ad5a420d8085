//! The conformance suite: Django's `BaseCacheTests`, ported, for every backend.
//!
//! Every built-in backend runs it against a real store, and so can yours:
//!
//! ```
//! // tests/my_backend.rs: the memory backend stands in for yours here.
//! async fn backend() -> tower_cache::DynBackend {
//!     std::sync::Arc::new(tower_cache::backends::MemoryBackend::new())
//! }
//! tower_cache::conformance_suite!(backend);
//! # fn main() {}
//! ```
//!
//! The macro expands to one `#[tokio::test]` per case, named after the Django
//! test it ports (`test_simple`, `test_add`, ...), so `cargo test test_touch`
//! runs one case on every backend. The test crate needs `tokio` with the
//! `macros` and `rt-multi-thread` features.
//!
//! Each case builds a [`Harness`]: caches over the backend with a key prefix
//! unique to the case and the run (Django's `default`, `prefix`, `v2` and
//! `custom_key` aliases), so cases run in parallel against one shared server
//! and leave other data alone. A backend whose `clear` cannot be limited to
//! a prefix (memcached's `flush_all`) passes `global_clear`: `test_clear` then
//! runs alone while every other case waits.
//!
//! The cases are timing-based where Django's are (1 s expiries and 2 s
//! sleeps), since remote stores keep their own clocks.

pub mod cases;
mod doubles;
mod harness;

pub use doubles::{Call, FailingBackend, HookFuture, Hooked, Instrumented, Unserializable};
#[doc(hidden)]
pub use harness::{__ClearLock, ClearGuard};
pub use harness::{Harness, concurrent_add, concurrent_delete_if_equal, concurrent_incr};
