//! The hit path: a fresh page without `Vary`, read at once from a backend
//! that can answer without waiting ([`CacheBackend::get_now`]: memory, the
//! tiered backend's L1) and decoded by an earlier hit, served before any
//! lookup is set up (no boxed future, no copy of the request). Everything
//! else, and a read that would wait, goes on in the
//! [lookup](super::lookup), from the read made here.
//!
//! [`CacheBackend::get_now`]: crate::CacheBackend::get_now

use std::sync::Arc;
use std::time::Instant;

use http::{Method, Request, Response};

use super::body::CacheBody;
use super::decoded::{Added, Decoded, Places};
use super::lookup::{
    Page, PlainRead, Refresh, empty_vary, made_page_key, note_page, request_directives,
    serve_entry, usable,
};
use super::outcome::{Answer, Outcome};
use super::serve::Serving;
use super::settings::Settings;
use super::tag_check::tags_unchanged;

/// What the hit path did with a request.
pub(crate) enum Tried<B> {
    /// Answered: a fresh hit.
    Hit(Response<CacheBody<B>>),
    /// Not answered here: the lookup takes over, from the plain entry's
    /// read when it was made.
    Lookup(Option<PlainRead>),
}

/// Answers `request` (for `page`) from the cache when that takes reads
/// that do not wait and no rule beyond freshness and authorization: the
/// plain entry (a page without `Vary`), decoded by an earlier hit (kept in
/// its [`Memo`](crate::Memo) as [`Decoded`]), with its tags' versions
/// unchanged (read from the same backend, or known unchanged: see
/// [`TagCheck`](super::tag_check::TagCheck)), usable for the request
/// (fresh, and under RFC 9111 as fresh as it asks).
///
/// A hit costs the URL hash and key (the layer's known ones, or made once),
/// one backend read polled once, a clone of the header map kept ready to
/// serve and the response, which takes the request's extensions, cleared:
/// their map (axum's router puts entries in it) holds the outcome, and the
/// response allocates none of its own.
pub(crate) fn try_hit<ReqB, ResB>(
    settings: &Settings,
    request: &mut Request<ReqB>,
    page: &Page,
) -> Tried<ResB> {
    let Some(cache) = settings.cache_now() else {
        return Tried::Lookup(None);
    };
    if request.extensions().get::<Refresh>().is_some() {
        // The update layer's background refresh: the lookup's to mark.
        return Tried::Lookup(None);
    }
    // One read of the wall clock: when the request reached the layer (for
    // the tags of what the inner service renders, on a miss) and the time
    // freshness is judged at.
    let wall = crate::clock::since_epoch();
    let started = crate::clock::micros(wall);
    let looking = Instant::now();
    let headers = request.headers();
    let flights_ended = settings.flights.ended();
    let made = page.plain_key_or(|| {
        let suffix = settings.suffix(headers, request.extensions());
        made_page_key(
            settings,
            cache,
            &Method::GET,
            &page.url,
            &empty_vary(),
            &suffix,
        )
    });
    let Ok(key) = made else {
        return Tried::Lookup(None);
    };
    // A read that would wait (or failed) is the lookup's to make.
    let Some(Ok(entry)) = cache.backend().get_now(key.made()) else {
        return Tried::Lookup(None);
    };
    if entry.is_some() {
        note_page(
            settings,
            cache,
            (request.uri(), request.headers()),
            &page.url,
            &key,
        );
    }
    let plain = PlainRead {
        key,
        entry,
        started,
        looking,
        flights_ended,
    };
    let decoded = plain
        .entry
        .as_ref()
        .and_then(|(_, memo)| memo.get::<Arc<Decoded>>());
    let now = settings.clock.at(wall.as_secs());
    let (entry, places) = match decoded {
        Some(decoded)
            if tags_unchanged(cache, &decoded.entry, &decoded.tag_check, wall.as_secs())
                && settings
                    .policy
                    .may_serve(page.fields.authorized, &decoded.entry.headers)
                    .is_ok()
                && usable(
                    &decoded.entry.times,
                    now,
                    request_directives(settings, &page.fields, headers).as_ref(),
                ) =>
        {
            let added = Added::by(settings, &decoded.entry.times);
            decoded
                .ready(added)
                .unwrap_or_else(|| (decoded.stored(), Places::default()))
        }
        _ => return Tried::Lookup(Some(plain)),
    };
    settings.metrics.looked_up(looking.elapsed());
    let mut extensions = std::mem::take(request.extensions_mut());
    extensions.clear();
    let serving = Serving {
        settings,
        method: request.method(),
        request: request.headers(),
        fields: page.fields,
        now,
    };
    let hit = Outcome::answered(Answer::Hit);
    Tried::Hit(serve_entry(
        &plain.key,
        (entry, places),
        hit,
        &serving,
        extensions,
    ))
}
