//! Cache tags: invalidating every page that carried a tag, on any backend,
//! without an index of keys to scan.
//!
//! Each tag has a **version** stored under a key of its own
//! (`tower_cache.tag.<md5 of the tag>`): an opaque token, the time of the
//! tag's last invalidation in microseconds and 64 random bits. A page
//! stored with tags records the version of each ([`TagVersion`]); a hit on
//! it reads the current versions with one `get_many` and is a miss unless
//! every one is unchanged. [`Cache::invalidate_tags`] writes new versions
//! (one `set_many`), so every page stored before becomes a miss at once, in
//! every process that shares the cache. On the memory backend, which
//! counts its writes ([`CacheBackend::write_count`](crate::CacheBackend::write_count)), a hit trusts the
//! versions an earlier hit read in the same second while nothing has been
//! written since, so it reads them about once a second instead of on
//! every request. There is no key scan, no
//! multi-key command across Redis Cluster slots beyond what `get_many`
//! splits by slot, and no index that can grow without bound.
//!
//! A version that is missing (evicted, expired, never written) never
//! matches a recorded one, so losing a version key costs misses, never a
//! stale page: the design fails closed (on the memory backend, within a
//! second of the version's loss). Versions are kept for
//! [`TAG_VERSION_LIFETIME`], and a page that outlives its tags' versions is
//! simply fetched again.
//!
//! A page whose fetch began before one of its tags was invalidated is not
//! stored (its content may predate the change that caused the
//! invalidation); across machines this relies on their clocks agreeing to
//! within the time a fetch takes.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> tower_cache::Result<()> {
//! let cache = tower_cache::Cache::from_url("memory://").await?;
//! // After an edit to product 42, every page tagged `product:42` is a miss.
//! cache.invalidate_tags(["product:42"]).await?;
//! # Ok(()) }
//! ```

use std::time::Duration;

use bytes::Bytes;

use crate::cache::Cache;
use crate::error::Result;
use crate::http::key::Md5Hex;

/// How long a tag's version is kept (30 days). A page kept longer than its
/// tags' versions is fetched again once they expire (never served stale).
pub const TAG_VERSION_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);

/// The longest tag name accepted, in bytes.
pub const MAX_TAG_LEN: usize = 1024;

/// The most tags one page may carry: each costs a key in every hit's
/// `get_many`.
pub const MAX_TAGS: usize = 64;

const KEY_PREFIX: &str = "tower_cache.tag.";

/// The version of one tag that a stored page recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagVersion {
    /// The tag's version key (before the cache's key function).
    pub key: String,
    /// The version the tag had when the page was stored.
    pub version: Bytes,
}

/// The key a tag's version is stored under (before the cache's key
/// function): the md5 of the tag, so any tag is a valid key on every
/// backend (memcached refuses spaces and control bytes).
pub fn tag_key(tag: &str) -> String {
    let mut key = String::with_capacity(KEY_PREFIX.len() + 32);
    key.push_str(KEY_PREFIX);
    key.push_str(Md5Hex::digest(tag.as_bytes()).as_str());
    key
}

/// Microseconds since the Unix epoch, by the system clock.
pub(crate) fn now_micros() -> u64 {
    crate::clock::micros(crate::clock::since_epoch())
}

/// A new version: `<micros>.<16 hex digits of randomness>`. The random
/// part keeps two invalidations in one microsecond (or a version that was
/// evicted and written again) from ever looking the same.
fn new_version(invalidated_at: u64) -> Bytes {
    Bytes::from(format!("{invalidated_at}.{:016x}", fastrand::u64(..)))
}

/// When the tag was last invalidated, in microseconds (0 for a version
/// made when the tag was first seen); `None` for bytes that are not a
/// version.
fn invalidated_at(version: &[u8]) -> Option<u64> {
    let micros = version.split(|&b| b == b'.').next()?;
    std::str::from_utf8(micros).ok()?.parse().ok()
}

impl Cache {
    /// Makes every page stored with one of `tags` a miss from now on, in
    /// every process that shares this cache (one `set_many` round trip).
    ///
    /// Pages carry tags in a response header (`Cache-Tag` by default) or a
    /// [`CacheTags`](crate::http::tags::CacheTags) response extension; see
    /// [the module](crate::tags) for how it works and what a hit on a tagged
    /// page costs.
    ///
    /// # Errors
    ///
    /// The backend's error: the invalidation may not have happened.
    pub async fn invalidate_tags<I, S>(&self, tags: I) -> Result<()>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let now = now_micros();
        let entries: Vec<(String, Bytes)> = tags
            .into_iter()
            .map(|tag| (tag_key(tag.as_ref()), new_version(now)))
            .collect();
        if entries.is_empty() {
            return Ok(());
        }
        let failed = self.set_many_bytes(entries, TAG_VERSION_LIFETIME).await?;
        match failed.first() {
            None => Ok(()),
            Some(key) => Err(crate::error::CacheError::NotStored { key: key.clone() }),
        }
    }

    /// The current versions of `tags`, for a page about to be stored: a tag
    /// seen for the first time gets a version (`add`, so that two processes
    /// agree on it). `None` when one of them was invalidated at or after
    /// `since` (microseconds): the page's content may predate the change.
    pub(crate) async fn tag_versions(
        &self,
        tags: &[String],
        since: u64,
    ) -> Result<Option<Vec<TagVersion>>> {
        let keys: Vec<String> = tags.iter().map(|tag| tag_key(tag)).collect();
        let found = self.get_many_bytes(&keys).await?;
        let mut versions = Vec::with_capacity(keys.len());
        for (key, version) in keys.into_iter().zip(found) {
            let version = match version {
                Some(version) => version,
                None => {
                    let fresh = new_version(0);
                    if self
                        .add_bytes(&key, fresh.clone(), TAG_VERSION_LIFETIME)
                        .await?
                    {
                        fresh
                    } else {
                        // Another process added it first: use theirs.
                        match self.get_bytes(&key).await? {
                            Some(theirs) => theirs,
                            None => return Ok(None),
                        }
                    }
                }
            };
            if invalidated_at(&version).is_none_or(|at| at >= since) {
                return Ok(None);
            }
            versions.push(TagVersion { key, version });
        }
        Ok(Some(versions))
    }

    /// Whether every recorded version is still the tag's current one (one
    /// `get_many`; nothing for an untagged page).
    pub(crate) async fn tags_unchanged(&self, recorded: &[TagVersion]) -> Result<bool> {
        match recorded {
            [] => return Ok(true),
            // Most tagged pages carry one tag: a plain get costs fewer
            // allocations than a batch of one.
            [tag] => {
                return Ok(self
                    .get_bytes(&tag.key)
                    .await?
                    .is_some_and(|v| v == tag.version));
            }
            _ => {}
        }
        let keys: Vec<&str> = recorded.iter().map(|t| t.key.as_str()).collect();
        let current = self.get_many_bytes(&keys).await?;
        Ok(recorded
            .iter()
            .zip(current)
            .all(|(t, now)| now.is_some_and(|now| now == t.version)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_valid_for_every_backend() {
        let key = tag_key("product 42\r\nset x");
        assert!(key.starts_with("tower_cache.tag."));
        assert_eq!(key.len(), KEY_PREFIX.len() + 32);
        assert!(key.bytes().all(|b| b.is_ascii_graphic()));
        assert_eq!(key, tag_key("product 42\r\nset x"));
        assert_ne!(key, tag_key("product 43"));
    }

    #[test]
    fn versions_carry_their_time_and_never_repeat() {
        let a = new_version(1_700_000_000_123);
        let b = new_version(1_700_000_000_123);
        assert_ne!(a, b);
        assert_eq!(invalidated_at(&a), Some(1_700_000_000_123));
        assert_eq!(invalidated_at(&new_version(0)), Some(0));
        assert_eq!(invalidated_at(b"junk"), None);
    }

    #[tokio::test]
    async fn an_invalidated_tag_changes_its_version() {
        let cache = Cache::from_url("memory://").await.unwrap();
        let tags = ["a".to_owned(), "b".to_owned()];
        let recorded = cache
            .tag_versions(&tags, now_micros())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(recorded.len(), 2);
        assert!(cache.tags_unchanged(&recorded).await.unwrap());
        // Seen again: the same versions.
        let again = cache
            .tag_versions(&tags, now_micros())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(again, recorded);
        cache.invalidate_tags(["b"]).await.unwrap();
        assert!(!cache.tags_unchanged(&recorded).await.unwrap());
        assert!(cache.tags_unchanged(&recorded[..1]).await.unwrap());
        assert!(cache.tags_unchanged(&[]).await.unwrap());
    }

    #[tokio::test]
    async fn a_fetch_that_began_before_an_invalidation_is_not_stored() {
        let cache = Cache::from_url("memory://").await.unwrap();
        let began = now_micros();
        cache.invalidate_tags(["t"]).await.unwrap();
        let tags = ["t".to_owned()];
        assert_eq!(cache.tag_versions(&tags, began).await.unwrap(), None);
        let later = now_micros() + 1;
        assert!(cache.tag_versions(&tags, later).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn a_lost_version_fails_closed() {
        let cache = Cache::from_url("memory://").await.unwrap();
        let recorded = cache
            .tag_versions(&["t".to_owned()], now_micros())
            .await
            .unwrap()
            .unwrap();
        cache.delete(&recorded[0].key).await.unwrap();
        assert!(!cache.tags_unchanged(&recorded).await.unwrap());
    }
}
