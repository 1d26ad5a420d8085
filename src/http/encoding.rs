//! `Accept-Encoding` in page keys: the hundreds of ways browsers spell it
//! bucketed into the one content coding each client prefers.
//!
//! A page that varies on `Accept-Encoding` (every page a compression layer
//! touches) is keyed, in Django, by the request's value as sent, so
//! `gzip, deflate, br, zstd` and `br, gzip, deflate` make two entries of the
//! same bytes. Bucketed ([`AcceptEncodingKey::Preferred`], the default), the
//! key holds only the coding the client prefers among those compression
//! layers produce (`zstd`, `br`, `gzip`, `deflate`, `identity`), ranked by
//! q-value and, on a tie, in that order (tower-http's `CompressionLayer`
//! order): a handful of entries per page, whatever the browsers send. A
//! request that sends exactly one coding (`gzip`) gets Django's key.
//!
//! Two clients in one bucket may still be answered in different codings (an
//! origin without `zstd` answers `gzip, zstd` with gzip and `deflate, zstd`
//! with deflate), so a hit is served only when the client accepts the
//! entry's `Content-Encoding` ([`accepts_coding`]); otherwise it is a miss.
//!
//! ```
//! use http::{HeaderMap, HeaderValue, header::ACCEPT_ENCODING};
//! use tower_cache::http::encoding::{accepts_coding, preferred_coding};
//!
//! let mut request = HeaderMap::new();
//! request.insert(ACCEPT_ENCODING, HeaderValue::from_static("gzip, deflate, br"));
//! assert_eq!(preferred_coding(&request), Some("br"));
//! assert!(accepts_coding(&request, "gzip"));
//! assert!(!accepts_coding(&request, "zstd"));
//!
//! request.insert(ACCEPT_ENCODING, HeaderValue::from_static("br;q=0.5, gzip;q=0.8"));
//! assert_eq!(preferred_coding(&request), Some("gzip"));
//! ```

use http::HeaderMap;
use http::header::ACCEPT_ENCODING;

/// How a request's `Accept-Encoding` goes into the key of a page that varies
/// on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum AcceptEncodingKey {
    /// The coding the client prefers ([`preferred_coding`]), and a hit only
    /// for a client that accepts the entry's coding. The default.
    #[default]
    Preferred,
    /// The value as sent, as Django keys it: one entry per spelling.
    AsSent,
}

/// The codings a compression layer produces, most preferred first on a tie
/// of q-values.
const CODINGS: [&str; 5] = ["zstd", "br", "gzip", "deflate", "identity"];

/// What the key holds for a client that accepts none of [`CODINGS`].
const NONE_ACCEPTABLE: &str = "none";

/// The q-value of each of [`CODINGS`] for this request, in thousandths,
/// per RFC 9110 section 12.5.3: a listed coding has its own q, an unlisted
/// one the `*` q (none without `*`), and `identity` is acceptable unless
/// excluded. `None` when the request has no `Accept-Encoding`.
fn qvalues(request: &HeaderMap) -> Option<[u16; 5]> {
    let mut values = request.get_all(ACCEPT_ENCODING).iter().peekable();
    values.peek()?;
    let mut listed: [Option<u16>; 5] = [None; 5];
    let mut star: Option<u16> = None;
    for part in values.flat_map(|value| value.as_bytes().split(|&b| b == b',')) {
        let mut pieces = part.split(|&b| b == b';');
        let name = trim(pieces.next().unwrap_or_default());
        if name.is_empty() {
            continue;
        }
        // A part whose q cannot be read counts as not listed.
        let Some(q) = pieces.next().map_or(Some(1000), parse_q) else {
            continue;
        };
        if name == b"*" {
            star = Some(q);
        } else if let Some(i) = CODINGS
            .iter()
            .position(|c| name.eq_ignore_ascii_case(c.as_bytes()))
            .or_else(|| name.eq_ignore_ascii_case(b"x-gzip").then_some(2))
        {
            listed[i] = Some(q);
        }
    }
    let mut q = [0; 5];
    for (i, coding) in CODINGS.iter().enumerate() {
        q[i] = match (listed[i], star) {
            (Some(q), _) | (None, Some(q)) => q,
            (None, None) if *coding == "identity" => 1,
            (None, None) => 0,
        };
    }
    Some(q)
}

fn trim(bytes: &[u8]) -> &[u8] {
    bytes.trim_ascii()
}

/// `q=0.5` as 500; `None` for anything that is not a valid weight.
fn parse_q(param: &[u8]) -> Option<u16> {
    let param = trim(param);
    let value = param
        .strip_prefix(b"q=")
        .or_else(|| param.strip_prefix(b"Q="))?;
    let (int, frac) = match value.iter().position(|&b| b == b'.') {
        Some(dot) => (&value[..dot], &value[dot + 1..]),
        None => (value, &b""[..]),
    };
    if frac.len() > 3 || !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut thousandths: u16 = 0;
    for i in 0..3 {
        thousandths = thousandths * 10 + frac.get(i).map_or(0, |d| u16::from(d - b'0'));
    }
    match int {
        b"0" => Some(thousandths),
        b"1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// The coding this request prefers among `zstd`, `br`, `gzip`, `deflate`
/// and `identity` (highest q-value, ties in that order); `"none"` when it
/// accepts none of them, `None` when it has no `Accept-Encoding`.
pub fn preferred_coding(request: &HeaderMap) -> Option<&'static str> {
    let q = qvalues(request)?;
    let best = (0..CODINGS.len())
        .filter(|&i| q[i] > 0)
        // max_by_key keeps the last maximum: walk from least preferred.
        .rev()
        .max_by_key(|&i| q[i]);
    Some(best.map_or(NONE_ACCEPTABLE, |i| CODINGS[i]))
}

/// Whether this request accepts a response in `content_encoding` (a
/// `Content-Encoding` value; several codings, comma-separated, must all be
/// accepted). Without `Accept-Encoding`, every coding is acceptable (RFC 9110
/// section 12.5.3); a coding this module does not know is accepted only
/// when the client names it or sends `*`.
pub fn accepts_coding(request: &HeaderMap, content_encoding: &str) -> bool {
    let Some(q) = qvalues(request) else {
        return true;
    };
    content_encoding
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .all(
            |coding| match CODINGS.iter().position(|c| coding.eq_ignore_ascii_case(c)) {
                Some(i) => q[i] > 0,
                None => names_unknown(request, coding),
            },
        )
}

/// Whether `Accept-Encoding` names `coding` (or `*`) with a q above zero.
fn names_unknown(request: &HeaderMap, coding: &str) -> bool {
    request
        .get_all(ACCEPT_ENCODING)
        .iter()
        .flat_map(|value| value.as_bytes().split(|&b| b == b','))
        .any(|part| {
            let mut pieces = part.split(|&b| b == b';');
            let name = trim(pieces.next().unwrap_or_default());
            let q = pieces.next().map_or(Some(1000), parse_q);
            (name == b"*" || name.eq_ignore_ascii_case(coding.as_bytes()))
                && q.is_some_and(|q| q > 0)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn request(value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT_ENCODING, HeaderValue::from_static(value));
        headers
    }

    #[test]
    fn browsers_fall_into_a_few_buckets() {
        let cases = [
            ("gzip, deflate, br, zstd", "zstd"), // Chrome, Firefox
            ("gzip, deflate, br", "br"),         // Safari
            ("br, gzip, deflate", "br"),
            ("deflate, gzip", "gzip"),
            ("gzip", "gzip"),
            ("x-gzip", "gzip"),
            ("GZIP", "gzip"),
            ("gzip;q=1.0, identity; q=0.5, *;q=0", "gzip"),
            ("br;q=0.5, gzip;q=0.8", "gzip"),
            ("compress", "identity"),
            ("", "identity"),
            ("identity", "identity"),
            ("*", "zstd"),
            ("identity;q=0", "none"),
            ("*;q=0", "none"),
            ("gzip;q=0, identity;q=0", "none"),
            ("gzip;q=2", "identity"), // an invalid weight counts as unlisted
            ("gzip;q=0.0001", "identity"),
        ];
        for (value, bucket) in cases {
            assert_eq!(preferred_coding(&request(value)), Some(bucket), "{value:?}");
        }
        assert_eq!(preferred_coding(&HeaderMap::new()), None);
    }

    #[test]
    fn repeated_headers_are_one_list() {
        let mut headers = request("gzip;q=0.5");
        headers.append(ACCEPT_ENCODING, HeaderValue::from_static("br"));
        assert_eq!(preferred_coding(&headers), Some("br"));
    }

    #[test]
    fn bytes_that_are_not_ascii_do_not_panic() {
        let mut headers = HeaderMap::new();
        headers.insert(
            ACCEPT_ENCODING,
            HeaderValue::from_bytes(b"gz\xe9ip, br;q=0.\xff, gzip").unwrap(),
        );
        assert_eq!(preferred_coding(&headers), Some("gzip"));
        assert!(!accepts_coding(&headers, "br"));
    }

    #[test]
    fn acceptance() {
        assert!(accepts_coding(&HeaderMap::new(), "br"));
        assert!(accepts_coding(&request("gzip"), "gzip"));
        assert!(accepts_coding(&request("gzip"), "identity"));
        assert!(!accepts_coding(&request("gzip"), "br"));
        assert!(!accepts_coding(&request("gzip;q=0"), "gzip"));
        assert!(accepts_coding(&request("*"), "br"));
        assert!(!accepts_coding(&request("*;q=0, gzip"), "br"));
        assert!(accepts_coding(&request("gzip, br"), "gzip, br"));
        assert!(!accepts_coding(&request("gzip"), "gzip, br"));
        assert!(accepts_coding(&request("compress"), "compress"));
        assert!(!accepts_coding(&request("gzip"), "compress"));
        assert!(!accepts_coding(&request("identity;q=0"), "identity"));
    }
}
