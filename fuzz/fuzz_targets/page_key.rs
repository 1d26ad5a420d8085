//! Page keys from arbitrary requests: `url_hash` (any URI that parses, any
//! `Host` bytes), `RequestScheme::of`, `VaryHeaders::hash_with`, `page_key`,
//! `header_key`, and `preferred_coding`/`accepts_coding`. The keys are
//! valid cache keys whenever the prefix and suffix are, and their length is
//! exactly the layout's.
#![no_main]

use arbitrary::Unstructured;
use http::header::ACCEPT_ENCODING;
use http::{HeaderMap, HeaderName, Method, Uri};
use libfuzzer_sys::fuzz_target;
use tower_cache::http::encoding::{AcceptEncodingKey, accepts_coding, preferred_coding};
use tower_cache::http::key::{
    HEADER_KEY_PREFIX, PAGE_KEY_PREFIX, RequestScheme, VaryHeaders, header_key, page_key, url_hash,
};
use tower_cache::{MAX_KEY_LENGTH, validate_key};

fuzz_target!(|data: &[u8]| {
    // A request line, its headers, a blank line, the response's headers
    // (Vary); then NUL and the choices.
    let (text, mut choices) = fuzz_input::split(data);
    let (first, rest) = match text.iter().position(|&b| b == b'\n') {
        Some(at) => (&text[..at], &text[at + 1..]),
        None => (text, &b""[..]),
    };
    let request_line = first.strip_suffix(b"\r").unwrap_or(first);
    let mut blocks = fuzz_input::header_blocks(rest, None).into_iter();
    let request = blocks.next().unwrap_or_default();
    let response = blocks.next().unwrap_or_default();
    let _ = run(request_line, request, response, &mut choices);
});

const CODINGS: [&str; 6] = ["zstd", "br", "gzip", "deflate", "identity", "none"];

fn run(
    request_line: &[u8],
    request: HeaderMap,
    response: HeaderMap,
    u: &mut Unstructured<'_>,
) -> arbitrary::Result<()> {
    let mut words = request_line.split(|&b| b == b' ').filter(|w| !w.is_empty());
    let method_bytes = words.next().unwrap_or(b"GET");
    let Ok(uri) = Uri::try_from(words.next().unwrap_or(b"/")) else {
        return Ok(());
    };

    // The scheme: http, https, or the URI's own.
    let trusted = RequestScheme::TrustedHeader {
        name: HeaderName::from_static("x-forwarded-proto"),
        value: fuzz_input::text(u)?,
    };
    for scheme in [RequestScheme::FromUri, RequestScheme::Https, trusted] {
        let got = scheme.of(&uri, &request);
        assert!(
            got == "http" || got == "https" || Some(got) == uri.scheme_str(),
            "{got:?}"
        );
    }
    let scheme = RequestScheme::FromUri.of(&uri, &request);
    let Some(url) = url_hash(scheme, &uri, &request) else {
        return Ok(());
    };

    let list = VaryHeaders::from_response(&response, u.arbitrary()?);
    let mode = if u.arbitrary()? {
        AcceptEncodingKey::Preferred
    } else {
        AcceptEncodingKey::AsSent
    };
    let vary = list.hash_with(&request, mode);
    for digest in [url.as_str(), vary.as_str()] {
        assert!(digest.len() == 32 && digest.bytes().all(|b| b"0123456789abcdef".contains(&b)));
    }

    let Ok(method) = Method::from_bytes(method_bytes) else {
        return Ok(());
    };
    let prefix = fuzz_input::text(u)?;
    let suffix = fuzz_input::text(u)?;
    let page = page_key(&prefix, &method, &url, &vary, &suffix);
    let header = header_key(&prefix, &url, &suffix);
    // Layout: PREFIX . key_prefix . METHOD . url . vary suffix
    assert_eq!(
        page.len(),
        PAGE_KEY_PREFIX.len()
            + 1
            + prefix.len()
            + 1
            + method.as_str().len()
            + 1
            + 32
            + 1
            + 32
            + suffix.len()
    );
    assert_eq!(
        header.len(),
        HEADER_KEY_PREFIX.len() + 1 + prefix.len() + 1 + 32 + suffix.len()
    );
    // Valid parts make valid keys, as long as they fit.
    let parts_valid = validate_key(&format!("{prefix}{suffix}")).is_ok();
    for key in [&page, &header] {
        if parts_valid {
            assert_eq!(
                validate_key(key).is_ok(),
                key.len() <= MAX_KEY_LENGTH,
                "{key:?}"
            );
        }
    }

    // Accept-Encoding buckets.
    let preferred = preferred_coding(&request);
    assert_eq!(preferred.is_none(), !request.contains_key(ACCEPT_ENCODING));
    if let Some(coding) = preferred {
        assert!(CODINGS.contains(&coding), "{coding:?}");
        if coding != "none" {
            assert!(
                accepts_coding(&request, coding),
                "{coding} not accepted: {request:?}"
            );
        }
    }
    let _ = accepts_coding(&request, &fuzz_input::text(u)?);
    Ok(())
}
