//! Property tests of the functions that read untrusted bytes: cached
//! responses, `Cache-Control` and `Vary`, page keys, `Accept-Encoding`,
//! preconditions (`If-None-Match`, `If-Modified-Since`) and the value
//! codec. The same properties as the fuzz targets in `fuzz/` (`scripts/fuzz`,
//! nightly; preconditions have no target yet), on stable and in a few
//! seconds: 256 cases each.
//!
//! Header values are made of words the parsers look for and raw bytes,
//! obs-text (`>= 0x80`) included, keeping only what `HeaderValue::from_bytes`
//! accepts.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{ACCEPT_ENCODING, CACHE_CONTROL, EXPIRES, HOST, VARY};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::Value;
use tower_cache::backends::MemoryBackend;
use tower_cache::http::encoding::{AcceptEncodingKey, accepts_coding, preferred_coding};
use tower_cache::http::headers::{
    Directive, find_cache_directive, get_max_age, get_s_maxage, has_cache_directive,
    has_vary_header, patch_cache_control, patch_response_headers, patch_vary_headers,
};
use tower_cache::http::key::{
    HEADER_KEY_PREFIX, PAGE_KEY_PREFIX, RequestScheme, VaryHeaders, header_key, page_key, url_hash,
};
use tower_cache::http::stored::{Freshness, StoredResponse, is_stored_header};
use tower_cache::parse_integer;
use tower_cache::{Cache, MAX_KEY_LENGTH, Timeout, validate_key};

const WORDS: &[&[u8]] = &[
    b"max-age",
    b"s-maxage",
    b"private",
    b"public",
    b"no-cache",
    b"no-store",
    b"=",
    b",",
    b", ",
    b" ",
    b"\t",
    b"\"",
    b"60",
    b"-1",
    b"99999999999999999999",
    b"Cookie",
    b"Accept-Encoding",
    b"*",
    b"gzip",
    b"br",
    b"zstd",
    b"deflate",
    b"identity",
    b";q=",
    b"0.5",
    b"\xe9",
    b"\xa0",
    b"\xff",
];

const NAMES: &[&str] = &[
    "cache-control",
    "vary",
    "content-type",
    "content-length",
    "connection",
    "keep-alive",
    "set-cookie",
    "x-custom",
];

const CODINGS: [&str; 6] = ["zstd", "br", "gzip", "deflate", "identity", "none"];

fn config() -> ProptestConfig {
    ProptestConfig::with_cases(256)
}

fn value_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            3 => select(WORDS).prop_map(<[u8]>::to_vec),
            1 => prop::collection::vec(any::<u8>(), 0..6),
        ],
        0..8,
    )
    .prop_map(|pieces| {
        let mut bytes = pieces.concat();
        bytes.retain(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f));
        bytes
    })
}

fn header_value() -> impl Strategy<Value = HeaderValue> {
    value_bytes().prop_map(|bytes| HeaderValue::from_bytes(&bytes).unwrap())
}

/// Up to `max` values of `name`.
fn values_of(name: HeaderName, max: usize) -> impl Strategy<Value = HeaderMap> {
    prop::collection::vec(header_value(), 0..=max).prop_map(move |values| {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(name.clone(), value);
        }
        headers
    })
}

fn any_headers(max: usize) -> impl Strategy<Value = HeaderMap> {
    prop::collection::vec((select(NAMES), header_value()), 0..=max).prop_map(|pairs| {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(name, value);
        }
        headers
    })
}

/// A token: survives any header list unchanged.
fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        select(
            &[
                "public",
                "private",
                "no-cache",
                "no_cache",
                "max-age",
                "max_age",
                "s_maxage",
                "no-store",
                "x-ext",
                "Cookie",
                "Accept-Encoding",
                "*"
            ][..]
        )
        .prop_map(str::to_owned),
        "[a-zA-Z0-9!#$%&'*+.^_`|~-]{1,12}",
    ]
}

/// The parts of a value as the helpers read it: ISO-8859-1, split on commas,
/// trimmed, empty parts dropped.
fn latin1_parts(value: &HeaderValue) -> Vec<String> {
    let text: String = value.as_bytes().iter().copied().map(char::from).collect();
    text.split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(str::to_owned)
        .collect()
}

fn directive_name(part: &str) -> &str {
    part.split_once('=').map_or(part, |(name, _)| name).trim()
}

fn normalise(name: &str) -> String {
    name.trim().to_ascii_lowercase().replace('_', "-")
}

/// `headers` with `suffix` appended to the last value of `name` (or as its
/// only value).
fn append_to_last(headers: &HeaderMap, name: &HeaderName, suffix: &[u8]) -> HeaderMap {
    let values: Vec<HeaderValue> = headers.get_all(name).iter().cloned().collect();
    let mut out = headers.clone();
    out.remove(name);
    let mut last = values.last().map_or(Vec::new(), |v| v.as_bytes().to_vec());
    last.extend_from_slice(suffix);
    for value in values.iter().take(values.len().saturating_sub(1)) {
        out.append(name.clone(), value.clone());
    }
    out.append(name.clone(), HeaderValue::from_bytes(&last).unwrap());
    out
}

fn kept(headers: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    for (name, value) in headers {
        if is_stored_header(name) {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

fn is_hex32(digest: &str) -> bool {
    digest.len() == 32 && digest.bytes().all(|b| b"0123456789abcdef".contains(&b))
}

/// The head of an entry (magic, version, status, flags, stored_at, the
/// freshness deadline and windows, maybe an age base) and a header count,
/// for decoding arbitrary tails.
fn entry_head() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<u16>(),
        any::<bool>(),
        any::<[u64; 3]>(),
        any::<i64>(),
        any::<u16>(),
    )
        .prop_map(|(status, aged, times, age_base, count)| {
            let mut head = b"tcr\x02".to_vec();
            head.extend_from_slice(&status.to_be_bytes());
            head.extend_from_slice(&u16::from(aged).to_be_bytes());
            for time in times {
                head.extend_from_slice(&time.to_be_bytes());
            }
            if aged {
                head.extend_from_slice(&age_base.to_be_bytes());
            }
            head.extend_from_slice(&count.to_be_bytes());
            head
        })
}

proptest! {
    #![proptest_config(config())]

    /// encode then decode gives the response back, less the headers that
    /// are not stored.
    #[test]
    fn stored_response_round_trips(
        status in 100u16..1000,
        headers in any_headers(10),
        body in prop::collection::vec(any::<u8>(), 0..64),
        stored_at in any::<u64>(),
        fresh_for in any::<u64>(),
        windows in any::<(u32, u32)>(),
        age_base in any::<Option<i64>>(),
    ) {
        let status = StatusCode::from_u16(status).unwrap();
        let mut times = Freshness::fresh_for(stored_at, fresh_for);
        (times.stale_while_revalidate, times.stale_if_error) = windows;
        times.age_base = age_base;
        let entry = StoredResponse::encode(status, &headers, &body, &times).unwrap();
        let back = StoredResponse::decode(entry).unwrap();
        prop_assert_eq!(back.status, status);
        prop_assert_eq!(back.headers, kept(&headers));
        prop_assert_eq!(back.body, body);
        prop_assert_eq!(back.times, times);
    }

    /// Arbitrary bytes, entries with an arbitrary tail and truncated entries
    /// decode or fail, never panic; what decodes has the input's tail as body.
    #[test]
    fn stored_response_decode_never_panics(
        bytes in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..128),
            (entry_head(), prop::collection::vec(any::<u8>(), 0..128))
                .prop_map(|(head, tail)| [head, tail].concat()),
        ],
        headers in any_headers(6),
        cut in any::<prop::sample::Index>(),
    ) {
        if let Ok(stored) = StoredResponse::decode(Bytes::from(bytes.clone())) {
            prop_assert!(bytes.ends_with(&stored.body));
        }
        let entry = StoredResponse::encode(StatusCode::OK, &headers, b"body", &Freshness::fresh_for(1, 1)).unwrap();
        let _ = StoredResponse::decode(entry.slice(..cut.index(entry.len() + 1)));
    }

    /// The Cache-Control readers never panic, and a directive is seen
    /// whatever else shares its header value (obs-text included).
    #[test]
    fn cache_control_directives_are_seen_beside_anything(
        headers in values_of(CACHE_CONTROL, 4),
        wanted in ".{0,12}",
        max_age in any::<i64>(),
    ) {
        let _ = get_max_age(&headers);
        let _ = get_s_maxage(&headers);
        let _ = has_cache_directive(&headers, &wanted);
        let _ = find_cache_directive(&headers, &[&wanted, "private"]);
        for value in headers.get_all(CACHE_CONTROL) {
            for part in latin1_parts(value) {
                prop_assert!(has_cache_directive(&headers, directive_name(&part)), "{:?}", part);
            }
        }
        let suffix = format!(", private , max-age={max_age}");
        let marked = append_to_last(&headers, &CACHE_CONTROL, suffix.as_bytes());
        prop_assert!(has_cache_directive(&marked, "PRIVATE"));
        prop_assert_eq!(find_cache_directive(&marked, &["private"]), Some("private"));
        prop_assert_eq!(get_max_age(&marked), Some(max_age));
    }

    /// patch_cache_control: the patched directives read back (but a
    /// `public`/`private` overridden by a later one), `max-age` is at most
    /// the smallest patched, and the directives already there are kept.
    #[test]
    fn patch_cache_control_reads_back(
        headers in values_of(CACHE_CONTROL, 3),
        patch in prop::collection::vec(
            (token(), prop_oneof![Just(None), any::<i64>().prop_map(|n| Some(n.to_string())), token().prop_map(Some)]),
            0..5,
        ),
    ) {
        let directives: Vec<Directive<'_>> = patch
            .iter()
            .map(|(name, value)| match value {
                None => Directive::Flag(name),
                Some(value) => Directive::Value(name, value),
            })
            .collect();
        let mut after = headers.clone();
        patch_cache_control(&mut after, &directives);
        let names: Vec<String> = patch.iter().map(|(n, _)| normalise(n)).collect();
        for (i, name) in names.iter().enumerate() {
            let overridden = match name.as_str() {
                "public" => names[i + 1..].iter().any(|n| n == "private"),
                "private" => names[i + 1..].iter().any(|n| n == "public"),
                _ => false,
            };
            prop_assert!(overridden || has_cache_directive(&after, name), "{} lost: {:?}", name, after);
        }
        let max_ages: Vec<Option<i64>> = patch
            .iter()
            .filter(|(n, _)| normalise(n) == "max-age")
            .map(|(_, v)| v.as_deref().and_then(|v| v.parse().ok()))
            .collect();
        if !max_ages.is_empty() && max_ages.iter().all(Option::is_some) {
            let smallest = max_ages.iter().flatten().min().copied().unwrap();
            let got = get_max_age(&after).unwrap();
            prop_assert!(got <= smallest, "{} > {}", got, smallest);
        }
        for value in headers.get_all(CACHE_CONTROL) {
            for part in latin1_parts(value) {
                let name = directive_name(&part).to_ascii_lowercase();
                if ["public", "private", "no-cache", "max-age"].contains(&name.as_str())
                    || names.contains(&name)
                {
                    continue;
                }
                prop_assert!(has_cache_directive(&after, &name), "{:?} lost: {:?}", part, after);
            }
        }
    }

    /// patch_response_headers never panics, whatever the timeout and the
    /// clock; Expires is an HTTP date and max-age at most the timeout.
    #[test]
    fn patch_response_headers_never_panics(
        headers in values_of(CACHE_CONTROL, 2),
        timeout in prop_oneof![any::<u64>(), 0u64..100_000],
        offset in prop_oneof![any::<i64>(), 1_600_000_000i64..1_800_000_000],
    ) {
        let now = if offset >= 0 {
            UNIX_EPOCH.checked_add(Duration::from_secs(offset.unsigned_abs()))
        } else {
            UNIX_EPOCH.checked_sub(Duration::from_secs(offset.unsigned_abs()))
        }
        .unwrap_or_else(SystemTime::now);
        let mut after = headers;
        patch_response_headers(&mut after, Duration::from_secs(timeout), now);
        prop_assert!(httpdate::parse_http_date(after[EXPIRES].to_str().unwrap()).is_ok());
        let secs = i64::try_from(timeout).unwrap_or(i64::MAX);
        prop_assert!(get_max_age(&after).unwrap() <= secs);
    }

    /// Every Vary token is seen, whatever else shares its value; the list
    /// is lowercase, sorted and round-trips through encode/decode.
    #[test]
    fn vary_tokens_are_seen_and_lists_round_trip(
        response in values_of(VARY, 4),
        request in any_headers(6),
        skip in any::<bool>(),
    ) {
        let list = VaryHeaders::from_response(&response, skip);
        let names: Vec<&str> = list.names().collect();
        for value in response.get_all(VARY) {
            for token in latin1_parts(value) {
                prop_assert!(has_vary_header(&response, &token), "{:?}", token);
                let lower = token.to_ascii_lowercase();
                prop_assert!(skip && lower == "accept-language" || names.contains(&lower.as_str()));
            }
        }
        prop_assert!(names.iter().all(|n| !n.bytes().any(|b| b.is_ascii_uppercase())));
        prop_assert_eq!(VaryHeaders::decode(&list.encode(42)), Some((list.clone(), 42)));
        for mode in [AcceptEncodingKey::AsSent, AcceptEncodingKey::Preferred] {
            prop_assert!(is_hex32(list.hash_with(&request, mode).as_str()));
        }
        let marked = append_to_last(&response, &VARY, b" , Cookie");
        prop_assert!(has_vary_header(&marked, "cookie"));
        prop_assert!(VaryHeaders::from_response(&marked, skip).names().any(|n| n == "cookie"));
    }

    /// A stored header list decodes or not, never panics, and what decodes
    /// encodes back to the same bytes.
    #[test]
    fn vary_list_decode_never_panics(
        bytes in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..64),
            prop::collection::vec(any::<u8>(), 0..64).prop_map(|tail| [&b"tcv2\n00000000000000ff\n"[..], &tail].concat()),
        ],
    ) {
        if let Some((list, generation)) = VaryHeaders::decode(&bytes) {
            prop_assert_eq!(list.encode(generation), bytes);
        }
    }

    /// patch_vary_headers: the old tokens and the new names read back, or
    /// the value is `*`.
    #[test]
    fn patch_vary_headers_reads_back(
        response in values_of(VARY, 3),
        new in prop::collection::vec(token(), 0..4),
    ) {
        let refs: Vec<&str> = new.iter().map(String::as_str).collect();
        let mut after = response.clone();
        patch_vary_headers(&mut after, &refs);
        let mut all: Vec<String> = response.get_all(VARY).iter().flat_map(latin1_parts).collect();
        all.extend(new.iter().cloned());
        if all.iter().any(|t| t == "*") {
            prop_assert_eq!(&after[VARY], "*");
        } else {
            for token in &all {
                prop_assert!(has_vary_header(&after, token), "{:?} lost: {:?}", token, after);
            }
        }
    }

    /// url_hash and RequestScheme::of never panic on URIs that parse and any
    /// Host bytes; page and header-list keys have the layout's exact length
    /// (prefix + fixed parts + two 32-hex hashes + suffix) and are valid
    /// cache keys whenever their parts are and they fit.
    #[test]
    fn page_keys_are_valid_and_bounded(
        uri in prop_oneof![
            "/[a-zA-Z0-9%._~/-]{0,40}(\\?[a-z0-9=&%]{0,20})?",
            "(http|https|ftp)://[a-z0-9.-]{1,20}(:[0-9]{1,5})?/[a-z0-9/]{0,20}",
            ".{0,40}",
        ],
        host in prop::option::of(value_bytes()),
        proto in prop::option::of(header_value()),
        method in prop_oneof![select(&["GET", "HEAD", "POST"][..]).prop_map(str::to_owned), "[A-Z!#$%&'*+.^_`|~-]{1,40}"],
        prefix in "[!-~]{0,80}",
        suffix in prop_oneof![Just(String::new()), Just(".en-us.UTC".to_owned()), "[!-~]{0,40}"],
        vary in values_of(VARY, 2),
    ) {
        let Ok(uri) = uri.parse::<Uri>() else { return Ok(()) };
        let mut request = HeaderMap::new();
        if let Some(host) = host {
            request.insert(HOST, HeaderValue::from_bytes(&host).unwrap());
        }
        if let Some(proto) = proto {
            request.insert("x-forwarded-proto", proto);
        }
        let trusted = RequestScheme::trusted_header("x-forwarded-proto", "https").unwrap();
        for scheme in [RequestScheme::FromUri, RequestScheme::Https, trusted] {
            let got = scheme.of(&uri, &request);
            prop_assert!(got == "http" || got == "https" || Some(got) == uri.scheme_str());
        }
        let Some(url) = url_hash(RequestScheme::FromUri.of(&uri, &request), &uri, &request) else {
            return Ok(());
        };
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let vary = VaryHeaders::from_response(&vary, false).hash_with(&request, AcceptEncodingKey::Preferred);
        prop_assert!(is_hex32(url.as_str()) && is_hex32(vary.as_str()));
        let page = page_key(&prefix, &method, &url, &vary, &suffix);
        let header = header_key(&prefix, &url, &suffix);
        let fixed = prefix.len() + suffix.len() + 32;
        prop_assert_eq!(page.len(), PAGE_KEY_PREFIX.len() + 1 + 1 + method.as_str().len() + 1 + 1 + 32 + fixed);
        prop_assert_eq!(header.len(), HEADER_KEY_PREFIX.len() + 1 + 1 + fixed);
        for key in [&page, &header] {
            prop_assert_eq!(validate_key(key).is_ok(), key.len() <= MAX_KEY_LENGTH, "{:?}", key);
        }
    }

    /// preferred_coding is one of six buckets (`None` only without
    /// Accept-Encoding), and the request accepts the coding it prefers.
    #[test]
    fn preferred_coding_is_accepted(
        values in prop::collection::vec(
            prop_oneof![
                prop::collection::vec(
                    (
                        select(&["gzip", "x-gzip", "br", "zstd", "deflate", "identity", "*", "compress", "GZIP", ""][..]),
                        prop::option::of(prop_oneof![
                            select(&["q=0", "q=1", "q=0.5", "q=1.000", "q=0.001", "q=2", "Q=0.8", "q=", "q=0.0001"][..]).prop_map(str::to_owned),
                            "[ -~]{0,6}",
                        ]),
                    ),
                    0..6,
                )
                .prop_map(|parts| {
                    let text: Vec<String> = parts
                        .into_iter()
                        .map(|(c, q)| q.map_or(c.to_owned(), |q| format!("{c};{q}")))
                        .collect();
                    HeaderValue::from_str(&text.join(", ")).unwrap()
                }),
                header_value(),
            ],
            0..3,
        ),
        other in "[ -~]{0,12}",
    ) {
        let mut request = HeaderMap::new();
        for value in values {
            request.append(ACCEPT_ENCODING, value);
        }
        let preferred = preferred_coding(&request);
        prop_assert_eq!(preferred.is_none(), !request.contains_key(ACCEPT_ENCODING));
        if let Some(coding) = preferred {
            prop_assert!(CODINGS.contains(&coding), "{:?}", coding);
            if coding != "none" {
                prop_assert!(accepts_coding(&request, coding), "{} not accepted: {:?}", coding, request);
            }
        }
        let _ = accepts_coding(&request, &other);
    }

    /// The codec through Cache: arbitrary stored bytes read as JSON values,
    /// integers and strings give a value or an error, never a panic; JSON
    /// integers are what incr reads.
    #[test]
    fn codec_decodes_or_errs(
        bytes in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..48),
            any::<i64>().prop_map(|n| n.to_string().into_bytes()),
            "[-+0-9 .eE\"\\[\\]{}:,a-z]{0,24}".prop_map(String::into_bytes),
        ],
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(async {
            let cache = Cache::new(Arc::new(MemoryBackend::new()));
            cache.set_bytes("k", bytes.clone(), Timeout::Forever).await.unwrap();
            let value = cache.get::<Value>("k").await;
            prop_assert_eq!(value.is_ok(), serde_json::from_slice::<Value>(&bytes).is_ok());
            let int = cache.get::<i64>("k").await;
            let _ = cache.get::<String>("k").await;
            let _ = cache.get::<Vec<u8>>("k").await;
            if let Ok(Some(n)) = int {
                if bytes.trim_ascii().len() == bytes.len() {
                    prop_assert_eq!(parse_integer(&bytes), Some(n));
                }
            }
            let parsed = parse_integer(&bytes);
            match cache.incr("k", 1).await {
                Ok(next) => prop_assert_eq!(Some(next), parsed.and_then(|n| n.checked_add(1))),
                Err(_) => prop_assert!(parsed.is_none_or(|n| n == i64::MAX)),
            }
            Ok(())
        })?;
    }
}

/// Found by the `stored_response` fuzz target: a header count of 24,575 or
/// more panicked in `HeaderMap::with_capacity`; it is now damage.
#[test]
fn stored_decode_huge_header_count_is_an_error() {
    let mut entry = b"tcr\x02\x00\xc8\x00\x00".to_vec();
    entry.extend_from_slice(&[0; 24]);
    entry.extend_from_slice(&24_575u16.to_be_bytes());
    let result = std::panic::catch_unwind(|| StoredResponse::decode(Bytes::from(entry)).is_err());
    assert_eq!(result.ok(), Some(true), "decode panicked");
}

/// An opaque tag: quotes around etagc characters (no `"`, no space).
fn opaque_tag() -> impl Strategy<Value = String> {
    "[!#-~]{0,8}".prop_map(|tag| format!("\"{tag}\""))
}

proptest! {
    #![proptest_config(config())]

    /// Preconditions from arbitrary bytes are judged, never a panic; a 304
    /// needs a validator and GET or HEAD, and keeps only the 304's headers.
    #[test]
    fn conditional_requests_never_panic(
        if_none_match in values_of(http::header::IF_NONE_MATCH, 2),
        if_modified_since in values_of(http::header::IF_MODIFIED_SINCE, 2),
        stored in any_headers(6),
        etag in prop::option::of(header_value()),
        last_modified in prop::option::of(header_value()),
        head in any::<bool>(),
    ) {
        use tower_cache::http::conditional::{is_not_modified, is_not_modified_header, not_modified_headers};
        let mut request = if_none_match;
        request.extend(if_modified_since);
        let mut stored = stored;
        if let Some(etag) = etag {
            stored.insert(http::header::ETAG, etag);
        }
        if let Some(date) = last_modified {
            stored.insert(http::header::LAST_MODIFIED, date);
        }
        let method = if head { Method::HEAD } else { Method::GET };
        let answer = is_not_modified(&method, &request, &stored);
        let validated = stored.contains_key(http::header::ETAG)
            || stored.contains_key(http::header::LAST_MODIFIED);
        prop_assert!(!answer || validated);
        prop_assert!(!is_not_modified(&Method::POST, &request, &stored));
        for name in not_modified_headers(stored).keys() {
            prop_assert!(is_not_modified_header(name), "{}", name);
        }
    }

    /// A list of entity tags (weak or not, any spacing) gives a 304 exactly
    /// when one of them is the stored tag.
    #[test]
    fn if_none_match_finds_the_stored_tag_anywhere(
        stored_tag in opaque_tag(),
        stored_weak in any::<bool>(),
        others in prop::collection::vec((opaque_tag(), any::<bool>(), select(&[",", ", ", " ,\t", ",,"][..])), 0..5),
        at in any::<prop::sample::Index>(),
        include in any::<bool>(),
    ) {
        use tower_cache::http::conditional::is_not_modified;
        let others: Vec<_> = others.into_iter().filter(|(tag, _, _)| *tag != stored_tag).collect();
        let mut list = String::new();
        let mut members: Vec<(String, bool, &str)> = others;
        if include {
            members.insert(at.index(members.len() + 1), (stored_tag.clone(), !stored_weak, ", "));
        }
        for (i, (tag, weak, separator)) in members.iter().enumerate() {
            if i > 0 {
                list.push_str(separator);
            }
            if *weak {
                list.push_str("W/");
            }
            list.push_str(tag);
        }
        let mut stored = HeaderMap::new();
        let stored_value = if stored_weak { format!("W/{stored_tag}") } else { stored_tag.clone() };
        stored.insert(http::header::ETAG, HeaderValue::from_str(&stored_value).unwrap());
        let mut request = HeaderMap::new();
        request.insert(http::header::IF_NONE_MATCH, HeaderValue::from_str(&list).unwrap());
        prop_assert_eq!(is_not_modified(&Method::GET, &request, &stored), include, "{}", list);
    }
}
