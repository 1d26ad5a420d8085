//! Helpers shared by the backend test files.

#![allow(dead_code)]

#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
pub(crate) mod database;

use std::time::Duration;

use tower_cache::Cache;

/// Django's `_perform_cull_test`: sets `cull1`..`cull{initial - 1}` (1,000 s
/// timeouts) and returns how many survive.
pub(crate) async fn perform_cull_test(cache: &Cache, initial: usize) -> usize {
    for i in 1..initial {
        cache
            .set(&format!("cull{i}"), &"value", Duration::from_secs(1000))
            .await
            .unwrap();
    }
    let mut count = 0;
    for i in 1..initial {
        if cache.has_key(&format!("cull{i}")).await.unwrap() {
            count += 1;
        }
    }
    count
}
