//! [`Decoded`]: a page entry decoded once and kept in its
//! [`Memo`](crate::Memo), with the header map its hits serve made ready to
//! clone.

use http::header::{AGE, CACHE_STATUS, CONTENT_LENGTH};
use http::{HeaderMap, HeaderName, HeaderValue};

use super::settings::Settings;
use super::tag_check::TagCheck;
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
/// the map kept is made ready to clone: a stand-in for each header a hit
/// adds that the stored response lacks, first, then the stored headers,
/// and the body's `Content-Length`, which the server would add last; the
/// hit replaces the stand-ins in place. (A response that is not the whole body, a range or a `304`,
/// sets or drops its `Content-Length`.) It is the only map kept, so a
/// decoded page costs no more memory than before: the rules read it as
/// they read the stored headers (a stand-in `Age` of 0 is no `Age`, and no
/// rule reads `Cache-Status` or a stored `Content-Length`, which is never
/// stored).
pub(crate) struct Decoded {
    /// The stored response, its headers made ready to serve.
    pub(crate) entry: StoredResponse,
    /// What the hits the map was made for add.
    added: Added,
    /// Which stand-ins the map holds (`Content-Length` always is one).
    age_stand_in: bool,
    /// Where the map holds what a hit writes (a `Cache-Status` it holds
    /// there is a stand-in).
    places: Places,
    /// When its tags were last found unchanged.
    pub(crate) tag_check: TagCheck,
}

/// Where a map made ready to serve holds the values a hit writes, by
/// their places in its order (as [`HeaderMap::iter`] gives them), so that
/// the hit writes them in place without hashing their names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Places {
    /// `Age`, when the map holds one value of it: a stand-in, or the one
    /// stored with the page (which the hit's replaces).
    pub(crate) age: Option<usize>,
    /// The stand-in for the layer's `Cache-Status` member, when the map has
    /// no other `Cache-Status` (else the member is appended).
    pub(crate) status: Option<usize>,
}

/// Sets `name` to `value` alone in `headers`: in place at `place`, when
/// the value there is `name`'s (a ready map's, see [`Places`]), else by
/// name.
pub(crate) fn put(
    headers: &mut HeaderMap,
    place: Option<usize>,
    name: HeaderName,
    value: HeaderValue,
) {
    if let Some((held, slot)) = place.and_then(|place| headers.iter_mut().nth(place))
        && *held == name
    {
        *slot = value;
        return;
    }
    headers.insert(name, value);
}

/// The stand-in value of a header a hit sets: never served, as the hit
/// replaces it.
static STAND_IN: HeaderValue = HeaderValue::from_static("0");

impl Decoded {
    /// A copy of the decoded `entry`, its map made ready for hits that add
    /// `added` (the caller keeps `entry` to serve as stored).
    pub(crate) fn new(entry: &StoredResponse, added: Added) -> Decoded {
        // A clone keeps the index's room but not the entries': room for one
        // more header than the stand-ins, as every insert, even one that
        // replaces a value, first makes sure that the index has room for a
        // new header (and would grow a full one, on every hit).
        let mut served = HeaderMap::with_capacity(entry.headers.len() + 4);
        // The stand-ins first: a hit finds them in the first places it
        // walks to (a walk costs about 20 instructions a place).
        let age_stand_in = added.age && !entry.headers.contains_key(AGE);
        if age_stand_in {
            served.insert(AGE, STAND_IN.clone());
        }
        let status_stand_in = added.status && !entry.headers.contains_key(CACHE_STATUS);
        if status_stand_in {
            served.insert(CACHE_STATUS, STAND_IN.clone());
        }
        for (name, value) in &entry.headers {
            served.append(name.clone(), value.clone());
        }
        // What the server would add last (axum does, from the body's exact
        // size): the stored body's length, which a whole response keeps.
        served.insert(CONTENT_LENGTH, HeaderValue::from(entry.body.len()));
        let place_of = |name: &HeaderName| {
            let mut held = served.iter().enumerate().filter(|(_, (n, _))| *n == name);
            match (held.next(), held.next()) {
                (Some((place, _)), None) => Some(place),
                _ => None,
            }
        };
        let places = Places {
            age: place_of(&AGE),
            status: status_stand_in.then(|| place_of(&CACHE_STATUS)).flatten(),
        };
        Decoded {
            // Kept as a clone: its entries take no spare room (its index,
            // copied whole, keeps what the inserts above need).
            entry: copy_with(entry, served.clone()),
            added,
            age_stand_in,
            places,
            tag_check: TagCheck::new(),
        }
    }

    /// A copy of the entry for a hit served at once by a layer whose hits
    /// add `added`, with the ready map's clone and where it holds what the
    /// hit writes (its `Cache-Status` there is a stand-in for the hit's
    /// member, to replace, not append to); `None` when the map was made for
    /// other hits. The copy must go straight to
    /// [`hit_response_in`](super::serve::hit_response_in): its stand-ins are
    /// not headers to store, revalidate or share.
    pub(crate) fn ready(&self, added: Added) -> Option<(StoredResponse, Places)> {
        (added == self.added).then(|| {
            let entry = &self.entry;
            (copy_with(entry, entry.headers.clone()), self.places)
        })
    }

    /// A copy of the entry as stored (the ready map without its stand-ins),
    /// for any use.
    pub(crate) fn stored(&self) -> StoredResponse {
        copy_with(&self.entry, self.stored_headers())
    }

    /// The headers as stored: the ready map without its stand-ins.
    fn stored_headers(&self) -> HeaderMap {
        let ready = &self.entry.headers;
        let mut headers = HeaderMap::with_capacity(ready.len() + 2);
        for (name, value) in ready {
            let stand_in = name == CONTENT_LENGTH
                || (self.age_stand_in && name == AGE)
                || (self.places.status.is_some() && name == CACHE_STATUS);
            if !stand_in {
                headers.append(name.clone(), value.clone());
            }
        }
        headers
    }
}

/// `entry` with `headers` (its body and tags shared, not copied).
fn copy_with(entry: &StoredResponse, headers: HeaderMap) -> StoredResponse {
    StoredResponse {
        status: entry.status,
        headers,
        body: entry.body.clone(),
        times: entry.times,
        tags: entry.tags.clone(),
        url_generation: entry.url_generation,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::stored::Freshness;
    use http::StatusCode;

    #[test]
    fn the_ready_map_adds_stand_ins_and_the_stored_headers_have_none() {
        let mut stored = HeaderMap::new();
        stored.insert("content-type", HeaderValue::from_static("text/plain"));
        stored.append(CACHE_STATUS, HeaderValue::from_static("upstream; hit"));
        stored.append(CACHE_STATUS, HeaderValue::from_static("edge; fwd=miss"));
        let entry = StoredResponse::decode(
            StoredResponse::encode(StatusCode::OK, &stored, b"body", &Freshness::default())
                .unwrap(),
        )
        .unwrap();
        let both = Added {
            age: true,
            status: true,
        };
        let decoded = Decoded::new(&entry, both);
        let lines = |map: &HeaderMap| -> Vec<String> {
            map.iter()
                .map(|(n, v)| format!("{n}: {}", v.to_str().unwrap()))
                .collect()
        };
        // Upstream's Cache-Status is kept, so the hit's member is appended;
        // the stand-in for Age comes first.
        let (ready, places) = decoded.ready(both).unwrap();
        assert_eq!(
            places,
            Places {
                age: Some(0),
                status: None
            }
        );
        assert_eq!(
            lines(&ready.headers),
            [
                "age: 0",
                "content-type: text/plain",
                "cache-status: upstream; hit",
                "cache-status: edge; fwd=miss",
                "content-length: 4",
            ]
        );
        let neither = Added {
            age: false,
            status: false,
        };
        assert!(decoded.ready(neither).is_none());
        assert_eq!(
            lines(&decoded.stored().headers),
            [
                "content-type: text/plain",
                "cache-status: upstream; hit",
                "cache-status: edge; fwd=miss",
            ]
        );
    }
}
