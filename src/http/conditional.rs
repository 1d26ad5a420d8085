//! Conditional requests answered from a stored response: `If-None-Match`
//! and `If-Modified-Since` against its `ETag` and `Last-Modified` (RFC 9110
//! section 13), and the weak ETag the layers can give a stored body.
//!
//! A cache evaluates only these two preconditions: `If-Match` and
//! `If-Unmodified-Since` are the origin's to judge (RFC 9111 section 4.3.2),
//! and a request that carries them is served as it would be without them.
//!
//! ```
//! use http::{HeaderMap, HeaderValue, Method, header};
//! use tower_cache::http::conditional::is_not_modified;
//!
//! let mut stored = HeaderMap::new();
//! stored.insert(header::ETAG, HeaderValue::from_static("\"v2\""));
//! let mut request = HeaderMap::new();
//! request.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"v1\", W/\"v2\""));
//! assert!(is_not_modified(&Method::GET, &request, &stored));
//!
//! request.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"v3\""));
//! assert!(!is_not_modified(&Method::GET, &request, &stored));
//! ```

use std::time::SystemTime;

use http::header::{
    AGE, CACHE_CONTROL, CONTENT_LOCATION, DATE, ETAG, EXPIRES, IF_MODIFIED_SINCE, IF_NONE_MATCH,
    LAST_MODIFIED, VARY,
};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use xxhash_rust::xxh3::xxh3_128;

/// Whether a request with the preconditions in `request` is answered with
/// `304 Not Modified` by a stored response with the headers `stored`,
/// following RFC 9110 section 13.2.2:
///
/// 1. Only GET and HEAD, and only a stored response with an `ETag` or a
///    `Last-Modified`, are ever answered with a 304.
/// 2. With `If-None-Match`, it alone decides (`If-Modified-Since` is then
///    ignored): `*` matches; otherwise any entity tag of its comma list that
///    matches the stored `ETag` by the weak comparison (`W/"x"` matches
///    `"x"`). A field that does not parse is no condition: the response is
///    served whole.
/// 3. Without it, `If-Modified-Since` with one valid HTTP date gives a 304
///    when the stored `Last-Modified` is a valid date no later than it.
///    Anything else (no `Last-Modified`, a date that does not parse, the
///    field given twice) is no condition.
pub fn is_not_modified(method: &Method, request: &HeaderMap, stored: &HeaderMap) -> bool {
    let etag = stored.get(ETAG);
    let last_modified = stored.get(LAST_MODIFIED);
    if etag.is_none() && last_modified.is_none() {
        return false;
    }
    preconditions_fail(method, request, etag, last_modified.and_then(http_date))
}

/// As [`is_not_modified`], for a shared cache under RFC 9111 (section
/// 4.3.2): a stored response without `Last-Modified` answers
/// `If-Modified-Since` by its `Date`, or, without one, by `received`, the
/// time it was stored. An invalid `Last-Modified` or `Date` is still no
/// condition, and `If-None-Match` is compared with the stored `ETag` (only
/// `*` matches a response without one).
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use http::{HeaderMap, HeaderValue, Method, header};
/// use tower_cache::http::conditional::is_not_modified_since_stored;
///
/// let received = UNIX_EPOCH + Duration::from_secs(1_717_236_000); // 1 Jun 2024, 10:00
/// let mut request = HeaderMap::new();
/// request.insert(header::IF_MODIFIED_SINCE, HeaderValue::from_static("Sat, 01 Jun 2024 10:00:00 GMT"));
/// // No validator at all: dated by when it was stored.
/// assert!(is_not_modified_since_stored(&Method::GET, &request, &HeaderMap::new(), received));
/// let later = received + Duration::from_secs(1);
/// assert!(!is_not_modified_since_stored(&Method::GET, &request, &HeaderMap::new(), later));
/// ```
pub fn is_not_modified_since_stored(
    method: &Method,
    request: &HeaderMap,
    stored: &HeaderMap,
    received: SystemTime,
) -> bool {
    let modified = match stored.get(LAST_MODIFIED).or_else(|| stored.get(DATE)) {
        Some(value) => http_date(value),
        None => Some(received),
    };
    preconditions_fail(method, request, stored.get(ETAG), modified)
}

/// RFC 9110 section 13.2.2 for a GET or HEAD: `If-None-Match` alone
/// decides when present; else a single valid `If-Modified-Since` no earlier
/// than `modified`.
fn preconditions_fail(
    method: &Method,
    request: &HeaderMap,
    etag: Option<&HeaderValue>,
    modified: Option<SystemTime>,
) -> bool {
    if method != Method::GET && method != Method::HEAD {
        return false;
    }
    if request.contains_key(IF_NONE_MATCH) {
        return none_match_fails(request, etag);
    }
    match (
        single(request, &IF_MODIFIED_SINCE).and_then(http_date),
        modified,
    ) {
        (Some(since), Some(modified)) => modified <= since,
        _ => false,
    }
}

/// Whether `If-None-Match` (every line of it) names the stored response:
/// the precondition is then false, and the answer a 304.
fn none_match_fails(request: &HeaderMap, etag: Option<&HeaderValue>) -> bool {
    let stored = etag.and_then(|etag| opaque_tag(etag.as_bytes()));
    let mut matched = false;
    for line in request.get_all(IF_NONE_MATCH) {
        let mut rest = line.as_bytes();
        loop {
            rest = trim_start(rest);
            let after = match rest.first() {
                None => break,
                // Empty members are allowed (RFC 9110 section 5.6.1).
                Some(b',') => {
                    rest = &rest[1..];
                    continue;
                }
                Some(b'*') => {
                    matched = true;
                    &rest[1..]
                }
                Some(_) => match entity_tag(rest) {
                    Some((tag, after)) => {
                        matched |= stored == Some(tag);
                        after
                    }
                    // Not a list of entity tags: no condition at all.
                    None => return false,
                },
            };
            // A member ends at a comma or at the end.
            rest = trim_start(after);
            if rest.first().is_some_and(|b| *b != b',') {
                return false;
            }
        }
    }
    matched
}

/// The opaque tag (quotes included) of an `ETag` value, if it is exactly
/// one entity tag.
fn opaque_tag(value: &[u8]) -> Option<&[u8]> {
    match entity_tag(trim_start(value)) {
        Some((tag, rest)) if trim_start(rest).is_empty() => Some(tag),
        _ => None,
    }
}

/// The entity tag at the start of `input` (`"x"` or `W/"x"`): its opaque
/// tag with the quotes, and what follows it. The weak comparison looks only
/// at the opaque tag.
fn entity_tag(input: &[u8]) -> Option<(&[u8], &[u8])> {
    let quoted = input.strip_prefix(b"W/").unwrap_or(input);
    let body = quoted.strip_prefix(b"\"")?;
    // etagc: %x21 / %x23-7E / obs-text; the next DQUOTE ends the tag.
    let end = body.iter().position(|b| *b == b'"')?;
    if body[..end].iter().any(|b| *b < 0x21 || *b == 0x7f) {
        return None;
    }
    Some((&quoted[..end + 2], &body[end + 1..]))
}

fn trim_start(mut input: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = input {
        input = rest;
    }
    input
}

/// The value of a field given exactly once.
fn single<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a HeaderValue> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    values.next().is_none().then_some(first)
}

fn http_date(value: &HeaderValue) -> Option<SystemTime> {
    httpdate::parse_http_date(value.to_str().ok()?.trim()).ok()
}

/// Whether a 304 carries the header `name`: the fields RFC 9110 section
/// 15.4.5 asks for (`Cache-Control`, `Content-Location`, `Date`, `ETag`,
/// `Expires`, `Vary`), `Last-Modified`, which guides cache updates, and the
/// `Age` of the stored response it stands for. Never the body's
/// (`Content-Length`, `Content-Type`, `Content-Encoding`), nor `Set-Cookie`.
pub fn is_not_modified_header(name: &HeaderName) -> bool {
    [
        CACHE_CONTROL,
        CONTENT_LOCATION,
        DATE,
        ETAG,
        EXPIRES,
        VARY,
        LAST_MODIFIED,
        AGE,
    ]
    .contains(name)
}

/// The headers of a 304 that stands for a response with `headers`: those
/// [`is_not_modified_header`] keeps, values moved, not copied.
pub fn not_modified_headers(headers: HeaderMap) -> HeaderMap {
    let mut kept = HeaderMap::with_capacity(8);
    let mut name = None;
    // Iteration names a header at its first value only.
    for (next, value) in headers {
        if next.is_some() {
            name = next;
        }
        if let Some(name) = name.as_ref().filter(|n| is_not_modified_header(n)) {
            kept.append(name.clone(), value);
        }
    }
    kept
}

/// A weak entity tag for `body`: `W/"` and the 32 hex digits of its
/// 128-bit xxh3 hash, `"`. Weak because it says the bytes are the same, not
/// how they were made: two codings of one page get two tags, and a page
/// stored again unchanged keeps its tag.
///
/// ```
/// use tower_cache::http::conditional::weak_etag;
///
/// let tag = weak_etag(b"<p>hello</p>");
/// assert!(tag.to_str().unwrap().starts_with("W/\""));
/// assert_eq!(tag.len(), 2 + 1 + 32 + 1);
/// assert_eq!(tag, weak_etag(b"<p>hello</p>"));
/// assert_ne!(tag, weak_etag(b"<p>hello!</p>"));
/// ```
pub fn weak_etag(body: &[u8]) -> HeaderValue {
    let mut tag = *b"W/\"00000000000000000000000000000000\"";
    crate::hex::encode_into(&xxh3_128(body).to_be_bytes(), &mut tag[3..35]);
    HeaderValue::from_bytes(&tag).expect("W/, quotes and hex digits are a valid header value")
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::{CONTENT_LENGTH, CONTENT_TYPE, SET_COOKIE};

    const MAY: &str = "Sun, 05 May 2024 10:00:00 GMT";
    const JUNE: &str = "Sat, 01 Jun 2024 10:00:00 GMT";
    const JULY: &str = "Mon, 01 Jul 2024 10:00:00 GMT";

    fn headers(pairs: &[(&HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn get(request: &[(&HeaderName, &str)], stored: &[(&HeaderName, &str)]) -> bool {
        is_not_modified(&Method::GET, &headers(request), &headers(stored))
    }

    const TAGGED: &[(&HeaderName, &str)] = &[(&ETAG, "\"abc\""), (&LAST_MODIFIED, JUNE)];

    #[test]
    fn a_shared_cache_dates_a_response_without_last_modified() {
        let june = httpdate::parse_http_date(JUNE).unwrap();
        let since = |stored: &[(&HeaderName, &str)], value: &str, received| {
            let request = headers(&[(&IF_MODIFIED_SINCE, value)]);
            is_not_modified_since_stored(&Method::GET, &request, &headers(stored), received)
        };
        // Last-Modified first, as without a cache.
        assert!(since(TAGGED, JUNE, SystemTime::UNIX_EPOCH));
        assert!(!since(TAGGED, MAY, SystemTime::UNIX_EPOCH));
        // Then Date, whatever the time of receipt.
        assert!(since(&[(&DATE, JUNE)], JUNE, SystemTime::now()));
        assert!(!since(&[(&DATE, JULY)], JUNE, june));
        // Then the time it was received.
        assert!(since(&[], JUNE, june));
        assert!(!since(&[], MAY, june));
        // Unreadable dates are no condition; nor is a POST.
        assert!(!since(&[(&DATE, "soon")], JUNE, june));
        assert!(!since(
            &[(&LAST_MODIFIED, "soon"), (&DATE, MAY)],
            JUNE,
            june
        ));
        let request = headers(&[(&IF_MODIFIED_SINCE, JUNE)]);
        assert!(!is_not_modified_since_stored(
            &Method::POST,
            &request,
            &HeaderMap::new(),
            june
        ));
        // If-None-Match still decides alone.
        let request = headers(&[(&IF_NONE_MATCH, "\"x\""), (&IF_MODIFIED_SINCE, JULY)]);
        assert!(!is_not_modified_since_stored(
            &Method::GET,
            &request,
            &headers(&[(&DATE, JUNE)]),
            june
        ));
        // And the cache without this rule answers none of these.
        assert!(!get(&[(&IF_MODIFIED_SINCE, JULY)], &[(&DATE, JUNE)]));
    }

    #[test]
    fn if_none_match_weak_comparison_lists_and_star() {
        let cases: &[(&str, bool)] = &[
            ("\"abc\"", true),
            ("W/\"abc\"", true),
            ("\"x\", \"abc\"", true),
            ("\"x\",W/\"abc\" ,\"y\"", true),
            ("*", true),
            ("\"abd\"", false),
            ("\"ab\"", false),
            ("abc", false),              // not an entity tag: no condition
            ("\"abc\" \"x\"", false),    // no comma between members
            ("\"abc", false),            // unterminated
            ("\"a b\", \"abc\"", false), // a space inside a tag
            ("", false),
        ];
        for (value, expected) in cases {
            assert_eq!(
                get(&[(&IF_NONE_MATCH, value)], TAGGED),
                *expected,
                "{value}"
            );
        }
        // The stored tag may be weak too; `W/` is not part of the comparison.
        let weak: &[(&HeaderName, &str)] = &[(&ETAG, "W/\"abc\"")];
        assert!(get(&[(&IF_NONE_MATCH, "\"abc\"")], weak));
        // A comma inside a tag is part of it.
        let comma: &[(&HeaderName, &str)] = &[(&ETAG, "\"a,b\"")];
        assert!(get(&[(&IF_NONE_MATCH, "\"x\", \"a,b\"")], comma));
        assert!(!get(&[(&IF_NONE_MATCH, "\"a\"")], comma));
        // Several lines are one list.
        let two = headers(&[(&IF_NONE_MATCH, "\"x\""), (&IF_NONE_MATCH, "\"abc\"")]);
        assert!(is_not_modified(&Method::GET, &two, &headers(TAGGED)));
    }

    #[test]
    fn if_none_match_wins_over_if_modified_since() {
        // The dates alone would give a 304; the tag does not match: 200.
        assert!(!get(
            &[(&IF_NONE_MATCH, "\"other\""), (&IF_MODIFIED_SINCE, JULY)],
            TAGGED
        ));
        // The tag matches; the dates alone would give a 200: 304.
        assert!(get(
            &[(&IF_NONE_MATCH, "\"abc\""), (&IF_MODIFIED_SINCE, MAY)],
            TAGGED
        ));
        // An If-None-Match that does not parse still hides If-Modified-Since.
        assert!(!get(
            &[(&IF_NONE_MATCH, "garbage"), (&IF_MODIFIED_SINCE, JULY)],
            TAGGED
        ));
    }

    #[test]
    fn if_modified_since_compares_with_last_modified() {
        let cases: &[(&str, bool)] = &[
            (JUNE, true),                               // equal
            (JULY, true),                               // later
            (MAY, false),                               // earlier: modified since
            ("Saturday, 01-Jun-24 10:00:00 GMT", true), // RFC 850
            ("Sat Jun  1 10:00:00 2024", true),         // asctime
            ("yesterday", false),
            ("", false),
        ];
        for (value, expected) in cases {
            assert_eq!(
                get(&[(&IF_MODIFIED_SINCE, value)], TAGGED),
                *expected,
                "{value}"
            );
        }
        // Given twice: ignored.
        assert!(!get(
            &[(&IF_MODIFIED_SINCE, JULY), (&IF_MODIFIED_SINCE, JULY)],
            TAGGED
        ));
        // No (valid) Last-Modified: nothing to compare with.
        assert!(!get(&[(&IF_MODIFIED_SINCE, JULY)], &[(&ETAG, "\"abc\"")]));
        assert!(!get(
            &[(&IF_MODIFIED_SINCE, JULY)],
            &[(&LAST_MODIFIED, "soon")]
        ));
    }

    #[test]
    fn only_get_and_head_with_a_validator() {
        let request = headers(&[(&IF_NONE_MATCH, "*"), (&IF_MODIFIED_SINCE, JULY)]);
        let stored = headers(TAGGED);
        assert!(is_not_modified(&Method::HEAD, &request, &stored));
        for method in [Method::POST, Method::PUT, Method::DELETE] {
            assert!(!is_not_modified(&method, &request, &stored), "{method}");
        }
        // No ETag and no Last-Modified: never a 304, not even for `*`.
        assert!(!is_not_modified(&Method::GET, &request, &HeaderMap::new()));
        // No precondition at all.
        assert!(!is_not_modified(&Method::GET, &HeaderMap::new(), &stored));
    }

    #[test]
    fn a_304_keeps_only_the_listed_headers() {
        let mut response = headers(&[
            (&CACHE_CONTROL, "max-age=60"),
            (&CONTENT_TYPE, "text/html"),
            (&CONTENT_LENGTH, "12"),
            (&SET_COOKIE, "a=1"),
            (&ETAG, "\"abc\""),
            (&VARY, "Accept-Encoding"),
            (&VARY, "Cookie"),
            (&EXPIRES, JULY),
            (&LAST_MODIFIED, JUNE),
            (&AGE, "3"),
            (&DATE, JUNE),
            (&CONTENT_LOCATION, "/a"),
        ]);
        response.append("x-custom", HeaderValue::from_static("1"));
        let kept = not_modified_headers(response);
        let names: Vec<&str> = kept.keys().map(HeaderName::as_str).collect();
        assert_eq!(kept.len(), 9, "{names:?}");
        assert_eq!(kept.get_all(VARY).iter().count(), 2);
        for gone in [CONTENT_TYPE, CONTENT_LENGTH, SET_COOKIE] {
            assert!(!kept.contains_key(gone));
        }
        assert!(!kept.contains_key("x-custom"));
    }

    #[test]
    fn weak_etags_are_stable_and_match_themselves() {
        let tag = weak_etag(b"body");
        assert_eq!(tag, weak_etag(b"body"));
        let stored = {
            let mut map = HeaderMap::new();
            map.insert(ETAG, tag.clone());
            map
        };
        let mut request = HeaderMap::new();
        request.insert(IF_NONE_MATCH, tag);
        assert!(is_not_modified(&Method::GET, &request, &stored));
        assert_eq!(weak_etag(b"").len(), 36);
    }
}
