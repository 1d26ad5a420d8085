//! The database backend on SQLite, PostgreSQL and MySQL/MariaDB against the
//! memory backend, in one run: `get` of a hit, `set`, and `get_many` of 100
//! keys against 100 `get`s.
//!
//! Run with servers (`DATABASE_URL`, `MYSQL_URL`; a database missing from the
//! environment is left out, and the bench says so):
//!
//! ```text
//! cargo bench --bench database --features sqlite,postgres,mysql -- \
//!     --warm-up-time 1 --measurement-time 3
//! ```

mod common;

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use tower_cache::Cache;
use tower_cache::backends::{DatabaseBackend, MemoryBackend};

fn databases(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let sqlite = format!("sqlite://{}", dir.path().join("bench.db").display());

    let mut caches = vec![("memory", Cache::new(Arc::new(MemoryBackend::new())))];
    let mut urls = vec![("sqlite", sqlite)];
    for (name, var) in [("postgres", "DATABASE_URL"), ("mysql", "MYSQL_URL")] {
        match std::env::var(var) {
            Ok(url) => urls.push((name, url)),
            Err(_) => eprintln!("*** {var} is not set: {name} is left out of this run ***"),
        }
    }
    for (name, url) in urls {
        let backend = rt.block_on(async {
            let backend = DatabaseBackend::builder(url)
                .table(format!("tc_bench_{}", std::process::id()))
                .build()
                .await
                .expect("backend");
            backend.create_table().await.expect("create table");
            backend
        });
        caches.push((name, Cache::new(Arc::new(backend))));
    }
    common::bench_backends(c, &rt, &caches);
}

criterion_group!(benches, databases);
criterion_main!(benches);
