//! The request side (Django's `FetchFromCacheMiddleware.process_request`):
//! GET and HEAD with a usable host look up the entry a page without `Vary`
//! would have (one backend get), then, on a miss, the header list and the
//! entry for the request's varying headers. A fresh hit is answered without
//! calling the inner service; a stale one inside its windows is served
//! (RFC 5861) or kept to be served if the inner service fails; a miss joins
//! the page's flight ([`flight`](super::flight)) and leaves a [`Snapshot`]
//! of the request for the response side.

use std::sync::{Arc, LazyLock, Mutex};

use bytes::Bytes;
use http::header::{
    CONTENT_ENCODING, ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE, LAST_MODIFIED,
};
use http::request::Parts;
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri};

use super::TARGET;
use super::body::CacheBody;
use super::cache_status::record;
use super::decoded::{Added, Decoded, Places};
use super::flight::{Joined, Leader, Shared, Waited};
use super::found_entry::FoundEntry;
use super::future::{After, Side};
use super::outcome::{Answer, MissBecause, Outcome, StaleBecause};
use super::page_keys::Asked;
use super::remote_lock::{self, RemoteLock, Took};
use super::serve::{Serving, hit_response, hit_response_in};
use super::settings::Settings;
use super::tag_hints::{Hint, same_tags};
use crate::cache::Cache;
use crate::http::directives::RequestDirectives;
use crate::http::encoding::{AcceptEncodingKey, accepts_coding};
use crate::http::key::{
    Md5Hex, VaryHeaders, header_key, header_key_len, page_key, page_key_len, push_header_key,
    push_page_key, request_host, url_hash,
};
use crate::http::policy::{Bypass, Policy};
use crate::http::request_fields::RequestFields;
use crate::http::rfc9111::has_validator;
use crate::http::stored::{Freshness, StoredResponse};
use crate::key::MadeKey;
use crate::memo::Memo;

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
    /// How the request was answered (a miss, and why).
    pub(crate) answer: Answer,
    /// This request's flight, when it leads one: published to when the
    /// response is known.
    pub(crate) leader: Mutex<Option<Leader>>,
    /// The lock across instances, when this request holds it: released
    /// once the response is stored, or dropped (and so released) when it
    /// is not.
    pub(crate) remote: Mutex<Option<RemoteLock>>,
    /// A stale entry inside its `stale-if-error` window, served if the inner
    /// service fails.
    pub(crate) fallback: Option<StoredResponse>,
    /// The generation of the URL's header list, when the lookup read it: the
    /// store keeps it, so the URL's other entries stay reachable.
    pub(crate) generation: Option<u64>,
    /// When the request reached the layer (Unix microseconds): a tag
    /// invalidated since then keeps the response out of the cache.
    pub(crate) started: u64,
    /// When the request reached the layer, on the layer's clock (Unix
    /// seconds): RFC 9111's `request_time`.
    pub(crate) request_time: u64,
    /// The request's caching directives, under the RFC 9111 policy.
    pub(crate) directives: Option<RequestDirectives>,
    /// The stale entry the request revalidates with a conditional request
    /// (RFC 9111): a `304` freshens and serves it.
    pub(crate) revalidating: Option<StoredResponse>,
}

impl Snapshot {
    /// A request's snapshot, as a stale page's refresh needs it: a miss
    /// because the entry is stale, with no flight, lock or fallback yet.
    fn new(
        settings: &Arc<Settings>,
        cache: &Cache,
        parts: &Parts,
        url: Md5Hex,
        suffix: String,
        authorized: bool,
        started: u64,
    ) -> Snapshot {
        Snapshot {
            settings: settings.clone(),
            cache: cache.clone(),
            method: parts.method.clone(),
            headers: parts.headers.clone(),
            url,
            suffix,
            authorized,
            answer: Answer::Miss(MissBecause::Stale),
            leader: Mutex::new(None),
            remote: Mutex::new(None),
            fallback: None,
            generation: None,
            started,
            request_time: settings.clock.now(),
            directives: None,
            revalidating: None,
        }
    }

    /// Whether `Accept-Language` is left out of the key (it is in the suffix).
    pub(crate) fn skips_accept_language(&self) -> bool {
        self.settings
            .key_suffix
            .as_ref()
            .is_some_and(|s| s.skips_accept_language())
    }

    /// Takes the lock across instances this request holds, to release it.
    pub(crate) fn take_remote(&self) -> Option<RemoteLock> {
        self.remote.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Takes the flight this request leads, to publish to it.
    pub(crate) fn take_leader(&self) -> Option<Leader> {
        self.leader.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// Put in the extensions of a request that refreshes a stale page in the
/// background (by the update layer): the fetch layer then skips the lookup
/// and marks the response with this snapshot.
#[derive(Debug, Clone)]
pub(crate) struct Refresh(pub(crate) Arc<Snapshot>);

/// Put by the fetch layer in the extensions of a stale response whose page
/// it leads the refresh of: the update layer takes it and refreshes in the
/// background, with a request made from these parts.
#[derive(Debug, Clone)]
pub(crate) struct RefreshTicket(pub(crate) Arc<(Parts, Arc<Snapshot>)>);

/// Put in the extensions of a request that leads a flight.
#[derive(Debug, Clone, Copy)]
struct Leading;

#[allow(clippy::large_enum_variant)] // A hit is the common case: boxing it would cost every hit an allocation.
pub(crate) enum Looked<ReqB, ResB> {
    /// Answer with this, without calling the inner service.
    Hit(Response<CacheBody<ResB>>),
    /// Answer with this stale response; refresh it with this request in the
    /// background (`None`: a refresh is already running).
    Stale(Response<CacheBody<ResB>>, Option<(Request<ReqB>, After)>),
    /// Call the inner service.
    Miss(Request<ReqB>, After),
}

/// Whether the request may be looked up at all (GET or HEAD, a usable
/// host), and the hash of its absolute URL if so.
pub(crate) fn start<B>(settings: &Settings, request: &Request<B>) -> Result<Page, Bypass> {
    let scheme = settings.scheme.of(request.uri(), request.headers());
    let (uri, headers) = (request.uri(), request.headers());
    // Every field the rules read, in one pass.
    let (fields, host) = RequestFields::scan(headers);
    Policy::check_method(request.method())
        .and_then(|()| {
            if fields.body {
                return Err(Bypass::RequestBody);
            }
            let asked = Asked::scanned(scheme, uri, &fields, host);
            if let Some(known) = asked.and_then(|asked| known_page(settings, &asked, fields)) {
                return Ok(known);
            }
            let allowed = &settings.allowed_hosts;
            if !allowed.allows_any()
                && !request_host(uri, headers).is_some_and(|host| allowed.allows(host))
            {
                return Err(Bypass::HostNotAllowed);
            }
            let url = url_hash(scheme, uri, headers).ok_or(Bypass::NoHost)?;
            Ok(Page {
                url,
                plain_key: None,
                fields,
            })
        })
        .inspect_err(|bypass| {
            settings.metrics.answered(Answer::Bypass(*bypass));
            tracing::debug!(target: TARGET, method = %request.method(), uri = %request.uri(),
                outcome = %Outcome::answered(Answer::Bypass(*bypass)), "cache");
        })
}

/// A request's URL hash, and its page's plain key (the GET entry's without
/// `Vary`) when the layer knew it.
pub(crate) struct Page {
    pub(crate) url: Md5Hex,
    pub(crate) plain_key: Option<Arc<MadeKey>>,
    /// What the request's headers ask of the rules.
    pub(crate) fields: RequestFields,
}

impl Page {
    /// The page's plain key: the one the layer knew, else the one `make`
    /// makes.
    pub(super) fn plain_key_or<E>(
        &self,
        make: impl FnOnce() -> Result<MadeKey, E>,
    ) -> Result<MadeKey, E> {
        match &self.plain_key {
            Some(known) => Ok(MadeKey::Shared(known.clone())),
            None => make(),
        }
    }
}

/// What [`PageKeys`] knows of a request's page: noted only for requests
/// whose host the layer allows, and for layers without a key suffix (which
/// could tell two requests of one URL apart).
fn known_page(settings: &Settings, asked: &Asked<'_>, fields: RequestFields) -> Option<Page> {
    if settings.key_suffix.is_some() {
        return None;
    }
    let cache = settings.cache_now()?;
    let (url, key) = settings.page_keys.get(asked, cache)?;
    Some(Page {
        url,
        plain_key: Some(key),
        fields,
    })
}

/// Notes the plain `key` of a page found for the request with `uri` and
/// `headers` (whose URL hashes to `url`) in the layer's [`PageKeys`], unless
/// it came from there.
pub(super) fn note_page(
    settings: &Settings,
    cache: &Cache,
    (uri, headers): (&Uri, &HeaderMap),
    url: &Md5Hex,
    key: &MadeKey,
) {
    if settings.key_suffix.is_some() || matches!(key, MadeKey::Shared(_)) {
        return;
    }
    if let Some(asked) = Asked::of(settings.scheme.of(uri, headers), uri, headers) {
        settings.page_keys.note(&asked, cache, *url, key);
    }
}

/// The request side, from step 2 (the method and host are checked).
pub(crate) async fn lookup<ReqB, ResB>(
    settings: Arc<Settings>,
    request: Request<ReqB>,
    page: Page,
    side: Side,
    known: Option<PlainRead>,
) -> Looked<ReqB, ResB> {
    let url = page.url;
    let Some(cache) = settings.cache().await else {
        // The default cache could not be built (logged once): pass through.
        return Looked::Miss(request, After::Pass(None, None));
    };
    // Before anything is read: what the inner service renders from here on
    // may predate a tag invalidated later.
    let started = known
        .as_ref()
        .map_or_else(crate::tags::now_micros, |read| read.started);
    let (mut parts, body) = request.into_parts();
    if let Some(Refresh(snapshot)) = parts.extensions.remove::<Refresh>() {
        // The update layer's background refresh of a stale page.
        return Looked::Miss(Request::from_parts(parts, body), After::Mark(snapshot));
    }
    let suffix = settings.suffix(&parts.headers, &parts.extensions);
    let authorized = page.fields.authorized;
    let now = settings.clock.now();
    let directives = request_directives(&settings, &page.fields, &parts.headers);
    let mut revalidating = None;
    let serving = Serving {
        settings: &settings,
        method: &parts.method,
        request: &parts.headers,
        fields: page.fields,
        now,
    };
    let mut fallback = None;
    // Every lookup of this request's entry: the first, and the re-reads of
    // a stale refresh and of a coalescing poll.
    let find_entry = async |known| {
        find(
            &settings,
            cache,
            &parts.method,
            &parts.headers,
            &page,
            &suffix,
            known,
        )
        .await
    };
    let looking = known
        .as_ref()
        .map_or_else(std::time::Instant::now, |read| read.looking);
    let flights_ended = known
        .as_ref()
        .map_or_else(|| settings.flights.ended(), |read| read.flights_ended);
    let first = find_entry(known).await;
    settings.metrics.looked_up(looking.elapsed());
    if let Ok(found) = &first
        && found.generation.is_none()
    {
        // The plain entry: the next hits need not make its key.
        note_page(
            &settings,
            cache,
            (&parts.uri, &parts.headers),
            &url,
            &found.key,
        );
    }
    let (answer, flight_key, generation) = match first {
        Ok(found) => {
            let times = found.entry.times;
            if settings
                .policy
                .may_serve(authorized, &found.entry.headers)
                .is_err()
            {
                (
                    Answer::Miss(MissBecause::Authorization),
                    None,
                    found.generation,
                )
            } else if usable(&times, now, directives.as_ref()) {
                return Looked::Hit(serve(found, Outcome::answered(Answer::Hit), &serving));
            } else if times.within(now, times.stale_while_revalidate)
                && directives.is_none_or(|d| d.is_plain())
            {
                let key = found.key.user().to_owned();
                let generation = found.generation;
                let stale = Outcome::answered(Answer::Stale(StaleBecause::Revalidating));
                let mut response = serve(found, stale, &serving);
                // One refresh per page: the flight's leader runs it.
                let Joined::Leader(leader) = settings.flights.join(key) else {
                    return Looked::Stale(response, None);
                };
                // A refresh may have ended between the read and the join:
                // then its page is there, fresh, and serves this request.
                if let Ok(again) = find_entry(None).await {
                    if again.entry.times.is_fresh(now) {
                        drop(leader);
                        return Looked::Hit(serve(again, Outcome::answered(Answer::Hit), &serving));
                    }
                }
                let snapshot = Arc::new(Snapshot {
                    leader: Mutex::new(Some(leader)),
                    generation,
                    ..Snapshot::new(&settings, cache, &parts, url, suffix, authorized, started)
                });
                let refresh = match side {
                    // This layer stores: it refreshes with this request.
                    Side::Both => Some((Request::from_parts(parts, body), After::Store(snapshot))),
                    // The update layer refreshes, through every layer
                    // between the two, with a copy of this request.
                    Side::Fetch => {
                        response
                            .extensions_mut()
                            .insert(RefreshTicket(Arc::new((parts, snapshot))));
                        None
                    }
                };
                return Looked::Stale(response, refresh);
            } else {
                let generation = found.generation;
                let because = if times.is_fresh(now) {
                    // Fresh, but not for what the request asked (RFC 9111).
                    MissBecause::Request
                } else {
                    MissBecause::Stale
                };
                if directives.is_some() && has_validator(&found.entry.headers) {
                    revalidating = Some(found.entry.stored());
                }
                if times.within(now, times.stale_if_error) {
                    fallback = Some(found.entry.into_stored());
                }
                (
                    Answer::Miss(because),
                    Some(found.key.into_user()),
                    generation,
                )
            }
        }
        Err(missed) => (
            Answer::Miss(missed.because),
            missed.vary_key,
            missed.generation,
        ),
    };
    in_span(
        flight_key.as_deref().unwrap_or_default(),
        &Outcome::answered(answer),
    );
    if directives.is_some_and(|d| d.only_if_cached) {
        // RFC 9111 section 5.2.1.7: nothing usable is stored.
        settings.metrics.answered(answer);
        let mut response = Response::new(CacheBody::empty());
        *response.status_mut() = StatusCode::GATEWAY_TIMEOUT;
        record(
            &mut response,
            Outcome::answered(answer),
            settings.cache_status.as_ref(),
        );
        return Looked::Hit(response);
    }
    let mut leader = None;
    let mut remote = None;
    // A request already leading a flight (a layer nested in another on the
    // same route) never follows one: it would wait for itself.
    let nested = parts.extensions.get::<Leading>().is_some();
    if let (Some(bound), false, false) = (settings.coalesce, authorized, nested) {
        // A URL whose header list is not stored yet: the key its page gets
        // if the response does not vary, the one the next requests find
        // once the list is stored and before the page is (so that they join
        // this flight rather than lead another).
        let key = flight_key.unwrap_or_else(|| {
            page_key(
                &settings.key_prefix,
                &parts.method,
                &url,
                &empty_vary(),
                &suffix,
            )
        });
        loop {
            match settings.flights.join(key.clone()) {
                Joined::Leader(l) => {
                    // A flight that ended between the read and this join
                    // may have stored the page the read missed: it then
                    // serves this request, and the service is not called.
                    if settings.flights.ended_since(flights_ended) {
                        let now = settings.clock.now();
                        if let Ok(found) = find_entry(None).await {
                            if settings
                                .policy
                                .may_serve(authorized, &found.entry.headers)
                                .is_ok()
                                && usable(&found.entry.times, now, directives.as_ref())
                            {
                                drop(l);
                                let outcome = Outcome::answered(Answer::Hit);
                                return Looked::Hit(serve(found, outcome, &serving.at(now)));
                            }
                        }
                    }
                    leader = Some(l);
                    parts.extensions.insert(Leading);
                    break;
                }
                Joined::Follower(follower) => match follower.wait(bound).await {
                    Waited::Shared(shared) if applies(&settings, &shared, &parts.headers) => {
                        let outcome = Outcome::coalesced(answer, shared.stored.status);
                        settings.metrics.answered(outcome.answer);
                        in_span("", &outcome);
                        tracing::debug!(target: TARGET, url = %url, %outcome, "cache");
                        // Its Age and ttl as of now, after the wait.
                        let serving = serving.at(settings.clock.now());
                        return Looked::Hit(hit_response(shared.stored.clone(), &serving, outcome));
                    }
                    Waited::Shared(_) | Waited::Alone => break,
                    Waited::Again => continue,
                },
            }
        }
        if leader.is_some() && settings.coalesces_across_instances(cache) {
            let lock = remote_lock::lock_key(&key);
            let deadline = tokio::time::Instant::now() + bound;
            let mut pause = remote_lock::FIRST_POLL;
            let mut first = true;
            loop {
                if !first {
                    // Another instance fetches: poll the cache for its page
                    // (before taking the lock again: a free lock is a page
                    // just stored, or one that was not storable).
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(remote_lock::LONGEST_POLL);
                    let found = find_entry(None).await;
                    if let Some(found) = found.ok().filter(|f| {
                        f.entry.times.is_fresh(now)
                            && settings
                                .policy
                                .may_serve(authorized, &f.entry.headers)
                                .is_ok()
                    }) {
                        if let Some(leader) = leader.take() {
                            leader.publish(Some(Arc::new(shared_from(
                                &settings,
                                &parts.headers,
                                found.entry.stored(),
                            ))));
                        }
                        let outcome = Outcome::coalesced(answer, found.entry.status);
                        let serving = serving.at(settings.clock.now());
                        return Looked::Hit(serve(found, outcome, &serving));
                    }
                    if tokio::time::Instant::now() >= deadline {
                        // The wait bound passed: fetch without the lock.
                        break;
                    }
                }
                first = false;
                match remote_lock::take(cache, &lock, bound).await {
                    Took::Held(held) => remote = Some(held),
                    Took::Failed => {}
                    Took::Busy => continue,
                }
                break;
            }
        }
    }
    settings.metrics.answered(answer);
    tracing::debug!(target: TARGET, url = %url, outcome = %Outcome::answered(answer), "cache");
    let snapshot = Arc::new(Snapshot {
        answer,
        leader: Mutex::new(leader),
        remote: Mutex::new(remote),
        fallback,
        generation,
        directives,
        revalidating,
        ..Snapshot::new(&settings, cache, &parts, url, suffix, authorized, started)
    });
    if let Some(entry) = &snapshot.revalidating {
        // The snapshot keeps the client's own preconditions, which the
        // freshened entry answers.
        conditional_request(&mut parts.headers, &entry.headers);
    }
    let after = match side {
        Side::Both => After::Store(snapshot),
        Side::Fetch => After::Mark(snapshot),
    };
    Looked::Miss(Request::from_parts(parts, body), after)
}

/// The request's caching directives, under the RFC 9111 policy (empty when
/// the layer does not honour them).
pub(super) fn request_directives(
    settings: &Settings,
    fields: &RequestFields,
    headers: &HeaderMap,
) -> Option<RequestDirectives> {
    settings.policy.rfc9111_rules().map(|rules| {
        if rules.request_directives && fields.directives {
            RequestDirectives::parse(headers)
        } else {
            RequestDirectives::default()
        }
    })
}

/// Whether an entry may answer a request without asking the inner service:
/// it is fresh; under the RFC 9111 policy (with the request's
/// `directives`), also fresh enough for the request (`max-age`,
/// `min-fresh`, not `no-cache`), or stale within its `max-stale` when the
/// entry allows stale use.
pub(super) fn usable(times: &Freshness, now: u64, directives: Option<&RequestDirectives>) -> bool {
    let Some(request) = directives else {
        return times.is_fresh(now);
    };
    if request.no_cache {
        return false;
    }
    if request
        .max_age
        .is_some_and(|max| times.age_at(now) > max.seconds())
    {
        return false;
    }
    if times.is_fresh(now) {
        return request
            .min_fresh
            .is_none_or(|min| times.fresh_until - now >= min.seconds());
    }
    let stale_for = now - times.fresh_until;
    !times.must_revalidate
        && match request.max_stale {
            Some(None) => true,
            Some(Some(bound)) => stale_for <= bound.seconds(),
            None => false,
        }
}

/// Makes `request` a conditional request for the stored response with the
/// headers `stored` (RFC 9111 section 4.3.1): its `ETag` as `If-None-Match`,
/// its `Last-Modified` as `If-Modified-Since`, in place of the client's.
fn conditional_request(request: &mut HeaderMap, stored: &HeaderMap) {
    request.remove(IF_NONE_MATCH);
    request.remove(IF_MODIFIED_SINCE);
    request.remove(IF_RANGE);
    if let Some(etag) = stored.get(ETAG) {
        request.insert(IF_NONE_MATCH, etag.clone());
    }
    if let Some(modified) = stored.get(LAST_MODIFIED) {
        request.insert(IF_MODIFIED_SINCE, modified.clone());
    }
}

/// Whether a leader's response answers this follower: the same values of
/// the headers it varies on, and a coding the follower accepts.
fn applies(settings: &Settings, shared: &Shared, request: &HeaderMap) -> bool {
    settings.vary_hash(&shared.vary, request) == shared.vary_hash
        && (settings.accept_encoding == AcceptEncodingKey::AsSent
            || acceptable(request, &shared.stored.headers))
}

/// An entry found in the cache, as a leader shares it with its followers.
fn shared_from(settings: &Settings, request: &HeaderMap, entry: StoredResponse) -> Shared {
    let skip = settings
        .key_suffix
        .as_ref()
        .is_some_and(|s| s.skips_accept_language());
    let vary = VaryHeaders::from_response(&entry.headers, skip);
    let vary_hash = settings.vary_hash(&vary, request);
    Shared {
        stored: entry,
        vary,
        vary_hash,
    }
}

/// md5 of nothing: the Vary hash of a page without `Vary`.
pub(crate) fn empty_vary() -> Md5Hex {
    static EMPTY: LazyLock<Md5Hex> =
        LazyLock::new(|| VaryHeaders::default().hash(&HeaderMap::new()));
    *EMPTY
}

pub(super) struct Found {
    pub(super) key: MadeKey,
    /// As stored, or made ready to serve: what is kept takes
    /// [`FoundEntry::stored`].
    pub(super) entry: FoundEntry,
    /// The header list's generation, when the entry was found through it.
    pub(super) generation: Option<u64>,
}

pub(super) struct Missed {
    because: MissBecause,
    /// The page key, when the header list was known.
    vary_key: Option<String>,
    /// The header list's generation, when it was read.
    generation: Option<u64>,
}

impl From<MissBecause> for Missed {
    fn from(because: MissBecause) -> Missed {
        Missed {
            because,
            vary_key: None,
            generation: None,
        }
    }
}

/// The key of a request's page entry for `method` and the `vary` hash.
/// An error is the caller's to report (the hit path leaves it to the
/// lookup, which reports it once).
pub(super) fn made_page_key(
    settings: &Settings,
    cache: &Cache,
    method: &Method,
    url: &Md5Hex,
    vary: &Md5Hex,
    suffix: &str,
) -> crate::Result<MadeKey> {
    let prefix = &settings.key_prefix;
    cache.make_key_with(page_key_len(prefix, method, suffix), |key| {
        push_page_key(key, prefix, method, url, vary, suffix);
    })
}

/// The read of a page's plain entry (the GET entry of a page without
/// `Vary`) that the [hit path](super::hit) made and did not answer from:
/// the lookup goes on from it instead of reading it again.
pub(crate) struct PlainRead {
    pub(super) key: MadeKey,
    pub(super) entry: Option<(Bytes, Memo)>,
    /// When the request reached the layer, as the lookup counts it.
    pub(super) started: u64,
    /// When the read began, for the lookup's duration.
    pub(super) looking: std::time::Instant,
    /// How many flights had ended before the read ([`Flights::ended`]).
    ///
    /// [`Flights::ended`]: super::flight::Flights::ended
    pub(super) flights_ended: u64,
}

/// The entry for a request and its key, or why there is none. Damaged
/// entries are deleted; entries of another layout version are misses.
///
/// The GET entry of a page without `Vary` is looked up first, under the key
/// Django's layout gives it (the md5 of no header values): a hit there costs
/// one backend get. Only when it misses is the header list read, and the
/// entry for the request's values of the varying headers (Django's order of
/// lookups). On Redis the first two are one `get_many`. An entry under that key was stored from a response without
/// `Vary`, so it answers any request while it lives (RFC 9111 section 4.1),
/// even if the page has begun to vary since.
async fn find(
    settings: &Settings,
    cache: &Cache,
    method: &Method,
    headers: &HeaderMap,
    page: &Page,
    suffix: &str,
    known: Option<PlainRead>,
) -> Result<Found, Missed> {
    let url = &page.url;
    let prefix = &settings.key_prefix;
    let page_key = |method: &Method, vary: &Md5Hex| {
        made_page_key(settings, cache, method, url, vary, suffix).map_err(|error| {
            lookup_failed(
                settings,
                &page_key(prefix, method, url, vary, suffix),
                &error,
            )
        })
    };
    let list_key = || {
        cache
            .make_key_with(header_key_len(prefix, suffix), |key| {
                push_header_key(key, prefix, url, suffix);
            })
            .map_err(|error| lookup_failed(settings, &header_key(prefix, url, suffix), &error))
    };
    // On Redis, the plain entry and the header list are read in one round
    // trip (a page with `Vary` then costs two, not three); elsewhere the
    // second read would cost pages without `Vary` more than it saves
    // (`CacheBackend::reads_are_round_trips`).
    // With them, the versions of the tags the page had when last found
    // here (`tag_hints`): a tagged hit is then one round trip, not two.
    let batched = known.is_none() && cache.backend().reads_are_round_trips();
    let plain = || page.plain_key_or(|| page_key(&Method::GET, &empty_vary()));
    let (plain_key, plain, list, prefetched) = if let Some(read) = known {
        (read.key, read.entry, None, None)
    } else if batched {
        let plain_key = plain()?;
        let list_key = list_key()?;
        let hint = settings.tag_hints.get(plain_key.made());
        let ([plain, list], prefetched) =
            read_batch(settings, cache, [&plain_key, &list_key], hint).await?;
        let plain = plain.map(|entry| (entry, Memo::none()));
        (plain_key, plain, Some((list_key, list)), prefetched)
    } else {
        let plain_key = plain()?;
        let plain = get(settings, cache, &plain_key).await?;
        (plain_key, plain, None, None)
    };
    if let Some((entry, memo)) = plain {
        let found = decode(settings, cache, plain_key, entry, &memo, None).await?;
        let versions = prefetched_versions(settings, cache, &found, batched, prefetched);
        return check(settings, cache, found, versions).await;
    }
    // Made only now: a hit on a page without `Vary` never needs it.
    let (list_key, list) = match list {
        Some(read) => read,
        None => {
            let list_key = list_key()?;
            let list = get(settings, cache, &list_key).await?;
            (list_key, list.map(|(list, _)| list))
        }
    };
    let list = list.ok_or(MissBecause::Url)?;
    let Some((list, generation)) = VaryHeaders::decode(&list) else {
        if VaryHeaders::is_other_version(&list) {
            // Another release's list (a rolling deploy): leave it be.
            return Err(MissBecause::Url.into());
        }
        forget(cache, list_key.user()).await;
        return Err(MissBecause::Backend.into());
    };
    let vary = if list.is_empty() {
        empty_vary()
    } else {
        settings.vary_hash(&list, headers)
    };
    let (mut entry, mut prefetched) = (None, None);
    let mut key = plain_key;
    if !list.is_empty() {
        key = page_key(&Method::GET, &vary)?;
        (entry, prefetched) = read_with_tags(settings, cache, &key, batched).await?;
    }
    if entry.is_none() && method == Method::HEAD {
        key = page_key(&Method::HEAD, &vary)?;
        (entry, prefetched) = read_with_tags(settings, cache, &key, batched).await?;
    }
    let Some((entry, memo)) = entry else {
        return Err(Missed {
            because: MissBecause::Vary,
            vary_key: Some(key.into_user()),
            generation: Some(generation),
        });
    };
    let found = decode(settings, cache, key, entry, &memo, Some(generation)).await?;
    let versions = prefetched_versions(settings, cache, &found, batched, prefetched);
    let found = check(settings, cache, found, versions).await?;
    if settings.accept_encoding == AcceptEncodingKey::Preferred
        && list.has_accept_encoding()
        && !acceptable(headers, &found.entry.headers)
    {
        return Err(Missed {
            because: MissBecause::Coding,
            vary_key: Some(found.key.into_user()),
            generation: Some(generation),
        });
    }
    Ok(found)
}

/// The entry under `key` and, when reads are `batched` and the page's tags
/// are known here, their versions, in one round trip.
async fn read_with_tags(
    settings: &Settings,
    cache: &Cache,
    key: &MadeKey,
    batched: bool,
) -> Result<(Option<(Bytes, Memo)>, Option<Prefetched>), Missed> {
    let Some(hint) = batched
        .then(|| settings.tag_hints.get(key.made()))
        .flatten()
    else {
        return Ok((get(settings, cache, key).await?, None));
    };
    let ([entry], prefetched) = read_batch(settings, cache, [key], Some(hint)).await?;
    Ok((entry.map(|entry| (entry, Memo::none())), prefetched))
}

/// Reads `keys` and, with a `hint`, the versions of the tags it names, in
/// one `get_many`: the values of `keys`, and the versions read.
async fn read_batch<const N: usize>(
    settings: &Settings,
    cache: &Cache,
    keys: [&MadeKey; N],
    hint: Option<Hint>,
) -> Result<([Option<Bytes>; N], Option<Prefetched>), Missed> {
    let mut made = Vec::with_capacity(N + hint.as_ref().map_or(0, |hint| hint.len()));
    made.extend(keys.iter().map(|key| key.made()));
    if let Some(hint) = &hint {
        made.extend(hint.iter().map(|(_, made)| made.as_str()));
    }
    let read = cache
        .backend()
        .get_many(&made)
        .await
        .map_err(|error| lookup_failed(settings, keys[0].user(), &error))?;
    let mut read = read.into_iter();
    let values = std::array::from_fn(|_| read.next().flatten());
    let prefetched = hint.map(|hint| Prefetched {
        hint,
        versions: read.collect(),
    });
    Ok((values, prefetched))
}

/// The versions of the found entry's tags, when they were read with it
/// (the page's hint named them). When reads are `batched` and the hint
/// named others, or there was none, the entry's tags are noted for the
/// page's next lookup.
fn prefetched_versions(
    settings: &Settings,
    cache: &Cache,
    found: &Found,
    batched: bool,
    prefetched: Option<Prefetched>,
) -> Option<Vec<Option<Bytes>>> {
    match prefetched {
        Some(read) if same_tags(&read.hint, &found.entry.tags) => return Some(read.versions),
        noted if batched => settings.tag_hints.note(
            found.key.made(),
            &found.entry.tags,
            noted.is_some(),
            |key| cache.make_key(key).ok(),
        ),
        _ => {}
    }
    None
}

/// The versions of a page's tags read with its entry, for the tags the
/// page had when last found ([`TagHints`](super::tag_hints::TagHints)).
struct Prefetched {
    hint: Hint,
    versions: Vec<Option<Bytes>>,
}

/// An entry found, if it was not invalidated: found through a header list
/// of the generation it was stored with (the URL was not purged since),
/// and with its tags' versions unchanged (the `versions` read with the
/// entry, when there are; else one `get_many`, for a tagged page only). A
/// tag check that fails is a miss: the entry cannot be vouched for.
async fn check(
    settings: &Settings,
    cache: &Cache,
    found: Found,
    versions: Option<Vec<Option<Bytes>>>,
) -> Result<Found, Missed> {
    let invalidated = || Missed {
        because: MissBecause::Invalidated,
        vary_key: Some(found.key.user().to_owned()),
        generation: found.generation,
    };
    if found
        .generation
        .is_some_and(|g| found.entry.url_generation != Some(g))
    {
        return Err(invalidated());
    }
    let tags = &found.entry.tags;
    let unchanged = match versions {
        Some(versions) => Ok(tags
            .iter()
            .zip(&versions)
            .all(|(tag, now)| now.as_ref().is_some_and(|now| *now == tag.version))),
        None => cache.tags_unchanged(tags).await,
    };
    match unchanged {
        Ok(true) => Ok(found),
        Ok(false) => Err(invalidated()),
        Err(error) => {
            settings.metrics.backend_error("lookup");
            tracing::warn!(target: TARGET, key = found.key.user(), error = &error as &dyn std::error::Error,
                "could not read the versions of a page's tags; serving from the origin");
            Err(MissBecause::Backend.into())
        }
    }
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

/// The entry's decoded form: the one its memo keeps, or the entry decoded
/// (and kept in its memo for the next hits, with its header map ready to
/// clone: a fraction of the cost of parsing it again).
async fn decode(
    settings: &Settings,
    cache: &Cache,
    key: MadeKey,
    entry: Bytes,
    memo: &Memo,
    generation: Option<u64>,
) -> Result<Found, Missed> {
    // Decoded before: by an earlier hit on this entry (an in-process
    // backend's memo), or from the very same bytes (any other backend).
    let recent = (!memo.is_some()).then_some(&settings.recent_decodes);
    let known = recent.and_then(|recent| recent.get(key.made(), &entry));
    if let Some(decoded) = memo.get::<Arc<Decoded>>().or(known.as_ref()) {
        // Its map made ready to serve: what the lookup keeps (to
        // revalidate, for a failing origin, to share with coalesced
        // requests) takes the entry as stored.
        let added = Added::by(settings, &decoded.entry.times);
        return Ok(Found {
            key,
            entry: FoundEntry::of(decoded, added),
            generation,
        });
    }
    match StoredResponse::decode(entry.clone()) {
        Ok(decoded) => {
            let added = Added::by(settings, &decoded.times);
            let kept = Arc::new(Decoded::new(&decoded, added));
            // Served as the next hits will be, from the ready map: in the
            // same order.
            let found = FoundEntry::of(&kept, added);
            if memo.is_some() {
                memo.set(kept);
            } else if let Some(recent) = recent {
                recent.note(key.made(), entry, kept);
            }
            Ok(Found {
                key,
                entry: found,
                generation,
            })
        }
        Err(error) if error.is_other_version() => {
            // Another release's entry (a rolling deploy): leave it be.
            tracing::debug!(target: TARGET, key = key.user(), %error, "cache entry of another version");
            Err(Missed {
                because: MissBecause::Url,
                vary_key: Some(key.into_user()),
                generation,
            })
        }
        Err(error) => {
            tracing::warn!(target: TARGET, key = key.user(), %error, "deleting a damaged cache entry");
            forget(cache, key.user()).await;
            Err(MissBecause::Backend.into())
        }
    }
}

async fn get(
    settings: &Settings,
    cache: &Cache,
    key: &MadeKey,
) -> Result<Option<(Bytes, Memo)>, Missed> {
    cache
        .backend()
        .get_memoized(key.made())
        .await
        .map_err(|error| lookup_failed(settings, key.user(), &error))
}

/// A failed read: counted and logged, and a miss.
fn lookup_failed(settings: &Settings, key: &str, error: &crate::CacheError) -> Missed {
    settings.metrics.backend_error("lookup");
    tracing::warn!(target: TARGET, key, error = error as &dyn std::error::Error,
        "cache lookup failed; serving from the origin");
    MissBecause::Backend.into()
}

async fn forget(cache: &Cache, key: &str) {
    if let Err(error) = cache.delete(key).await {
        tracing::warn!(target: TARGET, key, error = &error as &dyn std::error::Error, "could not delete a cache entry");
    }
}

/// A response from an entry found, with its outcome logged and counted.
pub(super) fn serve<B>(
    found: Found,
    outcome: Outcome,
    serving: &Serving<'_>,
) -> Response<CacheBody<B>> {
    let Found { key, entry, .. } = found;
    serve_entry(
        &key,
        entry.served(),
        outcome,
        serving,
        http::Extensions::new(),
    )
}

/// [`serve`], for an entry found under `key` and where its headers hold
/// what a hit writes, the response taking `extensions` (see
/// [`hit_response_in`]).
pub(super) fn serve_entry<B>(
    key: &MadeKey,
    (entry, places): (StoredResponse, Places),
    outcome: Outcome,
    serving: &Serving<'_>,
    extensions: http::Extensions,
) -> Response<CacheBody<B>> {
    serving.settings.metrics.answered(outcome.answer);
    in_span(key.user(), &outcome);
    tracing::debug!(target: TARGET, key = key.user(), %outcome, "cache");
    hit_response_in(entry, serving, outcome, extensions, places)
}

/// Records the key and outcome in the lookup's span, when it is enabled.
fn in_span(key: &str, outcome: &Outcome) {
    // The span is made only at this level: without it, not even the
    // current span is looked up (about 90 instructions of a hit).
    if !tracing::level_enabled!(tracing::Level::DEBUG) {
        return;
    }
    let span = tracing::Span::current();
    if !span.is_disabled() {
        if !key.is_empty() {
            span.record("key", key);
        }
        span.record("outcome", tracing::field::display(outcome));
    }
}

/// A request that refreshes a stale page, from the parts of the one that
/// found it stale (for the update layer's background refresh).
pub(crate) fn refresh_request<B: Default>(ticket: &RefreshTicket) -> Request<B> {
    let (parts, snapshot) = &*ticket.0;
    let snapshot = snapshot.clone();
    let mut request = Request::new(B::default());
    *request.method_mut() = parts.method.clone();
    *request.uri_mut() = parts.uri.clone();
    *request.version_mut() = parts.version;
    *request.headers_mut() = parts.headers.clone();
    request.extensions_mut().insert(Refresh(snapshot));
    request
}
