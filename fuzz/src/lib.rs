//! Inputs the fuzz targets share.
//!
//! The header targets read their input as text, so that the seed corpus is
//! readable HTTP: `Name: value` lines, blocks separated by a blank line (a
//! request line may come first), then optionally a NUL byte and bytes that
//! choose the rest (directives to patch, prefixes) through
//! [`Unstructured`]. Header values and names made from choices are steered
//! towards the words the parsers look for.
//!
//! Every value is one that `HeaderValue::from_bytes` accepts, bytes `>= 0x80`
//! (obs-text) included: the bytes it rejects (controls other than tab, DEL)
//! are dropped rather than the whole input thrown away.

use arbitrary::{Result, Unstructured};
use http::{HeaderMap, HeaderName, HeaderValue};

/// Pieces the header parsers react to, mixed with raw bytes.
const WORDS: &[&[u8]] = &[
    b"max-age",
    b"s-maxage",
    b"private",
    b"public",
    b"no-cache",
    b"no-store",
    b"must-revalidate",
    b"=",
    b",",
    b", ",
    b" ",
    b"\t",
    b"\"",
    b"0",
    b"60",
    b"-1",
    b"99999999999999999999",
    b"Cookie",
    b"Accept-Encoding",
    b"Accept-Language",
    b"Authorization",
    b"*",
    b"gzip",
    b"x-gzip",
    b"br",
    b"zstd",
    b"deflate",
    b"identity",
    b";",
    b";q=",
    b"q=0",
    b"0.5",
    b"1.000",
    b"\xe9",
    b"\xc3\xa9",
    b"\xa0",
    b"\xff",
];

/// Header names the crate treats specially, and a few others.
const NAMES: &[&str] = &[
    "cache-control",
    "vary",
    "expires",
    "content-type",
    "content-length",
    "content-encoding",
    "set-cookie",
    "connection",
    "keep-alive",
    "transfer-encoding",
    "cookie",
    "accept-encoding",
    "accept-language",
    "authorization",
    "host",
    "x-forwarded-proto",
    "x-custom",
];

/// The text before the first NUL, and the choices after it.
pub fn split(data: &[u8]) -> (&[u8], Unstructured<'_>) {
    match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], Unstructured::new(&data[at + 1..])),
        None => (data, Unstructured::new(&[])),
    }
}

/// The lines of `text`, without their `\r\n` or `\n`.
pub fn lines(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    text.split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
}

/// A header value from bytes, the bytes it cannot hold dropped, trimmed of
/// spaces and tabs as an HTTP parser trims them.
pub fn sanitized_value(bytes: &[u8]) -> HeaderValue {
    let mut bytes = bytes.to_vec();
    bytes.retain(|&b| is_value_byte(b));
    let trimmed = bytes.trim_ascii();
    HeaderValue::from_bytes(trimmed).expect("only accepted bytes are kept")
}

/// Header blocks: one [`HeaderMap`] per block of lines, blocks separated by
/// blank lines. A line is `Name: value`; a line that is not (no colon, or
/// not a valid name before it) is a value of `bare`, or skipped without one.
pub fn header_blocks(text: &[u8], bare: Option<&HeaderName>) -> Vec<HeaderMap> {
    let mut blocks = vec![HeaderMap::new()];
    for line in lines(text) {
        if line.is_empty() {
            blocks.push(HeaderMap::new());
            continue;
        }
        let block = blocks.last_mut().expect("never empty");
        let named = line.iter().position(|&b| b == b':').and_then(|at| {
            let name = HeaderName::from_bytes(line[..at].trim_ascii()).ok()?;
            Some((name, &line[at + 1..]))
        });
        match (named, bare) {
            (Some((name, value)), _) => {
                block.append(name, sanitized_value(value));
            }
            (None, Some(bare)) => {
                block.append(bare.clone(), sanitized_value(line));
            }
            (None, None) => {}
        }
    }
    blocks
}

/// `headers` with `suffix` appended to the last value of `name` (or as its
/// only value).
pub fn append_to_last(headers: &HeaderMap, name: &HeaderName, suffix: &[u8]) -> HeaderMap {
    let values: Vec<HeaderValue> = headers.get_all(name).iter().cloned().collect();
    let mut out = headers.clone();
    out.remove(name);
    let mut last = values.last().map_or(Vec::new(), |v| v.as_bytes().to_vec());
    last.extend_from_slice(suffix);
    for value in values.iter().take(values.len().saturating_sub(1)) {
        out.append(name.clone(), value.clone());
    }
    out.append(
        name.clone(),
        HeaderValue::from_bytes(&last).expect("valid bytes"),
    );
    out
}

/// Whether `HeaderValue::from_bytes` accepts the byte.
pub fn is_value_byte(byte: u8) -> bool {
    byte == b'\t' || (byte >= 0x20 && byte != 0x7f)
}

/// Bytes for a header value: words and raw bytes, the rejected bytes dropped.
pub fn value_bytes(u: &mut Unstructured<'_>) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for _ in 0..u.int_in_range(0..=8)? {
        if u.ratio(2, 3)? {
            out.extend_from_slice(u.choose(WORDS)?);
        } else {
            let len = u.int_in_range(0..=12)?;
            out.extend_from_slice(u.bytes(len)?);
        }
    }
    out.retain(|&b| is_value_byte(b));
    Ok(out)
}

/// A header value as above.
pub fn header_value(u: &mut Unstructured<'_>) -> Result<HeaderValue> {
    let bytes = value_bytes(u)?;
    Ok(HeaderValue::from_bytes(&bytes).expect("only accepted bytes are kept"))
}

/// A header name: a known one, or raw bytes when they make a valid name.
pub fn header_name(u: &mut Unstructured<'_>) -> Result<HeaderName> {
    if u.ratio(3, 4)? {
        return Ok(HeaderName::from_static(u.choose(NAMES)?));
    }
    let len = u.int_in_range(1..=16)?;
    let bytes = u.bytes(len)?;
    Ok(HeaderName::from_bytes(bytes).unwrap_or(HeaderName::from_static("x-fuzz")))
}

/// Up to `max` values of the header `name`, appended in order.
pub fn values_of(
    u: &mut Unstructured<'_>,
    headers: &mut HeaderMap,
    name: &HeaderName,
    max: usize,
) -> Result<()> {
    for _ in 0..u.int_in_range(0..=max)? {
        headers.append(name.clone(), header_value(u)?);
    }
    Ok(())
}

/// Up to `max` headers of any name.
pub fn header_map(u: &mut Unstructured<'_>, max: usize) -> Result<HeaderMap> {
    let mut headers = HeaderMap::new();
    for _ in 0..u.int_in_range(0..=max)? {
        let name = header_name(u)?;
        headers.append(name, header_value(u)?);
    }
    Ok(headers)
}

/// A short string of the fuzzer's choosing: a word, or arbitrary UTF-8.
pub fn text(u: &mut Unstructured<'_>) -> Result<String> {
    if u.ratio(1, 2)? {
        Ok(String::from_utf8_lossy(u.choose(WORDS)?).into_owned())
    } else {
        let len = u.int_in_range(0..=16)?;
        Ok(String::from_utf8_lossy(u.bytes(len)?).into_owned())
    }
}

/// The parts of a header value as the `http::headers` helpers read it:
/// decoded as ISO-8859-1 (as WSGI hands headers to Django), split on commas,
/// trimmed, empty parts dropped. The fuzz targets' model of a header list.
pub fn latin1_parts(value: &HeaderValue) -> Vec<String> {
    let text: String = value.as_bytes().iter().map(|&b| char::from(b)).collect();
    text.split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Whether `s` is a token that survives any header list unchanged: visible
/// ASCII without separators or white space.
pub fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_graphic() && !b",;=\"".contains(&b))
}
