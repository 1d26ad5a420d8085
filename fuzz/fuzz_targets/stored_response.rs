//! `StoredResponse::decode` on arbitrary bytes (never a panic; what decodes
//! re-encodes to the same response), and `encode` then `decode` of an
//! arbitrary response giving it back.
//!
//! Known bug (reported, stored.rs is being reworked elsewhere): `decode`
//! panics when an entry's header count is 24,575 or more
//! (`HeaderMap::with_capacity`). With `FUZZ_SKIP_KNOWN=1` in the environment
//! such entries are skipped, so that a run explores past it; without, every
//! run stops on it until it is fixed.
#![no_main]

use std::sync::OnceLock;

use arbitrary::{Arbitrary, Unstructured};
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use libfuzzer_sys::fuzz_target;
use tower_cache::http::stored::{StoredResponse, is_stored_header};

fuzz_target!(|data: &[u8]| {
    if !(skip_known() && huge_header_count(data)) {
        decode_arbitrary(data);
    }
    let _ = round_trip(&mut Unstructured::new(data));
});

fn skip_known() -> bool {
    static SKIP: OnceLock<bool> = OnceLock::new();
    *SKIP.get_or_init(|| std::env::var_os("FUZZ_SKIP_KNOWN").is_some_and(|v| v == "1"))
}

/// Whether `data` is an entry head with a header count of 24,575 or more.
fn huge_header_count(data: &[u8]) -> bool {
    if !data.starts_with(b"tcr\x01") || data.len() < 18 {
        return false;
    }
    let at = if data[7] & 1 == 1 { 24 } else { 16 };
    data.get(at..at + 2)
        .is_some_and(|count| u16::from_be_bytes([count[0], count[1]]) >= 24_575)
}

/// The headers `encode` keeps.
fn kept(headers: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    for (name, value) in headers {
        if is_stored_header(name) {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

fn assert_same(
    back: &StoredResponse,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    stored_at: u64,
    age_base: Option<i64>,
) {
    assert_eq!(back.status, status);
    assert_eq!(back.headers, kept(headers));
    assert_eq!(back.body, body);
    assert_eq!(back.stored_at, stored_at);
    assert_eq!(back.age_base, age_base);
}

fn decode_arbitrary(data: &[u8]) {
    let Ok(stored) = StoredResponse::decode(Bytes::copy_from_slice(data)) else {
        return;
    };
    // The body is the tail of the entry, not a copy of something else.
    assert!(data.ends_with(&stored.body));
    let again = StoredResponse::encode(
        stored.status,
        &stored.headers,
        &stored.body,
        stored.stored_at,
        stored.age_base,
    )
    .expect("a decoded response encodes");
    let back = StoredResponse::decode(again).expect("a re-encoded response decodes");
    assert_same(
        &back,
        stored.status,
        &stored.headers,
        &stored.body,
        stored.stored_at,
        stored.age_base,
    );
}

fn round_trip(u: &mut Unstructured<'_>) -> arbitrary::Result<()> {
    let status = StatusCode::from_u16(u.int_in_range(100..=999)?).expect("100..=999 is a status");
    let headers = fuzz_input::header_map(u, 12)?;
    let stored_at = u64::arbitrary(u)?;
    let age_base = Option::<i64>::arbitrary(u)?;
    let body = <&[u8]>::arbitrary(u)?;
    let entry = StoredResponse::encode(status, &headers, body, stored_at, age_base)
        .expect("a few headers always encode");
    let back = StoredResponse::decode(entry).expect("an encoded response decodes");
    assert_same(&back, status, &headers, body, stored_at, age_base);
    Ok(())
}
