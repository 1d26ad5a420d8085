//! The request side (Django's `FetchFromCacheMiddleware.process_request`):
//! GET and HEAD with a usable host look up the entry a page without `Vary`
//! would have (one backend get), then, on a miss, the header list and the
//! entry for the request's varying headers. A hit is answered without
//! calling the inner service; a miss leaves a [`Snapshot`] of the request
//! for the response side.

use std::sync::{Arc, LazyLock};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{AGE, CONTENT_ENCODING, CONTENT_LENGTH};
use http::{HeaderMap, HeaderValue, Method, Request, Response};

use super::TARGET;
use super::body::CacheBody;
use super::future::{After, Side};
use super::settings::Settings;
use crate::cache::Cache;
use crate::http::encoding::{AcceptEncodingKey, accepts_coding};
use crate::http::key::{Md5Hex, VaryHeaders, header_key, page_key, url_hash};
use crate::http::policy::{Bypass, Policy, is_authorized};
use crate::http::stored::StoredResponse;

/// What the request side learned, for the response side.
#[derive(Debug)]
pub(crate) struct Snapshot {
    pub(crate) settings: Arc<Settings>,
    pub(crate) cache: Cache,
    pub(crate) method: Method,
    pub(crate) headers: HeaderMap,
    pub(crate) url: Md5Hex,
    pub(crate) suffix: String,
    pub(crate) authorized: bool,
}

impl Snapshot {
    /// Whether `Accept-Language` is left out of the key (it is in the suffix).
    pub(crate) fn skips_accept_language(&self) -> bool {
        self.settings
            .key_suffix
            .as_ref()
            .is_some_and(|s| s.skips_accept_language())
    }
}

pub(crate) enum Looked<ReqB, ResB> {
    Hit(Response<CacheBody<ResB>>),
    Miss(Request<ReqB>, After),
}

/// Whether the request may be looked up at all (GET or HEAD, a usable
/// host), and the hash of its absolute URL if so.
pub(crate) fn start<B>(settings: &Settings, request: &Request<B>) -> Result<Md5Hex, ()> {
    let scheme = settings.scheme.of(request.uri(), request.headers());
    Policy::check_method(request.method())
        .and_then(|()| url_hash(scheme, request.uri(), request.headers()).ok_or(Bypass::NoHost))
        .map_err(|bypass| {
            tracing::debug!(target: TARGET, method = %request.method(), uri = %request.uri(),
                reason = %bypass, "cache bypass");
        })
}

/// The request side, from step 2 (the method and host are checked).
pub(crate) async fn lookup<ReqB, ResB>(
    settings: Arc<Settings>,
    request: Request<ReqB>,
    url: Md5Hex,
    side: Side,
) -> Looked<ReqB, ResB> {
    let Some(cache) = settings.cache().await else {
        // The default cache could not be built (logged once): pass through.
        return Looked::Miss(request, After::Nothing);
    };
    let (parts, body) = request.into_parts();
    let suffix = settings.suffix(&parts.headers, &parts.extensions);
    let authorized = is_authorized(&parts.headers);
    match find(
        &settings,
        cache,
        &parts.method,
        &parts.headers,
        &url,
        &suffix,
    )
    .await
    {
        Ok((key, entry)) => match settings.policy.may_serve(authorized, &entry.headers) {
            Ok(()) => {
                tracing::debug!(target: TARGET, key = %key, "cache hit");
                return Looked::Hit(hit_response(entry, parts.method == Method::HEAD));
            }
            Err(bypass) => {
                tracing::debug!(target: TARGET, key = %key, reason = %bypass, "cache bypass");
            }
        },
        Err(reason) => {
            tracing::debug!(target: TARGET, url = %url, reason, "cache miss");
        }
    }
    let snapshot = Arc::new(Snapshot {
        cache: cache.clone(),
        method: parts.method.clone(),
        headers: parts.headers.clone(),
        url,
        suffix,
        authorized,
        settings,
    });
    let after = match side {
        Side::Both => After::Store(snapshot),
        Side::Fetch => After::Mark(snapshot),
    };
    Looked::Miss(Request::from_parts(parts, body), after)
}

/// md5 of nothing: the Vary hash of a page without `Vary`.
fn empty_vary() -> Md5Hex {
    static EMPTY: LazyLock<Md5Hex> =
        LazyLock::new(|| VaryHeaders::default().hash(&HeaderMap::new()));
    *EMPTY
}

/// The entry for a request and its key, or why there is none. Corrupt
/// entries are deleted.
///
/// The GET entry of a page without `Vary` is looked up first, under the key
/// Django's layout gives it (the md5 of no header values): a hit there costs
/// one backend get. Only when it misses is the header list read, and the
/// entry for the request's values of the varying headers (Django's order of
/// lookups). An entry under that key was stored from a response without
/// `Vary`, so it answers any request while it lives (RFC 9111 section 4.1),
/// even if the page has begun to vary since.
async fn find(
    settings: &Settings,
    cache: &Cache,
    method: &Method,
    headers: &HeaderMap,
    url: &Md5Hex,
    suffix: &str,
) -> Result<(String, StoredResponse), &'static str> {
    let prefix = &settings.key_prefix;
    let plain_key = page_key(prefix, &Method::GET, url, &empty_vary(), suffix);
    if let Some(entry) = get(cache, &plain_key).await? {
        return decode(cache, plain_key, entry).await;
    }
    let list_key = header_key(prefix, url, suffix);
    let list = get(cache, &list_key)
        .await?
        .ok_or("header list not learned")?;
    let Some(list) = VaryHeaders::decode(&list) else {
        forget(cache, &list_key).await;
        return Err("corrupt header list");
    };
    let vary = if list.is_empty() {
        empty_vary()
    } else {
        list.hash_with(headers, settings.accept_encoding)
    };
    let mut entry = None;
    let mut key = plain_key;
    if !list.is_empty() {
        key = page_key(prefix, &Method::GET, url, &vary, suffix);
        entry = get(cache, &key).await?;
    }
    if entry.is_none() && method == Method::HEAD {
        key = page_key(prefix, &Method::HEAD, url, &vary, suffix);
        entry = get(cache, &key).await?;
    }
    let (key, entry) = decode(cache, key, entry.ok_or("no entry")?).await?;
    if settings.accept_encoding == AcceptEncodingKey::Preferred
        && list.has_accept_encoding()
        && !acceptable(headers, &entry.headers)
    {
        return Err("entry's Content-Encoding is not acceptable");
    }
    Ok((key, entry))
}

/// Whether the client accepts the stored response's content coding (two
/// clients in one `Accept-Encoding` bucket may not: see
/// [`encoding`](crate::http::encoding)).
fn acceptable(request: &HeaderMap, stored: &HeaderMap) -> bool {
    stored.get_all(CONTENT_ENCODING).iter().all(|coding| {
        coding
            .to_str()
            .is_ok_and(|coding| accepts_coding(request, coding))
    })
}

async fn decode(
    cache: &Cache,
    key: String,
    entry: Bytes,
) -> Result<(String, StoredResponse), &'static str> {
    match StoredResponse::decode(entry) {
        Ok(stored) => Ok((key, stored)),
        Err(error) => {
            tracing::warn!(target: TARGET, key = %key, %error, "deleting a corrupt cache entry");
            forget(cache, &key).await;
            Err("corrupt entry")
        }
    }
}

async fn get(cache: &Cache, key: &str) -> Result<Option<Bytes>, &'static str> {
    cache.get_bytes(key).await.map_err(|error| {
        tracing::warn!(target: TARGET, key, error = &error as &dyn std::error::Error,
            "cache lookup failed; serving from the origin");
        "backend error"
    })
}

async fn forget(cache: &Cache, key: &str) {
    if let Err(error) = cache.delete(key).await {
        tracing::warn!(target: TARGET, key, error = &error as &dyn std::error::Error, "could not delete a cache entry");
    }
}

pub(crate) fn unix_now() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(_) => 0,
    }
}

/// A hit, as Django serves it: the stored response with `Age` (digest 5.5
/// step 6); for HEAD, no body but the entry's `Content-Length`.
fn hit_response<B>(entry: StoredResponse, head: bool) -> Response<CacheBody<B>> {
    let StoredResponse {
        status,
        mut headers,
        body,
        age_base,
        ..
    } = entry;
    if let Some(base) = age_base {
        let age = unix_now().saturating_sub(base).max(0);
        headers.insert(AGE, HeaderValue::from(age));
    }
    let body = if head {
        headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
        CacheBody::empty()
    } else {
        CacheBody::full(body)
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}
