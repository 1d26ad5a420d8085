//! [`FoundEntry`]: an entry as the lookup found it, as stored or as a copy
//! made ready to serve, which only a response can take.

use std::ops::Deref;
use std::sync::Arc;

use super::decoded::{Added, Decoded, Places};
use crate::http::stored::StoredResponse;

/// An entry the lookup found: the entry as stored, or, when a decoded form
/// of it was kept (in its memo, or by the layer for a remote backend), a
/// copy of the header map that form keeps ready to serve, with its
/// stand-ins (see [`Decoded`]).
///
/// The rules read either through `Deref` (no rule reads a stand-in). What
/// is kept (revalidated, kept for a failing origin, shared with coalesced
/// requests) is [`stored`](FoundEntry::stored); only a response takes
/// [`served`](FoundEntry::served), so a stand-in is never stored or shared.
/// A hit on a remote backend then clones the ready map (about 600
/// instructions) instead of rebuilding the stored one and inserting `Age`
/// and `Cache-Status` into it (about 2,000, and two allocations).
pub(crate) struct FoundEntry {
    entry: StoredResponse,
    /// The decoded form the ready copy was made from, and where the copy
    /// holds what a hit writes; `None` when `entry` is as stored.
    ready: Option<(Arc<Decoded>, Places)>,
}

impl FoundEntry {
    /// The ready copy of `decoded` for a layer whose hits add `added`, or
    /// the entry as stored when its map was made for other hits.
    pub(crate) fn of(decoded: &Arc<Decoded>, added: Added) -> FoundEntry {
        match decoded.ready(added) {
            Some((entry, places)) => FoundEntry {
                entry,
                ready: Some((Arc::clone(decoded), places)),
            },
            None => FoundEntry {
                entry: decoded.stored(),
                ready: None,
            },
        }
    }

    /// A copy of the entry as stored: to keep, share or revalidate.
    pub(crate) fn stored(&self) -> StoredResponse {
        match &self.ready {
            Some((decoded, _)) => decoded.stored(),
            None => self.entry.clone(),
        }
    }

    /// The entry as stored: to keep, share or revalidate.
    pub(crate) fn into_stored(self) -> StoredResponse {
        match self.ready {
            Some((decoded, _)) => decoded.stored(),
            None => self.entry,
        }
    }

    /// The entry and where its headers hold what a hit writes, for
    /// [`hit_response_in`](super::serve::hit_response_in) alone.
    pub(crate) fn served(self) -> (StoredResponse, Places) {
        let places = self.ready.map(|(_, places)| places).unwrap_or_default();
        (self.entry, places)
    }
}

impl Deref for FoundEntry {
    type Target = StoredResponse;

    /// The entry, for the rules to read.
    fn deref(&self) -> &StoredResponse {
        &self.entry
    }
}
