//! Whether the memory backend's `max_bytes` holds: pages written through a
//! `Cache` until ten times the bound has gone in, then the heap the backend
//! still holds (bytes allocated less bytes freed since it was built, by a
//! counting allocator) against the bound.
//!
//! ```text
//! cargo bench --bench memory_bound [-- MAX_MIB PAGE_BYTES]
//! ```
//!
//! Prints the bound, what was written, the entries kept, and the heap held
//! as a ratio of the bound (goal: within 5%).

use std::alloc::System;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tower_cache::Cache;
use tower_cache::backends::MemoryBackend;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .map(|a| a.parse().expect("MAX_MIB PAGE_BYTES"))
        .collect();
    let max_bytes = args.first().copied().unwrap_or(8) * 1024 * 1024;
    let page_bytes = args.get(1).copied().unwrap_or(4096);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let region = Region::new(GLOBAL);
        let backend = Arc::new(
            MemoryBackend::builder()
                .max_bytes(max_bytes)
                .build()
                .await
                .expect("backend"),
        );
        let cache = Cache::new(backend.clone());
        let pages = 10 * max_bytes / page_bytes;
        let page = Bytes::from(vec![b'x'; usize::try_from(page_bytes).expect("size")]);
        for n in 0..pages {
            // Keys shaped as the layers' page keys (about 150 bytes).
            let key = format!(
                "views.decorators.cache.cache_page..GET.{n:032x}.d41d8cd98f00b204e9800998ecf8427e.en-us.UTC"
            );
            cache
                // Each page its own allocation, as pages from the origin are.
                .set_bytes(&key, Bytes::copy_from_slice(&page), Duration::from_secs(600))
                .await
                .expect("set");
            if n % 1024 == 0 {
                backend.run_pending_tasks().await;
            }
        }
        backend.run_pending_tasks().await;
        let change = region.change();
        let held = change.bytes_allocated as i64 - change.bytes_deallocated as i64
            + change.bytes_reallocated as i64;
        drop(cache);
        let mib = |b: f64| b / 1024.0 / 1024.0;
        println!(
            "bound {:.1} MiB, written {:.1} MiB in {pages} pages of {page_bytes} B, {} entries kept, \
             heap held {:.2} MiB = {:.3}x the bound",
            mib(max_bytes as f64),
            mib((pages * page_bytes) as f64),
            backend.entry_count(),
            mib(held as f64),
            held as f64 / max_bytes as f64,
        );
    });
}
