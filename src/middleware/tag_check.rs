//! [`TagCheck`]: whether a decoded page's tags are unchanged, read from
//! the backend or, on a backend that counts its writes, known from an
//! earlier read in the same second.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::backend::poll_once;
use crate::cache::Cache;
use crate::http::stored::StoredResponse;

/// When a decoded page's tag versions were last read and found unchanged:
/// the backend's [`write_count`](crate::CacheBackend::write_count) before
/// that read, and the second (Unix, by the system's clock) it was made in.
///
/// A version changes only by a write (an invalidation writes a new one), so
/// while the count stays the same the versions read then are still the
/// current ones, and a hit need not read them again. It can also vanish
/// without a write (expired after [`TAG_VERSION_LIFETIME`], or evicted), which
/// makes the page a miss: the check is trusted only within the second it
/// was made in, so a vanished version is noticed within a second, and a
/// tagged hit on the memory backend (or an L1 hit of the tiered one) reads
/// its tags once a second instead of
/// on every request (one read of the store per tag, key made and value
/// decoded: about 700 instructions).
///
/// [`TAG_VERSION_LIFETIME`]: crate::tags::TAG_VERSION_LIFETIME
#[derive(Debug)]
pub(crate) struct TagCheck {
    writes: AtomicU64,
    second: AtomicU64,
}

/// No check made yet: a count no backend reaches in practice, and a second
/// no check is made in.
const NEVER: u64 = u64::MAX;

impl TagCheck {
    pub(crate) fn new() -> TagCheck {
        TagCheck {
            writes: AtomicU64::new(NEVER),
            second: AtomicU64::new(NEVER),
        }
    }

    /// Whether a check found the tags unchanged when the backend's count
    /// was `writes`, in `second`.
    fn holds(&self, writes: u64, second: u64) -> bool {
        // Two loads that can interleave with a concurrent `note`: a mixed
        // pair only costs a read, as every count noted was read before its
        // check, so it holds for any second it is paired with here.
        self.writes.load(Ordering::Relaxed) == writes
            && self.second.load(Ordering::Relaxed) == second
    }

    fn note(&self, writes: u64, second: u64) {
        self.second.store(second, Ordering::Relaxed);
        self.writes.store(writes, Ordering::Relaxed);
    }
}

/// Whether the versions of `entry`'s tags are those it was stored with,
/// when that can be told without waiting (a read that would wait is given
/// up, and the lookup reads them). `check` is the decoded page's, and
/// `second` the system's time in Unix seconds.
pub(crate) fn tags_unchanged(
    cache: &Cache,
    entry: &StoredResponse,
    check: &TagCheck,
    second: u64,
) -> bool {
    if entry.tags.is_empty() {
        return true;
    }
    // Read before the versions: a write made after it changes the count.
    let writes = cache.backend().write_count();
    if writes.is_some_and(|writes| check.holds(writes, second)) {
        return true;
    }
    let unchanged = poll_once(cache.tags_unchanged(&entry.tags))
        .is_some_and(|read| read.is_ok_and(|same| same));
    if let (true, Some(writes)) = (unchanged, writes) {
        check.note(writes, second);
    }
    unchanged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_check_holds_for_its_count_and_second_only() {
        let check = TagCheck::new();
        assert!(!check.holds(0, 100));
        check.note(7, 100);
        assert!(check.holds(7, 100));
        assert!(!check.holds(8, 100), "a write since");
        assert!(!check.holds(7, 101), "the next second");
    }

    #[tokio::test]
    async fn a_write_to_a_tag_version_is_seen_at_once_and_a_vanished_one_within_the_second() {
        let backend = crate::backends::MemoryBackend::new();
        let cache = Cache::new(std::sync::Arc::new(backend.clone()));
        let recorded = cache
            .tag_versions(&["a".to_owned()], crate::tags::now_micros())
            .await
            .unwrap()
            .unwrap();
        let mut entry = StoredResponse::decode(
            StoredResponse::encode(
                http::StatusCode::OK,
                &http::HeaderMap::new(),
                b"",
                &crate::http::stored::Freshness::default(),
            )
            .unwrap(),
        )
        .unwrap();
        entry.tags = recorded.clone().into();
        let check = TagCheck::new();
        assert!(tags_unchanged(&cache, &entry, &check, 100));
        assert!(check.holds(crate::CacheBackend::write_count(&backend).unwrap(), 100));
        // Invalidated: a write, seen by the next hit in the same second.
        cache.invalidate_tags(["a"]).await.unwrap();
        assert!(!tags_unchanged(&cache, &entry, &check, 100));
        // Its old version written back by hand (a raw write): unchanged again.
        let old = &recorded[0];
        cache
            .set_bytes(
                &old.key,
                old.version.clone(),
                crate::tags::TAG_VERSION_LIFETIME,
            )
            .await
            .unwrap();
        assert!(tags_unchanged(&cache, &entry, &check, 100));
        // Dropped without a write the backend counts, as an expiry or an
        // eviction drops it: trusted in that second, read again in the next.
        backend.forget_uncounted(&cache.make_key(&old.key).unwrap());
        assert!(tags_unchanged(&cache, &entry, &check, 100));
        assert!(!tags_unchanged(&cache, &entry, &check, 101));
    }
}
