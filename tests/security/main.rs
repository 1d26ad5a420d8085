//! Hostile input (issue 12): the attacks a shared page cache must stop,
//! played against real axum apps behind `cache_page` and the site-wide
//! layers, one module per attack family; each test is named after the
//! attack. SECURITY.md lists every rule with the test that proves it.
//!
//! The memcached family needs a server: `./scripts/test`, or MEMCACHED_URL.

#[path = "../common/mod.rs"]
mod common;

mod app;

mod cache_control;
mod deception;
mod entries;
mod fat_get;
mod header_bytes;
mod hosts;
#[cfg(feature = "memcached")]
mod memcached_keys;
mod paths;
mod unkeyed_headers;
