//! The cases, one `pub async fn` per Django test. Each panics on failure.

// Each file defines its cases inside `cases!`; `case_files!` turns the list
// below into the suite, so a new file goes there as well as here.
mod basic;
mod expiry;
mod get_or_set;
mod keys;
mod support;
mod versioning;

pub use basic::*;
pub use expiry::*;
pub use get_or_set::*;
pub use keys::*;
pub use versioning::*;

crate::testing::harness::case_files!(basic, expiry, keys, versioning, get_or_set);
