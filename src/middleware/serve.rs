//! A response from the cache: a stored entry served as a hit, a stale
//! answer, a coalesced follower's copy or a freshened revalidation, with
//! its `Age`, the request's preconditions (`304`) and range (`206`), and
//! its outcome recorded.

use std::sync::LazyLock;
use std::time::{Duration, UNIX_EPOCH};

use http::header::{AGE, CONTENT_LENGTH, CONTENT_RANGE};
use http::{Extensions, HeaderMap, HeaderValue, Method, Response, StatusCode};

use super::body::CacheBody;
use super::cache_status::{record, replace_member};
use super::decoded::{Places, put};
use super::outcome::Outcome;
use super::settings::Settings;
use crate::http::conditional::{
    is_not_modified, is_not_modified_since_stored, not_modified_headers,
};
use crate::http::directives::MAX_DELTA_SECONDS;
use crate::http::range::{content_range, single_range};
use crate::http::request_fields::RequestFields;
use crate::http::stored::StoredResponse;

/// What a response from the cache needs of the request and the layer.
pub(crate) struct Serving<'a> {
    pub(crate) settings: &'a Settings,
    pub(crate) method: &'a Method,
    /// The request's headers: its preconditions.
    pub(crate) request: &'a HeaderMap,
    /// Which of them it sends.
    pub(crate) fields: RequestFields,
    pub(crate) now: u64,
}

impl<'a> Serving<'a> {
    /// For a request with `method` and `headers` (read in one pass), at
    /// `now`.
    pub(crate) fn new(
        settings: &'a Settings,
        method: &'a Method,
        headers: &'a HeaderMap,
        now: u64,
    ) -> Serving<'a> {
        Serving {
            settings,
            method,
            request: headers,
            fields: RequestFields::scan(headers).0,
            now,
        }
    }

    /// The same, at `now`: for a response served after a wait.
    pub(crate) fn at(&self, now: u64) -> Serving<'a> {
        Serving { now, ..*self }
    }
}

/// A response from the cache, as Django serves a hit: the stored response
/// with `Age` (digest 5.5 step 6); for HEAD, no body but the entry's
/// `Content-Length`. A request whose `If-None-Match` or `If-Modified-Since`
/// the entry satisfies gets a `304 Not Modified` instead
/// ([`conditional`](crate::http::conditional)). The outcome gets the
/// entry's remaining freshness, and is recorded (with `Cache-Status`).
pub(crate) fn hit_response<B>(
    entry: StoredResponse,
    serving: &Serving<'_>,
    outcome: Outcome,
) -> Response<CacheBody<B>> {
    hit_response_in(
        entry,
        serving,
        outcome,
        Extensions::new(),
        Places::default(),
    )
}

/// [`hit_response`], whose response gets `extensions` (cleared: a
/// request's, whose map then holds the outcome without allocating one).
/// `places`: where the entry's headers, a map made ready to serve, hold
/// what the hit writes ([`Decoded`](super::decoded::Decoded)), with a
/// `Cache-Status` stand-in that the member replaces.
pub(crate) fn hit_response_in<B>(
    entry: StoredResponse,
    serving: &Serving<'_>,
    mut outcome: Outcome,
    extensions: Extensions,
    places: Places,
) -> Response<CacheBody<B>> {
    let now = serving.now;
    let StoredResponse {
        status,
        mut headers,
        body,
        times,
        ..
    } = entry;
    let rfc9111 = serving.settings.policy.rfc9111_rules().is_some();
    if rfc9111 {
        // RFC 9111 section 4.2.3: the age it arrived with plus its time here.
        // At most 2^31 seconds, the largest Age a cache need send (§1.2.2).
        let age = times.age_at(now).min(MAX_DELTA_SECONDS);
        put(&mut headers, places.age, AGE, age_value(age));
    } else if let Some(base) = times.age_base {
        // Django's Age, `now - (Expires - max-age)`, bounded by the time the
        // entry has spent here plus the age it arrived with: an `Expires`
        // in the past must not make a fresh copy decades old.
        let django = i64::try_from(now)
            .unwrap_or(i64::MAX)
            .saturating_sub(base)
            .max(0);
        let django = u64::try_from(django).unwrap_or(0);
        let here = now.saturating_sub(times.stored_at);
        // The age it arrived with only matters past the time spent here
        // (nearly every hit stops here: `Expires` counts from the store).
        let age = if django <= here {
            django
        } else {
            let arrived = headers
                .get(AGE)
                .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok())
                .unwrap_or(0);
            django.min(here.saturating_add(arrived))
        };
        put(&mut headers, places.age, AGE, age_value(age));
    }
    let not_modified = if !serving.fields.preconditions {
        false
    } else if rfc9111 {
        let received = UNIX_EPOCH + Duration::from_secs(times.stored_at);
        is_not_modified_since_stored(serving.method, serving.request, &headers, received)
    } else {
        is_not_modified(serving.method, serving.request, &headers)
    };
    let partial = (serving.fields.range
        && rfc9111
        && !not_modified
        && status == StatusCode::OK
        && serving.method == Method::GET)
        .then(|| single_range(serving.request, body.len() as u64))
        .flatten();
    // Set after the outcome's `Cache-Status`, as the server sets a whole
    // body's length: where a map made ready to serve has them.
    let mut length = None;
    let mut range_header = None;
    let (status, body) = if not_modified {
        headers = not_modified_headers(headers);
        (StatusCode::NOT_MODIFIED, CacheBody::absent())
    } else if let Some(range) = partial {
        range_header = Some(content_range(&range, body.len() as u64));
        // In bounds: the range is clamped to the body.
        let slice = body.slice(range.start as usize..range.end as usize);
        length = Some(HeaderValue::from(slice.len()));
        (StatusCode::PARTIAL_CONTENT, CacheBody::full(slice))
    } else if serving.method == Method::HEAD {
        length = Some(HeaderValue::from(body.len()));
        (status, CacheBody::empty())
    } else {
        (status, CacheBody::full(body))
    };
    let fresh_until = i64::try_from(times.fresh_until).unwrap_or(i64::MAX);
    outcome.ttl = Some(fresh_until.saturating_sub(i64::try_from(now).unwrap_or(i64::MAX)));
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    *response.extensions_mut() = extensions;
    let name = serving.settings.cache_status.as_ref();
    if let Some(place) = places.status {
        replace_member(&mut response, outcome, name, place);
    } else {
        record(&mut response, outcome, name);
    }
    if let Some(length) = length {
        response.headers_mut().insert(CONTENT_LENGTH, length);
    }
    if let Some(range) = range_header {
        response.headers_mut().insert(CONTENT_RANGE, range);
    }
    response
}

/// How many `Age` values are made once, as static header values: a hit
/// younger than this (17 minutes) adds no allocation for its `Age`.
const TABLED_AGES: u64 = 1024;

/// An `Age` header value.
fn age_value(age: u64) -> HeaderValue {
    static TABLE: LazyLock<Box<[HeaderValue]>> = LazyLock::new(|| {
        let mut digits = String::new();
        let mut bounds = Vec::new();
        for age in 0..TABLED_AGES {
            let start = digits.len();
            digits.push_str(itoa::Buffer::new().format(age));
            bounds.push(start..digits.len());
        }
        // Made once per process and never freed: static data built at run time.
        let digits: &'static str = Box::leak(digits.into_boxed_str());
        bounds
            .into_iter()
            .map(|range| HeaderValue::from_static(&digits[range]))
            .collect()
    });
    match usize::try_from(age).ok().and_then(|i| TABLE.get(i)) {
        Some(value) => value.clone(),
        None => HeaderValue::from(age),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_age_value_is_its_decimal_digits_in_and_past_the_table() {
        for age in [0, 1, 9, 10, 99, 100, 1023, 1024, 86_400, MAX_DELTA_SECONDS] {
            assert_eq!(age_value(age).to_str().unwrap(), age.to_string());
        }
    }
}
