//! The response side (Django's `UpdateCacheMiddleware.process_response`):
//! the rules of [`Policy::decide`](crate::http::policy::Policy::decide),
//! then the body is read (bounded by the size limit) and stored with its
//! header list, and the response goes on to the client. A store that fails
//! is logged, never the client's.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use http::header::EXPIRES;
use http::{HeaderMap, Response, StatusCode};
use http_body::Body;
use http_body_util::BodyExt;

use super::TARGET;
use super::body::CacheBody;
use super::future::{After, BoxFuture};
use super::lookup::{Snapshot, unix_now};
use crate::error::BoxError;
use crate::http::headers::{get_max_age, patch_response_headers, patch_vary_headers};
use crate::http::key::{VaryHeaders, header_key, page_key};
use crate::http::policy::{BodySize, Bypass};
use crate::http::stored::StoredResponse;

/// Left in a response's extensions by [`FetchFromCache`](super::FetchFromCache)
/// on a miss: Django's `request._cache_update_cache = True`, with the fetch
/// layer's configuration, which the update layer stores with.
#[derive(Debug, Clone)]
struct UpdateMarker(Arc<Snapshot>);

#[allow(clippy::large_enum_variant)] // `Now` is the common case: boxing it would cost every request an allocation.
pub(crate) enum Respond<ResB> {
    Now(Response<CacheBody<ResB>>),
    Later(BoxFuture<Response<CacheBody<ResB>>>),
}

fn pass<ResB>(response: Response<ResB>) -> Respond<ResB> {
    Respond::Now(response.map(CacheBody::origin))
}

/// The response side, up to reading the body.
pub(crate) fn respond<ResB>(after: After, mut response: Response<ResB>) -> Respond<ResB>
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
    let storage = match snapshot.settings.policy.decide(
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
        snapshot,
        response,
        storage.timeout,
    )))
}

/// Reads the body (at most the size limit, whether its length is known or
/// not), stores the response, and returns it; a body that turns out too
/// long, has trailers or fails is handed on as it is, unstored.
async fn read_and_store<ResB>(
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
    let limit = snapshot.settings.policy.max_body_size;
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
    store(&snapshot, parts.status, &parts.headers, &data, timeout).await;
    Response::from_parts(parts, CacheBody::full(data))
}

/// Learns the key (stores the header list) and stores the entry; failures
/// are logged, never returned.
async fn store(
    snapshot: &Snapshot,
    status: StatusCode,
    headers: &HeaderMap,
    body: &Bytes,
    timeout: Duration,
) {
    let settings = &snapshot.settings;
    let cache = &snapshot.cache;
    let prefix = &settings.key_prefix;
    let vary = VaryHeaders::from_response(headers, snapshot.skips_accept_language());
    let list_key = header_key(prefix, &snapshot.url, &snapshot.suffix);
    let key = page_key(
        prefix,
        &snapshot.method,
        &snapshot.url,
        &vary.hash_with(&snapshot.headers, settings.accept_encoding),
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
