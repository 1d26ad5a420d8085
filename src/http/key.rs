//! Page keys in Django 6.1's exact layout and hashing.
//!
//! A cached page lives under two keys, both then made by [`Cache`](crate::Cache)
//! (`prefix:version:key`):
//!
//! * the header-list key, `views.decorators.cache.cache_header.<key_prefix>.<md5 of URL>`,
//!   holds the request headers the response varies on ([`VaryHeaders`]);
//! * the page key, `views.decorators.cache.cache_page.<key_prefix>.<METHOD>.<md5 of URL>.<md5 of those headers' values>`,
//!   holds the response.
//!
//! The URL is the absolute URL of the request (scheme, `Host`, path and
//! query), so two hosts never share an entry. The values of the varying headers
//! are fed to md5 as netstrings (`4:gzip,`), an absent header as `-,`, so
//! that values moved between headers never collide (Django 6.1.3).
//!
//! ```
//! use http::{HeaderMap, HeaderValue, Method, Uri, header};
//! use tower_cache::http::key::{VaryHeaders, header_key, page_key, url_hash};
//!
//! let mut request = HeaderMap::new();
//! request.insert(header::HOST, HeaderValue::from_static("www.example.com"));
//! let url = url_hash("http", &Uri::from_static("/cache/test/"), &request).unwrap();
//! assert_eq!(url.as_str(), "18a03f9c9649f7d684af5db3524f5c99");
//!
//! // The response had no Vary header: the empty list, md5 of nothing.
//! let vary = VaryHeaders::default();
//! assert_eq!(
//!     page_key("settingsprefix", &Method::GET, &url, &vary.hash(&request), ""),
//!     "views.decorators.cache.cache_page.settingsprefix.GET.\
//!      18a03f9c9649f7d684af5db3524f5c99.d41d8cd98f00b204e9800998ecf8427e",
//! );
//! assert_eq!(
//!     header_key("settingsprefix", &url, ""),
//!     "views.decorators.cache.cache_header.settingsprefix.18a03f9c9649f7d684af5db3524f5c99",
//! );
//! ```
//!
//! # Differences from Django
//!
//! * The path is hashed as the client sent it (percent-encoded), where Django
//!   decodes and re-escapes it; the two agree for plain ASCII paths.
//! * A varying header is looked up under its own name, so `Vary: Content-Type`
//!   varies on the request's `Content-Type` (Django looks up `HTTP_CONTENT_TYPE`,
//!   which WSGI never sets, and so never varies on it).
//! * The header list is stored in a small text format of this crate, not pickled.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{ACCEPT_ENCODING, ACCEPT_LANGUAGE, HOST, VARY};
use http::{HeaderMap, HeaderName, Method, Uri};
use md5::{Digest, Md5};

use super::encoding::{AcceptEncodingKey, preferred_coding};
use super::headers::header_parts;

/// The start of every page key.
pub const PAGE_KEY_PREFIX: &str = "views.decorators.cache.cache_page";

/// The start of every header-list key.
pub const HEADER_KEY_PREFIX: &str = "views.decorators.cache.cache_header";

/// An md5 digest as 32 lowercase hex digits, kept on the stack.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Md5Hex([u8; 32]);

impl Md5Hex {
    /// The digest of what `hasher` was fed.
    pub(crate) fn of(hasher: Md5) -> Md5Hex {
        let mut out = [0u8; 32];
        crate::hex::encode_into(&hasher.finalize(), &mut out);
        Md5Hex(out)
    }

    /// The md5 of `bytes`.
    pub fn digest(bytes: &[u8]) -> Md5Hex {
        let mut hasher = Md5::new();
        hasher.update(bytes);
        Md5Hex::of(hasher)
    }

    /// The hex digits.
    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits are ever written.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Debug for Md5Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Md5Hex({})", self.as_str())
    }
}

impl fmt::Display for Md5Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The request's host as Django's `get_host` gives it: the `Host` header, or
/// the URI's authority (HTTP/2's `:authority`) when there is none. `None`
/// when it is missing or not a valid host (Django's `host_validation_re`),
/// and, safer than Django, when it is ambiguous: several `Host` headers
/// (RFC 9112 section 3.2 makes that a 400), or a `Host` that disagrees with
/// an absolute-form request target (`GET http://evil.example/ HTTP/1.1`
/// with `Host: victim.example`: RFC 9112 section 3.2.2 says the target
/// wins, so an app that reads the URI renders evil.example's page, which
/// must not be stored under victim.example's key). Such a request is not
/// cached.
pub fn request_host<'a>(uri: &'a Uri, headers: &'a HeaderMap) -> Option<&'a str> {
    let mut sent = headers.get_all(HOST).iter();
    let host = match (sent.next(), sent.next()) {
        (Some(_), Some(_)) => return None,
        (Some(value), None) => {
            let host = value.to_str().ok()?;
            if uri
                .authority()
                .is_some_and(|target| !target.as_str().eq_ignore_ascii_case(host))
            {
                return None;
            }
            host
        }
        (None, _) => uri.authority()?.as_str(),
    };
    is_valid_host(host).then_some(host)
}

/// The hosts whose pages may be cached: Django's `ALLOWED_HOSTS`, for the
/// cache. Every distinct `Host` a client sends makes new entries, so a site
/// that names its hosts keeps strangers' `Host` values out of the cache
/// (they are served, uncached).
///
/// Patterns as Django's: an exact name (case-insensitive, without the port),
/// `.example.com` for example.com and every subdomain, `*` for any host.
/// The default allows any host.
///
/// ```
/// use tower_cache::http::key::AllowedHosts;
///
/// let hosts = AllowedHosts::new(["shop.example", ".cdn.example"]);
/// assert!(hosts.allows("shop.example:8000"));
/// assert!(hosts.allows("img.cdn.example"));
/// assert!(hosts.allows("CDN.example"));
/// assert!(!hosts.allows("evil.example"));
/// assert!(AllowedHosts::default().allows("anything.example"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedHosts {
    /// Lowercased patterns; `None` allows any host.
    patterns: Option<Vec<String>>,
}

impl AllowedHosts {
    /// Only hosts that match one of `patterns`.
    pub fn new<I, S>(patterns: I) -> AllowedHosts
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let patterns = patterns
            .into_iter()
            .map(|p| p.as_ref().to_ascii_lowercase())
            .collect();
        AllowedHosts {
            patterns: Some(patterns),
        }
    }

    /// Whether any host is allowed (the default).
    pub fn allows_any(&self) -> bool {
        self.patterns.is_none()
    }

    /// Whether `host` (a `Host` value, with or without a port) matches
    /// (Django's `validate_host`).
    pub fn allows(&self, host: &str) -> bool {
        let Some(patterns) = &self.patterns else {
            return true;
        };
        let domain = match host.strip_prefix('[') {
            Some(rest) => rest.find(']').map_or(host, |end| &host[..end + 2]),
            None => host.rsplit_once(':').map_or(host, |(domain, _)| domain),
        };
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        patterns.iter().any(|pattern| {
            pattern == "*"
                || *pattern == domain
                || pattern
                    .strip_prefix('.')
                    .is_some_and(|parent| domain == parent || domain.ends_with(pattern.as_str()))
        })
    }
}

/// `^([a-z0-9.-]+|\[[a-f0-9]*:[a-f0-9.:]+\])(:[0-9]+)?$`, case-insensitive.
fn is_valid_host(host: &str) -> bool {
    let (name, port) = if let Some(rest) = host.strip_prefix('[') {
        let Some(end) = rest.find(']') else {
            return false;
        };
        let inner = &rest[..end];
        let valid_v6 = inner.contains(':')
            && inner
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
        if !valid_v6 {
            return false;
        }
        (&host[..end + 2], &rest[end + 1..])
    } else {
        match host.find(':') {
            Some(at) => (&host[..at], &host[at..]),
            None => (host, ""),
        }
    };
    let name_ok = name.starts_with('[')
        || (!name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-'));
    let port_ok = port.is_empty()
        || port
            .strip_prefix(':')
            .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    name_ok && port_ok
}

/// The md5 of the request's absolute URL, `scheme://host/path?query` (Django's
/// `build_absolute_uri`), without building the URL. `scheme` is what
/// [`RequestScheme::of`] gives. `None` when the request has no usable host
/// ([`request_host`]).
pub fn url_hash(scheme: &str, uri: &Uri, headers: &HeaderMap) -> Option<Md5Hex> {
    let host = request_host(uri, headers)?;
    let mut hasher = Md5::new();
    hasher.update(scheme.as_bytes());
    hasher.update(b"://");
    hasher.update(host.as_bytes());
    hasher.update(uri.path().as_bytes());
    if let Some(query) = uri.query().filter(|q| !q.is_empty()) {
        hasher.update(b"?");
        hasher.update(query.as_bytes());
    }
    Some(Md5Hex::of(hasher))
}

/// How the scheme of a request's absolute URL (`http` or `https`) is found.
///
/// Behind a load balancer or proxy that terminates TLS, every request
/// reaches the app over plain HTTP and its URI has no scheme, so an HTTPS
/// site would be keyed as `http://`. [`RequestScheme::TrustedHeader`] is
/// Django's `SECURE_PROXY_SSL_HEADER`; a server that terminates TLS itself
/// (axum-server with rustls, say) can say [`RequestScheme::Https`].
///
/// # Security
///
/// Trust a header only behind a proxy that always sets it, removing any
/// value the client sent: otherwise a client can choose the scheme its
/// request is keyed under.
///
/// ```
/// use http::{HeaderMap, HeaderValue, Uri};
/// use tower_cache::http::key::RequestScheme;
///
/// let proxy = RequestScheme::trusted_header("x-forwarded-proto", "https").unwrap();
/// let mut headers = HeaderMap::new();
/// assert_eq!(proxy.of(&Uri::from_static("/"), &headers), "http");
/// headers.insert("x-forwarded-proto", HeaderValue::from_static("https"));
/// assert_eq!(proxy.of(&Uri::from_static("/"), &headers), "https");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestScheme {
    /// The request URI's scheme, `http` when the request line has none (the
    /// default; Django without `SECURE_PROXY_SSL_HEADER`).
    #[default]
    FromUri,
    /// Always `https`: the server terminates TLS itself.
    Https,
    /// `https` when the header `name` is present and its first
    /// comma-separated value, trimmed, is `value`; `http` when it is present
    /// with another value; the URI's scheme when it is absent (Django's
    /// `SECURE_PROXY_SSL_HEADER = (name, value)`).
    TrustedHeader {
        /// The header the proxy sets, e.g. `x-forwarded-proto`.
        name: HeaderName,
        /// The value that means HTTPS, e.g. `https`.
        value: String,
    },
}

impl RequestScheme {
    /// [`RequestScheme::TrustedHeader`] from a header name and value.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidOption`](crate::ConfigError::InvalidOption) when
    /// `name` is not a valid header name.
    pub fn trusted_header(name: &str, value: &str) -> crate::Result<RequestScheme> {
        let parsed = HeaderName::from_bytes(name.as_bytes()).map_err(|error| {
            crate::ConfigError::InvalidOption {
                backend: "http",
                option: "secure_proxy_ssl_header".into(),
                value: name.to_owned(),
                reason: error.to_string(),
            }
        })?;
        Ok(RequestScheme::TrustedHeader {
            name: parsed,
            value: value.to_owned(),
        })
    }

    /// The scheme of this request: `"http"`, `"https"`, or the URI's own.
    pub fn of<'a>(&self, uri: &'a Uri, headers: &HeaderMap) -> &'a str {
        let from_uri = || uri.scheme_str().unwrap_or("http");
        match self {
            RequestScheme::FromUri => from_uri(),
            RequestScheme::Https => "https",
            RequestScheme::TrustedHeader { name, value } => match headers.get(name) {
                None => from_uri(),
                Some(sent) => {
                    let first = sent
                        .as_bytes()
                        .split(|&b| b == b',')
                        .next()
                        .unwrap_or_default();
                    if first.trim_ascii() == value.as_bytes() {
                        "https"
                    } else {
                        "http"
                    }
                }
            },
        }
    }
}

/// The header-list key: `views.decorators.cache.cache_header.<key_prefix>.<url>` + `suffix`.
pub fn header_key(key_prefix: &str, url: &Md5Hex, suffix: &str) -> String {
    let mut key = String::with_capacity(header_key_len(key_prefix, suffix));
    push_header_key(&mut key, key_prefix, url, suffix);
    key
}

/// The length of a [`header_key`].
pub(crate) fn header_key_len(key_prefix: &str, suffix: &str) -> usize {
    HEADER_KEY_PREFIX.len() + key_prefix.len() + 34 + suffix.len()
}

/// Writes a [`header_key`] to `key`.
pub(crate) fn push_header_key(key: &mut String, key_prefix: &str, url: &Md5Hex, suffix: &str) {
    key.push_str(HEADER_KEY_PREFIX);
    key.push('.');
    key.push_str(key_prefix);
    key.push('.');
    key.push_str(url.as_str());
    key.push_str(suffix);
}

/// The page key: `views.decorators.cache.cache_page.<key_prefix>.<METHOD>.<url>.<vary>` + `suffix`.
pub fn page_key(
    key_prefix: &str,
    method: &Method,
    url: &Md5Hex,
    vary: &Md5Hex,
    suffix: &str,
) -> String {
    let mut key = String::with_capacity(page_key_len(key_prefix, method, suffix));
    push_page_key(&mut key, key_prefix, method, url, vary, suffix);
    key
}

/// The length of a [`page_key`].
pub(crate) fn page_key_len(key_prefix: &str, method: &Method, suffix: &str) -> usize {
    PAGE_KEY_PREFIX.len() + key_prefix.len() + method.as_str().len() + 68 + suffix.len()
}

/// Writes a [`page_key`] to `key`.
pub(crate) fn push_page_key(
    key: &mut String,
    key_prefix: &str,
    method: &Method,
    url: &Md5Hex,
    vary: &Md5Hex,
    suffix: &str,
) {
    key.push_str(PAGE_KEY_PREFIX);
    key.push('.');
    key.push_str(key_prefix);
    key.push('.');
    key.push_str(method.as_str());
    key.push('.');
    key.push_str(url.as_str());
    key.push('.');
    key.push_str(vary.as_str());
    key.push_str(suffix);
}

/// The request headers a response varies on, in Django's order (sorted by
/// WSGI name, `HTTP_ACCEPT_ENCODING` before `HTTP_COOKIE`), as stored under
/// the header-list key. Empty when the response has no `Vary`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VaryHeaders {
    /// Lowercased names, sorted; `None` beside a name that is not a valid
    /// header name (such a header is never in a request: it hashes as absent).
    names: Vec<(String, Option<HeaderName>)>,
}

/// The first bytes of a stored header list.
const VARY_MAGIC: &[u8] = b"tcv2\n";

impl VaryHeaders {
    /// The list from a response's `Vary` headers (Django's `learn_cache_key`):
    /// tokens trimmed, sorted as Django sorts them, duplicates kept; a value
    /// with bytes `>= 0x80` is read as ISO-8859-1, so its other tokens count.
    /// `skip_accept_language` drops `Accept-Language`, as Django does when
    /// the key carries the language ([`KeySuffix::skip_accept_language`]).
    /// A `Vary: *` response must not get here (it is never stored).
    pub fn from_response(headers: &HeaderMap, skip_accept_language: bool) -> VaryHeaders {
        let mut names: Vec<(String, Option<HeaderName>)> = header_parts(headers, &VARY)
            .map(|name| name.to_ascii_lowercase())
            .filter(|name| !(skip_accept_language && name == ACCEPT_LANGUAGE.as_str()))
            .map(|name| {
                let parsed = HeaderName::from_bytes(name.as_bytes()).ok();
                (name, parsed)
            })
            .collect();
        names.sort_by(|a, b| wsgi_order(&a.0, &b.0));
        VaryHeaders { names }
    }

    /// Whether the response varies on nothing.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The lowercased header names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(|(name, _)| name.as_str())
    }

    /// The md5 of the request's values of these headers (Django 6.1's
    /// `_generate_cache_key`): each present header as a netstring of its
    /// value (repeated headers joined with `,`, as WSGI servers join them),
    /// each absent one as `-,`.
    pub fn hash(&self, request: &HeaderMap) -> Md5Hex {
        self.hash_with(request, AcceptEncodingKey::AsSent)
    }

    /// [`hash`](VaryHeaders::hash), with `Accept-Encoding` as
    /// `accept_encoding` says: under [`AcceptEncodingKey::Preferred`], its
    /// value is the coding the client prefers ([`preferred_coding`]), so a
    /// request that sends exactly that coding hashes as in Django.
    pub fn hash_with(&self, request: &HeaderMap, accept_encoding: AcceptEncodingKey) -> Md5Hex {
        self.hash_values(request, accept_encoding, false)
    }

    /// [`hash_with`](VaryHeaders::hash_with), with each header's values
    /// normalised as RFC 9111 section 4.1 allows, so that requests that
    /// say the same thing share an entry: the comma-separated members of
    /// every line, trimmed, joined with `,` (`a, b` on one line and `a`,
    /// `b` on two are the same); `Accept-Language` also lowercased. The
    /// RFC 9111 policy keys by this; Django's by the values as sent.
    pub fn hash_normalized(
        &self,
        request: &HeaderMap,
        accept_encoding: AcceptEncodingKey,
    ) -> Md5Hex {
        self.hash_values(request, accept_encoding, true)
    }

    fn hash_values(
        &self,
        request: &HeaderMap,
        accept_encoding: AcceptEncodingKey,
        normalize: bool,
    ) -> Md5Hex {
        let mut hasher = Md5::new();
        let mut digits = itoa::Buffer::new();
        let mut netstring = |hasher: &mut Md5, parts: &mut dyn Iterator<Item = &[u8]>, len| {
            hasher.update(digits.format(len).as_bytes());
            hasher.update(b":");
            for (i, part) in parts.enumerate() {
                if i > 0 {
                    hasher.update(b",");
                }
                hasher.update(part);
            }
            hasher.update(b",");
        };
        for (_, name) in &self.names {
            if accept_encoding == AcceptEncodingKey::Preferred
                && name.as_ref() == Some(&ACCEPT_ENCODING)
            {
                match preferred_coding(request) {
                    Some(coding) => netstring(
                        &mut hasher,
                        &mut std::iter::once(coding.as_bytes()),
                        coding.len(),
                    ),
                    None => hasher.update(b"-,"),
                }
                continue;
            }
            let all = name.as_ref().map(|name| request.get_all(name));
            let Some(all) = all.filter(|all| all.iter().next().is_some()) else {
                hasher.update(b"-,");
                continue;
            };
            if normalize {
                let lowercase = name.as_ref() == Some(&ACCEPT_LANGUAGE);
                let members: Vec<Vec<u8>> = all
                    .iter()
                    .flat_map(|value| value.as_bytes().split(|&b| b == b','))
                    .map(|member| {
                        let member = member.trim_ascii();
                        match lowercase {
                            true => member.to_ascii_lowercase(),
                            false => member.to_vec(),
                        }
                    })
                    .filter(|member| !member.is_empty())
                    .collect();
                let len =
                    members.iter().map(Vec::len).sum::<usize>() + members.len().saturating_sub(1);
                netstring(&mut hasher, &mut members.iter().map(Vec::as_slice), len);
                continue;
            }
            let len = all.iter().map(|value| value.len()).sum::<usize>() + all.iter().count() - 1;
            netstring(&mut hasher, &mut all.iter().map(|v| v.as_bytes()), len);
        }
        Md5Hex::of(hasher)
    }

    /// Whether the list holds `Accept-Encoding`.
    pub fn has_accept_encoding(&self) -> bool {
        self.names
            .iter()
            .any(|(_, name)| name.as_ref() == Some(&ACCEPT_ENCODING))
    }

    /// The bytes stored under the header-list key: the list and its
    /// `generation`, a random number that every entry stored through this
    /// list records. Purging the URL deletes the list, and the next one has
    /// a new generation, so the URL's old entries (every `Vary` variant)
    /// stay unreachable without being listed anywhere.
    pub fn encode(&self, generation: u64) -> Bytes {
        let mut out = Vec::with_capacity(
            VARY_MAGIC.len() + 17 + self.names.iter().map(|n| n.0.len() + 1).sum::<usize>(),
        );
        out.extend_from_slice(VARY_MAGIC);
        out.extend_from_slice(format!("{generation:016x}\n").as_bytes());
        for (name, _) in &self.names {
            out.extend_from_slice(name.as_bytes());
            out.push(b'\n');
        }
        Bytes::from(out)
    }

    /// The list and its generation back from [`encode`](VaryHeaders::encode)'s
    /// bytes; `None` for anything else (damage, or another program's bytes;
    /// [`is_other_version`](VaryHeaders::is_other_version) tells a list of
    /// another release apart).
    pub fn decode(bytes: &[u8]) -> Option<(VaryHeaders, u64)> {
        let rest = bytes.strip_prefix(VARY_MAGIC)?;
        let (generation, rest) = (rest.get(..16)?, rest.get(16..)?);
        let rest = rest.strip_prefix(b"\n")?;
        // Exactly as encoded (lowercase, 16 digits), so that a list decodes
        // only from the one spelling it encodes to.
        if !generation
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
        {
            return None;
        }
        let generation = u64::from_str_radix(std::str::from_utf8(generation).ok()?, 16).ok()?;
        if rest.is_empty() {
            return Some((VaryHeaders::default(), generation));
        }
        let text = std::str::from_utf8(rest.strip_suffix(b"\n")?).ok()?;
        let names = text
            .split('\n')
            .map(|name| {
                let parsed = HeaderName::from_bytes(name.as_bytes()).ok();
                (name.to_owned(), parsed)
            })
            .collect();
        Some((VaryHeaders { names }, generation))
    }

    /// Whether `bytes` are a header list of another release (`tcv` and
    /// another version digit): a miss, not damage to delete, so that
    /// processes of two releases do not delete each other's lists.
    pub fn is_other_version(bytes: &[u8]) -> bool {
        bytes.len() >= VARY_MAGIC.len()
            && bytes.starts_with(&VARY_MAGIC[..3])
            && !bytes.starts_with(VARY_MAGIC)
    }
}

/// Compares header names as Django compares their WSGI names
/// (`HTTP_` + upper case, `-` as `_`).
fn wsgi_order(a: &str, b: &str) -> Ordering {
    let wsgi = |byte: u8| {
        if byte == b'-' {
            b'_'
        } else {
            byte.to_ascii_uppercase()
        }
    };
    a.bytes().map(wsgi).cmp(b.bytes().map(wsgi))
}

type SuffixFn = dyn Fn(&HeaderMap, &http::Extensions) -> String + Send + Sync;

/// Something appended to every page and header-list key: Django's language
/// and time-zone suffix (`.en-us.UTC`), off by default.
///
/// The function sees the request's headers and extensions (where a locale
/// middleware can leave the request's language).
///
/// ```
/// use tower_cache::http::key::KeySuffix;
///
/// // What Django appends with USE_I18N and USE_TZ in the tutorial: `.en-us.UTC`.
/// let suffix = KeySuffix::new(|_headers, _extensions| ".en-us.UTC".to_owned()).skip_accept_language();
/// ```
#[derive(Clone)]
pub struct KeySuffix {
    make: Arc<SuffixFn>,
    skip_accept_language: bool,
}

impl KeySuffix {
    /// A suffix made by `make` for each request.
    pub fn new(
        make: impl Fn(&HeaderMap, &http::Extensions) -> String + Send + Sync + 'static,
    ) -> KeySuffix {
        KeySuffix {
            make: Arc::new(make),
            skip_accept_language: false,
        }
    }

    /// The suffix carries the request's language, so a `Vary: Accept-Language`
    /// is left out of the key, as Django does with `USE_I18N` (ticket #18191).
    #[must_use]
    pub fn skip_accept_language(mut self) -> KeySuffix {
        self.skip_accept_language = true;
        self
    }

    /// Whether `Vary: Accept-Language` is left out of keys.
    pub fn skips_accept_language(&self) -> bool {
        self.skip_accept_language
    }

    /// The suffix for one request.
    pub fn make(&self, headers: &HeaderMap, extensions: &http::Extensions) -> String {
        (self.make)(headers, extensions)
    }
}

impl fmt::Debug for KeySuffix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySuffix")
            .field("skip_accept_language", &self.skip_accept_language)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn host(host: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(HOST, HeaderValue::from_str(host).unwrap());
        headers
    }

    fn vary(value: &str) -> VaryHeaders {
        let mut headers = HeaderMap::new();
        headers.insert(VARY, HeaderValue::from_str(value).unwrap());
        VaryHeaders::from_response(&headers, false)
    }

    /// Attack: a second `Host` header, or an absolute-form request target
    /// naming another host, to have one site's page stored under another's
    /// key. Neither has a host to key by.
    #[test]
    fn ambiguous_hosts_poison_nothing() {
        let mut two = host("victim.example");
        two.append(HOST, "evil.example".parse().unwrap());
        assert_eq!(request_host(&Uri::from_static("/"), &two), None);
        let absolute = Uri::from_static("http://evil.example/account");
        assert_eq!(request_host(&absolute, &host("victim.example")), None);
        // The same host both ways is fine (any case), and so is the target
        // alone.
        assert_eq!(
            request_host(&absolute, &host("EVIL.example")),
            Some("EVIL.example")
        );
        assert_eq!(
            request_host(&absolute, &HeaderMap::new()),
            Some("evil.example")
        );
    }

    /// Django's `validate_host` cases.
    #[test]
    fn allowed_hosts_match_as_djangos() {
        let hosts = AllowedHosts::new(["example.com", ".example.org", "[::1]"]);
        for good in [
            "example.com",
            "EXAMPLE.COM:8000",
            "example.com.",
            "example.org",
            "a.b.example.org",
            "[::1]:8080",
        ] {
            assert!(hosts.allows(good), "{good}");
        }
        for bad in [
            "example.com.evil",
            "notexample.com",
            "badexample.org",
            "[::2]",
            "",
        ] {
            assert!(!hosts.allows(bad), "{bad}");
        }
        assert!(AllowedHosts::new(["*"]).allows("anything"));
        assert!(!AllowedHosts::new(Vec::<String>::new()).allows("example.com"));
    }

    /// The URL hashes of Django's `test_get_cache_key*` and `TestWithTemplateResponse`.
    #[test]
    fn url_hashes_are_djangos() {
        let table = [
            (
                "www.example.com",
                "/cache/test/",
                "18a03f9c9649f7d684af5db3524f5c99",
            ),
            (
                "www.example.com",
                "/cache/test/?test=1",
                "beaf87a9a99ee81c673ea2d67ccbec2a",
            ),
            (
                "testserver",
                "/cache/test/",
                "58a0a05c8a5620f813686ff969c26853",
            ),
            (
                "testserver",
                "/cache/test/?test=1",
                "0f1c2d56633c943073c4569d9a9502fe",
            ),
            // The seed tutorial's Redis keys: http://127.0.0.1:8000/
            ("127.0.0.1:8000", "/", "17abf5259517d604cc9599a00b7385d6"),
        ];
        for (h, path, expected) in table {
            let uri: Uri = path.parse().unwrap();
            assert_eq!(
                url_hash("http", &uri, &host(h)).unwrap().as_str(),
                expected,
                "{h}{path}"
            );
        }
        // An empty query is no query, as in Django.
        let uri: Uri = "/cache/test/?".parse().unwrap();
        assert_eq!(
            url_hash("http", &uri, &host("testserver"))
                .unwrap()
                .as_str(),
            "58a0a05c8a5620f813686ff969c26853"
        );
    }

    #[test]
    fn authority_is_used_without_host_and_bad_hosts_are_refused() {
        let uri: Uri = "http://testserver/cache/test/".parse().unwrap();
        assert_eq!(
            url_hash("http", &uri, &HeaderMap::new()).unwrap().as_str(),
            "58a0a05c8a5620f813686ff969c26853"
        );
        assert!(url_hash("http", &Uri::from_static("/"), &HeaderMap::new()).is_none());
        for bad in [
            "",
            "exa mple.com",
            "example.com:",
            "example.com:80x",
            "a/b",
            "[zz::1]",
            "ex@mple",
        ] {
            assert!(!is_valid_host(bad), "{bad:?}");
        }
        for good in [
            "example.com",
            "EXAMPLE.com:8000",
            "127.0.0.1:8000",
            "[::1]",
            "[::1]:8080",
            "xn--bcher-kva.ch",
        ] {
            assert!(is_valid_host(good), "{good:?}");
        }
        // Different hosts, different keys (test_cache_key_varies_by_url).
        let uri = Uri::from_static("/cache/test");
        assert_ne!(
            url_hash("http", &uri, &host("host1.example.com")),
            url_hash("http", &uri, &host("host2.example.com"))
        );
    }

    /// `test_get_cache_key` and `test_learn_cache_key`.
    #[test]
    fn page_keys_are_djangos() {
        let request = host("www.example.com");
        let url = url_hash("http", &Uri::from_static("/cache/test/"), &request).unwrap();
        let none = VaryHeaders::default().hash(&request);
        assert_eq!(none.as_str(), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(
            page_key("localprefix", &Method::GET, &url, &none, ""),
            "views.decorators.cache.cache_page.localprefix.GET.18a03f9c9649f7d684af5db3524f5c99.d41d8cd98f00b204e9800998ecf8427e"
        );
        // Vary: Pony, no Pony header: md5("-,").
        let pony = vary("Pony");
        assert_eq!(
            pony.hash(&request).as_str(),
            "4792b9bac48c3f0441b0d9b0d7af8f2c"
        );
        assert_eq!(
            page_key("", &Method::GET, &url, &pony.hash(&request), ""),
            "views.decorators.cache.cache_page..GET.18a03f9c9649f7d684af5db3524f5c99.4792b9bac48c3f0441b0d9b0d7af8f2c"
        );
    }

    /// The tutorial's keys, as Redis showed them (Cache makes the `:1:`).
    #[test]
    fn tutorial_keys() {
        let request = host("127.0.0.1:8000");
        let url = url_hash("http", &Uri::from_static("/"), &request).unwrap();
        let vary = VaryHeaders::default().hash(&request);
        assert_eq!(
            format!(":1:{}", header_key("", &url, ".en-us.UTC")),
            ":1:views.decorators.cache.cache_header..17abf5259517d604cc9599a00b7385d6.en-us.UTC"
        );
        assert_eq!(
            format!(
                ":1:{}",
                page_key("", &Method::GET, &url, &vary, ".en-us.UTC")
            ),
            ":1:views.decorators.cache.cache_page..GET.17abf5259517d604cc9599a00b7385d6.d41d8cd98f00b204e9800998ecf8427e.en-us.UTC"
        );
    }

    /// The digest's verified framing: `[HTTP_ACCEPT_ENCODING, HTTP_COOKIE]` with
    /// `gzip` and an empty Cookie hashes the bytes `4:gzip,0:,`.
    #[test]
    fn values_are_netstrings() {
        let mut request = HeaderMap::new();
        request.insert("accept-encoding", HeaderValue::from_static("gzip"));
        request.insert("cookie", HeaderValue::from_static(""));
        let list = vary("Cookie, Accept-Encoding");
        assert_eq!(
            list.names().collect::<Vec<_>>(),
            ["accept-encoding", "cookie"]
        );
        assert_eq!(list.hash(&request), Md5Hex::digest(b"4:gzip,0:,"));
    }

    /// `test_cache_key_blank_header` and `test_learn_cache_key_no_header_collision`.
    #[test]
    fn absent_empty_and_moved_values_never_collide() {
        let list = vary("X-Region, X-Tenant");
        let mut a = HeaderMap::new();
        a.insert("x-region", HeaderValue::from_static("EU"));
        a.insert("x-tenant", HeaderValue::from_static(""));
        let mut b = HeaderMap::new();
        b.insert("x-region", HeaderValue::from_static(""));
        b.insert("x-tenant", HeaderValue::from_static("EU"));
        let mut c = HeaderMap::new();
        c.insert("x-region", HeaderValue::from_static("EU"));
        let hashes = [
            list.hash(&a),
            list.hash(&b),
            list.hash(&c),
            list.hash(&HeaderMap::new()),
        ];
        for i in 0..hashes.len() {
            for j in i + 1..hashes.len() {
                assert_ne!(hashes[i], hashes[j], "{i} vs {j}");
            }
        }
        // Absent is `-,`, empty is `0:,`.
        let list = vary("Pony");
        let mut empty = HeaderMap::new();
        empty.insert("pony", HeaderValue::from_static(""));
        assert_eq!(list.hash(&empty), Md5Hex::digest(b"0:,"));
        assert_eq!(list.hash(&HeaderMap::new()), Md5Hex::digest(b"-,"));
    }

    #[test]
    fn repeated_request_headers_are_joined() {
        let mut request = HeaderMap::new();
        request.append("x-a", HeaderValue::from_static("1"));
        request.append("x-a", HeaderValue::from_static("22"));
        assert_eq!(vary("X-A").hash(&request), Md5Hex::digest(b"4:1,22,"));
    }

    /// Found by fuzzing: a byte >= 0x80 in a `Vary` value hid the whole
    /// value, so `Vary: Cookie, X-Caf\xe9` varied on nothing and one user's
    /// page was served to another.
    #[test]
    fn vary_tokens_beside_obs_text_count() {
        let mut headers = HeaderMap::new();
        headers.insert(VARY, HeaderValue::from_bytes(b"X-Caf\xe9, Cookie").unwrap());
        let list = VaryHeaders::from_response(&headers, false);
        assert_eq!(list.names().collect::<Vec<_>>(), ["cookie", "x-caf\u{e9}"]);
        assert_eq!(
            VaryHeaders::decode(&list.encode(7)),
            Some((list.clone(), 7))
        );
        let mut a = HeaderMap::new();
        a.insert("cookie", HeaderValue::from_static("sessionid=a"));
        let mut b = HeaderMap::new();
        b.insert("cookie", HeaderValue::from_static("sessionid=b"));
        assert_ne!(list.hash(&a), list.hash(&b));
    }

    /// `test_learn_cache_key_strips_whitespace`, Django's sort order, and the
    /// Accept-Language rule of `USE_I18N`.
    #[test]
    fn lists_are_trimmed_sorted_and_round_trip() {
        assert_eq!(vary(" Cookie ").names().collect::<Vec<_>>(), ["cookie"]);
        // HTTP_X_A sorts after HTTP_XA ('_' > 'A'), unlike "x-a" < "xa".
        assert_eq!(vary("x-a, xa").names().collect::<Vec<_>>(), ["xa", "x-a"]);
        let mut headers = HeaderMap::new();
        headers.insert(VARY, HeaderValue::from_static("Accept-Language, Cookie"));
        assert_eq!(
            VaryHeaders::from_response(&headers, true)
                .names()
                .collect::<Vec<_>>(),
            ["cookie"]
        );
        let list = vary("Cookie, Accept-Encoding, X-Custom");
        assert_eq!(VaryHeaders::decode(&list.encode(1)), Some((list, 1)));
        assert_eq!(
            VaryHeaders::decode(&VaryHeaders::default().encode(u64::MAX)),
            Some((VaryHeaders::default(), u64::MAX))
        );
        assert_eq!(VaryHeaders::decode(b"\x80\x05pickle"), None);
        assert_eq!(VaryHeaders::decode(b"tcv2\n0000000000000001\ncookie"), None);
        assert_eq!(VaryHeaders::decode(b"tcv2\n000000000000000F\n"), None);
        assert!(VaryHeaders::is_other_version(b"tcv1\ncookie\n"));
        assert!(!VaryHeaders::is_other_version(b"tcv2\n0000000000000001\n"));
        assert!(!VaryHeaders::is_other_version(b"\x80\x05pickle"));
    }
}
