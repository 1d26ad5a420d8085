//! Whether the memory backend's `max_bytes` holds: pages written through a
//! `Cache` until ten times the bound has gone in, each read once as a hit
//! reads it (decoded, and the decoded head, with the header map a hit
//! clones, kept in the entry's memo), then
//! the heap the backend still holds (bytes allocated less bytes freed since
//! it was built, by a counting allocator) against the bound.
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
use http::header::{AGE, CONTENT_LENGTH};
use http::{HeaderMap, HeaderValue, StatusCode};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tower_cache::Cache;
use tower_cache::backends::MemoryBackend;
use tower_cache::http::stored::{Freshness, StoredResponse};

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
        // A page as the layers store it: eight headers (about 250 bytes) and
        // a body, PAGE_BYTES in all.
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("content-type", "text/html; charset=utf-8"),
            ("cache-control", "max-age=600"),
            ("expires", "Tue, 01 Dec 2026 12:00:00 GMT"),
            ("last-modified", "Tue, 01 Dec 2026 11:50:00 GMT"),
            ("etag", "\"5d41402abc4b2a76b9719d911017c592\""),
            ("vary", "Accept-Encoding"),
            ("x-request-id", "6f1c0b1e-8a3e-4c4b-9a54-2f3c1d0e9b7a"),
            ("x-frame-options", "DENY"),
        ] {
            headers.insert(name, HeaderValue::from_static(value));
        }
        let head = StoredResponse::encode(StatusCode::OK, &headers, b"", &Freshness::default())
            .expect("encode")
            .len();
        let body = vec![b'x'; usize::try_from(page_bytes).expect("size").saturating_sub(head)];
        let page = StoredResponse::encode(StatusCode::OK, &headers, &body, &Freshness::default())
            .expect("encode");
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
            // One hit: the decoded head is kept beside the entry, as the
            // layers keep it (`middleware::decoded::Decoded`): the decoded
            // response, its header map made ready to serve (room for what a
            // hit adds, `Age` and `Content-Length`, kept as a clone).
            let (bytes, memo) = cache.get_memoized(&key).await.expect("get").expect("a page");
            let mut decoded = StoredResponse::decode(bytes).expect("decode");
            let mut ready = HeaderMap::with_capacity(decoded.headers.len() + 4);
            for (name, value) in &decoded.headers {
                ready.append(name.clone(), value.clone());
            }
            ready.insert(AGE, HeaderValue::from_static("0"));
            ready.insert(CONTENT_LENGTH, HeaderValue::from(decoded.body.len()));
            decoded.headers = ready.clone();
            memo.set(decoded);
        }
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
