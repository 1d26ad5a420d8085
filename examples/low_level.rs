//! The tutorial's low-level cache API snippet, in Rust.
//!
//! Run with `cargo run --example low_level` (any backend: `CACHE_URL=dummy:// cargo run --example low_level`).
//!
//! A "view" reads a list of objects from the cache, computes it from the slow
//! "database" on a miss and stores it; saving or deleting an object deletes
//! the cached list, as the tutorial's `post_save`/`post_delete` handlers do.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tower_cache::{Cache, Caches, Timeout};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Object {
    id: u32,
    name: String,
}

/// A stand-in for `Objects.all()`: slow, so that the cache shows.
struct Database {
    objects: Mutex<Vec<Object>>,
}

impl Database {
    async fn all(&self) -> Vec<Object> {
        tokio::time::sleep(Duration::from_millis(500)).await;
        self.objects.lock().unwrap().clone()
    }
}

/// The view: `objects = cache.get('objects')`, compute and `cache.set` on a miss.
async fn get_context_data(cache: &Cache, db: &Database) -> tower_cache::Result<Vec<Object>> {
    if let Some(objects) = cache.get::<Vec<Object>>("objects").await? {
        return Ok(objects);
    }
    let objects = db.all().await;
    cache.set("objects", &objects, Timeout::Default).await?;
    Ok(objects)
}

/// The `post_save` signal handler: save, then invalidate.
async fn save_object(cache: &Cache, db: &Database, object: Object) -> tower_cache::Result<()> {
    db.objects.lock().unwrap().push(object);
    cache.delete("objects").await?;
    Ok(())
}

#[tokio::main]
async fn main() -> tower_cache::Result<()> {
    // CACHE_URL picks the backend (memory:// when unset).
    let caches = Caches::from_env().await?;
    let cache = caches.default();
    let db = Database {
        objects: Mutex::new(vec![Object {
            id: 1,
            name: "first".into(),
        }]),
    };
    // Start from a clean slate, as a fresh process would.
    cache.delete("objects").await?;

    for label in ["first view (miss)", "second view (hit)"] {
        let started = Instant::now();
        let objects = get_context_data(cache, &db).await?;
        println!(
            "{label}: {} objects in {:.2}s",
            objects.len(),
            started.elapsed().as_secs_f64()
        );
    }

    save_object(
        cache,
        &db,
        Object {
            id: 2,
            name: "second".into(),
        },
    )
    .await?;
    println!("saved an object: the cached list was deleted");

    let started = Instant::now();
    let objects = get_context_data(cache, &db).await?;
    println!(
        "third view (miss again): {} objects in {:.2}s",
        objects.len(),
        started.elapsed().as_secs_f64()
    );

    // The same, in one call: compute only on a miss.
    let count: usize = cache
        .get_or_set(
            "object_count",
            || async { db.all().await.len() },
            Duration::from_secs(60),
        )
        .await?;
    println!("get_or_set: {count} objects");
    Ok(())
}
