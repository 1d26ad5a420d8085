//! Which requests are served from the cache and which responses are stored:
//! Django 6.1's rules (`FetchFromCacheMiddleware.process_request`,
//! `UpdateCacheMiddleware.process_response`), with safer defaults.
//!
//! Every rule is a pure function of the request's and the response's
//! headers; the layers only act on the answers.
//!
//! ```
//! use std::time::Duration;
//! use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
//! use tower_cache::http::policy::{Bypass, BodySize, Lifetime, Policy};
//!
//! let policy = Policy::new(Lifetime::Page(Duration::from_secs(300)));
//! let mut response = HeaderMap::new();
//! let body = BodySize { lower: 5, upper: Some(5) };
//!
//! let store = policy.decide(false, StatusCode::OK, &response, body).unwrap();
//! assert_eq!(store.timeout, Duration::from_secs(300));
//! assert!(store.store);
//!
//! response.insert(header::CACHE_CONTROL, HeaderValue::from_static("private"));
//! assert_eq!(policy.decide(false, StatusCode::OK, &response, body).unwrap_err(),
//!            Bypass::CacheControl("private"));
//! ```

use std::fmt;
use std::time::Duration;

use http::header::SET_COOKIE;
use http::{HeaderMap, Method, StatusCode};

use super::headers::{
    cache_control_names_are_readable, directive_names_are_readable, find_cache_directive,
    has_vary_header, strictest_directive_value, vary_is_readable,
};
use super::request_fields::RequestFields;
use super::rfc9111::{
    Exchange, Rfc9111, has_validator, initial_age, is_heuristically_cacheable, is_understood,
};

/// The default limit on a stored body: 1 MiB.
pub const DEFAULT_MAX_BODY_SIZE: u64 = 1024 * 1024;

/// How long a stored page lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifetime {
    /// `cache_page(ttl)`: the ttl wins over the response's `max-age`, in
    /// both directions (Django's `page_timeout`), except that `max-age=0` is
    /// never stored.
    Page(Duration),
    /// Site-wide: the response's `max-age` wins; this is used when it has
    /// none (Django's `CACHE_MIDDLEWARE_SECONDS`). `max-age=0` is never stored.
    Default(Duration),
}

/// What to do with responses that set cookies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SetCookiePolicy {
    /// Never store a response with `Set-Cookie` (the default): one client's
    /// cookie is never handed to another.
    #[default]
    NeverStore,
    /// Django 6.1: store it, cookies and all, unless it also varies on
    /// `Cookie` (digest 5.4 step 3).
    Django,
    /// RFC 9111: store it, cookies and all (an origin marks a response
    /// whose cookie is one client's `private`). For a standard proxy in
    /// front of origins that follow the RFC.
    Store,
}

/// Whose rules the layers follow.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Semantics {
    /// Django 6.1's cache middleware, with this crate's safer defaults (the
    /// default): 200s only, the layer's lifetime, `Expires` and `max-age`
    /// written into stored responses, stale pages fetched again in full.
    #[default]
    Django,
    /// A standard shared cache (RFC 9111, [`rfc9111`](super::rfc9111)):
    /// freshness from the response, `Age`, revalidation with conditional
    /// requests, invalidation by unsafe methods, any cacheable status.
    Rfc9111(Rfc9111),
}

impl std::str::FromStr for Semantics {
    type Err = crate::error::ConfigError;

    /// `django` or `rfc9111` (with [`Rfc9111::new`]'s defaults), from
    /// configuration.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name.trim().to_ascii_lowercase().as_str() {
            "django" => Ok(Semantics::Django),
            "rfc9111" | "rfc-9111" | "http" => Ok(Semantics::Rfc9111(Rfc9111::new())),
            _ => Err(crate::error::ConfigError::InvalidOption {
                backend: "http",
                option: "semantics".into(),
                value: name.to_owned(),
                reason: "expected django or rfc9111".to_owned(),
            }),
        }
    }
}

/// What to do with requests that carry `Authorization`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum AuthorizationPolicy {
    /// RFC 9111 section 3.5, the default: such a request is neither served
    /// from nor stored in the cache unless the response says `public`,
    /// `s-maxage` or `must-revalidate`.
    #[default]
    SharedCache,
    /// Django 6.1: store it, but add `Vary: Authorization` (unless the
    /// response says `public`), so each credential gets its own entry.
    VaryOnAuthorization,
}

/// What to do with a response's `s-maxage`, the lifetime it gives shared
/// caches (RFC 9111 section 5.2.2.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SharedMaxAgePolicy {
    /// The default: `s-maxage=0` (or negative) is never stored, whatever
    /// `max-age` says, and for the site-wide layers `s-maxage` is the
    /// lifetime, over `max-age` (`cache_page`'s ttl still wins, as Django's
    /// page timeout does).
    #[default]
    SharedCache,
    /// Django 6.1: `s-maxage` is ignored.
    Django,
}

/// The size of a response body as its `size_hint` tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodySize {
    /// At least this many bytes.
    pub lower: u64,
    /// At most this many bytes, when known (a compressed or streamed body
    /// has no known end: it is read up to the limit, and stored if it ends
    /// within it).
    pub upper: Option<u64>,
}

/// Why a request is not served from the cache or a response not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Bypass {
    /// Not GET or HEAD.
    Method,
    /// A GET or HEAD with a body ([`Policy::check_body`]).
    RequestBody,
    /// No usable `Host` (or `:authority`).
    NoHost,
    /// A `Host` the layer's [`AllowedHosts`](crate::http::key::AllowedHosts) does not name.
    HostNotAllowed,
    /// The request carries `Authorization` and the entry or response is not
    /// marked `public`, `s-maxage` or `must-revalidate`.
    Authorization,
    /// Status other than 200 (and 304, which is patched but not stored).
    Status(StatusCode),
    /// A body over the size limit.
    TooLarge,
    /// The response sets a cookie ([`SetCookiePolicy::NeverStore`]).
    SetCookie,
    /// The response sets a cookie and varies on `Cookie`.
    SetCookieVaryCookie,
    /// `Cache-Control` has this directive (`private`, `no-cache`, `no-store`).
    CacheControl(&'static str),
    /// `Vary: *`.
    VaryStar,
    /// This header (`"Cache-Control"` or `"Vary"`) cannot be read, so the
    /// response fails closed ([`Policy::decide`]).
    Unreadable(&'static str),
    /// `max-age=0`, or a negative one (the smallest of several).
    ZeroMaxAge,
    /// `s-maxage=0`: no shared cache may reuse it ([`SharedMaxAgePolicy::SharedCache`]).
    ZeroSharedMaxAge,
    /// The request did not go through [`FetchFromCache`](crate::middleware::FetchFromCache).
    NotFetched,
    /// The response's tags cannot all be read (not visible ASCII, too many,
    /// too long): it could not be invalidated by them.
    Tags,
    /// Stale on arrival (no freshness, or an `Age` past it, or `no-cache`)
    /// and without a validator to revalidate it with ([`Semantics::Rfc9111`]).
    Stale,
    /// The request said `no-store` ([`Semantics::Rfc9111`]).
    RequestNoStore,
}

impl Bypass {
    /// A short reason for logs.
    pub fn reason(&self) -> &'static str {
        match self {
            Bypass::Method => "method is not GET or HEAD",
            Bypass::RequestBody => "GET or HEAD request has a body",
            Bypass::NoHost => "no usable Host",
            Bypass::HostNotAllowed => "Host is not an allowed host",
            Bypass::Authorization => "request has Authorization and the response is not public",
            Bypass::Status(_) => "status is not 200",
            Bypass::TooLarge => "body is over the size limit",
            Bypass::SetCookie => "response sets a cookie",
            Bypass::SetCookieVaryCookie => "response sets a cookie and varies on Cookie",
            Bypass::CacheControl("private") => "Cache-Control: private",
            Bypass::CacheControl("no-store") => "Cache-Control: no-store",
            Bypass::CacheControl(_) => "Cache-Control: no-cache",
            Bypass::VaryStar => "Vary: *",
            Bypass::Unreadable("Vary") => "Vary cannot be read",
            Bypass::Unreadable(_) => "Cache-Control cannot be read",
            Bypass::ZeroMaxAge => "max-age=0",
            Bypass::ZeroSharedMaxAge => "s-maxage=0",
            Bypass::NotFetched => "request did not pass FetchFromCache",
            Bypass::Tags => "tags are unreadable, too many or too long",
            Bypass::Stale => "stale on arrival, without a validator",
            Bypass::RequestNoStore => "request says no-store",
        }
    }
}

impl fmt::Display for Bypass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Bypass::Status(status) => write!(f, "status {} is not 200", status.as_u16()),
            other => f.write_str(other.reason()),
        }
    }
}

/// What to do with a response that passed the rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Storage {
    /// How long it stays fresh from now: Django's lifetime (`Expires` and
    /// `max-age` are patched with it); RFC 9111's freshness lifetime less
    /// the age the response arrived with (0: stored stale, to be
    /// revalidated).
    pub timeout: Duration,
    /// The age the response arrived with (RFC 9111 section 4.2.3; 0 for
    /// Django, whose `Age` comes from `Expires`).
    pub age: u64,
    /// How long past its freshness the entry is kept to be revalidated
    /// (RFC 9111, with a validator; zero otherwise).
    pub keep_stale: Duration,
    /// Whether it may be served stale (`stale-while-revalidate`,
    /// `stale-if-error`, the layer's windows): not when the response says
    /// `must-revalidate`, `proxy-revalidate`, `s-maxage` or `no-cache`
    /// (RFC 9111; always for Django).
    pub allows_stale: bool,
    /// Whether to store it: `false` for a 304 or a zero lifetime, whose
    /// headers are patched all the same (as Django does).
    pub store: bool,
    /// Add `Vary: Authorization` before learning the key
    /// ([`AuthorizationPolicy::VaryOnAuthorization`]).
    pub vary_on_authorization: bool,
}

/// The rules, with their switches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Whose rules: Django's (the default) or RFC 9111's.
    pub semantics: Semantics,
    /// How long pages live ([`Semantics::Django`]; RFC 9111 takes it from
    /// the response, see [`Rfc9111::default_lifetime`]).
    pub lifetime: Lifetime,
    /// Responses that set cookies.
    pub set_cookie: SetCookiePolicy,
    /// Requests with `Authorization`.
    pub authorization: AuthorizationPolicy,
    /// A response's `s-maxage`.
    pub shared_max_age: SharedMaxAgePolicy,
    /// The largest body stored, in bytes; larger ones pass through untouched.
    pub max_body_size: u64,
}

/// The directives that let a shared cache answer a request with
/// `Authorization` (RFC 9111 section 3.5).
const SHAREABLE: &[&str] = &["public", "s-maxage", "must-revalidate"];

impl Policy {
    /// The rules with their safe defaults and `lifetime`.
    pub fn new(lifetime: Lifetime) -> Policy {
        Policy {
            semantics: Semantics::Django,
            lifetime,
            set_cookie: SetCookiePolicy::default(),
            authorization: AuthorizationPolicy::default(),
            shared_max_age: SharedMaxAgePolicy::default(),
            max_body_size: DEFAULT_MAX_BODY_SIZE,
        }
    }

    /// The RFC 9111 policy with `rules` (see [`rfc9111`](super::rfc9111)),
    /// and the defaults of [`new`](Policy::new) for the other switches.
    pub fn rfc9111(rules: Rfc9111) -> Policy {
        Policy {
            semantics: Semantics::Rfc9111(rules),
            ..Policy::new(Lifetime::Default(Duration::ZERO))
        }
    }

    /// The RFC 9111 rules, when the policy follows them.
    pub fn rfc9111_rules(&self) -> Option<&Rfc9111> {
        match &self.semantics {
            Semantics::Rfc9111(rules) => Some(rules),
            Semantics::Django => None,
        }
    }

    /// Whether a request may be answered from the cache at all (before any
    /// lookup): only GET and HEAD.
    pub fn check_method(method: &Method) -> Result<(), Bypass> {
        if method == Method::GET || method == Method::HEAD {
            Ok(())
        } else {
            Err(Bypass::Method)
        }
    }

    /// Whether a GET or HEAD may use the cache, by its body: not when it has
    /// one (a "fat GET"). The key never holds the body, so an origin that
    /// reads it would let one request choose the page every client of the
    /// URL gets; and a client that sends one may expect it to matter. A
    /// body is announced by `Transfer-Encoding`, or by a `Content-Length`
    /// other than 0 (one that cannot be read counts as a body).
    ///
    /// The layers never read request bodies, so a body sent with neither
    /// header (HTTP/2 allows it) is not seen.
    pub fn check_body(request: &HeaderMap) -> Result<(), Bypass> {
        if RequestFields::scan(request).0.body {
            return Err(Bypass::RequestBody);
        }
        Ok(())
    }

    /// Whether a stored response may answer this request: always, except a
    /// request with `Authorization` under [`AuthorizationPolicy::SharedCache`]
    /// gets only entries marked `public`, `s-maxage` or `must-revalidate`.
    pub fn may_serve(&self, authorized: bool, stored: &HeaderMap) -> Result<(), Bypass> {
        if authorized
            && self.authorization == AuthorizationPolicy::SharedCache
            && find_cache_directive(stored, SHAREABLE).is_none()
        {
            return Err(Bypass::Authorization);
        }
        Ok(())
    }

    /// Whether a response is stored, and for how long: Django's
    /// `process_response` rules in order (digest 5.4), then this crate's
    /// switches. `Err` means "return it untouched".
    ///
    /// 1. status 200 or 304, and a body not known to be over the limit;
    /// 2. `Set-Cookie` ([`SetCookiePolicy`]);
    /// 3. no `private`, `no-cache`, `no-store`, on any line;
    /// 4. no `Vary: *`;
    /// 5. `Cache-Control` and `Vary` can be read ([`Bypass::Unreadable`]):
    ///    directive names are visible ASCII, `max-age` (and `s-maxage`,
    ///    unless ignored) are integers, `Vary` tokens are header names;
    /// 6. the lifetime ([`Lifetime`]), from the smallest `max-age` when
    ///    there are several (RFC 9111 section 4.2.1; Django takes the last);
    ///    `max-age=0` or less is never stored, not even by `cache_page`
    ///    (where Django's page timeout would win over it);
    /// 7. `Authorization` ([`AuthorizationPolicy`]);
    /// 8. stored when the status is 200 and the lifetime is not zero.
    ///
    /// With [`Semantics::Rfc9111`], the response is taken to have arrived
    /// just now ([`decide_exchange`](Policy::decide_exchange)).
    pub fn decide(
        &self,
        authorized: bool,
        status: StatusCode,
        response: &HeaderMap,
        body: BodySize,
    ) -> Result<Storage, Bypass> {
        if let Semantics::Rfc9111(rules) = &self.semantics {
            let now = crate::clock::unix_secs();
            let exchange = Exchange {
                authorized,
                request_time: now,
                response_time: now,
            };
            return self.decide_rfc9111(rules, &exchange, status, response, body);
        }
        if status != StatusCode::OK && status != StatusCode::NOT_MODIFIED {
            return Err(Bypass::Status(status));
        }
        self.check_size_and_cookies(response, body)?;
        if let Some(directive) =
            find_cache_directive(response, &["private", "no-cache", "no-store"])
        {
            return Err(Bypass::CacheControl(directive));
        }
        if has_vary_header(response, "*") {
            return Err(Bypass::VaryStar);
        }
        // What cannot be read fails closed: it may hide a `private` or a
        // `Vary: Cookie` the origin meant.
        if !cache_control_names_are_readable(response) {
            return Err(Bypass::Unreadable("Cache-Control"));
        }
        if !vary_is_readable(response) {
            return Err(Bypass::Unreadable("Vary"));
        }
        let unreadable = |()| Bypass::Unreadable("Cache-Control");
        let mut max_age = strictest_directive_value(response, "max-age").map_err(unreadable)?;
        if max_age.is_some_and(|secs| secs <= 0) {
            return Err(Bypass::ZeroMaxAge);
        }
        if self.shared_max_age == SharedMaxAgePolicy::SharedCache {
            match strictest_directive_value(response, "s-maxage").map_err(unreadable)? {
                Some(shared) if shared <= 0 => return Err(Bypass::ZeroSharedMaxAge),
                Some(shared) => max_age = Some(shared),
                None => {}
            }
        }
        let timeout = match (self.lifetime, max_age) {
            (Lifetime::Page(ttl), _) => ttl,
            (Lifetime::Default(default), None) => default,
            (Lifetime::Default(_), Some(secs)) => {
                Duration::from_secs(u64::try_from(secs).unwrap_or(0))
            }
        };
        let mut vary_on_authorization = false;
        if authorized {
            match self.authorization {
                AuthorizationPolicy::SharedCache => {
                    if find_cache_directive(response, SHAREABLE).is_none() {
                        return Err(Bypass::Authorization);
                    }
                }
                AuthorizationPolicy::VaryOnAuthorization => {
                    vary_on_authorization = find_cache_directive(response, &["public"]).is_none();
                }
            }
        }
        Ok(Storage {
            timeout,
            store: status == StatusCode::OK && timeout.as_secs() > 0,
            vary_on_authorization,
            age: 0,
            keep_stale: Duration::ZERO,
            allows_stale: true,
        })
    }

    /// Whether a response is stored, and for how long, under either
    /// semantics, knowing when its request was sent and answered.
    pub fn decide_exchange(
        &self,
        exchange: &Exchange,
        status: StatusCode,
        response: &HeaderMap,
        body: BodySize,
    ) -> Result<Storage, Bypass> {
        match &self.semantics {
            Semantics::Rfc9111(rules) => {
                self.decide_rfc9111(rules, exchange, status, response, body)
            }
            Semantics::Django => self.decide(exchange.authorized, status, response, body),
        }
    }

    /// The rules both semantics share: a body not known to be over the
    /// limit (one without a known end is read up to it, and stored only if
    /// it ends within it), and `Set-Cookie` ([`SetCookiePolicy`]).
    fn check_size_and_cookies(&self, response: &HeaderMap, body: BodySize) -> Result<(), Bypass> {
        if body.upper.unwrap_or(body.lower) > self.max_body_size {
            return Err(Bypass::TooLarge);
        }
        if response.contains_key(SET_COOKIE) {
            match self.set_cookie {
                SetCookiePolicy::NeverStore => return Err(Bypass::SetCookie),
                SetCookiePolicy::Django if has_vary_header(response, "Cookie") => {
                    return Err(Bypass::SetCookieVaryCookie);
                }
                SetCookiePolicy::Django | SetCookiePolicy::Store => {}
            }
        }
        Ok(())
    }

    /// RFC 9111 section 3, in order:
    ///
    /// 1. a final status other than 206 and 304, a body within the limit;
    /// 2. `Set-Cookie` ([`SetCookiePolicy`]);
    /// 3. `Cache-Control` and `Vary` can be read (else fail closed);
    /// 4. the governing directives ([`Rfc9111::directives`]): no
    ///    `no-store` (unless `must-understand` with an understood status),
    ///    no unqualified `private`; `must-understand` needs an understood
    ///    status;
    /// 5. no `Vary: *`;
    /// 6. a request with `Authorization` only with `public`, `s-maxage` or
    ///    `must-revalidate`;
    /// 7. explicitly or heuristically cacheable: freshness information, a
    ///    heuristically cacheable status or `public`;
    /// 8. fresh for `lifetime - age` (none with `no-cache` or an unreadable
    ///    `Age`); a response that arrives stale is stored only with a
    ///    validator, to be revalidated.
    fn decide_rfc9111(
        &self,
        rules: &Rfc9111,
        exchange: &Exchange,
        status: StatusCode,
        response: &HeaderMap,
        body: BodySize,
    ) -> Result<Storage, Bypass> {
        if status.is_informational()
            || status == StatusCode::PARTIAL_CONTENT
            || status == StatusCode::NOT_MODIFIED
        {
            return Err(Bypass::Status(status));
        }
        self.check_size_and_cookies(response, body)?;
        // Every field that may govern must be readable: an unreadable one
        // may hide a `private` the origin meant.
        if !cache_control_names_are_readable(response)
            || !rules
                .targeted_fields
                .iter()
                .all(|field| directive_names_are_readable(response, field))
        {
            return Err(Bypass::Unreadable("Cache-Control"));
        }
        if !vary_is_readable(response) {
            return Err(Bypass::Unreadable("Vary"));
        }
        let (directives, targeted) = rules.directives(response);
        let understood = is_understood(status);
        if directives.must_understand && !understood {
            return Err(Bypass::Status(status));
        }
        if directives.no_store && !(directives.must_understand && understood) {
            return Err(Bypass::CacheControl("no-store"));
        }
        if directives.private {
            return Err(Bypass::CacheControl("private"));
        }
        if has_vary_header(response, "*") {
            return Err(Bypass::VaryStar);
        }
        if exchange.authorized
            && !(directives.public || directives.s_maxage.is_some() || directives.must_revalidate)
        {
            return Err(Bypass::Authorization);
        }
        let lifetime = rules.freshness_lifetime(
            status,
            response,
            &directives,
            targeted.is_some(),
            exchange.response_time,
        );
        let explicit = lifetime.is_some() || directives.public;
        if !explicit && !is_heuristically_cacheable(status) {
            return Err(Bypass::Status(status));
        }
        let age = initial_age(response, exchange.request_time, exchange.response_time);
        let fresh = match (lifetime, age) {
            (Some(lifetime), Some(age)) if !directives.no_cache => lifetime.saturating_sub(age),
            _ => 0,
        };
        let validator = has_validator(response);
        if fresh == 0 && !validator {
            return Err(Bypass::Stale);
        }
        Ok(Storage {
            timeout: Duration::from_secs(fresh),
            store: true,
            vary_on_authorization: false,
            age: age.unwrap_or(0),
            keep_stale: if validator {
                rules.keep_stale
            } else {
                Duration::ZERO
            },
            allows_stale: directives.allows_stale(),
        })
    }
}

/// Whether the request carries a non-empty `Authorization` header.
pub fn is_authorized(request: &HeaderMap) -> bool {
    RequestFields::scan(request).0.authorized
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    const SMALL: BodySize = BodySize {
        lower: 4,
        upper: Some(4),
    };

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    fn page() -> Policy {
        Policy::new(Lifetime::Page(Duration::from_secs(300)))
    }

    fn site() -> Policy {
        Policy::new(Lifetime::Default(Duration::from_secs(600)))
    }

    #[test]
    fn only_get_and_head() {
        assert!(Policy::check_method(&Method::GET).is_ok());
        assert!(Policy::check_method(&Method::HEAD).is_ok());
        for method in [Method::POST, Method::PUT, Method::DELETE, Method::OPTIONS] {
            assert_eq!(Policy::check_method(&method), Err(Bypass::Method));
        }
    }

    #[test]
    fn only_200_is_stored_and_304_is_patched() {
        let p = page();
        assert!(
            p.decide(false, StatusCode::OK, &HeaderMap::new(), SMALL)
                .unwrap()
                .store
        );
        let not_modified = p
            .decide(false, StatusCode::NOT_MODIFIED, &HeaderMap::new(), SMALL)
            .unwrap();
        assert!(!not_modified.store);
        for status in [
            StatusCode::NOT_FOUND,
            StatusCode::INTERNAL_SERVER_ERROR,
            StatusCode::CREATED,
        ] {
            assert_eq!(
                p.decide(false, status, &HeaderMap::new(), SMALL),
                Err(Bypass::Status(status))
            );
        }
    }

    /// `test_cache_control_not_cached`, `..._superstring`, `test_qualified_cache_control_value_not_cached`.
    #[test]
    fn uncacheable_cache_control() {
        for value in [
            "private",
            "no-cache",
            "no-store",
            "PRIVATE",
            "NO-store",
            "private=\"Set-Cookie\"",
            "no-cache=\"Set-Cookie\"",
            "no-store=\"Set-Cookie\"",
            "private =\"Set-Cookie\"",
            "no-cache = \"Set-Cookie\"",
        ] {
            let response = headers(&[("cache-control", value)]);
            assert!(
                matches!(
                    page().decide(false, StatusCode::OK, &response, SMALL),
                    Err(Bypass::CacheControl(_))
                ),
                "{value}"
            );
        }
        let response = headers(&[("cache-control", "myprivate")]);
        assert!(
            page()
                .decide(false, StatusCode::OK, &response, SMALL)
                .is_ok()
        );
    }

    /// `test_vary_asterisk_not_cached`.
    #[test]
    fn vary_star() {
        for value in ["*", " * ", "Cookie, * , Pony"] {
            let response = headers(&[("vary", value)]);
            assert_eq!(
                page().decide(false, StatusCode::OK, &response, SMALL),
                Err(Bypass::VaryStar),
                "{value}"
            );
        }
    }

    #[test]
    fn body_must_not_be_known_to_exceed_the_limit() {
        let p = page();
        let none = HeaderMap::new();
        // Unknown length (a compressed body): read, and stored if it fits.
        let unknown = BodySize {
            lower: 0,
            upper: None,
        };
        assert!(p.decide(false, StatusCode::OK, &none, unknown).is_ok());
        let unknown_but_over = BodySize {
            lower: DEFAULT_MAX_BODY_SIZE + 1,
            upper: None,
        };
        assert_eq!(
            p.decide(false, StatusCode::OK, &none, unknown_but_over),
            Err(Bypass::TooLarge)
        );
        let big = DEFAULT_MAX_BODY_SIZE + 1;
        assert_eq!(
            p.decide(
                false,
                StatusCode::OK,
                &none,
                BodySize {
                    lower: big,
                    upper: Some(big)
                }
            ),
            Err(Bypass::TooLarge)
        );
        let limit = BodySize {
            lower: DEFAULT_MAX_BODY_SIZE,
            upper: Some(DEFAULT_MAX_BODY_SIZE),
        };
        assert!(p.decide(false, StatusCode::OK, &none, limit).is_ok());
    }

    /// `test_sensitive_cookie_not_cached`, `test_refreshed_cookie_not_cached`, and the safer default.
    #[test]
    fn cookies() {
        let sets = headers(&[("set-cookie", "csrftoken=abc")]);
        let sets_and_varies = headers(&[("set-cookie", "csrftoken=abc"), ("vary", "Cookie")]);
        assert_eq!(
            page().decide(false, StatusCode::OK, &sets, SMALL),
            Err(Bypass::SetCookie)
        );
        let django = Policy {
            set_cookie: SetCookiePolicy::Django,
            ..page()
        };
        assert!(
            django
                .decide(false, StatusCode::OK, &sets, SMALL)
                .unwrap()
                .store
        );
        assert_eq!(
            django.decide(false, StatusCode::OK, &sets_and_varies, SMALL),
            Err(Bypass::SetCookieVaryCookie)
        );
    }

    /// `test_cache_page_timeout` and the site-wide precedence of max-age.
    #[test]
    fn lifetime_precedence() {
        let short = headers(&[("cache-control", "max-age=1")]);
        let long = headers(&[("cache-control", "max-age=3000")]);
        let zero = headers(&[("cache-control", "max-age=0")]);
        let secs = |policy: Policy, h: &HeaderMap| {
            policy
                .decide(false, StatusCode::OK, h, SMALL)
                .map(|s| s.timeout.as_secs())
        };
        assert_eq!(secs(page(), &short), Ok(300));
        assert_eq!(secs(page(), &long), Ok(300));
        assert_eq!(secs(site(), &short), Ok(1));
        assert_eq!(secs(site(), &long), Ok(3000));
        assert_eq!(secs(site(), &HeaderMap::new()), Ok(600));
        assert_eq!(secs(site(), &zero), Err(Bypass::ZeroMaxAge));
        assert_eq!(secs(page(), &zero), Err(Bypass::ZeroMaxAge));
        // Negative is more restrictive than 0 (Django stores it with a
        // negative timeout; cache_page's ttl used to win over it).
        let negative = headers(&[("cache-control", "max-age=-5")]);
        assert_eq!(secs(site(), &negative), Err(Bypass::ZeroMaxAge));
        assert_eq!(secs(page(), &negative), Err(Bypass::ZeroMaxAge));
        // cache_page(0): patched, never stored.
        let zero_page = Policy::new(Lifetime::Page(Duration::ZERO));
        assert!(
            !zero_page
                .decide(false, StatusCode::OK, &HeaderMap::new(), SMALL)
                .unwrap()
                .store
        );
    }

    /// Attack (or mistake): `max-age=60, s-maxage=0`, a page for browsers
    /// only. A shared cache must not reuse it; Django's setting ignores
    /// `s-maxage` and stores it.
    #[test]
    fn s_maxage_zero_is_never_stored_by_a_shared_cache() {
        let browsers_only = headers(&[("cache-control", "max-age=60, s-maxage=0")]);
        for policy in [page(), site()] {
            assert_eq!(
                policy.decide(false, StatusCode::OK, &browsers_only, SMALL),
                Err(Bypass::ZeroSharedMaxAge)
            );
            let django = Policy {
                shared_max_age: SharedMaxAgePolicy::Django,
                ..policy
            };
            assert!(
                django
                    .decide(false, StatusCode::OK, &browsers_only, SMALL)
                    .unwrap()
                    .store
            );
        }
        // The site-wide lifetime is s-maxage's; cache_page's ttl still wins.
        let shared = headers(&[("cache-control", "max-age=60, s-maxage=900")]);
        let secs = |p: Policy| {
            p.decide(false, StatusCode::OK, &shared, SMALL)
                .unwrap()
                .timeout
        };
        assert_eq!(secs(site()), Duration::from_secs(900));
        assert_eq!(secs(page()), Duration::from_secs(300));
    }

    /// Attack: a second `max-age` (or `s-maxage`) more permissive than the
    /// first. The smallest wins (RFC 9111 4.2.1), on one line or several;
    /// one that is not an integer makes the response unreadable.
    #[test]
    fn the_most_restrictive_of_repeated_lifetimes_wins() {
        let decide = |policy: &Policy, lines: &[&'static str]| {
            let pairs: Vec<_> = lines.iter().map(|l| ("cache-control", *l)).collect();
            policy
                .decide(false, StatusCode::OK, &headers(&pairs), SMALL)
                .map(|s| s.timeout.as_secs())
        };
        for policy in [page(), site()] {
            assert_eq!(
                decide(&policy, &["max-age=0, max-age=60"]),
                Err(Bypass::ZeroMaxAge)
            );
            assert_eq!(
                decide(&policy, &["max-age=60", "max-age=0"]),
                Err(Bypass::ZeroMaxAge)
            );
            assert_eq!(
                decide(&policy, &["s-maxage=0, s-maxage=60"]),
                Err(Bypass::ZeroSharedMaxAge)
            );
            for unreadable in ["max-age=abc", "max-age=60, max-age=", "s-maxage=1x"] {
                assert_eq!(
                    decide(&policy, &[unreadable]),
                    Err(Bypass::Unreadable("Cache-Control")),
                    "{unreadable}"
                );
            }
        }
        assert_eq!(decide(&site(), &["max-age=600", "max-age=30"]), Ok(30));
        assert_eq!(decide(&site(), &["s-maxage=900, s-maxage=60"]), Ok(60));
        // Ignored s-maxage is not read at all.
        let django = Policy {
            shared_max_age: SharedMaxAgePolicy::Django,
            ..site()
        };
        assert_eq!(decide(&django, &["max-age=30, s-maxage=soon"]), Ok(30));
    }

    /// Attack (or slip): names the rules cannot read, which may hide a
    /// `private` or a `Vary: Cookie` (`\xc2\xa0` is a UTF-8 no-break space).
    #[test]
    fn unreadable_cache_control_and_vary_fail_closed() {
        let raw = |name: &'static str, value: &'static [u8]| {
            let mut map = HeaderMap::new();
            map.insert(name, HeaderValue::from_bytes(value).unwrap());
            map
        };
        for (name, value, expected) in [
            ("cache-control", &b"\xc2\xa0private"[..], "Cache-Control"),
            ("cache-control", b"pri\tvate", "Cache-Control"),
            ("cache-control", b"=60", "Cache-Control"),
            ("vary", b"\xc2\xa0Cookie", "Vary"),
            ("vary", b"Cookie, X-Caf\xe9", "Vary"),
            ("vary", b"X-\"quoted\"", "Vary"),
        ] {
            assert_eq!(
                page().decide(false, StatusCode::OK, &raw(name, value), SMALL),
                Err(Bypass::Unreadable(expected)),
                "{value:?}"
            );
        }
        // Obs-text in a quoted value is legal; `*` beside obs-text counts.
        let quoted = raw("cache-control", b"public, x-note=\"caf\xe9\", max-age=60");
        assert!(page().decide(false, StatusCode::OK, &quoted, SMALL).is_ok());
        let star = raw("vary", b"X-\xff, *");
        assert_eq!(
            page().decide(false, StatusCode::OK, &star, SMALL),
            Err(Bypass::VaryStar)
        );
    }

    /// Attack: a "fat GET", whose body the key does not hold.
    #[test]
    fn a_request_with_a_body_bypasses_the_cache() {
        assert_eq!(Policy::check_body(&HeaderMap::new()), Ok(()));
        assert_eq!(
            Policy::check_body(&headers(&[("content-length", "0")])),
            Ok(())
        );
        for announced in [
            &[("content-length", "4")][..],
            &[("content-length", "0"), ("content-length", "4")],
            &[("content-length", "four")],
            &[("content-length", "-0")],
            &[("transfer-encoding", "chunked")],
            &[("transfer-encoding", "identity"), ("content-length", "0")],
        ] {
            assert_eq!(
                Policy::check_body(&headers(announced)),
                Err(Bypass::RequestBody),
                "{announced:?}"
            );
        }
    }

    /// RFC 9111 3.5 by default; Django's Vary: Authorization on request
    /// (`test_vary_on_authorization_for_authorization_header`, `..._exceptions`,
    /// `..._qualified_public_directive`, `..._superstring`).
    #[test]
    fn authorization() {
        let plain = HeaderMap::new();
        let public = headers(&[("cache-control", "public, max-age=60")]);
        assert_eq!(
            page().decide(true, StatusCode::OK, &plain, SMALL),
            Err(Bypass::Authorization)
        );
        for ok in ["public", "s-maxage=60", "must-revalidate"] {
            let response = headers(&[("cache-control", ok)]);
            assert!(
                page()
                    .decide(true, StatusCode::OK, &response, SMALL)
                    .is_ok(),
                "{ok}"
            );
        }
        assert_eq!(page().may_serve(true, &plain), Err(Bypass::Authorization));
        assert!(page().may_serve(true, &public).is_ok());
        assert!(page().may_serve(false, &plain).is_ok());

        let django = Policy {
            authorization: AuthorizationPolicy::VaryOnAuthorization,
            ..page()
        };
        assert!(
            django
                .decide(true, StatusCode::OK, &plain, SMALL)
                .unwrap()
                .vary_on_authorization
        );
        assert!(
            !django
                .decide(false, StatusCode::OK, &plain, SMALL)
                .unwrap()
                .vary_on_authorization
        );
        assert!(
            !django
                .decide(true, StatusCode::OK, &public, SMALL)
                .unwrap()
                .vary_on_authorization
        );
        let qualified = headers(&[("cache-control", "public=\"abc\"")]);
        assert!(
            !django
                .decide(true, StatusCode::OK, &qualified, SMALL)
                .unwrap()
                .vary_on_authorization
        );
        let superstring = headers(&[("cache-control", "no-public")]);
        assert!(
            django
                .decide(true, StatusCode::OK, &superstring, SMALL)
                .unwrap()
                .vary_on_authorization
        );
        assert!(django.may_serve(true, &plain).is_ok());

        // test_no_vary_on_authorization_for_empty_authorization_header
        assert!(!is_authorized(&headers(&[("authorization", "")])));
        assert!(is_authorized(&headers(&[("authorization", "Basic dTpw")])));
    }

    #[test]
    fn reasons_read_well() {
        assert_eq!(
            Bypass::Status(StatusCode::NOT_FOUND).to_string(),
            "status 404 is not 200"
        );
        assert_eq!(
            Bypass::CacheControl("no-store").to_string(),
            "Cache-Control: no-store"
        );
    }
}
