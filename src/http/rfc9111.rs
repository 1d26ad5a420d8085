//! The RFC 9111 policy: what a standard shared cache stores (section 3),
//! for how long (section 4.2), and how old a response is (section 4.2.3).
//! The request side (reuse, validation, invalidation) is in the layers;
//! every rule here is a pure function of headers and times.
//!
//! ```
//! use std::time::Duration;
//! use http::{HeaderMap, HeaderValue, StatusCode, header};
//! use tower_cache::http::policy::{BodySize, Policy};
//! use tower_cache::http::rfc9111::{Exchange, Rfc9111};
//!
//! let policy = Policy::rfc9111(Rfc9111::new());
//! let mut headers = HeaderMap::new();
//! headers.insert(header::DATE, HeaderValue::from_static("Tue, 01 Dec 2026 10:00:00 GMT"));
//! headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("max-age=300"));
//! headers.insert(header::AGE, HeaderValue::from_static("100"));
//! let now = 1_796_119_200; // the Date above, in Unix seconds
//! let body = BodySize { lower: 5, upper: Some(5) };
//! let exchange = Exchange { authorized: false, request_time: now, response_time: now };
//!
//! let storage = policy.decide_exchange(&exchange, StatusCode::OK, &headers, body).unwrap();
//! assert_eq!(storage.timeout, Duration::from_secs(200)); // 300 - the 100 it arrived with
//! assert_eq!(storage.age, 100);
//! ```

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::{AGE, CACHE_CONTROL, DATE, ETAG, EXPIRES, LAST_MODIFIED};
use http::{HeaderMap, HeaderName, StatusCode};

use super::directives::ResponseDirectives;

/// The switches of the RFC 9111 policy ([`Policy::rfc9111`](super::policy::Policy::rfc9111)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Rfc9111 {
    /// Heuristic freshness (section 4.2.2), as a percentage of the time
    /// since `Last-Modified` (10, as the RFC suggests); 0 turns it off.
    pub heuristic_percent: u32,
    /// The longest heuristic freshness (a day by default).
    pub heuristic_cap: Duration,
    /// The lifetime of a storable response that gives no freshness of its
    /// own and gets no heuristic (none by default: such a response is
    /// stored only to be revalidated, when it has a validator).
    pub default_lifetime: Option<Duration>,
    /// Targeted fields (RFC 9213), in order of preference: the first one a
    /// response carries, with a directive, replaces its `Cache-Control`
    /// and `Expires`, and is removed before the client. None by default;
    /// `CDN-Cache-Control` is the standard one.
    pub targeted_fields: Vec<HeaderName>,
    /// The device name a targeted directive may be addressed to
    /// (`Surrogate-Control: max-age=60;edge`): directives addressed to
    /// another one, or to any when this is `None`, are ignored.
    pub target: Option<String>,
    /// How long past its freshness a stored response with a validator
    /// (`ETag`, `Last-Modified`) is kept to be revalidated with a
    /// conditional request (10 minutes, nginx's `inactive`).
    pub keep_stale: Duration,
    /// Whether requests' `Cache-Control` (and `Pragma: no-cache`) count
    /// (yes by default, as RFC 9111 has it). Any client can then make the
    /// cache ask the origin (`no-cache`, `max-age=0`): turn this off, as
    /// nginx and Varnish do by default, when clients must not choose the
    /// origin's load.
    pub request_directives: bool,
}

impl Default for Rfc9111 {
    fn default() -> Self {
        Rfc9111::new()
    }
}

impl Rfc9111 {
    /// The defaults: 10% heuristic capped at a day, no default lifetime,
    /// no targeted field, stale entries kept 10 minutes to be revalidated.
    pub fn new() -> Rfc9111 {
        Rfc9111 {
            heuristic_percent: 10,
            heuristic_cap: Duration::from_secs(24 * 3600),
            default_lifetime: None,
            targeted_fields: Vec::new(),
            target: None,
            keep_stale: Duration::from_secs(600),
            request_directives: true,
        }
    }

    /// Heuristic freshness: `percent` of the time since `Last-Modified`,
    /// at most `cap` (0 turns it off).
    pub fn heuristic(mut self, percent: u32, cap: Duration) -> Self {
        self.heuristic_percent = percent;
        self.heuristic_cap = cap;
        self
    }

    /// The lifetime of storable responses without freshness information.
    pub fn default_lifetime(mut self, lifetime: Duration) -> Self {
        self.default_lifetime = Some(lifetime);
        self
    }

    /// Honours a targeted field (`CDN-Cache-Control`, `Surrogate-Control`,
    /// a vendor's), after any given before.
    pub fn targeted_field(mut self, name: HeaderName) -> Self {
        self.targeted_fields.push(name);
        self
    }

    /// The device name targeted directives may address (`;edge`).
    pub fn target(mut self, name: impl Into<String>) -> Self {
        self.target = Some(name.into());
        self
    }

    /// How long stale responses with a validator are kept to be revalidated.
    pub fn keep_stale(mut self, keep: Duration) -> Self {
        self.keep_stale = keep;
        self
    }

    /// Whether requests' `Cache-Control` counts ([`request_directives`](Rfc9111::request_directives)).
    pub fn honour_request_directives(mut self, honour: bool) -> Self {
        self.request_directives = honour;
        self
    }

    /// The directives that govern a response: the first targeted field it
    /// carries with a directive for this cache, else `Cache-Control`; and
    /// which field that was (`None`: `Cache-Control`).
    pub fn directives(&self, headers: &HeaderMap) -> (ResponseDirectives, Option<&HeaderName>) {
        for field in &self.targeted_fields {
            let directives = ResponseDirectives::parse(headers, field, self.target.as_deref());
            if directives.present {
                return (directives, Some(field));
            }
        }
        (
            ResponseDirectives::parse(headers, &CACHE_CONTROL, None),
            None,
        )
    }

    /// The freshness lifetime (section 4.2.1), in seconds: `s-maxage`, else
    /// `max-age`, else `Expires` minus `Date` (not when a targeted field
    /// governs), else the heuristic for a heuristically cacheable status or
    /// a `public` response with `Last-Modified`, else the default lifetime.
    /// `None`: no freshness information at all.
    pub fn freshness_lifetime(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        directives: &ResponseDirectives,
        targeted: bool,
        response_time: u64,
    ) -> Option<u64> {
        if let Some(delta) = directives.s_maxage.or(directives.max_age) {
            return Some(delta.seconds());
        }
        let date = date_of(headers, response_time);
        if !targeted && headers.contains_key(EXPIRES) {
            let expires = single(headers, &EXPIRES).and_then(unix_seconds);
            return Some(expires.map_or(0, |e| e.saturating_sub(date)));
        }
        if self.heuristic_percent > 0 && (is_heuristically_cacheable(status) || directives.public) {
            if let Some(modified) = single(headers, &LAST_MODIFIED).and_then(unix_seconds) {
                let since = date.saturating_sub(modified);
                let heuristic = since.saturating_mul(u64::from(self.heuristic_percent)) / 100;
                return Some(heuristic.min(self.heuristic_cap.as_secs()));
            }
        }
        self.default_lifetime.map(|d| d.as_secs())
    }
}

/// Whether a status is heuristically cacheable (RFC 9110 section 15.1).
pub fn is_heuristically_cacheable(status: StatusCode) -> bool {
    matches!(
        status.as_u16(),
        200 | 203 | 204 | 206 | 300 | 301 | 308 | 404 | 405 | 410 | 414 | 501
    )
}

/// Whether the cache understands a status well enough to store a response
/// with `must-understand` (section 5.2.2.3): the final statuses RFC 9110
/// defines, except 206 (this cache stores no partial content) and 304.
pub fn is_understood(status: StatusCode) -> bool {
    matches!(
        status.as_u16(),
        200..=205 | 300..=303 | 305 | 307 | 308 | 400..=418 | 421 | 422 | 426 | 500..=505
    )
}

/// Whether a response carries a validator: `ETag` or `Last-Modified`.
pub fn has_validator(headers: &HeaderMap) -> bool {
    headers.contains_key(ETAG) || headers.contains_key(LAST_MODIFIED)
}

/// The corrected initial age of a response (section 4.2.3), in seconds:
/// the larger of its apparent age (`response_time - Date`) and its `Age`
/// plus the time the request took. `None` when `Age` cannot be read
/// (not one non-negative integer on one line): the response is then
/// treated as stale.
pub fn initial_age(headers: &HeaderMap, request_time: u64, response_time: u64) -> Option<u64> {
    let age_value = match headers.get_all(AGE).iter().count() {
        0 => 0,
        1 => {
            let value = headers.get(AGE)?.to_str().ok()?.trim();
            if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            value.parse::<u64>().unwrap_or(u64::MAX)
        }
        _ => return None,
    };
    let apparent = response_time.saturating_sub(date_of(headers, response_time));
    let delay = response_time.saturating_sub(request_time);
    Some(apparent.max(age_value.saturating_add(delay)))
}

/// A response's `Date` in Unix seconds, or `fallback` when it has none
/// that parses (section 4.2.3 treats it as received then).
fn date_of(headers: &HeaderMap, fallback: u64) -> u64 {
    single(headers, &DATE)
        .and_then(unix_seconds)
        .unwrap_or(fallback)
}

fn single<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
    let mut values = headers.get_all(name).iter();
    let value = values.next()?;
    values.next().is_none().then(|| value.to_str().ok())?
}

/// An HTTP date (any of the three formats) in Unix seconds.
fn unix_seconds(text: &str) -> Option<u64> {
    let time: SystemTime = httpdate::parse_http_date(text.trim()).ok()?;
    Some(time.duration_since(UNIX_EPOCH).ok()?.as_secs())
}

/// What a response's exchange adds to its headers: whether the request had
/// `Authorization`, and when it was sent and answered (Unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exchange {
    /// The request carried `Authorization`.
    pub authorized: bool,
    /// When the request was sent on.
    pub request_time: u64,
    /// When the response arrived.
    pub response_time: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    const NOW: u64 = 1_796_119_200; // Tue, 01 Dec 2026 10:00:00 GMT

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    fn lifetime(status: u16, pairs: &[(&'static str, &'static str)]) -> Option<u64> {
        let rules = Rfc9111::new();
        let h = headers(pairs);
        let (d, targeted) = rules.directives(&h);
        let status = StatusCode::from_u16(status).unwrap();
        rules.freshness_lifetime(status, &h, &d, targeted.is_some(), NOW)
    }

    #[test]
    fn s_maxage_over_max_age_over_expires() {
        let date = ("date", "Tue, 01 Dec 2026 10:00:00 GMT");
        let expires = ("expires", "Tue, 01 Dec 2026 11:00:00 GMT");
        assert_eq!(lifetime(200, &[date, expires]), Some(3600));
        assert_eq!(
            lifetime(200, &[date, expires, ("cache-control", "max-age=60")]),
            Some(60)
        );
        assert_eq!(
            lifetime(
                200,
                &[date, expires, ("cache-control", "max-age=60, s-maxage=5")]
            ),
            Some(5)
        );
        // Invalid values: stale.
        assert_eq!(
            lifetime(200, &[("cache-control", "max-age=\"60\"")]),
            Some(0)
        );
        assert_eq!(lifetime(200, &[date, ("expires", "0")]), Some(0));
        // An Expires before Date.
        assert_eq!(
            lifetime(200, &[date, ("expires", "Tue, 01 Dec 2026 09:00:00 GMT")]),
            Some(0)
        );
    }

    #[test]
    fn heuristic_for_the_listed_statuses_only() {
        let date = ("date", "Tue, 01 Dec 2026 10:00:00 GMT");
        let modified = ("last-modified", "Tue, 01 Dec 2026 00:00:00 GMT");
        assert_eq!(lifetime(200, &[date, modified]), Some(3600)); // 10% of 10 h
        assert_eq!(lifetime(404, &[date, modified]), Some(3600));
        assert_eq!(lifetime(302, &[date, modified]), None);
        assert_eq!(
            lifetime(302, &[date, modified, ("cache-control", "public")]),
            Some(3600)
        );
        assert_eq!(lifetime(200, &[date]), None);
        let old = ("last-modified", "Wed, 01 Dec 2010 00:00:00 GMT");
        assert_eq!(lifetime(200, &[date, old]), Some(24 * 3600)); // capped
    }

    #[test]
    fn a_targeted_field_replaces_cache_control_and_expires() {
        let rules = Rfc9111::new().targeted_field(HeaderName::from_static("cdn-cache-control"));
        let h = headers(&[
            ("cache-control", "no-store"),
            ("expires", "0"),
            ("cdn-cache-control", "max-age=600"),
        ]);
        let (d, field) = rules.directives(&h);
        assert_eq!(field.map(HeaderName::as_str), Some("cdn-cache-control"));
        assert!(!d.no_store);
        assert_eq!(
            rules.freshness_lifetime(StatusCode::OK, &h, &d, true, NOW),
            Some(600)
        );
        let plain = headers(&[("cache-control", "max-age=5")]);
        assert_eq!(rules.directives(&plain).1, None);
    }

    #[test]
    fn initial_age() {
        let date = ("date", "Tue, 01 Dec 2026 10:00:00 GMT");
        assert_eq!(super::initial_age(&headers(&[date]), NOW, NOW), Some(0));
        assert_eq!(super::initial_age(&headers(&[date]), NOW, NOW + 7), Some(7));
        assert_eq!(
            super::initial_age(&headers(&[date, ("age", "30")]), NOW - 2, NOW),
            Some(32)
        );
        for bad in ["abc", "-1", "1.5", "0, 0", "30;x", ""] {
            assert_eq!(
                super::initial_age(&headers(&[date, ("age", bad)]), NOW, NOW),
                None,
                "{bad}"
            );
        }
        assert_eq!(
            super::initial_age(&headers(&[("age", "1"), ("age", "1")]), NOW, NOW),
            None
        );
    }

    #[test]
    fn statuses() {
        assert!(is_understood(StatusCode::OK));
        assert!(!is_understood(StatusCode::from_u16(599).unwrap()));
        assert!(!is_understood(StatusCode::PARTIAL_CONTENT));
        assert!(is_heuristically_cacheable(StatusCode::GONE));
        assert!(!is_heuristically_cacheable(StatusCode::FOUND));
    }
}
