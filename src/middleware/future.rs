//! [`ResponseFuture`]: what the three layers return, and the two halves of
//! caching they share: the lookup (request side) and the store (response side).
//!
//! Request side (Django's `FetchFromCacheMiddleware.process_request`): GET and
//! HEAD with a usable host look up the entry a page without `Vary` would
//! have (one backend get), then, on a miss, the header list and the entry
//! for the request's varying headers. A hit is answered without calling the
//! inner service.
//!
//! Response side (`UpdateCacheMiddleware.process_response`): the rules of
//! [`Policy::decide`], then the body is read (bounded by the size limit) and
//! stored with its header list, and the response goes on to the client.
//!
//! A backend error is never the client's: on lookup it is a miss, on store
//! it is logged. Room is left here, in the lookup and the store, for request
//! coalescing, stale entries, tags and `Cache-Status`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker, ready};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use http::header::{AGE, CONTENT_LENGTH, EXPIRES};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::BodyExt;
use pin_project_lite::pin_project;
use tower_service::Service;

use super::body::CacheBody;
use super::settings::Settings;
use crate::error::BoxError;
use crate::http::headers::{get_max_age, patch_response_headers, patch_vary_headers};
use crate::http::key::{Md5Hex, VaryHeaders, header_key, page_key, url_hash};
use crate::http::policy::{BodySize, Bypass, Policy, is_authorized};
use crate::http::stored::StoredResponse;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// The target of every tracing event of the layers.
const TARGET: &str = "tower_cache::http";

/// What the request side learned, for the response side.
#[derive(Debug)]
pub(crate) struct Snapshot {
    method: Method,
    headers: HeaderMap,
    url: Md5Hex,
    suffix: String,
    skip_accept_language: bool,
    authorized: bool,
}

/// Left in a response's extensions by [`FetchFromCache`](super::FetchFromCache)
/// on a miss: Django's `request._cache_update_cache = True`.
#[derive(Debug, Clone)]
struct UpdateMarker(Arc<Snapshot>);

/// What to do with the inner service's response.
pub(crate) enum After {
    /// Pass it through.
    Nothing,
    /// Mark it for an [`UpdateCache`](super::UpdateCache) further out.
    Mark(Arc<Snapshot>),
    /// Store it here ([`CachePage`](super::CachePage)).
    Store(Arc<Snapshot>),
    /// Store it if the request side marked it ([`UpdateCache`](super::UpdateCache)).
    StoreIfMarked,
}

enum Looked<ReqB, ResB> {
    Hit(Response<CacheBody<ResB>>),
    Miss(Request<ReqB>, After),
}

pin_project! {
    /// The response future of [`FetchFromCache`](super::FetchFromCache),
    /// [`UpdateCache`](super::UpdateCache) and [`CachePage`](super::CachePage).
    pub struct ResponseFuture<S, ReqB, ResB>
    where
        S: Service<Request<ReqB>>,
    {
        #[pin]
        state: State<S, ReqB, ResB, S::Future>,
        // `None` once a hit is known: a hit needs no settings.
        settings: Option<Arc<Settings>>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, ReqB, ResB, F> {
        Lookup {
            lookup: BoxFuture<Looked<ReqB, ResB>>,
            service: Option<S>,
        },
        Inner {
            #[pin]
            future: F,
            after: Option<After>,
        },
        Finish {
            future: BoxFuture<Response<CacheBody<ResB>>>,
        },
        Ready {
            response: Option<Response<CacheBody<ResB>>>,
        },
        Done,
    }
}

impl<S, ReqB, ResB> ResponseFuture<S, ReqB, ResB>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    ReqB: Send + 'static,
    ResB: Body + Send + 'static,
{
    /// The request side, then the ready `service` on a miss: `store` says
    /// whether the response is stored here ([`CachePage`](super::CachePage))
    /// or marked for an update layer ([`FetchFromCache`](super::FetchFromCache)).
    ///
    /// The lookup is polled once at once: a backend that answers without
    /// waiting (the memory backend) gives a hit without cloning the inner
    /// service, or a miss that calls the ready service itself. Only a lookup
    /// that has to wait takes the ready service along and leaves a clone.
    pub(crate) fn lookup(
        settings: &Arc<Settings>,
        service: &mut S,
        request: Request<ReqB>,
        store: bool,
    ) -> Self
    where
        S: Clone,
    {
        let checked = Policy::check_method(request.method())
            .and_then(|()| url_hash(request.uri(), request.headers()).ok_or(Bypass::NoHost));
        let url = match checked {
            Ok(url) => url,
            Err(bypass) => {
                tracing::debug!(target: TARGET, method = %request.method(), uri = %request.uri(),
                    reason = %bypass, "cache bypass");
                return ResponseFuture::inner(
                    settings.clone(),
                    service.call(request),
                    After::Nothing,
                );
            }
        };
        // The one clone of the settings a hit costs (the future is 'static).
        let mut lookup: BoxFuture<Looked<ReqB, ResB>> =
            Box::pin(lookup(settings.clone(), request, url, store));
        match lookup
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
        {
            Poll::Ready(Looked::Hit(response)) => ResponseFuture {
                state: State::Ready {
                    response: Some(response),
                },
                settings: None,
            },
            Poll::Ready(Looked::Miss(request, after)) => {
                let future = service.call(request);
                ResponseFuture::inner(settings.clone(), future, after)
            }
            Poll::Pending => {
                // The ready service goes with the request; a clone stays for the next.
                let clone = service.clone();
                let service = std::mem::replace(service, clone);
                ResponseFuture {
                    state: State::Lookup {
                        lookup,
                        service: Some(service),
                    },
                    settings: Some(settings.clone()),
                }
            }
        }
    }

    /// The inner service's future, then `after` with its response.
    pub(crate) fn inner(settings: Arc<Settings>, future: S::Future, after: After) -> Self {
        ResponseFuture {
            state: State::Inner {
                future,
                after: Some(after),
            },
            settings: Some(settings),
        }
    }
}

impl<S, ReqB, ResB> Future for ResponseFuture<S, ReqB, ResB>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    ResB: Body + Send + 'static,
    ResB::Data: Into<Bytes>,
    ResB::Error: Into<BoxError>,
{
    type Output = Result<Response<CacheBody<ResB>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Lookup { lookup, service } => match ready!(lookup.as_mut().poll(cx)) {
                    Looked::Hit(response) => {
                        this.state.set(State::Done);
                        return Poll::Ready(Ok(response));
                    }
                    Looked::Miss(request, after) => {
                        let mut service = service.take().expect("service is taken once");
                        let future = service.call(request);
                        this.state.set(State::Inner {
                            future,
                            after: Some(after),
                        });
                    }
                },
                StateProj::Inner { future, after } => {
                    let response = ready!(future.poll(cx))?;
                    let after = after.take().expect("response is handled once");
                    let settings = this.settings.as_ref().expect("kept for the response side");
                    match respond(settings, after, response) {
                        Respond::Now(response) => {
                            this.state.set(State::Done);
                            return Poll::Ready(Ok(response));
                        }
                        Respond::Later(future) => this.state.set(State::Finish { future }),
                    }
                }
                StateProj::Finish { future } => {
                    let response = ready!(future.as_mut().poll(cx));
                    this.state.set(State::Done);
                    return Poll::Ready(Ok(response));
                }
                StateProj::Ready { response } => {
                    let response = response.take().expect("response is taken once");
                    this.state.set(State::Done);
                    return Poll::Ready(Ok(response));
                }
                StateProj::Done => panic!("ResponseFuture polled after it completed"),
            }
        }
    }
}

fn unix_now() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(_) => 0,
    }
}

/// md5 of nothing: the Vary hash of a page without `Vary`.
fn empty_vary() -> Md5Hex {
    static EMPTY: std::sync::LazyLock<Md5Hex> =
        std::sync::LazyLock::new(|| VaryHeaders::default().hash(&HeaderMap::new()));
    *EMPTY
}

/// The request side: Django's `process_request`, from step 2 (the method and
/// host are checked).
async fn lookup<ReqB, ResB>(
    settings: Arc<Settings>,
    request: Request<ReqB>,
    url: Md5Hex,
    store: bool,
) -> Looked<ReqB, ResB> {
    let (parts, body) = request.into_parts();
    let suffix = settings
        .key_suffix
        .as_ref()
        .map(|s| s.make(&parts.headers, &parts.extensions))
        .unwrap_or_default();
    let authorized = is_authorized(&parts.headers);
    match find(&settings, &parts.method, &parts.headers, &url, &suffix).await {
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
        method: parts.method.clone(),
        headers: parts.headers.clone(),
        url,
        suffix,
        skip_accept_language: settings
            .key_suffix
            .as_ref()
            .is_some_and(|s| s.skips_accept_language()),
        authorized,
    });
    let after = if store {
        After::Store(snapshot)
    } else {
        After::Mark(snapshot)
    };
    Looked::Miss(Request::from_parts(parts, body), after)
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
    method: &Method,
    headers: &HeaderMap,
    url: &Md5Hex,
    suffix: &str,
) -> Result<(String, StoredResponse), &'static str> {
    let prefix = &settings.key_prefix;
    let plain_key = page_key(prefix, &Method::GET, url, &empty_vary(), suffix);
    if let Some(entry) = get(settings, &plain_key).await? {
        return decode(settings, plain_key, entry).await;
    }
    let list_key = header_key(prefix, url, suffix);
    let list = get(settings, &list_key)
        .await?
        .ok_or("header list not learned")?;
    let Some(list) = VaryHeaders::decode(&list) else {
        forget(settings, &list_key).await;
        return Err("corrupt header list");
    };
    let vary = if list.is_empty() {
        empty_vary()
    } else {
        list.hash(headers)
    };
    let mut entry = None;
    let mut key = plain_key;
    if !list.is_empty() {
        key = page_key(prefix, &Method::GET, url, &vary, suffix);
        entry = get(settings, &key).await?;
    }
    if entry.is_none() && method == Method::HEAD {
        key = page_key(prefix, &Method::HEAD, url, &vary, suffix);
        entry = get(settings, &key).await?;
    }
    decode(settings, key, entry.ok_or("no entry")?).await
}

async fn decode(
    settings: &Settings,
    key: String,
    entry: Bytes,
) -> Result<(String, StoredResponse), &'static str> {
    match StoredResponse::decode(entry) {
        Ok(stored) => Ok((key, stored)),
        Err(error) => {
            tracing::warn!(target: TARGET, key = %key, %error, "deleting a corrupt cache entry");
            forget(settings, &key).await;
            Err("corrupt entry")
        }
    }
}

async fn get(settings: &Settings, key: &str) -> Result<Option<Bytes>, &'static str> {
    settings.cache().get_bytes(key).await.map_err(|error| {
        tracing::warn!(target: TARGET, key, error = &error as &dyn std::error::Error,
            "cache lookup failed; serving from the origin");
        "backend error"
    })
}

async fn forget(settings: &Settings, key: &str) {
    if let Err(error) = settings.cache().delete(key).await {
        tracing::warn!(target: TARGET, key, error = &error as &dyn std::error::Error, "could not delete a cache entry");
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

#[allow(clippy::large_enum_variant)] // `Now` is the common case: boxing it would cost every request an allocation.
enum Respond<ResB> {
    Now(Response<CacheBody<ResB>>),
    Later(BoxFuture<Response<CacheBody<ResB>>>),
}

fn pass<ResB>(response: Response<ResB>) -> Respond<ResB> {
    Respond::Now(response.map(CacheBody::origin))
}

/// The response side, up to reading the body.
fn respond<ResB>(
    settings: &Arc<Settings>,
    after: After,
    mut response: Response<ResB>,
) -> Respond<ResB>
where
    ResB: Body + Send + 'static,
    ResB::Data: Into<Bytes>,
    ResB::Error: Into<BoxError>,
{
    let snapshot = match after {
        After::Nothing => return pass(response),
        After::Mark(snapshot) => {
            response.extensions_mut().insert(UpdateMarker(snapshot));
            return pass(response);
        }
        After::Store(snapshot) => snapshot,
        After::StoreIfMarked => match response.extensions_mut().remove::<UpdateMarker>() {
            Some(UpdateMarker(snapshot)) => snapshot,
            None => {
                tracing::trace!(target: TARGET, reason = %Bypass::NotFetched, "not stored");
                return pass(response);
            }
        },
    };
    let hint = response.body().size_hint();
    let size = BodySize {
        lower: hint.lower(),
        upper: hint.upper(),
    };
    let storage = match settings.policy.decide(
        snapshot.authorized,
        response.status(),
        response.headers(),
        size,
    ) {
        Ok(storage) => storage,
        Err(bypass) => {
            tracing::debug!(target: TARGET, url = %snapshot.url, reason = %bypass, "not stored");
            return pass(response);
        }
    };
    let headers = response.headers_mut();
    patch_response_headers(headers, storage.timeout, SystemTime::now());
    if storage.vary_on_authorization {
        patch_vary_headers(headers, &["Authorization"]);
    }
    if !storage.store {
        tracing::debug!(target: TARGET, url = %snapshot.url, status = response.status().as_u16(),
            timeout = storage.timeout.as_secs(), "headers patched, not stored");
        return pass(response);
    }
    Respond::Later(Box::pin(read_and_store(
        settings.clone(),
        snapshot,
        response,
        storage.timeout,
    )))
}

/// Reads the body (at most the size limit), stores the response, and
/// returns it; a body that turns out too long, has trailers or fails is
/// handed on as it is, unstored.
async fn read_and_store<ResB>(
    settings: Arc<Settings>,
    snapshot: Arc<Snapshot>,
    response: Response<ResB>,
    timeout: Duration,
) -> Response<CacheBody<ResB>>
where
    ResB: Body + Send + 'static,
    ResB::Data: Into<Bytes>,
    ResB::Error: Into<BoxError>,
{
    let (parts, body) = response.into_parts();
    let limit = settings.policy.max_body_size;
    let mut body = Box::pin(body);
    let mut read = BytesMut::new();
    let mut first: Option<Bytes> = None;
    let give_up = |first: Option<Bytes>, read: BytesMut| first.unwrap_or_else(|| read.freeze());
    loop {
        let frame = match body.frame().await {
            None => break,
            Some(Ok(frame)) => frame,
            Some(Err(error)) => {
                let error: BoxError = error.into();
                tracing::debug!(target: TARGET, url = %snapshot.url, reason = %error, "not stored: body failed");
                let read = give_up(first, read);
                return Response::from_parts(
                    parts,
                    CacheBody::resumed(read, None, Some(error), None),
                );
            }
        };
        match frame.into_data() {
            Ok(data) => {
                let data: Bytes = data.into();
                // One chunk stays as it is; more are joined.
                match first.take() {
                    None if read.is_empty() => first = Some(data),
                    None => read.extend_from_slice(&data),
                    Some(chunk) => {
                        read.reserve(chunk.len() + data.len());
                        read.extend_from_slice(&chunk);
                        read.extend_from_slice(&data);
                    }
                }
                let len = first.as_ref().map_or(read.len(), Bytes::len) as u64;
                if len > limit {
                    tracing::debug!(target: TARGET, url = %snapshot.url, reason = %Bypass::TooLarge, "not stored");
                    let read = give_up(first, read);
                    return Response::from_parts(
                        parts,
                        CacheBody::resumed(read, None, None, Some(body)),
                    );
                }
            }
            Err(frame) => {
                tracing::debug!(target: TARGET, url = %snapshot.url, reason = "body has trailers", "not stored");
                let read = give_up(first, read);
                let trailers = frame.into_trailers().ok();
                return Response::from_parts(
                    parts,
                    CacheBody::resumed(read, trailers, None, Some(body)),
                );
            }
        }
    }
    let data = give_up(first, read);
    store(
        &settings,
        &snapshot,
        parts.status,
        &parts.headers,
        &data,
        timeout,
    )
    .await;
    Response::from_parts(parts, CacheBody::full(data))
}

/// Learns the key (stores the header list) and stores the entry; failures
/// are logged, never returned.
async fn store(
    settings: &Settings,
    snapshot: &Snapshot,
    status: StatusCode,
    headers: &HeaderMap,
    body: &Bytes,
    timeout: Duration,
) {
    let cache = settings.cache();
    let prefix = &settings.key_prefix;
    let vary = VaryHeaders::from_response(headers, snapshot.skip_accept_language);
    let list_key = header_key(prefix, &snapshot.url, &snapshot.suffix);
    let key = page_key(
        prefix,
        &snapshot.method,
        &snapshot.url,
        &vary.hash(&snapshot.headers),
        &snapshot.suffix,
    );
    let now = unix_now();
    let expires = headers
        .get(EXPIRES)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok())
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .and_then(|d| i64::try_from(d.as_secs()).ok());
    let age_base = match (get_max_age(headers), expires) {
        (Some(max_age), Some(expires)) => Some(expires.saturating_sub(max_age)),
        _ => None,
    };
    let entry = match StoredResponse::encode(
        status,
        headers,
        body,
        u64::try_from(now).unwrap_or(0),
        age_base,
    ) {
        Ok(entry) => entry,
        Err(error) => {
            tracing::debug!(target: TARGET, key = %key, reason = %error, "not stored");
            return;
        }
    };
    let result = match cache.set_bytes(&list_key, vary.encode(), timeout).await {
        Ok(()) => cache.set_bytes(&key, entry, timeout).await,
        Err(error) => Err(error),
    };
    match result {
        Ok(()) => {
            tracing::debug!(target: TARGET, key = %key, timeout = timeout.as_secs(), "stored")
        }
        Err(error) => {
            tracing::warn!(target: TARGET, key = %key, error = &error as &dyn std::error::Error,
            "could not store a response in the cache; it was served all the same")
        }
    }
}
