//! The file backend against the memory backend, in one run: `get` of a hit,
//! `set`, and `get_many` of 100 keys against 100 `get`s.
//!
//! ```text
//! cargo bench --bench file --features file -- --warm-up-time 1 --measurement-time 3
//! ```

mod common;

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use tower_cache::Cache;
use tower_cache::backends::{FileBackend, MemoryBackend};

fn file(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let caches = [
        ("memory", Cache::new(Arc::new(MemoryBackend::new()))),
        ("file", Cache::new(Arc::new(FileBackend::new(dir.path())))),
    ];
    common::bench_backends(c, &rt, &caches);
}

criterion_group!(benches, file);
criterion_main!(benches);
