//! Compression at rest on Redis (`compress_min_bytes`): what it saves in
//! Redis's memory and what it costs a hit, for pages of several sizes, in
//! one run.
//!
//! ```text
//! REDIS_URL=redis://127.0.0.1:PORT/0 cargo bench --bench compression --features redis,zstd [-- ENTRIES]
//! ```
//!
//! Pages are slices of this crate's README (prose and code, as HTML pages
//! are text), each key its own slice. For each size, with compression off
//! and on (`compress_min_bytes=1KiB`, zstd level 3): ENTRIES (1000) pages
//! are written under a fresh prefix; Redis's `used_memory` before and after
//! gives the bytes per entry; then 2000 sequential `get_bytes` hits give the
//! mean latency, and 32 tasks of 250 hits each the hits per second (the
//! median of three rounds of each). The
//! keys are deleted after. Prints a markdown table.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use deadpool_redis::redis;
use tower_cache::backends::{CompressedBackend, RedisBackend};
use tower_cache::{Cache, DynBackend, Timeout};

const TEXT: &str = include_str!("../README.md");
const SIZES: [usize; 4] = [688, 4096, 16 * 1024, 64 * 1024];

/// Page `i` of `size` bytes: a slice of the README, from an offset of its
/// own, wrapped around the end.
fn page(i: usize, size: usize) -> Bytes {
    let text = TEXT.as_bytes();
    let start = (i * 7919) % text.len();
    let mut out = Vec::with_capacity(size);
    while out.len() < size {
        let from = if out.is_empty() { start } else { 0 };
        let take = (size - out.len()).min(text.len() - from);
        out.extend_from_slice(&text[from..from + take]);
    }
    Bytes::from(out)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

async fn used_memory(connection: &mut redis::aio::MultiplexedConnection) -> i64 {
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(connection)
        .await
        .expect("INFO memory");
    info.lines()
        .find_map(|line| line.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("used_memory")
}

fn main() {
    let entries: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .map_or(1000, |a| a.parse().expect("ENTRIES"));
    let url = std::env::var("REDIS_URL").expect(
        "REDIS_URL is not set: start redis-server and run REDIS_URL=redis://127.0.0.1:PORT/0 \
         cargo bench --bench compression --features redis,zstd",
    );
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let client = redis::Client::open(url.as_str()).expect("redis URL");
        let mut connection = client
            .get_multiplexed_async_connection()
            .await
            .expect("connect");
        let redis: DynBackend = Arc::new(
            RedisBackend::builder([url.as_str()])
                .build()
                .await
                .expect("backend"),
        );
        let compressed: DynBackend =
            Arc::new(CompressedBackend::new(redis.clone(), 1024).expect("compressed"));
        println!("| page | compression | bytes per entry in Redis | stored / off | mean hit µs | hits/s (32 tasks) | hits/s / off |");
        println!("|---:|---|---:|---:|---:|---:|---:|");
        for size in SIZES {
            let mut off = (0.0, 0.0);
            for (name, backend) in [("off", &redis), ("zstd 3, from 1 KiB", &compressed)] {
                let cache = Cache::new(backend.clone());
                let prefix = format!("bench-zstd-{size}-{}-{}", std::process::id(), name.len());
                let keys: Vec<String> = (0..entries).map(|i| format!("{prefix}-{i}")).collect();
                let before = used_memory(&mut connection).await;
                for (i, key) in keys.iter().enumerate() {
                    cache
                        .set_bytes(key, page(i, size), Timeout::Forever)
                        .await
                        .expect("set");
                }
                let per_entry = (used_memory(&mut connection).await - before) as f64 / entries as f64;
                // The median of three rounds of each: the machine is noisy.
                let mut means = Vec::new();
                let mut rates = Vec::new();
                for _ in 0..3 {
                    let started = Instant::now();
                    for n in 0..2000 {
                        let value = cache.get_bytes(&keys[n % entries]).await.expect("get");
                        assert_eq!(value.map(|v| v.len()), Some(size));
                    }
                    means.push(started.elapsed().as_secs_f64() * 1e6 / 2000.0);
                    let started = Instant::now();
                    let tasks: Vec<_> = (0..32)
                        .map(|t| {
                            let (cache, keys) = (cache.clone(), keys.clone());
                            tokio::spawn(async move {
                                for n in 0..250 {
                                    let key = &keys[(t * 250 + n) % keys.len()];
                                    cache.get_bytes(key).await.expect("get").expect("hit");
                                }
                            })
                        })
                        .collect();
                    for task in tasks {
                        task.await.expect("task");
                    }
                    rates.push(8000.0 / started.elapsed().as_secs_f64());
                }
                let (mean_us, per_second) = (median(&mut means), median(&mut rates));
                if name == "off" {
                    off = (per_entry, per_second);
                }
                println!(
                    "| {size} | {name} | {per_entry:.0} | {:.2}x | {mean_us:.1} | {per_second:.0} | {:.2}x |",
                    per_entry / off.0,
                    per_second / off.1
                );
                let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
                cache.delete_many(keys).await.expect("delete");
            }
        }
    });
}
