//! A backend that stores nothing: Django's `DummyCache`.

use async_trait::async_trait;
use bytes::Bytes;

use crate::backend::{CacheBackend, ClearScope, Expiry};
use crate::error::{CacheError, Result};
use crate::memo::Memo;

/// Implements the whole interface and stores nothing, answering as Django's
/// `DummyCache`: every read misses, `add` returns `true`, `delete` and `touch`
/// (and `delete_if_equal`) return `false`, `incr` fails as missing. URL: `dummy://`.
///
/// Use it in development to switch caching off without changing code. Keys
/// are still made and validated, so invalid keys are found here too.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> tower_cache::Result<()> {
/// let cache = tower_cache::Cache::from_url("dummy://").await?;
/// cache.set("k", "v", tower_cache::Timeout::Default).await?;
/// assert_eq!(cache.get::<String>("k").await?, None);
/// assert!(cache.add("k", "v", tower_cache::Timeout::Default).await?);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct DummyBackend;

#[async_trait]
impl CacheBackend for DummyBackend {
    fn name(&self) -> &'static str {
        "dummy"
    }

    fn get_now(&self, _: &str) -> Option<Result<Option<(Bytes, Memo)>>> {
        Some(Ok(None))
    }

    async fn get(&self, _key: &str) -> Result<Option<Bytes>> {
        Ok(None)
    }

    async fn set(&self, _key: &str, _value: Bytes, _expiry: Expiry) -> Result<()> {
        Ok(())
    }

    async fn add(&self, _key: &str, _value: Bytes, _expiry: Expiry) -> Result<bool> {
        Ok(true)
    }

    async fn delete(&self, _key: &str) -> Result<bool> {
        Ok(false)
    }

    async fn delete_if_equal(&self, _key: &str, _expected: &[u8]) -> Result<bool> {
        Ok(false)
    }

    async fn touch(&self, _key: &str, _expiry: Expiry) -> Result<bool> {
        Ok(false)
    }

    async fn has_key(&self, _key: &str) -> Result<bool> {
        Ok(false)
    }

    async fn incr(&self, key: &str, _delta: i64) -> Result<i64> {
        Err(CacheError::MissingKey {
            key: key.to_owned(),
        })
    }

    async fn clear(&self, _scope: ClearScope<'_>) -> Result<()> {
        Ok(())
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        Ok(vec![None; keys.len()])
    }

    async fn set_many(
        &self,
        _entries: Vec<(String, Bytes)>,
        _expiry: Expiry,
    ) -> Result<Vec<String>> {
        Ok(Vec::new())
    }

    async fn delete_many(&self, _keys: &[&str]) -> Result<()> {
        Ok(())
    }
}
