//! `Cache-Control`, `Vary`, `Expires` and `max-age` helpers: Django's
//! `django.utils.cache` response helpers over [`http::HeaderMap`].
//!
//! Every function is pure and synchronous. Header lists are split as Django
//! 6.1 splits them ([`split_header_value`]): on commas, each part trimmed,
//! empty parts dropped. Values are read as ISO-8859-1, as WSGI hands them to
//! Django: a byte `>= 0x80` (obs-text) is the character of that code point,
//! so it never hides the directives beside it, and what the `patch_*`
//! functions keep of it is written back byte for byte.
//!
//! ```
//! use http::{HeaderMap, HeaderValue, header};
//! use tower_cache::http::headers::{get_max_age, has_vary_header, patch_vary_headers};
//!
//! let mut headers = HeaderMap::new();
//! headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=60"));
//! assert_eq!(get_max_age(&headers), Some(60));
//!
//! patch_vary_headers(&mut headers, &["Accept-Encoding", "Cookie"]);
//! assert_eq!(headers[header::VARY], "Accept-Encoding, Cookie");
//! assert!(has_vary_header(&headers, "cookie"));
//! ```

use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::{CACHE_CONTROL, EXPIRES, VARY};
use http::{HeaderMap, HeaderValue};

/// Splits a comma-separated header value into its trimmed, non-empty parts
/// (Django 6.1's `split_header_value`).
///
/// ```
/// use tower_cache::http::headers::split_header_value;
/// assert_eq!(split_header_value(" a ,, b,\tc ").collect::<Vec<_>>(), ["a", "b", "c"]);
/// ```
pub fn split_header_value(value: &str) -> impl Iterator<Item = &str> {
    value
        .split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
}

/// The parts of every `name` header in `headers`, as [`split_header_value`]
/// gives them. A value with bytes `>= 0x80` is read as ISO-8859-1 (each byte
/// the character of that code point): skipping it would hide the parts
/// beside it (`private, x="caf\xe9"`).
pub(crate) fn header_parts<'a>(
    headers: &'a HeaderMap,
    name: &http::HeaderName,
) -> impl Iterator<Item = Cow<'a, str>> {
    headers.get_all(name).iter().flat_map(|value| {
        let (ascii, latin1) = match value.to_str() {
            Ok(text) => (Some(text), None),
            Err(_) => (None, Some(latin1_parts(value.as_bytes()))),
        };
        ascii
            .into_iter()
            .flat_map(split_header_value)
            .map(Cow::Borrowed)
            .chain(latin1.into_iter().flatten().map(Cow::Owned))
    })
}

/// The parts of a value that is not all ASCII, read as ISO-8859-1.
fn latin1_parts(bytes: &[u8]) -> Vec<String> {
    let text: String = bytes.iter().copied().map(char::from).collect();
    split_header_value(&text).map(str::to_owned).collect()
}

/// The directive name of one `Cache-Control` part: what comes before the
/// first `=`, trimmed. Compare it case-insensitively.
fn directive_name(part: &str) -> &str {
    part.split_once('=').map_or(part, |(name, _)| name).trim()
}

/// Whether the response's `Cache-Control` has the directive `name`
/// (case-insensitive, qualified forms such as `private="Set-Cookie"` count,
/// `myprivate` does not): Django 6.1's `split_directive_names` test.
pub fn has_cache_directive(headers: &HeaderMap, name: &str) -> bool {
    header_parts(headers, &CACHE_CONTROL)
        .any(|part| directive_name(&part).eq_ignore_ascii_case(name))
}

/// The first of `names` that the `Cache-Control` header has, if any (see
/// [`has_cache_directive`]).
pub fn find_cache_directive<'n>(headers: &HeaderMap, names: &[&'n str]) -> Option<&'n str> {
    header_parts(headers, &CACHE_CONTROL).find_map(|part| {
        let name = directive_name(&part);
        names.iter().copied().find(|n| name.eq_ignore_ascii_case(n))
    })
}

/// The `max-age` of the response's `Cache-Control`, in seconds (Django's
/// `get_max_age`): `None` without the header, without the directive or when
/// its value is not an integer. The last `max-age` wins, and a bare `max-age`
/// is 1, as in Django (Python's `int(True)`).
///
/// ```
/// use http::{HeaderMap, HeaderValue, header::CACHE_CONTROL};
/// use tower_cache::http::headers::get_max_age;
///
/// let mut headers = HeaderMap::new();
/// for (value, expected) in [("max-age=10, max-age=20", Some(20)), ("\tmax-age=300", Some(300)),
///                           ("max-age=abc", None), ("max-age", Some(1)), ("public", None)] {
///     headers.insert(CACHE_CONTROL, HeaderValue::from_static(value));
///     assert_eq!(get_max_age(&headers), expected, "{value}");
/// }
/// ```
pub fn get_max_age(headers: &HeaderMap) -> Option<i64> {
    directive_value(headers, "max-age")
}

/// The `s-maxage` of the response's `Cache-Control`, parsed as [`get_max_age`] parses `max-age`.
pub fn get_s_maxage(headers: &HeaderMap) -> Option<i64> {
    directive_value(headers, "s-maxage")
}

/// The `stale-while-revalidate` and `stale-if-error` (RFC 5861) of the
/// response's `Cache-Control`, in seconds, parsed as [`get_max_age`] parses
/// `max-age`; a negative or unreadable value is `None`.
///
/// ```
/// use http::{HeaderMap, HeaderValue, header::CACHE_CONTROL};
/// use tower_cache::http::headers::get_stale_windows;
///
/// let mut headers = HeaderMap::new();
/// headers.insert(CACHE_CONTROL, HeaderValue::from_static("max-age=60, stale-while-revalidate=30"));
/// assert_eq!(get_stale_windows(&headers), (Some(30), None));
/// ```
pub fn get_stale_windows(headers: &HeaderMap) -> (Option<u32>, Option<u32>) {
    let seconds = |name| directive_value(headers, name).and_then(|v| u32::try_from(v).ok());
    (seconds("stale-while-revalidate"), seconds("stale-if-error"))
}

fn directive_value(headers: &HeaderMap, wanted: &str) -> Option<i64> {
    // The last occurrence wins, even when its value is not an integer.
    directive_values(headers, wanted).last()?
}

/// Every occurrence of the directive `wanted`, in order: its value, `None`
/// when that is not an integer, and 1 for a bare one (Django's `int(True)`).
fn directive_values<'a>(
    headers: &'a HeaderMap,
    wanted: &'a str,
) -> impl Iterator<Item = Option<i64>> + 'a {
    header_parts(headers, &CACHE_CONTROL).filter_map(move |part| match part.split_once('=') {
        Some((name, value)) if name.trim().eq_ignore_ascii_case(wanted) => {
            Some(value.trim().trim_matches('"').trim().parse().ok())
        }
        None if part.eq_ignore_ascii_case(wanted) => Some(Some(1)),
        _ => None,
    })
}

/// The most restrictive value of the directive `wanted` (`max-age`,
/// `s-maxage`), as a shared cache must read it (RFC 9111 section 4.2.1):
/// the smallest when it appears several times, on one line or several,
/// where [`get_max_age`] takes the last as Django does. `Err(())` when one
/// of them is not an integer: invalid freshness information, to be
/// treated as stale.
pub(crate) fn strictest_directive_value(
    headers: &HeaderMap,
    wanted: &str,
) -> Result<Option<i64>, ()> {
    directive_values(headers, wanted).try_fold(None, |smallest: Option<i64>, value| {
        let value = value.ok_or(())?;
        Ok(Some(smallest.map_or(value, |s| s.min(value))))
    })
}

/// Whether every `Cache-Control` directive name is plain visible ASCII.
/// One that is not (`\xc2\xa0private`, a UTF-8 no-break space before
/// `private`; a tab or obs-text inside a name) is no directive a cache
/// knows, but may well be one the origin meant: the response cannot be
/// read safely. Obs-text in a quoted value (`x="caf\xe9"`) is legal and
/// does not count.
pub(crate) fn cache_control_names_are_readable(headers: &HeaderMap) -> bool {
    directive_names_are_readable(headers, &CACHE_CONTROL)
}

/// [`cache_control_names_are_readable`] for any field of directives (a
/// targeted field such as `CDN-Cache-Control`).
pub(crate) fn directive_names_are_readable(headers: &HeaderMap, field: &http::HeaderName) -> bool {
    header_parts(headers, field).all(|part| is_visible_ascii(directive_name(&part)))
}

/// Whether every `Vary` token is `*` or a header name. One that is not
/// (`\xc2\xa0Cookie`, `Coo\tkie`) names no header any request carries, so it
/// would vary on nothing while the origin meant to vary on something.
pub(crate) fn vary_is_readable(headers: &HeaderMap) -> bool {
    header_parts(headers, &VARY)
        .all(|token| token == "*" || http::HeaderName::from_bytes(token.as_bytes()).is_ok())
}

fn is_visible_ascii(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_graphic())
}

/// One directive to give [`patch_cache_control`]: Django's keyword arguments
/// (`private=True`, `max_age=50`, `no_cache="Link"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Directive<'a> {
    /// A bare directive such as `private` or `no-cache` (Django's `=True`).
    Flag(&'a str),
    /// A directive with a value such as `max-age=50` or `no-cache=Link`.
    Value(&'a str, &'a str),
}

/// A parsed `Cache-Control`: directives in order, the way
/// [`patch_cache_control`] edits them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct CacheControl {
    /// `(lowercased name, value)`; `None` is a bare directive.
    directives: Vec<(String, Option<String>)>,
    /// The `no-cache` values, kept apart as Django keeps a set; `None` is a bare `no-cache`.
    no_cache: Vec<Option<String>>,
    /// Where `no-cache` sits among `directives`, once it is there.
    no_cache_at: Option<usize>,
}

impl CacheControl {
    fn parse(headers: &HeaderMap) -> CacheControl {
        let mut cc = CacheControl::default();
        for part in header_parts(headers, &CACHE_CONTROL) {
            match part.split_once('=') {
                Some((name, value)) => {
                    cc.put(&name.trim().to_ascii_lowercase(), Some(value.trim()))
                }
                None => cc.put(&part.to_ascii_lowercase(), None),
            }
        }
        cc
    }

    fn position(&self, name: &str) -> Option<usize> {
        self.directives.iter().position(|(n, _)| n == name)
    }

    fn remove(&mut self, name: &str) {
        if let Some(at) = self.position(name) {
            self.directives.remove(at);
            if let Some(nc) = self.no_cache_at.as_mut() {
                if *nc > at {
                    *nc -= 1;
                }
            }
        }
    }

    fn put(&mut self, name: &str, value: Option<&str>) {
        if name == "no-cache" {
            if self.no_cache_at.is_none() {
                self.no_cache_at = Some(self.directives.len());
                self.directives.push((name.to_owned(), None));
            }
            let value = value.map(str::to_owned);
            if !self.no_cache.contains(&value) {
                self.no_cache.push(value);
            }
            return;
        }
        let value = value.map(str::to_owned);
        match self.position(name) {
            Some(at) => self.directives[at].1 = value,
            None => self.directives.push((name.to_owned(), value)),
        }
    }

    fn render(&self) -> String {
        let mut out = String::new();
        let mut push = |name: &str, value: Option<&str>| {
            if !out.is_empty() {
                out.push_str(", ");
            }
            out.push_str(name);
            if let Some(value) = value {
                out.push('=');
                out.push_str(value);
            }
        };
        for (index, (name, value)) in self.directives.iter().enumerate() {
            if Some(index) != self.no_cache_at {
                push(name, value.as_deref());
            } else if self.no_cache.contains(&None) {
                push("no-cache", None);
            } else {
                for value in &self.no_cache {
                    push("no-cache", value.as_deref());
                }
            }
        }
        out
    }
}

/// Adds or updates `Cache-Control` directives, keeping the others (Django's
/// `patch_cache_control`).
///
/// * Existing directives keep their place; new ones are appended.
/// * A new `max-age` becomes the smaller of the old and the new value (the new
///   one when the old is not an integer).
/// * `public` removes `private`, and `private` removes `public`.
/// * `no-cache` collects its values; a bare `no-cache` anywhere wins.
/// * Names are lowercased and `_` becomes `-`, so Django's `s_maxage` works too.
///
/// ```
/// use http::{HeaderMap, HeaderValue, header::CACHE_CONTROL};
/// use tower_cache::http::headers::{Directive, patch_cache_control};
///
/// let mut headers = HeaderMap::new();
/// headers.insert(CACHE_CONTROL, HeaderValue::from_static("public, max-age=100, no-cache=Set-Cookie"));
/// patch_cache_control(&mut headers, &[
///     Directive::Flag("private"),
///     Directive::Value("max_age", "50"),
///     Directive::Value("no_cache", "Link"),
///     Directive::Value("s_maxage", "3"),
/// ]);
/// assert_eq!(headers[CACHE_CONTROL], "max-age=50, no-cache=Set-Cookie, no-cache=Link, private, s-maxage=3");
/// ```
pub fn patch_cache_control(headers: &mut HeaderMap, directives: &[Directive<'_>]) {
    let mut cc = CacheControl::parse(headers);
    for directive in directives {
        let (raw, value) = match *directive {
            Directive::Flag(name) => (name, None),
            Directive::Value(name, value) => (name, Some(value)),
        };
        let name = raw.trim().to_ascii_lowercase().replace('_', "-");
        match name.as_str() {
            "public" => cc.remove("private"),
            "private" => cc.remove("public"),
            _ => {}
        }
        if name == "max-age" {
            if let Some(new) = value.and_then(|v| v.trim().parse::<i64>().ok()) {
                let old = cc
                    .position("max-age")
                    .and_then(|at| cc.directives[at].1.as_deref())
                    .and_then(|v| v.trim().parse::<i64>().ok());
                let kept = old.map_or(new, |old| old.min(new));
                cc.put("max-age", Some(itoa::Buffer::new().format(kept)));
                continue;
            }
        }
        cc.put(&name, value);
    }
    set_header(headers, CACHE_CONTROL, cc.render());
}

fn set_header(headers: &mut HeaderMap, name: http::HeaderName, value: String) {
    // Text read as ISO-8859-1 goes back as ISO-8859-1, so obs-text keeps its
    // bytes; text with other characters (only a caller's directives can have
    // them) goes as UTF-8.
    let value = if value.is_ascii() {
        HeaderValue::try_from(value)
    } else {
        match value
            .chars()
            .map(u8::try_from)
            .collect::<Result<Vec<u8>, _>>()
        {
            Ok(latin1) => HeaderValue::from_bytes(&latin1),
            Err(_) => HeaderValue::try_from(value),
        }
    };
    // Values built here only hold what came from valid header values, so
    // this cannot fail; a failure leaves the header as it was.
    if let Ok(value) = value {
        headers.insert(name, value);
    }
}

/// The last instant an HTTP date can say, 9999-12-31 23:59:59 UTC, as time
/// since the epoch (httpdate panics past it).
const LAST_HTTP_DATE: Duration = Duration::from_secs(253_402_300_799);

/// Adds `Expires` (only when absent) and `Cache-Control: max-age` (the smaller
/// of any existing value and `timeout`): Django's `patch_response_headers`.
/// `now` is the current time, given so that callers and tests control it.
/// `Expires` is clamped to what an HTTP date can say (1970 to the end of
/// 9999), so a huge `timeout` (an origin's `max-age=999999999999`) gives
/// `Fri, 31 Dec 9999 23:59:59 GMT` (Django raises instead).
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use http::HeaderMap;
/// use tower_cache::http::headers::patch_response_headers;
///
/// let mut headers = HeaderMap::new();
/// let now = UNIX_EPOCH + Duration::from_secs(1_468_749_600); // Sun, 17 Jul 2016 10:00:00 GMT
/// patch_response_headers(&mut headers, Duration::from_secs(2), now);
/// assert_eq!(headers["expires"], "Sun, 17 Jul 2016 10:00:02 GMT");
/// assert_eq!(headers["cache-control"], "max-age=2");
/// ```
pub fn patch_response_headers(headers: &mut HeaderMap, timeout: Duration, now: SystemTime) {
    let secs = timeout.as_secs();
    if !headers.contains_key(EXPIRES) {
        let since_epoch = match now.checked_add(Duration::from_secs(secs)) {
            Some(expires) => expires.duration_since(UNIX_EPOCH).unwrap_or_default(),
            None => LAST_HTTP_DATE,
        };
        let expires = UNIX_EPOCH + since_epoch.min(LAST_HTTP_DATE);
        set_header(headers, EXPIRES, httpdate::fmt_http_date(expires));
    }
    let secs = i64::try_from(secs).unwrap_or(i64::MAX);
    let mut buffer = itoa::Buffer::new();
    patch_cache_control(headers, &[Directive::Value("max-age", buffer.format(secs))]);
}

/// Marks a response as never to be cached: `Expires` now (when absent),
/// `max-age=0, no-cache, no-store, must-revalidate, private` (Django's
/// `add_never_cache_headers`).
///
/// ```
/// use http::HeaderMap;
/// use tower_cache::http::headers::add_never_cache_headers;
///
/// let mut headers = HeaderMap::new();
/// add_never_cache_headers(&mut headers, std::time::SystemTime::now());
/// assert_eq!(headers["cache-control"], "max-age=0, no-cache, no-store, must-revalidate, private");
/// ```
pub fn add_never_cache_headers(headers: &mut HeaderMap, now: SystemTime) {
    patch_response_headers(headers, Duration::ZERO, now);
    patch_cache_control(
        headers,
        &[
            Directive::Flag("no-cache"),
            Directive::Flag("no-store"),
            Directive::Flag("must-revalidate"),
            Directive::Flag("private"),
        ],
    );
}

/// Adds header names to `Vary`, keeping the existing ones in their order and
/// case and skipping names already there (case-insensitive); a `*` anywhere
/// makes `Vary: *` (Django's `patch_vary_headers`).
///
/// ```
/// use http::{HeaderMap, HeaderValue, header::VARY};
/// use tower_cache::http::headers::patch_vary_headers;
///
/// let mut headers = HeaderMap::new();
/// headers.insert(VARY, HeaderValue::from_static("Cookie    ,     Accept-Encoding"));
/// patch_vary_headers(&mut headers, &["Accept-Encoding", "cookie"]);
/// assert_eq!(headers[VARY], "Cookie, Accept-Encoding");
///
/// patch_vary_headers(&mut headers, &[" * "]);
/// assert_eq!(headers[VARY], "*");
/// ```
pub fn patch_vary_headers(headers: &mut HeaderMap, new_headers: &[&str]) {
    let mut tokens: Vec<String> = header_parts(headers, &VARY).map(Cow::into_owned).collect();
    let existing: Vec<String> = tokens.iter().map(|t| t.to_ascii_lowercase()).collect();
    for name in new_headers {
        let name = name.trim();
        if name.is_empty() {
            continue;
        }
        if !existing.iter().any(|e| e.eq_ignore_ascii_case(name)) {
            tokens.push(name.to_owned());
        }
        // Django compares against the *original* lowercased list only, so
        // duplicates within `new_headers` are kept (`Cookie, cookie`).
    }
    let value = if tokens.iter().any(|t| t == "*") {
        "*".to_owned()
    } else {
        tokens.join(", ")
    };
    set_header(headers, VARY, value);
}

/// Whether the response's `Vary` lists `name` (trimmed, case-insensitive):
/// Django's `has_vary_header`. `has_vary_header(h, "*")` tells a `Vary: *`.
pub fn has_vary_header(headers: &HeaderMap, name: &str) -> bool {
    let name = name.trim();
    header_parts(headers, &VARY).any(|token| token.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(name: http::HeaderName, value: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(value) = value {
            headers.insert(name, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    /// Django's `test_patch_vary_headers` table, plus the 6.1 whitespace cases.
    #[test]
    fn patch_vary_headers_table() {
        let table: &[(Option<&str>, &[&str], &str)] = &[
            (None, &["Accept-Encoding"], "Accept-Encoding"),
            (
                Some("Accept-Encoding"),
                &["accept-encoding"],
                "Accept-Encoding",
            ),
            (
                Some("Accept-Encoding"),
                &["ACCEPT-ENCODING"],
                "Accept-Encoding",
            ),
            (
                Some("Cookie"),
                &["Accept-Encoding"],
                "Cookie, Accept-Encoding",
            ),
            (
                Some("Cookie, Accept-Encoding"),
                &["Accept-Encoding"],
                "Cookie, Accept-Encoding",
            ),
            (
                Some("Cookie, Accept-Encoding"),
                &["Accept-Encoding", "cookie"],
                "Cookie, Accept-Encoding",
            ),
            (
                None,
                &["Accept-Encoding", "COOKIE"],
                "Accept-Encoding, COOKIE",
            ),
            (
                Some("Cookie,     Accept-Encoding"),
                &["Accept-Encoding", "cookie"],
                "Cookie, Accept-Encoding",
            ),
            (
                Some("Cookie    ,     Accept-Encoding"),
                &["Accept-Encoding", "cookie"],
                "Cookie, Accept-Encoding",
            ),
            (Some("*"), &["Accept-Language", "Cookie"], "*"),
            (Some("Accept-Language, Cookie"), &["*"], "*"),
            (
                Some(" Cookie"),
                &["Accept-Encoding"],
                "Cookie, Accept-Encoding",
            ),
            (Some("Cookie "), &["Cookie"], "Cookie"),
            (Some("* "), &["Cookie"], "*"),
            (None, &[" * "], "*"),
            (
                None,
                &["\tCookie\t", "Accept-Encoding\t"],
                "Cookie, Accept-Encoding",
            ),
            (None, &["Cookie", "cookie"], "Cookie, cookie"),
        ];
        for (initial, new, expected) in table {
            let mut headers = with(VARY, *initial);
            patch_vary_headers(&mut headers, new);
            assert_eq!(headers[VARY], *expected, "{initial:?} + {new:?}");
        }
    }

    /// Django's `test_has_vary_header` table.
    #[test]
    fn has_vary_header_table() {
        let table = [
            ("*", "*", true),
            ("Cookie, *", "*", true),
            ("Cookie,*", "*", true),
            ("Cookie , *", "*", true),
            ("* ", "*", true),
            (" *", "*", true),
            ("Cookie, * ", "*", true),
            (" Cookie", "Cookie", true),
            ("Cookie", "*", false),
            ("*", "Cookie", false),
            ("cookie", "Cookie", true),
            ("Cookie", "cookie", true),
        ];
        for (vary, name, expected) in table {
            assert_eq!(
                has_vary_header(&with(VARY, Some(vary)), name),
                expected,
                "{vary:?} {name:?}"
            );
        }
        assert!(!has_vary_header(&HeaderMap::new(), "Cookie"));
    }

    fn directive_set(headers: &HeaderMap) -> Vec<String> {
        let mut parts: Vec<String> = split_header_value(headers[CACHE_CONTROL].to_str().unwrap())
            .map(str::to_owned)
            .collect();
        parts.sort();
        parts
    }

    /// Django's `test_patch_cache_control` table (compared as sets, as Django does).
    #[test]
    fn patch_cache_control_table() {
        use Directive::{Flag, Value};
        let table: &[(Option<&str>, &[Directive<'_>], &[&str])] = &[
            (None, &[Flag("private")], &["private"]),
            (
                None,
                &[Value("no_cache", "Set-Cookie")],
                &["no-cache=Set-Cookie"],
            ),
            (
                Some("no-cache=Set-Cookie"),
                &[Flag("no_cache")],
                &["no-cache"],
            ),
            (
                Some("no-cache=Set-Cookie,no-cache=Link"),
                &[Flag("no_cache")],
                &["no-cache"],
            ),
            (
                Some("no-cache=Set-Cookie"),
                &[Value("no_cache", "Link")],
                &["no-cache=Link", "no-cache=Set-Cookie"],
            ),
            (
                Some("no-cache=Set-Cookie,no-cache=Link"),
                &[Value("no_cache", "Custom")],
                &["no-cache=Custom", "no-cache=Link", "no-cache=Set-Cookie"],
            ),
            (Some("private"), &[Flag("public")], &["public"]),
            (Some("public"), &[Flag("private")], &["private"]),
            (
                Some("must-revalidate,max-age=60,private"),
                &[Flag("public")],
                &["max-age=60", "must-revalidate", "public"],
            ),
            (
                Some("must-revalidate,max-age=60,public"),
                &[Flag("private")],
                &["max-age=60", "must-revalidate", "private"],
            ),
            (
                Some("must-revalidate,max-age=60"),
                &[Flag("public")],
                &["max-age=60", "must-revalidate", "public"],
            ),
            // test_patch_cache_control_whitespace_around_equals (6.1)
            (
                Some("no-cache =\"Set-Cookie\""),
                &[Flag("no_cache")],
                &["no-cache"],
            ),
        ];
        for (initial, patch, expected) in table {
            let mut headers = with(CACHE_CONTROL, *initial);
            patch_cache_control(&mut headers, patch);
            assert_eq!(
                directive_set(&headers),
                *expected,
                "{initial:?} + {patch:?}"
            );
        }
    }

    #[test]
    fn max_age_keeps_the_minimum() {
        let mut headers = with(CACHE_CONTROL, Some("max-age=100"));
        patch_cache_control(&mut headers, &[Directive::Value("max_age", "300")]);
        assert_eq!(headers[CACHE_CONTROL], "max-age=100");
        patch_cache_control(&mut headers, &[Directive::Value("max-age", "5")]);
        assert_eq!(headers[CACHE_CONTROL], "max-age=5");
        let mut headers = with(CACHE_CONTROL, Some("max-age=soon"));
        patch_cache_control(&mut headers, &[Directive::Value("max-age", "5")]);
        assert_eq!(headers[CACHE_CONTROL], "max-age=5");
    }

    /// Django's `test_get_max_age_strips_whitespace`.
    #[test]
    fn get_max_age_strips_whitespace() {
        for (value, expected) in [
            (" max-age=300", 300),
            ("\tmax-age=300", 300),
            ("no-cache, max-age=600", 600),
            ("no-cache,\tmax-age=600", 600),
            ("max-age=300 ", 300),
        ] {
            assert_eq!(
                get_max_age(&with(CACHE_CONTROL, Some(value))),
                Some(expected),
                "{value:?}"
            );
        }
        assert_eq!(get_max_age(&HeaderMap::new()), None);
        assert_eq!(
            get_s_maxage(&with(CACHE_CONTROL, Some("public, s-maxage=7"))),
            Some(7)
        );
    }

    #[test]
    fn directive_names_are_exact_and_case_insensitive() {
        for (value, name, expected) in [
            ("private", "private", true),
            ("PRIVATE", "private", true),
            ("NO-store", "no-store", true),
            ("private=\"Set-Cookie\"", "private", true),
            ("private =\"Set-Cookie\"", "private", true),
            ("no-cache = \"Set-Cookie\"", "no-cache", true),
            ("myprivate", "private", false),
            ("no-public", "public", false),
            ("public=\"abc\"", "public", true),
        ] {
            assert_eq!(
                has_cache_directive(&with(CACHE_CONTROL, Some(value)), name),
                expected,
                "{value:?} {name:?}"
            );
        }
        let headers = with(CACHE_CONTROL, Some("max-age=5, no-store"));
        assert_eq!(
            find_cache_directive(&headers, &["private", "no-store"]),
            Some("no-store")
        );
    }

    fn raw(name: http::HeaderName, value: &[u8]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(name, HeaderValue::from_bytes(value).unwrap());
        headers
    }

    /// Found by fuzzing: a byte >= 0x80 (obs-text) anywhere in a header
    /// value hid the whole value, so `private` next to it was not seen and
    /// the response was stored in the shared cache. Values are read as
    /// ISO-8859-1, as WSGI hands them to Django.
    #[test]
    fn obs_text_does_not_hide_the_directives_beside_it() {
        let headers = raw(CACHE_CONTROL, b"private, x-note=\"caf\xe9\", max-age=60");
        assert!(has_cache_directive(&headers, "private"));
        assert_eq!(
            find_cache_directive(&headers, &["no-cache", "private"]),
            Some("private")
        );
        assert_eq!(get_max_age(&headers), Some(60));
        assert!(has_cache_directive(&headers, "x-note"));

        let vary = raw(VARY, b"Cookie, X-Caf\xe9");
        assert!(has_vary_header(&vary, "cookie"));
        assert!(has_vary_header(&vary, "x-caf\u{e9}"));
    }

    /// Found by fuzzing: patching a header that held obs-text dropped the
    /// whole value; its parts are now kept, byte for byte.
    #[test]
    fn patching_keeps_obs_text_parts() {
        let mut headers = raw(CACHE_CONTROL, b"public, x-note=\"caf\xe9\", max-age=60");
        patch_cache_control(&mut headers, &[Directive::Value("max-age", "30")]);
        assert_eq!(
            headers[CACHE_CONTROL].as_bytes(),
            b"public, x-note=\"caf\xe9\", max-age=30"
        );
        let mut headers = raw(VARY, b"Cookie, X-Caf\xe9");
        patch_vary_headers(&mut headers, &["Accept-Encoding"]);
        assert_eq!(
            headers[VARY].as_bytes(),
            b"Cookie, X-Caf\xe9, Accept-Encoding"
        );
    }

    /// Found by fuzzing: httpdate panics on dates past year 9999, so an
    /// origin's `max-age=999999999999` (the timeout under `Lifetime::Default`)
    /// panicked while patching `Expires`. Such dates are clamped, as is a
    /// clock before 1970.
    #[test]
    fn expires_is_clamped_to_what_an_http_date_can_say() {
        let mut headers = HeaderMap::new();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        patch_response_headers(&mut headers, Duration::from_secs(999_999_999_999), now);
        assert_eq!(headers[EXPIRES], "Fri, 31 Dec 9999 23:59:59 GMT");
        assert_eq!(get_max_age(&headers), Some(999_999_999_999));

        let mut headers = HeaderMap::new();
        patch_response_headers(&mut headers, Duration::from_secs(u64::MAX), now);
        assert_eq!(headers[EXPIRES], "Fri, 31 Dec 9999 23:59:59 GMT");

        let mut headers = HeaderMap::new();
        let before_1970 = SystemTime::UNIX_EPOCH - Duration::from_secs(10);
        patch_response_headers(&mut headers, Duration::from_secs(5), before_1970);
        assert_eq!(headers[EXPIRES], "Thu, 01 Jan 1970 00:00:00 GMT");
    }

    #[test]
    fn response_headers_keep_an_existing_expires() {
        let mut headers = with(EXPIRES, Some("Thu, 01 Jan 1970 00:00:00 GMT"));
        patch_response_headers(&mut headers, Duration::from_secs(300), SystemTime::now());
        assert_eq!(headers[EXPIRES], "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(headers[CACHE_CONTROL], "max-age=300");
    }
}
