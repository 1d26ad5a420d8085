//! Revalidation under the RFC 9111 policy: a stale entry with a validator
//! is asked about with a conditional request (the lookup makes it), and a
//! `304 Not Modified` freshens it (section 4.3.4): the stored headers are
//! updated from the 304's (section 3.2), the entry is stored again with its
//! new freshness, and the request is answered from it. A `200` replaces it
//! as any miss does.

use std::sync::Arc;

use http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_RANGE, ETAG};
use http::{HeaderMap, HeaderName, Response};

use super::TARGET;
use super::body::CacheBody;
use super::lookup::Snapshot;
use super::outcome::{Outcome, Store};
use super::serve::{Serving, hit_response};
use super::store::{Tags, share_and_store};
use crate::http::policy::BodySize;
use crate::http::rfc9111::Exchange;
use crate::http::stored::{StoredResponse, is_stored_header};

/// The fields a 304 never updates: those the stored body depends on
/// (its length, coding, range, digest and tag).
fn is_kept_from_the_entry(name: &HeaderName) -> bool {
    name == CONTENT_LENGTH
        || name == CONTENT_ENCODING
        || name == CONTENT_RANGE
        || name == ETAG
        || name.as_str() == "content-md5"
}

/// The stored headers updated from a 304's (RFC 9111 section 3.2): each
/// field the 304 carries replaces the stored one, except the hop-by-hop
/// ones and [those the body depends on](is_kept_from_the_entry).
pub(crate) fn updated_headers(mut stored: HeaderMap, not_modified: &HeaderMap) -> HeaderMap {
    for name in not_modified.keys() {
        if is_kept_from_the_entry(name) || !is_stored_header(name) {
            continue;
        }
        stored.remove(name);
        for value in not_modified.get_all(name) {
            stored.append(name.clone(), value.clone());
        }
    }
    stored
}

/// Answers the request `snapshot` revalidated `entry` for with the entry,
/// freshened by the inner service's `304` (`not_modified`), and stores it
/// again when the updated headers still allow it.
pub(crate) fn freshen<B, ResB>(
    snapshot: &Arc<Snapshot>,
    entry: StoredResponse,
    not_modified: Response<ResB>,
) -> Response<CacheBody<B>> {
    let settings = &snapshot.settings;
    let now = settings.clock.now();
    let mut headers = updated_headers(entry.headers.clone(), not_modified.headers());
    let exchange = Exchange {
        authorized: snapshot.authorized,
        request_time: snapshot.request_time,
        response_time: now,
    };
    let size = entry.body.len() as u64;
    let body = BodySize {
        lower: size,
        upper: Some(size),
    };
    let decided = settings
        .policy
        .decide_exchange(&exchange, entry.status, &headers, body);
    let mut outcome = Outcome {
        origin_status: Some(not_modified.status()),
        ..Outcome::answered(snapshot.answer)
    };
    let times = match &decided {
        Ok(storage) => super::store::freshness(settings, storage, storage.timeout, &headers, now),
        Err(_) => entry.times,
    };
    if let Some(rules) = settings.policy.rfc9111_rules() {
        super::store::keep_rfc9111_headers(rules, &mut headers);
    }
    let freshened = StoredResponse {
        headers,
        times,
        ..entry
    };
    match decided {
        Ok(storage) if !snapshot.directives.is_some_and(|d| d.no_store) => {
            outcome.store = Some(Store::Stored(storage.timeout));
            let store = share_and_store(
                snapshot.clone(),
                freshened.clone(),
                Tags::Versions(freshened.tags.to_vec()),
                storage.keep_stale,
            );
            // Stored at once when the backend answers at once (memory), so
            // that the next request finds it; else in a task of its own.
            let mut store = store;
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            if store.as_mut().poll(&mut cx).is_pending() {
                super::spawn_or_skip("store a revalidated response", store);
            }
        }
        Ok(_) => {}
        Err(bypass) => {
            tracing::debug!(target: TARGET, url = %snapshot.url, reason = %bypass,
                "revalidated response not stored");
            outcome.store = Some(Store::NotStored(bypass));
            if let Some(leader) = snapshot.take_leader() {
                leader.publish(None);
            }
        }
    }
    // The miss was counted when the lookup made the conditional request.
    tracing::debug!(target: TARGET, url = %snapshot.url, %outcome, "cache revalidated");
    let serving = Serving::new(settings, &snapshot.method, &snapshot.headers, now);
    hit_response(freshened, &serving, outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn a_304_updates_all_but_what_the_body_depends_on() {
        let stored = headers(&[
            ("etag", "\"a\""),
            ("content-type", "text/plain"),
            ("content-encoding", "gzip"),
            ("x-kept", "1"),
            ("set-cookie", "a=1"),
            ("set-cookie", "b=2"),
        ]);
        let not_modified = headers(&[
            ("etag", "\"b\""),
            ("content-type", "text/html"),
            ("content-encoding", "br"),
            ("content-length", "99"),
            ("set-cookie", "c=3"),
            ("connection", "close"),
        ]);
        let updated = updated_headers(stored, &not_modified);
        assert_eq!(updated["etag"], "\"a\"");
        assert_eq!(updated["content-type"], "text/html");
        assert_eq!(updated["content-encoding"], "gzip");
        assert_eq!(updated["x-kept"], "1");
        assert_eq!(
            updated.get_all("set-cookie").iter().collect::<Vec<_>>(),
            ["c=3"]
        );
        assert!(!updated.contains_key("content-length"));
        assert!(!updated.contains_key("connection"));
    }
}
