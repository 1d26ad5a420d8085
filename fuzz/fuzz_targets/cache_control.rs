//! The `Cache-Control` helpers of `tower_cache::http::headers` on headers
//! made of arbitrary bytes (obs-text included): never a panic, a directive is
//! seen whatever shares its header value, and what `patch_*` writes reads back.
#![no_main]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arbitrary::{Arbitrary, Unstructured};
use fuzz_input::{is_token, latin1_parts};
use http::header::{CACHE_CONTROL, EXPIRES};
use http::HeaderMap;
use libfuzzer_sys::fuzz_target;
use tower_cache::http::headers::{
    Directive, find_cache_directive, get_max_age, get_s_maxage, has_cache_directive,
    patch_cache_control, patch_response_headers, split_header_value,
};

fuzz_target!(|data: &[u8]| {
    // `Name: value` lines (a bare line is a Cache-Control value), then NUL
    // and the choices.
    let (text, mut choices) = fuzz_input::split(data);
    let headers = fuzz_input::header_blocks(text, Some(&CACHE_CONTROL)).swap_remove(0);
    let _ = run(headers, &mut choices);
});

/// Directive names as `patch_cache_control` normalises them.
fn normalise(name: &str) -> String {
    name.trim().to_ascii_lowercase().replace('_', "-")
}

/// The directive name of a part, as the crate reads it.
fn directive_name(part: &str) -> &str {
    part.split_once('=').map_or(part, |(name, _)| name).trim()
}

fn run(headers: HeaderMap, u: &mut Unstructured<'_>) -> arbitrary::Result<()> {
    // Readers never panic, and split parts are trimmed and comma-free.
    let _ = get_max_age(&headers);
    let _ = get_s_maxage(&headers);
    let wanted = fuzz_input::text(u)?;
    let _ = has_cache_directive(&headers, &wanted);
    let _ = find_cache_directive(&headers, &[&wanted, "private", "no-store"]);
    for value in headers.get_all(CACHE_CONTROL) {
        if let Ok(text) = value.to_str() {
            for part in split_header_value(text) {
                assert!(!part.is_empty() && part.trim() == part && !part.contains(','));
            }
        }
    }

    // A directive is seen whatever else its header value holds.
    let max_age = i64::arbitrary(u)?;
    let suffix = format!(", private , max-age={max_age}");
    let marked = fuzz_input::append_to_last(&headers, &CACHE_CONTROL, suffix.as_bytes());
    assert!(has_cache_directive(&marked, "private"), "{marked:?}");
    assert!(has_cache_directive(&marked, "PRIVATE"), "{marked:?}");
    assert!(find_cache_directive(&marked, &["no-such", "private"]).is_some());
    assert_eq!(get_max_age(&marked), Some(max_age), "{marked:?}");

    // patch_cache_control: never a panic; with clean directives, every one
    // reads back, max-age is at most the smallest patched, and the
    // directives already there are kept.
    let mut directives = Vec::new();
    let mut owned = Vec::new();
    for _ in 0..u.int_in_range(0..=4)? {
        let name = if u.ratio(3, 4)? {
            (*u.choose(&[
                "public",
                "private",
                "no-cache",
                "no_cache",
                "no-store",
                "max-age",
                "max_age",
                "s_maxage",
                "must-revalidate",
                "x-ext",
            ])?)
            .to_owned()
        } else {
            fuzz_input::text(u)?
        };
        let value = match u.int_in_range(0..=2)? {
            0 => None,
            1 => Some(i64::arbitrary(u)?.to_string()),
            _ => Some(fuzz_input::text(u)?),
        };
        owned.push((name, value));
    }
    for (name, value) in &owned {
        directives.push(match value {
            None => Directive::Flag(name),
            Some(value) => Directive::Value(name, value),
        });
    }
    let before = headers.clone();
    let mut patched = headers.clone();
    patch_cache_control(&mut patched, &directives);
    let clean = owned
        .iter()
        .all(|(name, value)| is_token(name.trim()) && value.as_deref().is_none_or(is_token));
    if clean {
        check_patch(&before, &patched, &owned);
    }

    // patch_response_headers: never a panic, whatever the timeout and clock.
    let timeout = Duration::from_secs(u64::arbitrary(u)?);
    let offset = i64::arbitrary(u)?;
    let now = if offset >= 0 {
        UNIX_EPOCH.checked_add(Duration::from_secs(offset.unsigned_abs()))
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_secs(offset.unsigned_abs()))
    }
    .unwrap_or_else(SystemTime::now);
    let mut response = headers.clone();
    patch_response_headers(&mut response, timeout, now);
    assert!(response.contains_key(EXPIRES));
    if !headers.contains_key(EXPIRES) {
        let expires = response[EXPIRES].to_str().expect("an HTTP date is ASCII");
        httpdate::parse_http_date(expires).expect("Expires is an HTTP date");
    }
    let secs = i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX);
    let patched_max_age = get_max_age(&response).expect("max-age is set");
    assert!(patched_max_age <= secs, "{response:?}");
    Ok(())
}

fn check_patch(before: &HeaderMap, after: &HeaderMap, patched: &[(String, Option<String>)]) {
    let names: Vec<String> = patched.iter().map(|(n, _)| normalise(n)).collect();
    for (i, name) in names.iter().enumerate() {
        let overridden = match name.as_str() {
            "public" => names[i + 1..].iter().any(|n| n == "private"),
            "private" => names[i + 1..].iter().any(|n| n == "public"),
            _ => false,
        };
        if !overridden {
            assert!(
                has_cache_directive(after, name),
                "{name} lost: {before:?} -> {after:?}"
            );
        }
    }
    let max_ages: Vec<Option<i64>> = patched
        .iter()
        .filter(|(n, _)| normalise(n) == "max-age")
        .map(|(_, v)| v.as_deref().and_then(|v| v.parse().ok()))
        .collect();
    if !max_ages.is_empty() && max_ages.iter().all(Option::is_some) {
        let smallest = max_ages.iter().flatten().min().copied().unwrap_or_default();
        let got = get_max_age(after).expect("a patched max-age reads back");
        assert!(
            got <= smallest,
            "{got} > {smallest}: {before:?} -> {after:?}"
        );
    }
    // Directives already there, other than those the patch may rewrite or
    // drop, are kept.
    for value in before.get_all(CACHE_CONTROL) {
        for part in latin1_parts(value) {
            let name = directive_name(&part).to_ascii_lowercase();
            if ["public", "private", "no-cache", "max-age"].contains(&name.as_str())
                || names.contains(&name)
            {
                continue;
            }
            assert!(
                has_cache_directive(after, &name),
                "{part:?} lost: {before:?} -> {after:?}"
            );
        }
    }
}
