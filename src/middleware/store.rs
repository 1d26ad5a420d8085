//! The response side (Django's `UpdateCacheMiddleware.process_response`):
//! the rules of [`Policy::decide`](crate::http::policy::Policy::decide),
//! then the response goes on to the client at once, its body streaming
//! through a [`Tee`] that keeps a copy (up to the size limit). When the body
//! has ended cleanly, the copy is handed to the page's coalesced followers
//! and stored; a store that fails is logged, never the client's.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use http::header::{AGE, EXPIRES};
use http::{HeaderMap, Response, StatusCode};
use http_body::Body;
use tracing::Instrument;

use super::TARGET;
use super::body::CacheBody;
use super::cache_status::record;
use super::etag::stored_headers;
use super::flight::Shared;
use super::future::{After, BoxFuture};
use super::lookup::Snapshot;
use super::outcome::{Answer, Outcome, Store};
use super::revalidate::freshen;
use super::serve::{Serving, hit_response};
use super::settings::Settings;
use crate::http::headers::{
    get_max_age, get_stale_windows, patch_response_headers, patch_vary_headers,
};
use crate::http::key::{VaryHeaders, header_key, page_key};
use crate::http::policy::{BodySize, Bypass, Storage};
use crate::http::rfc9111::{Exchange, Rfc9111};
use crate::http::stored::{Freshness, StoredResponse};
use crate::http::tags::CacheTags;
use crate::jitter::Jitter;

/// Left in a response's extensions by [`FetchFromCache`](super::FetchFromCache)
/// on a miss: Django's `request._cache_update_cache = True`, with the fetch
/// layer's configuration, which the update layer stores with.
#[derive(Debug, Clone)]
pub(crate) struct UpdateMarker(pub(crate) Arc<Snapshot>);

/// The response side: passes the response on, marked, or with its body
/// teed into the cache.
pub(crate) fn respond<ResB>(after: After, mut response: Response<ResB>) -> Response<CacheBody<ResB>>
where
    ResB: Body,
    ResB::Data: Into<Bytes>,
    ResB::Error: Into<crate::error::BoxError>,
{
    let (snapshot, mark) = match after {
        After::Pass(outcome, cache_status) => {
            if let Some(outcome) = outcome {
                let outcome = Outcome {
                    origin_status: Some(response.status()),
                    ..outcome
                };
                record(&mut response, outcome, cache_status.as_ref());
            }
            return response.map(CacheBody::origin);
        }
        After::Mark(snapshot) => (snapshot, true),
        After::Store(snapshot) => (snapshot, false),
        After::StoreIfMarked => match response.extensions_mut().remove::<UpdateMarker>() {
            Some(UpdateMarker(snapshot)) => (snapshot, false),
            None => {
                tracing::trace!(target: TARGET, reason = %Bypass::NotFetched, "not stored");
                return response.map(CacheBody::origin);
            }
        },
    };
    if response.status() == StatusCode::NOT_MODIFIED {
        if let Some(entry) = &snapshot.revalidating {
            // The answer to this layer's conditional request: the fetch
            // layer stores the freshened entry itself.
            return freshen(&snapshot, entry.clone(), response);
        }
    }
    if mark {
        response
            .extensions_mut()
            .insert(Outcome::answered(snapshot.answer));
        response.extensions_mut().insert(UpdateMarker(snapshot));
        return response.map(CacheBody::origin);
    }
    let not_stored = |mut response: Response<ResB>, bypass: Bypass| {
        snapshot.settings.metrics.not_stored(bypass);
        let outcome = Outcome {
            store: Some(Store::NotStored(bypass)),
            origin_status: Some(response.status()),
            ..Outcome::answered(snapshot.answer)
        };
        tracing::debug!(target: TARGET, url = %snapshot.url, %outcome, "cache");
        record(
            &mut response,
            outcome,
            snapshot.settings.cache_status.as_ref(),
        );
        // Nothing to share: the followers call the inner service
        // themselves, at once (not one after the other).
        if let Some(leader) = snapshot.take_leader() {
            leader.publish(None);
        }
        response.map(CacheBody::origin)
    };
    // Taken first: the tag header is removed whether or not the page is
    // stored.
    let extension = response.extensions_mut().remove::<CacheTags>();
    let tags = snapshot
        .settings
        .tag_header
        .take(response.headers_mut(), extension.as_ref());
    let tags = match tags {
        Ok(tags) => tags,
        Err(bypass) => return not_stored(response, bypass),
    };
    if snapshot.directives.is_some_and(|d| d.no_store) {
        return not_stored(response, Bypass::RequestNoStore);
    }
    let hint = response.body().size_hint();
    let size = BodySize {
        lower: hint.lower(),
        upper: hint.upper(),
    };
    let settings = &snapshot.settings;
    let now = settings.clock.now();
    let exchange = Exchange {
        authorized: snapshot.authorized,
        request_time: snapshot.request_time,
        response_time: now,
    };
    let storage = match settings.policy.decide_exchange(
        &exchange,
        response.status(),
        response.headers(),
        size,
    ) {
        Ok(storage) => storage,
        Err(bypass) => return not_stored(response, bypass),
    };
    let rfc9111 = settings.policy.rfc9111_rules();
    let headers = response.headers_mut();
    if rfc9111.is_none() {
        // Django's: the lifetime written into the response.
        patch_response_headers(headers, storage.timeout, SystemTime::now());
    }
    if storage.vary_on_authorization {
        patch_vary_headers(headers, &["Authorization"]);
    }
    if !storage.store {
        let bypass = match response.status() {
            StatusCode::OK => Bypass::ZeroMaxAge,
            status => Bypass::Status(status),
        };
        return not_stored(response, bypass);
    }
    let mut stored_headers = response.headers().clone();
    if let Some(rules) = rfc9111 {
        keep_rfc9111_headers(rules, &mut stored_headers);
        // This cache consumed them: the client does not get them either.
        for field in &rules.targeted_fields {
            response.headers_mut().remove(field);
        }
    }
    let lifetime = spread_lifetime(&settings.ttl_jitter, storage.timeout);
    let times = freshness(settings, &storage, lifetime, response.headers(), now);
    let outcome = Outcome {
        store: Some(Store::Stored(lifetime)),
        origin_status: Some(response.status()),
        ..Outcome::answered(snapshot.answer)
    };
    let cache_status = snapshot.settings.cache_status.clone();
    let tee = Tee {
        snapshot,
        status: response.status(),
        headers: stored_headers,
        times,
        tags: Tags::Names(tags),
        keep_stale: storage.keep_stale,
        first: None,
        more: BytesMut::new(),
    };
    // After the copy: the stored page must not replay this miss's member.
    record(&mut response, outcome, cache_status.as_ref());
    if response.body().is_end_stream() {
        // An empty body may never be polled: store it now when the backend
        // answers at once, else in a task of its own.
        let mut store = tee.finish();
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        if store.as_mut().poll(&mut cx).is_pending() {
            super::spawn_or_skip("store a response", store);
        }
        return response.map(CacheBody::origin);
    }
    response.map(|body| CacheBody::tee(body, tee))
}

/// When a response stored now with `storage` is fresh, stale, and how old.
/// The stale windows are the response's (RFC 5861) or the layer's, none
/// when the response forbids stale use; the age base is Django's
/// (`Expires - max-age`) or RFC 9111's (now less the age it arrived with).
pub(crate) fn freshness(
    settings: &Settings,
    storage: &Storage,
    lifetime: Duration,
    headers: &HeaderMap,
    now: u64,
) -> Freshness {
    let (swr, sie) = if storage.allows_stale {
        let secs = |d: Duration| u32::try_from(d.as_secs()).unwrap_or(u32::MAX);
        let (swr, sie) = get_stale_windows(headers);
        (
            swr.unwrap_or_else(|| secs(settings.stale_while_revalidate)),
            sie.unwrap_or_else(|| secs(settings.stale_if_error)),
        )
    } else {
        (0, 0)
    };
    let age_base = match settings.policy.rfc9111_rules() {
        Some(_) => Some(i64::try_from(now.saturating_sub(storage.age)).unwrap_or(i64::MAX)),
        None => age_base(headers),
    };
    Freshness {
        stored_at: now,
        fresh_until: now.saturating_add(lifetime.as_secs()),
        stale_while_revalidate: swr,
        stale_if_error: sie,
        age_base,
        must_revalidate: !storage.allows_stale,
    }
}

/// Makes `headers` what RFC 9111 keeps of a response, in place: not `Age`
/// (a hit's is computed), nor the targeted fields (this cache consumed
/// them), nor the fields a qualified `no-cache` or `private` names
/// (section 5.2.2.4 and 5.2.2.7).
pub(crate) fn keep_rfc9111_headers(rules: &Rfc9111, headers: &mut HeaderMap) {
    // Read before the targeted fields go: they may be what names the fields.
    let (directives, _) = rules.directives(headers);
    for field in &rules.targeted_fields {
        headers.remove(field);
    }
    headers.remove(AGE);
    for field in directives.unstored_fields() {
        headers.remove(field);
    }
}

/// How a page whose lifetime is `timeout` (at least a second: the
/// policy stores nothing shorter) stays fresh: `timeout` itself, or spread
/// by the layer's jitter to whole seconds (rounded, so that spreads are not
/// shorter on average), never under one.
fn spread_lifetime(jitter: &Jitter, timeout: Duration) -> Duration {
    // Zero (RFC 9111: stored stale, to be revalidated) stays zero.
    if jitter.percentage() == 0 || timeout.is_zero() {
        return timeout;
    }
    let spread = jitter.spread(timeout);
    let rounded = spread.as_secs() + u64::from(spread.subsec_millis() >= 500);
    Duration::from_secs(rounded.max(1))
}

/// `Expires` minus `max-age`, when the response has both: the base of a
/// hit's `Age`, as Django computes it.
fn age_base(headers: &HeaderMap) -> Option<i64> {
    let expires = headers
        .get(EXPIRES)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .and_then(|d| i64::try_from(d.as_secs()).ok())?;
    Some(expires.saturating_sub(get_max_age(headers)?))
}

/// The copy of a body being streamed to the client, and what storing it
/// needs. Dropping it before [`finish`](Tee::finish) stores nothing and
/// ends the page's flight (its followers call the inner service).
#[derive(Debug)]
pub(crate) struct Tee {
    snapshot: Arc<Snapshot>,
    status: StatusCode,
    headers: HeaderMap,
    times: Freshness,
    /// The response's tags, whose versions the entry records.
    tags: Tags,
    /// How long past freshness the entry is kept to be revalidated.
    keep_stale: Duration,
    /// The first chunk, kept as it is (most bodies are one chunk).
    first: Option<Bytes>,
    /// Further chunks, joined.
    more: BytesMut,
}

impl Tee {
    /// Keeps a copy of `data`; `false` when the body has passed the size
    /// limit (the copy is then dropped and nothing will be stored).
    pub(crate) fn keep(&mut self, data: &Bytes) -> bool {
        match self.first.take() {
            None if self.more.is_empty() => self.first = Some(data.clone()),
            None => self.more.extend_from_slice(data),
            Some(chunk) => {
                self.more.reserve(chunk.len() + data.len());
                self.more.extend_from_slice(&chunk);
                self.more.extend_from_slice(data);
            }
        }
        let len = self.first.as_ref().map_or(self.more.len(), Bytes::len) as u64;
        if len > self.snapshot.settings.policy.max_body_size {
            tracing::debug!(target: TARGET, url = %self.snapshot.url, reason = %Bypass::TooLarge, "not stored");
            if let Some(leader) = self.snapshot.take_leader() {
                leader.publish(None);
            }
            return false;
        }
        true
    }

    /// Gives up storing (trailers, an error): logged; the followers call
    /// the inner service themselves.
    pub(crate) fn abandon(self, reason: &str) {
        tracing::debug!(target: TARGET, url = %self.snapshot.url, reason, "not stored");
        if let Some(leader) = self.snapshot.take_leader() {
            leader.publish(None);
        }
    }

    /// The body ended cleanly: hands the response to the followers, and
    /// returns the store, which the body drives before it ends (so that a
    /// client that has read the whole response finds it in the cache).
    pub(crate) fn finish(self) -> BoxFuture<()> {
        let Tee {
            snapshot,
            status,
            headers,
            times,
            tags,
            keep_stale,
            first,
            more,
        } = self;
        let body = first.unwrap_or_else(|| more.freeze());
        let headers = stored_headers(&snapshot, headers, &body);
        let stored = StoredResponse::new(status, headers, body, times);
        share_and_store(snapshot, stored, tags, keep_stale)
    }
}

/// The tags an entry records: named by the response (their versions are
/// read when it is stored), or the versions of an entry stored before.
#[derive(Debug)]
pub(crate) enum Tags {
    Names(Vec<String>),
    Versions(Vec<crate::tags::TagVersion>),
}

/// Hands `stored` to the page's coalesced followers, and returns its
/// store: the flight ends once the page is in the cache.
pub(crate) fn share_and_store(
    snapshot: Arc<Snapshot>,
    stored: StoredResponse,
    tags: Tags,
    keep_stale: Duration,
) -> BoxFuture<()> {
    let vary = VaryHeaders::from_response(&stored.headers, snapshot.skips_accept_language());
    let vary_hash = snapshot.settings.vary_hash(&vary, &snapshot.headers);
    let shared = Arc::new(Shared {
        stored,
        vary,
        vary_hash,
    });
    let leader = snapshot.take_leader();
    if let Some(leader) = &leader {
        leader.publish(Some(shared.clone()));
    }
    let span = tracing::debug_span!(target: TARGET, "cache_store", url = %snapshot.url,
        key = tracing::field::Empty, outcome = tracing::field::Empty);
    Box::pin(
        async move {
            store(&snapshot, &shared, &tags, keep_stale).await;
            drop(leader);
        }
        .instrument(span),
    )
}

/// Learns the key (stores the header list) and stores the entry, with its
/// tags' versions and the header list's generation, for the fresh lifetime
/// plus the longer stale window (or the time a stale entry is kept to be
/// revalidated); failures are logged.
async fn store(snapshot: &Snapshot, shared: &Shared, tags: &Tags, keep_stale: Duration) {
    let writing = std::time::Instant::now();
    let result = write(snapshot, shared, tags, keep_stale).await;
    let metrics = &snapshot.settings.metrics;
    let span = tracing::Span::current();
    let (key, outcome) = match &result {
        Ok(Written::Stored { key, .. }) => (key, "stored"),
        Ok(Written::Skipped(key, _)) => (key, "not stored"),
        Err((key, _)) => (key, "failed"),
    };
    span.record("key", key.as_str());
    span.record("outcome", outcome);
    if let Some(lock) = snapshot.take_remote() {
        lock.release().await;
    }
    match result {
        Ok(Written::Stored { key, keep }) => {
            metrics.stored(writing.elapsed());
            tracing::debug!(target: TARGET, key = %key, keep = keep.as_secs(), "stored")
        }
        Ok(Written::Skipped(key, reason)) => {
            tracing::debug!(target: TARGET, key = %key, reason, "not stored")
        }
        Err((key, error)) => {
            metrics.backend_error("store");
            tracing::warn!(target: TARGET, key = %key, error = &error as &dyn std::error::Error,
            "could not store a response in the cache; it was served all the same")
        }
    }
}

enum Written {
    Stored { key: String, keep: Duration },
    Skipped(String, &'static str),
}

async fn write(
    snapshot: &Snapshot,
    shared: &Shared,
    tags: &Tags,
    keep_stale: Duration,
) -> Result<Written, (String, crate::CacheError)> {
    let settings = &snapshot.settings;
    let cache = &snapshot.cache;
    let prefix = &settings.key_prefix;
    let list_key = header_key(prefix, &snapshot.url, &snapshot.suffix);
    let key = page_key(
        prefix,
        &snapshot.method,
        &snapshot.url,
        &shared.vary_hash,
        &snapshot.suffix,
    );
    let versions = match tags {
        Tags::Names(names) if names.is_empty() => Vec::new(),
        Tags::Versions(versions) => versions.clone(),
        Tags::Names(names) => match cache.tag_versions(names, snapshot.started).await {
            Ok(Some(versions)) => versions,
            Ok(None) => {
                return Ok(Written::Skipped(
                    key,
                    "a tag was invalidated during the fetch",
                ));
            }
            Err(error) => return Err((key, error)),
        },
    };
    // The URL's generation: the list's, when the lookup read it, so that
    // its other entries stay reachable; a new one otherwise.
    let generation = snapshot.generation.unwrap_or_else(|| fastrand::u64(..));
    let stored = &shared.stored;
    let times = &stored.times;
    let entry = match stored.encode_entry(&versions, Some(generation)) {
        Ok(entry) => entry,
        Err(error) => return Ok(Written::Skipped(key, error.reason())),
    };
    let keep = Duration::from_secs(
        times
            .fresh_until
            .saturating_sub(times.stored_at)
            .saturating_add(u64::from(times.stale_window()).max(keep_stale.as_secs())),
    );
    let list = shared.vary.encode(generation);
    match cache.set_bytes(&list_key, list, keep).await {
        Ok(()) => match cache.set_bytes(&key, entry, keep).await {
            Ok(()) => Ok(Written::Stored { key, keep }),
            Err(error) => Err((key, error)),
        },
        Err(error) => Err((key, error)),
    }
}

/// The stale entry to serve instead of a failed inner call (which answered
/// with `status`, when it answered), if the request side kept one: marked
/// as served stale.
pub(crate) fn fallback<B>(
    after: &After,
    status: Option<StatusCode>,
) -> Option<Response<CacheBody<B>>> {
    let snapshot = match after {
        After::Store(snapshot) | After::Mark(snapshot) => snapshot,
        _ => return None,
    };
    let entry = snapshot.fallback.clone()?;
    let outcome = Outcome {
        origin_status: status,
        ..Outcome::answered(Answer::Stale(super::outcome::StaleBecause::OriginFailed))
    };
    snapshot.settings.metrics.answered(outcome.answer);
    tracing::debug!(target: TARGET, url = %snapshot.url, %outcome, "cache");
    let serving = Serving::new(
        &snapshot.settings,
        &snapshot.method,
        &snapshot.headers,
        snapshot.settings.clock.now(),
    );
    Some(hit_response(entry, &serving, outcome))
}
