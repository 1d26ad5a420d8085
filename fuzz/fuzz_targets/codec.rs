//! The value codec through the public API: arbitrary bytes stored with
//! `set_bytes` on a memory-backend `Cache`, read back with `get::<T>` for
//! `serde_json::Value`, `i64`, `String`, `Vec<u8>` and `bool` (an error or a
//! value, never a panic), and `incr` on them (`parse_integer`).
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tower_cache::parse_integer;
use tower_cache::Cache;
use tower_cache::backends::MemoryBackend;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime")
    })
}

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(|| Cache::new(Arc::new(MemoryBackend::new())))
}

/// Whether a JSON value holds a float (which need not round-trip exactly).
fn has_float(value: &Value) -> bool {
    match value {
        Value::Number(n) => n.is_f64(),
        Value::Array(items) => items.iter().any(has_float),
        Value::Object(map) => map.values().any(has_float),
        _ => false,
    }
}

fuzz_target!(|data: &[u8]| {
    runtime().block_on(async {
        let cache = cache();
        cache
            .set_bytes("k", data.to_vec(), tower_cache::Timeout::Forever)
            .await
            .expect("set_bytes");
        assert_eq!(
            cache.get_bytes("k").await.expect("get_bytes").as_deref(),
            Some(data)
        );

        let value = cache.get::<Value>("k").await;
        assert_eq!(value.is_ok(), serde_json::from_slice::<Value>(data).is_ok());
        let int = cache.get::<i64>("k").await;
        let _ = cache.get::<String>("k").await;
        let _ = cache.get::<Vec<u8>>("k").await;
        let _ = cache.get::<bool>("k").await;

        // JSON integers are decimal text: what decodes as one, without
        // white space around, is what incr reads.
        if let Ok(Some(n)) = int
            && data.trim_ascii().len() == data.len()
        {
            assert_eq!(parse_integer(data), Some(n));
        }
        let parsed = parse_integer(data);
        match cache.incr("k", 1).await {
            Ok(next) => assert_eq!(Some(next), parsed.and_then(|n| n.checked_add(1))),
            Err(_) => assert!(parsed.is_none_or(|n| n == i64::MAX)),
        }

        // A value that decoded stores and reads back the same.
        if let Ok(Some(value)) = value
            && !has_float(&value)
        {
            cache
                .set("v", &value, tower_cache::Timeout::Forever)
                .await
                .expect("set");
            assert_eq!(cache.get::<Value>("v").await.expect("get"), Some(value));
        }
    });
});
