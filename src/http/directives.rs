//! `Cache-Control` directives as RFC 9111 reads them (section 5.2), for the
//! [RFC 9111 policy](super::rfc9111): a response's, from `Cache-Control` or a
//! targeted field such as `CDN-Cache-Control` (RFC 9213), and a request's.
//!
//! Names are case-insensitive; a delta-seconds value is digits only, capped
//! at 2<sup>31</sup> seconds (section 1.2.2). A value that is not
//! (`max-age="3600"`, `max-age=-1`, `max-age=1.5`) is invalid: freshness it
//! would give is none, so the response is stale. When a directive is given
//! more than once, the smallest value counts (section 4.2.1 lets a cache
//! treat the response as stale instead; the smallest is never fresher than
//! either).
//!
//! ```
//! use http::{HeaderMap, HeaderValue, header::CACHE_CONTROL};
//! use tower_cache::http::directives::{Delta, ResponseDirectives};
//!
//! let mut headers = HeaderMap::new();
//! headers.insert(CACHE_CONTROL, HeaderValue::from_static("public, MAX-AGE=60, no-cache=\"Set-Cookie\""));
//! let directives = ResponseDirectives::parse(&headers, &CACHE_CONTROL, None);
//! assert!(directives.public && !directives.no_cache);
//! assert_eq!(directives.max_age, Some(Delta::Seconds(60)));
//! assert_eq!(directives.no_cache_fields, ["set-cookie"]);
//! ```

use http::header::{CACHE_CONTROL, PRAGMA};
use http::{HeaderMap, HeaderName};

use super::headers::header_parts;

/// The largest delta-seconds a cache has to handle (RFC 9111 section 1.2.2):
/// larger values are read as this.
pub const MAX_DELTA_SECONDS: u64 = 2_147_483_648;

/// A delta-seconds directive value (`max-age=60`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delta {
    /// A valid number of seconds (capped at [`MAX_DELTA_SECONDS`]).
    Seconds(u64),
    /// A value that is not digits only (quoted, negative, a fraction,
    /// missing): no freshness.
    Invalid,
}

impl Delta {
    fn parse(value: Option<&str>) -> Delta {
        match value {
            Some(digits) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
                // Only overflow can fail here: that is more than the cap.
                Delta::Seconds(
                    digits
                        .parse::<u64>()
                        .map_or(MAX_DELTA_SECONDS, |s| s.min(MAX_DELTA_SECONDS)),
                )
            }
            _ => Delta::Invalid,
        }
    }

    /// The seconds, with an invalid value as 0 (stale at once).
    pub fn seconds(self) -> u64 {
        match self {
            Delta::Seconds(seconds) => seconds,
            Delta::Invalid => 0,
        }
    }

    /// The smaller of two occurrences; an invalid one wins.
    fn strictest(earlier: Option<Delta>, next: Delta) -> Option<Delta> {
        Some(match (earlier, next) {
            (Some(Delta::Invalid), _) | (_, Delta::Invalid) => Delta::Invalid,
            (Some(Delta::Seconds(a)), Delta::Seconds(b)) => Delta::Seconds(a.min(b)),
            (None, next) => next,
        })
    }
}

/// One directive: its lowercase name and its value, unquoted.
struct Parsed {
    name: String,
    value: Option<String>,
}

/// The directives of every `field` line. With `target`, a directive that
/// names a device after a `;` (`max-age=60;edge`, the `Surrogate-Control`
/// syntax) counts only when it names `target`; without one, such
/// directives are ignored.
fn parse_all(headers: &HeaderMap, field: &HeaderName, target: Option<&str>) -> Vec<Parsed> {
    let mut parsed = Vec::new();
    for part in header_parts(headers, field) {
        let (directive, device) = match part.split_once(';') {
            // A quoted value may hold a `;`.
            Some((before, after)) if !before.contains('"') => (before, Some(after.trim())),
            _ => (&*part, None),
        };
        if let Some(device) = device {
            if target.is_none_or(|t| !device.eq_ignore_ascii_case(t)) {
                continue;
            }
        }
        let (name, value) = match directive.split_once('=') {
            Some((name, value)) => (name.trim(), Some(value.trim())),
            None => (directive.trim(), None),
        };
        parsed.push(Parsed {
            name: name.to_ascii_lowercase(),
            value: value.map(str::to_owned),
        });
    }
    parsed
}

/// The field names of a qualified `no-cache="a, b"` or `private="a"`,
/// lowercase. One header line is split on commas before this sees it, so
/// a quoted list arrives in pieces: the first with its opening quote.
fn field_names(value: &str) -> impl Iterator<Item = String> + '_ {
    value
        .trim_matches('"')
        .split(',')
        .map(|name| name.trim().to_ascii_lowercase())
        .filter(|name| !name.is_empty())
}

/// A response's caching directives (RFC 9111 section 5.2.2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResponseDirectives {
    /// `no-store`.
    pub no_store: bool,
    /// An unqualified `no-cache`: every reuse is revalidated.
    pub no_cache: bool,
    /// The fields of a qualified `no-cache="..."`: not stored.
    pub no_cache_fields: Vec<String>,
    /// An unqualified `private`: no shared cache stores it.
    pub private: bool,
    /// The fields of a qualified `private="..."`: not stored.
    pub private_fields: Vec<String>,
    /// `public`.
    pub public: bool,
    /// `must-revalidate`: never served stale.
    pub must_revalidate: bool,
    /// `proxy-revalidate`: never served stale by a shared cache.
    pub proxy_revalidate: bool,
    /// `must-understand`: stored only with a status the cache understands
    /// (then `no-store` is ignored).
    pub must_understand: bool,
    /// `max-age`.
    pub max_age: Option<Delta>,
    /// `s-maxage`: a shared cache's lifetime, and `proxy-revalidate`.
    pub s_maxage: Option<Delta>,
    /// `stale-while-revalidate` (RFC 5861).
    pub stale_while_revalidate: Option<Delta>,
    /// `stale-if-error` (RFC 5861).
    pub stale_if_error: Option<Delta>,
    /// Whether `field` had any directive at all.
    pub present: bool,
}

impl ResponseDirectives {
    /// The directives of every `field` line of `headers`; `target` as for a
    /// targeted field's device (`Surrogate-Control: max-age=60;edge`).
    pub fn parse(
        headers: &HeaderMap,
        field: &HeaderName,
        target: Option<&str>,
    ) -> ResponseDirectives {
        let mut d = ResponseDirectives::default();
        let mut qualified: Option<&mut Vec<String>> = None;
        let parsed = parse_all(headers, field, target);
        for Parsed { name, value } in &parsed {
            d.present = true;
            // The rest of a quoted field list split on its commas.
            if value.is_none() {
                if let Some(fields) = qualified.as_deref_mut() {
                    fields.extend(field_names(name));
                    if name.ends_with('"') {
                        qualified = None;
                    }
                    continue;
                }
            }
            qualified = None;
            let value = value.as_deref();
            let delta = || Delta::parse(value);
            match name.as_str() {
                "no-store" => d.no_store = true,
                "no-cache" => match value {
                    None => d.no_cache = true,
                    Some(list) => {
                        d.no_cache_fields.extend(field_names(list));
                        if list.starts_with('"') && !list[1..].ends_with('"') {
                            qualified = Some(&mut d.no_cache_fields);
                        }
                    }
                },
                "private" => match value {
                    None => d.private = true,
                    Some(list) => {
                        d.private_fields.extend(field_names(list));
                        if list.starts_with('"') && !list[1..].ends_with('"') {
                            qualified = Some(&mut d.private_fields);
                        }
                    }
                },
                "public" => d.public = true,
                "must-revalidate" => d.must_revalidate = true,
                "proxy-revalidate" => d.proxy_revalidate = true,
                "must-understand" => d.must_understand = true,
                "max-age" => d.max_age = Delta::strictest(d.max_age, delta()),
                "s-maxage" => d.s_maxage = Delta::strictest(d.s_maxage, delta()),
                "stale-while-revalidate" => {
                    d.stale_while_revalidate = Delta::strictest(d.stale_while_revalidate, delta())
                }
                "stale-if-error" => d.stale_if_error = Delta::strictest(d.stale_if_error, delta()),
                _ => {}
            }
        }
        d
    }

    /// Whether a shared cache may serve the response stale at all: not
    /// with `must-revalidate`, `proxy-revalidate`, `s-maxage` (which
    /// implies it) or `no-cache`.
    pub fn allows_stale(&self) -> bool {
        !(self.must_revalidate || self.proxy_revalidate || self.s_maxage.is_some() || self.no_cache)
    }

    /// The fields never stored: those of a qualified `no-cache` or `private`.
    pub fn unstored_fields(&self) -> impl Iterator<Item = &str> {
        self.no_cache_fields
            .iter()
            .chain(&self.private_fields)
            .map(String::as_str)
    }
}

/// A request's caching directives (RFC 9111 section 5.2.1), with
/// `Pragma: no-cache` as `no-cache` when there is no `Cache-Control`
/// (section 5.4).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RequestDirectives {
    /// `no-cache`: a stored response is revalidated before it is used.
    pub no_cache: bool,
    /// `no-store`: the response is not stored.
    pub no_store: bool,
    /// `max-age`: a stored response older than this is not used.
    pub max_age: Option<Delta>,
    /// `min-fresh`: a stored response must stay fresh this much longer.
    pub min_fresh: Option<Delta>,
    /// `max-stale`, with its bound (`None`: any staleness; an invalid
    /// value allows none).
    pub max_stale: Option<Option<Delta>>,
    /// `only-if-cached`: answer from the cache or with a 504.
    pub only_if_cached: bool,
}

impl RequestDirectives {
    /// The directives of a request's headers.
    pub fn parse(headers: &HeaderMap) -> RequestDirectives {
        let mut d = RequestDirectives::default();
        if !headers.contains_key(CACHE_CONTROL) {
            d.no_cache = header_parts(headers, &PRAGMA).any(|p| p.eq_ignore_ascii_case("no-cache"));
            return d;
        }
        for Parsed { name, value } in parse_all(headers, &CACHE_CONTROL, None) {
            let delta = || Delta::parse(value.as_deref());
            match name.as_str() {
                "no-cache" => d.no_cache = true,
                "no-store" => d.no_store = true,
                "max-age" => d.max_age = Delta::strictest(d.max_age, delta()),
                "min-fresh" => d.min_fresh = Delta::strictest(d.min_fresh, delta()),
                "max-stale" => d.max_stale = Some(value.is_some().then(delta)),
                "only-if-cached" => d.only_if_cached = true,
                _ => {}
            }
        }
        d
    }

    /// Whether the request lets the cache answer without asking the origin
    /// when nothing in the request says to ask (the common case: no
    /// directive).
    pub fn is_plain(&self) -> bool {
        *self == RequestDirectives::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(name: &'static str, lines: &[&'static str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for line in lines {
            map.append(name, HeaderValue::from_static(line));
        }
        map
    }

    fn response(lines: &[&'static str]) -> ResponseDirectives {
        ResponseDirectives::parse(&headers("cache-control", lines), &CACHE_CONTROL, None)
    }

    #[test]
    fn delta_seconds_are_digits_only() {
        for (value, expected) in [
            ("max-age=60", Some(Delta::Seconds(60))),
            ("Max-Age=60", Some(Delta::Seconds(60))),
            ("max-age=\"60\"", Some(Delta::Invalid)),
            ("max-age=-1", Some(Delta::Invalid)),
            ("max-age=1.5", Some(Delta::Invalid)),
            ("max-age=", Some(Delta::Invalid)),
            ("max-age", Some(Delta::Invalid)),
            (
                "max-age=99999999999",
                Some(Delta::Seconds(MAX_DELTA_SECONDS)),
            ),
            (
                "max-age=99999999999999999999999",
                Some(Delta::Seconds(MAX_DELTA_SECONDS)),
            ),
            ("public", None),
        ] {
            assert_eq!(response(&[value]).max_age, expected, "{value}");
        }
    }

    #[test]
    fn repeated_directives_take_the_strictest() {
        assert_eq!(
            response(&["max-age=60, max-age=10"]).max_age,
            Some(Delta::Seconds(10))
        );
        assert_eq!(
            response(&["max-age=10", "max-age=abc"]).max_age,
            Some(Delta::Invalid)
        );
    }

    #[test]
    fn qualified_no_cache_and_private_name_fields() {
        let d = response(&["no-cache=\"Set-Cookie, X-A, X-C\", private=X-B, max-age=5"]);
        assert!(!d.no_cache && !d.private);
        assert_eq!(d.no_cache_fields, ["set-cookie", "x-a", "x-c"]);
        assert_eq!(d.private_fields, ["x-b"]);
        assert_eq!(d.max_age, Some(Delta::Seconds(5)));
        assert!(response(&["no-cache"]).no_cache);
        assert!(response(&["PRIVATE"]).private);
    }

    #[test]
    fn targeted_directives_count_for_their_target_only() {
        let field = HeaderName::from_static("surrogate-control");
        let map = headers("surrogate-control", &["max-age=10;edge, no-store;other"]);
        let mine = ResponseDirectives::parse(&map, &field, Some("edge"));
        assert_eq!(mine.max_age, Some(Delta::Seconds(10)));
        assert!(!mine.no_store);
        let untargeted = ResponseDirectives::parse(&map, &field, None);
        assert_eq!(untargeted.max_age, None);
        assert!(!untargeted.present);
    }

    #[test]
    fn stale_is_allowed_unless_forbidden() {
        assert!(response(&["max-age=5"]).allows_stale());
        for forbids in [
            "must-revalidate",
            "proxy-revalidate",
            "s-maxage=5",
            "no-cache",
        ] {
            assert!(!response(&[forbids]).allows_stale(), "{forbids}");
        }
    }

    #[test]
    fn request_directives() {
        let d = RequestDirectives::parse(&headers(
            "cache-control",
            &["max-age=5, min-fresh=2, max-stale, only-if-cached, no-store"],
        ));
        assert_eq!(d.max_age, Some(Delta::Seconds(5)));
        assert_eq!(d.min_fresh, Some(Delta::Seconds(2)));
        assert_eq!(d.max_stale, Some(None));
        assert!(d.only_if_cached && d.no_store && !d.no_cache);
        let bounded = RequestDirectives::parse(&headers("cache-control", &["max-stale=7"]));
        assert_eq!(bounded.max_stale, Some(Some(Delta::Seconds(7))));
        assert!(RequestDirectives::parse(&headers("pragma", &["no-cache"])).no_cache);
        // Cache-Control wins over Pragma.
        let mut both = headers("pragma", &["no-cache"]);
        both.insert(CACHE_CONTROL, HeaderValue::from_static("max-age=60"));
        assert!(!RequestDirectives::parse(&both).no_cache);
        assert!(RequestDirectives::parse(&HeaderMap::new()).is_plain());
    }
}
