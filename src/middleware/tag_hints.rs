//! The tags of pages found here before, so that a remote hit reads its
//! page and its tags' versions in one round trip.
//!
//! A tagged page's hit must check that none of its tags was invalidated
//! since it was stored: a read of the tags' versions. The tags are in the
//! entry, so without a hint that read waits for the entry's: two round
//! trips per hit on Redis. With the tags this layer saw on the page's last
//! hit, the lookup reads the entry and those versions in one batch; when the
//! entry's tags turn out to be others (the page was stored again with other
//! tags), it reads theirs after, as without a hint. A hint is only ever a
//! guess of which keys to read: what is checked is always the entry's own
//! tags.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::tags::TagVersion;

/// The most pages whose tags are kept per layer; past it, a page's hint
/// replaces another's.
const MOST_HINTS: usize = 4096;

/// A page's tags as the batch reads them: each tag's key before the cache's
/// key function (to compare with the entry's) and after it (to read).
pub(crate) type Hint = Arc<[(String, String)]>;

/// The tags of the tagged pages this layer found, by page key (as made).
#[derive(Debug, Default)]
pub(crate) struct TagHints {
    hints: Mutex<HashMap<Box<str>, Hint, foldhash::fast::RandomState>>,
}

impl TagHints {
    /// The tags the page under `key` had when last found.
    pub(crate) fn get(&self, key: &str) -> Option<Hint> {
        self.lock().get(key).cloned()
    }

    /// Notes the tags of the page found under `key` (made with the cache's
    /// key function by `made`), whose hint, if `noted`, named others;
    /// forgets the page when it has none.
    pub(crate) fn note(
        &self,
        key: &str,
        tags: &[TagVersion],
        noted: bool,
        made: impl Fn(&str) -> Option<String>,
    ) {
        if tags.is_empty() {
            if noted {
                self.lock().remove(key);
            }
            return;
        }
        let Some(hint) = tags
            .iter()
            .map(|tag| Some((tag.key.clone(), made(&tag.key)?)))
            .collect::<Option<Hint>>()
        else {
            return;
        };
        let mut hints = self.lock();
        if hints.len() >= MOST_HINTS && !hints.contains_key(key) {
            // Any one: a hint saves a round trip, its loss costs one.
            if let Some(other) = hints.keys().next().cloned() {
                hints.remove(&other);
            }
        }
        hints.insert(key.into(), hint);
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<Box<str>, Hint, foldhash::fast::RandomState>> {
        self.hints.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Whether `hint` names exactly `tags`, in order.
pub(crate) fn same_tags(hint: &Hint, tags: &[TagVersion]) -> bool {
    hint.len() == tags.len() && hint.iter().zip(tags).all(|((key, _), tag)| *key == tag.key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn tags(names: &[&str]) -> Vec<TagVersion> {
        names
            .iter()
            .map(|name| TagVersion {
                key: (*name).to_owned(),
                version: Bytes::from_static(b"1"),
            })
            .collect()
    }

    fn made(key: &str) -> Option<String> {
        Some(format!(":1:{key}"))
    }

    #[test]
    fn hints_are_noted_replaced_and_forgotten() {
        let hints = TagHints::default();
        assert!(hints.get("page").is_none());
        hints.note("page", &tags(&["a", "b"]), false, made);
        let hint = hints.get("page").unwrap();
        assert_eq!(
            &hint[..],
            &[
                ("a".to_owned(), ":1:a".to_owned()),
                ("b".to_owned(), ":1:b".to_owned())
            ]
        );
        assert!(same_tags(&hint, &tags(&["a", "b"])));
        assert!(!same_tags(&hint, &tags(&["b", "a"])));
        assert!(!same_tags(&hint, &tags(&["a"])));
        hints.note("page", &tags(&["c"]), true, made);
        assert!(same_tags(&hints.get("page").unwrap(), &tags(&["c"])));
        hints.note("page", &[], true, made);
        assert!(hints.get("page").is_none());
        // A key the cache cannot make: nothing noted.
        hints.note("page", &tags(&["a"]), false, |_| None);
        assert!(hints.get("page").is_none());
    }

    #[test]
    fn hints_are_bounded() {
        let hints = TagHints::default();
        for page in 0..MOST_HINTS + 10 {
            hints.note(&page.to_string(), &tags(&["a"]), false, made);
        }
        assert_eq!(hints.lock().len(), MOST_HINTS);
    }
}
