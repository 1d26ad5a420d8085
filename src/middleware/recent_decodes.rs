//! [`RecentDecodes`]: the pages a layer decoded from a backend that keeps
//! no [`Memo`](crate::Memo) (Redis, memcached, the databases, files), each
//! with the bytes it was decoded from, so that a hit whose read returns the
//! same bytes takes the decoded form instead of parsing them again.
//!
//! Every hit still reads the backend: only the parse is saved, and only
//! when the bytes read are byte for byte those decoded before, so what is
//! served is exactly what parsing them would give, and a page stored again
//! (by any instance) is decoded anew. The table is bounded in bytes (the
//! entries it keeps alive and their decoded heads): past the bound it starts
//! again, empty.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use bytes::Bytes;

use super::decoded::Decoded;
use crate::http::stored::decoded_head_size;

/// The most bytes kept per layer: entries, their decoded heads and keys.
const MOST_BYTES: usize = 8 * 1024 * 1024;

/// The largest entry kept: a bigger page costs its read far more than its
/// parse, and would take a large share of the bound.
const LARGEST_ENTRY: usize = 256 * 1024;

type Table = HashMap<Box<str>, Recent, foldhash::fast::RandomState>;

struct Recent {
    /// The bytes `decoded` was decoded from.
    entry: Bytes,
    decoded: Arc<Decoded>,
    /// What it counts for against [`MOST_BYTES`].
    bytes: usize,
}

/// The pages a layer decoded from a backend without memos, by made key.
#[derive(Default)]
pub(crate) struct RecentDecodes {
    table: RwLock<(Table, usize)>,
}

impl Clone for RecentDecodes {
    /// An empty table: a layer configured anew decodes its own.
    fn clone(&self) -> RecentDecodes {
        RecentDecodes::default()
    }
}

impl std::fmt::Debug for RecentDecodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let table = self.table.read().unwrap_or_else(|e| e.into_inner());
        f.debug_struct("RecentDecodes")
            .field("pages", &table.0.len())
            .field("bytes", &table.1)
            .finish()
    }
}

impl RecentDecodes {
    /// The decoded form of the entry under `key`, if the bytes it was
    /// decoded from are `entry`.
    pub(crate) fn get(&self, key: &str, entry: &Bytes) -> Option<Arc<Decoded>> {
        let table = self.table.read().unwrap_or_else(|e| e.into_inner());
        let recent = table.0.get(key)?;
        (recent.entry == *entry).then(|| recent.decoded.clone())
    }

    /// Keeps `decoded`, the form of `entry` read under `key`, for the next
    /// hits (unless `entry` is too large to keep).
    pub(crate) fn note(&self, key: &str, entry: Bytes, decoded: Arc<Decoded>) {
        if entry.len() > LARGEST_ENTRY {
            return;
        }
        // The entry, and the decoded head (its one header map, the one
        // kept ready to serve).
        let bytes = key.len() + entry.len() + decoded_head_size(&entry);
        let mut table = self.table.write().unwrap_or_else(|e| e.into_inner());
        let (pages, kept) = &mut *table;
        if let Some(old) = pages.remove(key) {
            *kept -= old.bytes;
        }
        if *kept + bytes > MOST_BYTES {
            pages.clear();
            *kept = 0;
        }
        pages.insert(
            key.into(),
            Recent {
                entry,
                decoded,
                bytes,
            },
        );
        *kept += bytes;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::stored::{Freshness, StoredResponse};
    use crate::middleware::decoded::Added;

    fn page(body: &str) -> (Bytes, Arc<Decoded>) {
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::CONTENT_TYPE, "text/plain".parse().unwrap());
        let times = Freshness::default();
        let entry = StoredResponse::encode(http::StatusCode::OK, &headers, body.as_bytes(), &times)
            .unwrap();
        let decoded = StoredResponse::decode(entry.clone()).unwrap();
        let added = Added {
            age: true,
            status: false,
        };
        (entry, Arc::new(Decoded::new(&decoded, added)))
    }

    #[test]
    fn a_decode_is_found_for_its_own_bytes_only() {
        let recent = RecentDecodes::default();
        let (entry, decoded) = page("one");
        assert!(recent.get("k", &entry).is_none());
        recent.note("k", entry.clone(), decoded);
        // Equal bytes, another allocation: found.
        let same = Bytes::copy_from_slice(&entry);
        assert_eq!(recent.get("k", &same).unwrap().entry.body, "one");
        assert!(recent.get("other", &entry).is_none());
        let (changed, _) = page("two");
        assert!(recent.get("k", &changed).is_none());
        // A clone of the table (a layer configured anew) has none.
        assert!(recent.clone().get("k", &entry).is_none());
    }

    #[test]
    fn the_table_stays_within_its_bound() {
        let recent = RecentDecodes::default();
        let (big, decoded) = page(&"x".repeat(LARGEST_ENTRY));
        recent.note("big", big.clone(), decoded);
        assert!(recent.get("big", &big).is_none(), "too large to keep");
        let (entry, decoded) = page(&"y".repeat(LARGEST_ENTRY / 2));
        for i in 0..100 {
            recent.note(&format!("k{i}"), entry.clone(), decoded.clone());
            assert!(recent.table.read().unwrap().1 <= MOST_BYTES);
        }
        assert!(recent.get("k99", &entry).is_some());
        assert!(
            recent.get("k0", &entry).is_none(),
            "started again past the bound"
        );
    }
}
