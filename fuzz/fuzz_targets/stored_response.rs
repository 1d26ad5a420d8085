//! `StoredResponse::decode` on arbitrary bytes (never a panic; a body that
//! decodes is exactly as long as its recorded length; what decodes
//! re-encodes, tag versions and URL generation included, to the same
//! response; an error says "another version" exactly when the magic is
//! right and the version is neither this layout's nor the previous one),
//! and `to_bytes` then `decode` of an arbitrary response with tags and a
//! URL generation giving it back.
//!
//! It found that `decode` panicked on an entry whose header count was 24,575
//! or more (`HeaderMap::with_capacity`); such an entry is now damage.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use libfuzzer_sys::fuzz_target;
use tower_cache::http::stored::{Freshness, StoredResponse, VERSION, is_stored_header};
use tower_cache::tags::TagVersion;

/// The layout before tag versions and URL generations, which this one reads.
const PREVIOUS_VERSION: u8 = 2;

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

/// `back` is `expected`, but for the headers `encode` drops.
fn assert_same(back: &StoredResponse, expected: &StoredResponse) {
    assert_eq!(back.status, expected.status);
    assert_eq!(back.headers, kept(&expected.headers));
    assert_eq!(back.body, expected.body);
    assert_eq!(back.times, expected.times);
    assert_eq!(back.tags, expected.tags);
    assert_eq!(back.url_generation, expected.url_generation);
}

fn decode_arbitrary(data: &[u8]) {
    let stored = match StoredResponse::decode(Bytes::copy_from_slice(data)) {
        Ok(stored) => stored,
        Err(error) => {
            // Another release's entry is left in the cache; damage is
            // deleted: the two must never be mistaken for each other.
            let other = data.len() >= 4
                && data.starts_with(b"tcr")
                && data[3] != VERSION
                && data[3] != PREVIOUS_VERSION;
            assert_eq!(error.is_other_version(), other, "{error}");
            return;
        }
    };
    // The body is the tail of the entry, not a copy of something else, and
    // exactly as long as the length before it says: a cut or extended
    // entry is damage, never a shorter or longer page.
    assert!(data.ends_with(&stored.body));
    let head = data.len() - stored.body.len();
    let recorded = data[..head]
        .last_chunk::<8>()
        .expect("a length before the body");
    assert_eq!(u64::from_be_bytes(*recorded), stored.body.len() as u64);
    // A previous-version entry has no records, whatever its extension
    // block holds.
    if data[3] == PREVIOUS_VERSION {
        assert!(stored.tags.is_empty() && stored.url_generation.is_none());
    }
    let again = stored.to_bytes().expect("a decoded response encodes");
    assert_eq!(again[3], VERSION);
    let back = StoredResponse::decode(again).expect("a re-encoded response decodes");
    assert_same(&back, &stored);
    // `encode` writes no records.
    let bare = StoredResponse::encode(stored.status, &stored.headers, &stored.body, &stored.times)
        .expect("a decoded response encodes");
    let bare = StoredResponse::decode(bare).expect("an encoded response decodes");
    assert!(bare.tags.is_empty() && bare.url_generation.is_none());
}

fn round_trip(u: &mut Unstructured<'_>) -> arbitrary::Result<()> {
    let status = StatusCode::from_u16(u.int_in_range(100..=999)?).expect("100..=999 is a status");
    let headers = fuzz_input::header_map(u, 12)?;
    let mut times = Freshness::fresh_for(u64::arbitrary(u)?, u64::arbitrary(u)?);
    times.stale_while_revalidate = u32::arbitrary(u)?;
    times.stale_if_error = u32::arbitrary(u)?;
    times.age_base = Option::<i64>::arbitrary(u)?;
    let mut tags = Vec::new();
    for _ in 0..u.int_in_range(0..=4)? {
        let key = fuzz_input::text(u)?;
        let len = u.int_in_range(0..=24)?;
        let version = Bytes::copy_from_slice(u.bytes(len)?);
        tags.push(TagVersion { key, version });
    }
    let url_generation = Option::<u64>::arbitrary(u)?;
    let body = Bytes::copy_from_slice(<&[u8]>::arbitrary(u)?);
    let mut response = StoredResponse::new(status, headers, body, times);
    response.tags = tags;
    response.url_generation = url_generation;
    let entry = response.to_bytes().expect("a few short tags always encode");
    let back = StoredResponse::decode(entry).expect("an encoded response decodes");
    assert_same(&back, &response);
    Ok(())
}
