//! Byte ranges served from a stored complete response (RFC 9110 section
//! 14), under the RFC 9111 policy: a request for one satisfiable range of
//! a stored `200` gets a `206 Partial Content` with that slice of the
//! stored body (no copy). Anything else (several ranges, another unit, a
//! range past the end, `If-Range`) gets the whole `200`, which a recipient
//! of `Range` may always send. Partial responses from the origin are
//! passed through, never stored.
//!
//! ```
//! use http::{HeaderMap, HeaderValue, header::RANGE};
//! use tower_cache::http::range::single_range;
//!
//! let mut request = HeaderMap::new();
//! request.insert(RANGE, HeaderValue::from_static("bytes=2-4"));
//! assert_eq!(single_range(&request, 10), Some(2..5));
//! request.insert(RANGE, HeaderValue::from_static("bytes=-3"));
//! assert_eq!(single_range(&request, 10), Some(7..10));
//! request.insert(RANGE, HeaderValue::from_static("bytes=0-1, 4-5"));
//! assert_eq!(single_range(&request, 10), None);
//! ```

use std::ops::Range;

use http::header::{IF_RANGE, RANGE};
use http::{HeaderMap, HeaderValue};

/// The one byte range `request` asks of a body `len` bytes long, clamped to
/// it; `None` when the whole body is to be sent instead.
pub fn single_range(request: &HeaderMap, len: u64) -> Option<Range<u64>> {
    if request.contains_key(IF_RANGE) {
        return None;
    }
    let mut lines = request.get_all(RANGE).iter();
    let value = lines.next()?.to_str().ok()?;
    if lines.next().is_some() {
        return None;
    }
    let (unit, spec) = value.trim().split_once('=')?;
    if !unit.trim().eq_ignore_ascii_case("bytes") || spec.contains(',') {
        return None;
    }
    let (first, last) = spec.trim().split_once('-')?;
    let number = |text: &str| {
        let text = text.trim();
        (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
            .then(|| text.parse::<u64>().ok())
            .flatten()
    };
    let range = if first.trim().is_empty() {
        // The last `n` bytes.
        let n = number(last)?.min(len);
        (len - n)..len
    } else {
        let start = number(first)?;
        let end = if last.trim().is_empty() {
            len
        } else {
            number(last)?.saturating_add(1).min(len)
        };
        start..end
    };
    (range.start < range.end).then_some(range)
}

/// The `Content-Range` of `range` of a body `len` bytes long.
pub fn content_range(range: &Range<u64>, len: u64) -> HeaderValue {
    let text = format!("bytes {}-{}/{len}", range.start, range.end - 1);
    HeaderValue::try_from(text).expect("digits and ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(value: &'static str, len: u64) -> Option<Range<u64>> {
        let mut request = HeaderMap::new();
        request.insert(RANGE, HeaderValue::from_static(value));
        single_range(&request, len)
    }

    #[test]
    fn one_satisfiable_byte_range_only() {
        assert_eq!(range("bytes=0-1", 10), Some(0..2));
        assert_eq!(range("bytes=5-", 10), Some(5..10));
        assert_eq!(range("bytes=5-99", 10), Some(5..10));
        assert_eq!(range("bytes=-99", 10), Some(0..10));
        assert_eq!(range("BYTES = 1-1", 10), Some(1..2));
        for whole in [
            "bytes=10-",
            "bytes=-0",
            "bytes=4-2",
            "bytes=a-b",
            "items=0-1",
            "bytes=0-1,3-4",
            "bytes=-",
            "bytes=1",
            "bytes=+1-2",
        ] {
            assert_eq!(range(whole, 10), None, "{whole}");
        }
        assert_eq!(range("bytes=0-0", 0), None);
    }

    #[test]
    fn if_range_or_two_lines_get_the_whole_body() {
        let mut request = HeaderMap::new();
        request.insert(RANGE, HeaderValue::from_static("bytes=0-1"));
        request.insert(IF_RANGE, HeaderValue::from_static("\"a\""));
        assert_eq!(single_range(&request, 10), None);
        request.remove(IF_RANGE);
        request.append(RANGE, HeaderValue::from_static("bytes=2-3"));
        assert_eq!(single_range(&request, 10), None);
        assert_eq!(content_range(&(2..5), 10), "bytes 2-4/10");
    }
}
