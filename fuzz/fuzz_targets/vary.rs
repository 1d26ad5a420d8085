//! The `Vary` helpers (`has_vary_header`, `patch_vary_headers`) and
//! `VaryHeaders::from_response`/`encode`/`decode`/`hash_with` on headers made
//! of arbitrary bytes (obs-text included), and `VaryHeaders::decode` on
//! arbitrary bytes. A stored header list is `tcv2`, a line of 16 lowercase
//! hex digits (its generation), then one name per line; a list of another
//! release (`tcv` and another digit) is never decoded.
#![no_main]

use arbitrary::Unstructured;
use fuzz_input::{is_token, latin1_parts};
use http::HeaderMap;
use http::header::VARY;
use libfuzzer_sys::fuzz_target;
use tower_cache::http::encoding::AcceptEncodingKey;
use tower_cache::http::headers::{has_vary_header, patch_vary_headers};
use tower_cache::http::key::VaryHeaders;

fuzz_target!(|data: &[u8]| {
    // The header list as stored: decodes or not, never panics, and what
    // decodes encodes back to the same bytes.
    if let Some((list, generation)) = VaryHeaders::decode(data) {
        assert_eq!(list.encode(generation), data);
        // Another release's list is left in the cache, this one's is read:
        // never both.
        assert!(!VaryHeaders::is_other_version(data));
    }
    // Response headers (a bare line is a Vary value), a blank line, the
    // request's headers; then NUL and the choices.
    let (text, mut choices) = fuzz_input::split(data);
    let mut blocks = fuzz_input::header_blocks(text, Some(&VARY)).into_iter();
    let response = blocks.next().unwrap_or_default();
    let request = blocks.next().unwrap_or_default();
    let _ = run(response, &request, &mut choices);
});

/// Django's sort order: WSGI names (`HTTP_` + upper case, `-` as `_`).
fn wsgi(name: &str) -> Vec<u8> {
    name.bytes()
        .map(|b| {
            if b == b'-' {
                b'_'
            } else {
                b.to_ascii_uppercase()
            }
        })
        .collect()
}

fn hex32(digest: &str) -> bool {
    digest.len() == 32
        && digest
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn run(
    response: HeaderMap,
    request: &HeaderMap,
    u: &mut Unstructured<'_>,
) -> arbitrary::Result<()> {
    let wanted = fuzz_input::text(u)?;
    let _ = has_vary_header(&response, &wanted);
    let skip = u.arbitrary::<bool>()?;
    let list = VaryHeaders::from_response(&response, skip);
    let names: Vec<&str> = list.names().collect();
    for name in &names {
        assert!(!name.is_empty() && name.trim() == *name && !name.contains(','));
        assert!(!name.bytes().any(|b| b.is_ascii_uppercase()), "{name:?}");
        assert!(!(skip && *name == "accept-language"));
    }
    assert!(
        names.windows(2).all(|w| wsgi(w[0]) <= wsgi(w[1])),
        "{names:?}"
    );
    let generation = u.arbitrary::<u64>()?;
    let encoded = list.encode(generation);
    let head = format!("tcv2\n{generation:016x}\n");
    assert!(encoded.starts_with(head.as_bytes()), "{encoded:?}");
    assert!(!VaryHeaders::is_other_version(&encoded));
    assert_eq!(
        VaryHeaders::decode(&encoded),
        Some((list.clone(), generation))
    );
    for mode in [AcceptEncodingKey::AsSent, AcceptEncodingKey::Preferred] {
        assert!(hex32(list.hash_with(request, mode).as_str()));
    }

    // Every token of Vary is seen, whatever else its value holds.
    let mut model: Vec<String> = Vec::new();
    for value in response.get_all(VARY) {
        model.extend(latin1_parts(value));
    }
    for token in &model {
        assert!(
            has_vary_header(&response, token),
            "{token:?} in {response:?}"
        );
        let lower = token.to_ascii_lowercase();
        if !(skip && lower == "accept-language") {
            assert!(
                names.contains(&lower.as_str()),
                "{token:?} not in {names:?}"
            );
        }
    }

    // A Cookie added to the last value is seen.
    let marked = fuzz_input::append_to_last(&response, &VARY, b" , Cookie");
    assert!(has_vary_header(&marked, "cookie"), "{marked:?}");
    assert!(
        VaryHeaders::from_response(&marked, skip)
            .names()
            .any(|n| n == "cookie")
    );

    // patch_vary_headers: never a panic; with clean names, the old tokens
    // and the new names are all there, or the value is `*`.
    let mut new = Vec::new();
    for _ in 0..u.int_in_range(0..=4)? {
        new.push(if u.ratio(1, 2)? {
            (*u.choose(&[
                "Cookie",
                "Accept-Encoding",
                "Authorization",
                "*",
                " Accept-Language ",
            ])?)
            .to_owned()
        } else {
            fuzz_input::text(u)?
        });
    }
    let new_refs: Vec<&str> = new.iter().map(String::as_str).collect();
    let mut patched = response.clone();
    patch_vary_headers(&mut patched, &new_refs);
    if new
        .iter()
        .all(|n| n.trim().is_empty() || is_token(n.trim()))
    {
        let added = new.iter().map(|n| n.trim()).filter(|n| !n.is_empty());
        if model
            .iter()
            .map(String::as_str)
            .chain(added.clone())
            .any(|t| t == "*")
        {
            assert_eq!(patched[VARY], "*");
        } else {
            for token in model.iter().map(String::as_str).chain(added) {
                assert!(
                    has_vary_header(&patched, token),
                    "{token:?} lost: {patched:?}"
                );
            }
            assert_eq!(patched.get_all(VARY).iter().count(), 1);
        }
    }
    Ok(())
}
