//! `StoredResponse::decode` on arbitrary bytes (never a panic; what decodes
//! re-encodes to the same response), and `encode` then `decode` of an
//! arbitrary response giving it back.
//!
//! It found that `decode` panicked on an entry whose header count was 24,575
//! or more (`HeaderMap::with_capacity`); such an entry is now damage.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use libfuzzer_sys::fuzz_target;
use tower_cache::http::stored::{Freshness, StoredResponse, is_stored_header};

fuzz_target!(|data: &[u8]| {
    decode_arbitrary(data);
    let _ = round_trip(&mut Unstructured::new(data));
});

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
    times: &Freshness,
) {
    assert_eq!(back.status, status);
    assert_eq!(back.headers, kept(headers));
    assert_eq!(back.body, body);
    assert_eq!(&back.times, times);
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
        &stored.times,
    )
    .expect("a decoded response encodes");
    let back = StoredResponse::decode(again).expect("a re-encoded response decodes");
    assert_same(
        &back,
        stored.status,
        &stored.headers,
        &stored.body,
        &stored.times,
    );
}

fn round_trip(u: &mut Unstructured<'_>) -> arbitrary::Result<()> {
    let status = StatusCode::from_u16(u.int_in_range(100..=999)?).expect("100..=999 is a status");
    let headers = fuzz_input::header_map(u, 12)?;
    let mut times = Freshness::fresh_for(u64::arbitrary(u)?, u64::arbitrary(u)?);
    times.stale_while_revalidate = u32::arbitrary(u)?;
    times.stale_if_error = u32::arbitrary(u)?;
    times.age_base = Option::<i64>::arbitrary(u)?;
    let body = <&[u8]>::arbitrary(u)?;
    let entry = StoredResponse::encode(status, &headers, body, &times)
        .expect("a few headers always encode");
    let back = StoredResponse::decode(entry).expect("an encoded response decodes");
    assert_same(&back, status, &headers, body, &times);
    Ok(())
}
