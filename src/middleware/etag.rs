//! The weak `ETag` the layers give a stored page that has none
//! ([`etag`](super::CachePageLayer::etag)), so that its hits can answer
//! `If-None-Match` with a 304.

use http::header::ETAG;
use http::{HeaderMap, Method};

use super::lookup::Snapshot;
use crate::http::conditional::weak_etag;

/// The headers to store with `body`, the page `snapshot`'s request
/// fetched: as they are, or with a weak ETag of the body when the layer
/// makes them and the response has none. Called once per stored page, when
/// its body has ended: hits only read the tag. Not for the entry of a HEAD
/// request, whose empty body is not the page's.
pub(crate) fn stored_headers(
    snapshot: &Snapshot,
    mut headers: HeaderMap,
    body: &[u8],
) -> HeaderMap {
    if snapshot.settings.etag && snapshot.method != Method::HEAD && !headers.contains_key(ETAG) {
        headers.insert(ETAG, weak_etag(body));
    }
    headers
}
