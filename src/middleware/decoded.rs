//! [`Decoded`]: a page entry decoded once and kept in its
//! [`Memo`](crate::Memo), with the header map its hits serve made ready to
//! clone.

use http::header::{AGE, CACHE_STATUS, CONTENT_LENGTH};
use http::{HeaderMap, HeaderValue};

use super::settings::Settings;
use crate::http::stored::{Freshness, StoredResponse};

/// What a hit adds to the stored headers: `Age`, and the layer's
/// `Cache-Status` member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Added {
    pub(crate) age: bool,
    pub(crate) status: bool,
}

impl Added {
    /// What a hit on an entry with `times` adds in the layer of `settings`:
    /// `Age` always under RFC 9111, under Django's policy when the entry
    /// has a base to count it from; `Cache-Status` when the layer sends it.
    pub(crate) fn by(settings: &Settings, times: &Freshness) -> Added {
        Added {
            age: settings.policy.rfc9111_rules().is_some() || times.age_base.is_some(),
            status: settings.cache_status.is_some(),
        }
    }
}

/// A page entry's decoded form, kept in the entry's memo by the first hit
/// that decodes it.
///
/// Every later hit copies the header map to serve it. A clone of a map
/// copies its hash index and entries without hashing a name again, but has
/// no room to grow: the first header the hit adds would reallocate it. So
/// the map kept to clone already holds the headers a hit adds, with a
/// stand-in value where the stored response has none, in the places they
/// would be added (last), and the body's `Content-Length`, which the
/// server would add after them: the hit replaces the stand-ins in place.
/// (A response that is not the whole body, a range or a `304`, sets or
/// drops its `Content-Length`.)
pub(crate) struct Decoded {
    pub(crate) entry: StoredResponse,
    /// `entry`'s headers with stand-ins for what `added` names.
    served: HeaderMap,
    added: Added,
    /// Whether `served` has a stand-in `Cache-Status` (the stored response
    /// has none), which the hit's member replaces.
    status_stand_in: bool,
}

/// The stand-in value of a header a hit sets: never served, as the hit
/// replaces it.
static STAND_IN: HeaderValue = HeaderValue::from_static("0");

impl Decoded {
    /// The decoded `entry`, with the map to clone for hits that add
    /// `added`.
    pub(crate) fn new(entry: StoredResponse, added: Added) -> Decoded {
        // A clone keeps the index's room but not the entries': room for one
        // more header than the stand-ins, as every insert, even one that
        // replaces a value, first makes sure that the index has room for a
        // new header (and would grow a full one, on every hit).
        let mut served = HeaderMap::with_capacity(entry.headers.len() + 4);
        for (name, value) in &entry.headers {
            served.append(name.clone(), value.clone());
        }
        if added.age && !served.contains_key(AGE) {
            served.insert(AGE, STAND_IN.clone());
        }
        let status_stand_in = added.status && !served.contains_key(CACHE_STATUS);
        if status_stand_in {
            served.insert(CACHE_STATUS, STAND_IN.clone());
        }
        // What the server would add last (axum does, from the body's exact
        // size): the stored body's length, which a whole response keeps.
        served.insert(CONTENT_LENGTH, HeaderValue::from(entry.body.len()));
        Decoded {
            entry,
            served,
            added,
            status_stand_in,
        }
    }

    /// A copy of the entry to serve from a layer whose hits add `added`,
    /// and whether its `Cache-Status` is a stand-in for the hit's member
    /// (to insert, not append). The copy's map is a clone of the ready one
    /// when `added` is what it was made for; otherwise it is made with room
    /// for what the hit adds.
    pub(crate) fn to_serve(&self, added: Added) -> (StoredResponse, bool) {
        let entry = &self.entry;
        let (headers, status_stand_in) = if added == self.added {
            (self.served.clone(), self.status_stand_in)
        } else {
            let mut headers = HeaderMap::with_capacity(entry.headers.len() + 2);
            for (name, value) in &entry.headers {
                headers.append(name.clone(), value.clone());
            }
            (headers, false)
        };
        let copy = StoredResponse {
            status: entry.status,
            headers,
            body: entry.body.clone(),
            times: entry.times,
            tags: entry.tags.clone(),
            url_generation: entry.url_generation,
        };
        (copy, status_stand_in)
    }
}
