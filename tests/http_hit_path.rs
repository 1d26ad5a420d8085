//! The hit path: once a page has been read from the memory backend, its
//! decoded copy (kept in the entry's memo) answers the next requests
//! before any lookup is set up. Each test reads the page twice first, so
//! that the request under test takes that path, and checks that every rule
//! the lookup applies still holds there.

mod http_support;

use std::time::Duration;

use axum::http::StatusCode;
use http_support::{Origin, fresh_cache, get, head, send};
use tower_cache::Cache;
use tower_cache::http::policy::Semantics;
use tower_cache::http::rfc9111::Rfc9111;
use tower_cache::middleware::{Answer, Clock, MissBecause, cache_page};

/// `origin` behind `cache_page(300 s)` on `clock` and `cache`, its page read
/// twice (stored, then decoded by a hit).
async fn warmed(origin: &Origin, clock: &Clock, cache: &Cache) -> axum::Router {
    let app = origin.router().route_layer(
        cache_page(Duration::from_secs(300))
            .clock(clock.clone())
            .cache(cache.clone()),
    );
    send(&app, get(&[])).await;
    assert_eq!(
        send(&app, get(&[])).await.outcome.unwrap().answer,
        Answer::Hit
    );
    app
}

#[tokio::test]
async fn the_decoded_copy_serves_until_the_entry_changes() {
    let (origin, clock, cache) = (Origin::new(), Clock::adjustable(), fresh_cache());
    let app = warmed(&origin, &clock, &cache).await;
    clock.advance(Duration::from_secs(7));
    let hit = send(&app, get(&[])).await;
    assert_eq!(hit.outcome.unwrap().answer, Answer::Hit);
    assert_eq!(hit.body, "v1");
    assert_eq!(hit.headers["age"], "7");
    assert_eq!(hit.headers["cache-control"], "max-age=300");
    // Past its lifetime: fetched and stored anew, and the new entry's copy
    // serves the next hits, never the old one's.
    clock.advance(Duration::from_secs(300));
    let miss = send(&app, get(&[])).await;
    assert_eq!(
        miss.outcome.unwrap().answer,
        Answer::Miss(MissBecause::Stale)
    );
    for _ in 0..2 {
        let hit = send(&app, get(&[])).await;
        assert_eq!(
            (hit.outcome.unwrap().answer, &hit.body[..]),
            (Answer::Hit, &b"v2"[..])
        );
    }
    assert_eq!(origin.calls(), 2);
}

#[tokio::test]
async fn a_request_with_authorization_is_not_served_a_private_copy() {
    let (origin, clock, cache) = (Origin::new(), Clock::adjustable(), fresh_cache());
    let app = warmed(&origin, &clock, &cache).await;
    let authorized = send(&app, get(&[("authorization", "Bearer x")])).await;
    assert_eq!(
        authorized.outcome.unwrap().answer,
        Answer::Miss(MissBecause::Authorization)
    );
    assert_eq!(authorized.body, "v2");
}

#[tokio::test]
async fn a_page_whose_tag_was_invalidated_is_a_miss() {
    let origin = Origin::new().with("cache-tag", "news");
    let (clock, cache) = (Clock::adjustable(), fresh_cache());
    let app = warmed(&origin, &clock, &cache).await;
    cache.invalidate_tags(["news"]).await.unwrap();
    let after = send(&app, get(&[])).await;
    assert_eq!(
        after.outcome.unwrap().answer,
        Answer::Miss(MissBecause::Invalidated)
    );
    assert_eq!(after.body, "v2");
    let hit = send(&app, get(&[])).await;
    assert_eq!(
        (hit.outcome.unwrap().answer, &hit.body[..]),
        (Answer::Hit, &b"v2"[..])
    );
}

#[tokio::test]
async fn a_tag_version_written_between_two_hits_is_seen_by_the_second() {
    let origin = Origin::new().with("cache-tag", "news");
    let (clock, cache) = (Clock::adjustable(), fresh_cache());
    let app = warmed(&origin, &clock, &cache).await;
    let version = tower_cache::tags::tag_key("news");
    for (round, body) in [(0, "v2"), (1, "v3")] {
        // Hits in a row, in one second: the later ones trust the first's read
        // of the version, as long as nothing is written.
        for _ in 0..3 {
            let hit = send(&app, get(&[])).await;
            assert_eq!(hit.outcome.unwrap().answer, Answer::Hit, "round {round}");
        }
        // A raw write of the version, not an invalidation: removed, then
        // replaced by one it never had.
        if round == 0 {
            assert!(cache.delete(&version).await.unwrap());
        } else {
            cache
                .set_bytes(&version, "7.0000000000000007", Duration::from_secs(60))
                .await
                .unwrap();
        }
        let after = send(&app, get(&[])).await;
        assert_eq!(
            (after.outcome.unwrap().answer, &after.body[..]),
            (Answer::Miss(MissBecause::Invalidated), body.as_bytes()),
            "round {round}"
        );
    }
}

#[tokio::test]
async fn head_and_preconditions_are_answered_from_the_copy() {
    let origin = Origin::new().with("etag", "\"e1\"");
    let (clock, cache) = (Clock::adjustable(), fresh_cache());
    let app = warmed(&origin, &clock, &cache).await;
    let head = send(&app, head(&[])).await;
    assert_eq!((head.status, &head.body[..]), (StatusCode::OK, &b""[..]));
    assert_eq!(head.headers["content-length"], "2");
    let not_modified = send(&app, get(&[("if-none-match", "\"e1\"")])).await;
    assert_eq!(not_modified.status, StatusCode::NOT_MODIFIED);
    assert_eq!(not_modified.outcome.unwrap().answer, Answer::Hit);
    assert_eq!(origin.calls(), 1);
}

#[tokio::test]
async fn rfc9111_request_directives_still_apply() {
    let origin = Origin::new().with("cache-control", "max-age=60");
    let (clock, cache) = (Clock::adjustable(), fresh_cache());
    let app = origin.router().route_layer(
        cache_page(Duration::from_secs(300))
            .semantics(Semantics::Rfc9111(Rfc9111::new()))
            .clock(clock.clone())
            .cache(cache.clone()),
    );
    send(&app, get(&[])).await;
    send(&app, get(&[])).await;
    clock.advance(Duration::from_secs(10));
    let fresh_enough = send(&app, get(&[("cache-control", "max-age=20")])).await;
    assert_eq!(fresh_enough.outcome.unwrap().answer, Answer::Hit);
    assert_eq!(fresh_enough.headers["age"], "10");
    for directive in ["max-age=5", "min-fresh=55", "no-cache"] {
        // Each miss stores the page anew: read it once, let it age.
        send(&app, get(&[])).await;
        clock.advance(Duration::from_secs(10));
        let asked = send(&app, get(&[("cache-control", directive)])).await;
        assert_eq!(
            asked.outcome.unwrap().answer,
            Answer::Miss(MissBecause::Request),
            "{directive}"
        );
    }
}

/// The request a case of the test below asks with.
fn asked_with(asked: &str) -> axum::http::Request<axum::body::Body> {
    match asked {
        "get" => get(&[]),
        "head" => head(&[]),
        "range" => get(&[("range", "bytes=1-1")]),
        _ => get(&[("if-none-match", "\"e1\"")]),
    }
}

/// Every header of a reply, in order, as `name: value` lines.
fn header_lines(reply: &http_support::Reply) -> Vec<String> {
    reply
        .headers
        .iter()
        .map(|(name, value)| format!("{name}: {}", value.to_str().unwrap()))
        .collect()
}

/// The first hit on an entry decodes it and builds its response header by
/// header; the next ones clone a header map kept ready, with stand-ins for
/// what a hit sets (`Age`, `Cache-Status`) and the body's length. Both must
/// serve the same headers, in the same order, with the hit's own values
/// and never a stand-in, for whole pages, `HEAD`, ranges and `304`s.
#[tokio::test]
async fn the_ready_header_map_serves_what_a_first_hit_serves() {
    // Upstream's own `Cache-Status` stays first: the layer's member is
    // appended after it, stand-in or not.
    let upstream_status = Origin::new()
        .with("etag", "\"e1\"")
        .with("cache-status", "upstream; hit");
    for (name, origin, semantics) in [
        ("django", Origin::new().with("etag", "\"e1\""), None),
        ("django, upstream status", upstream_status, None),
        (
            "rfc9111",
            Origin::new()
                .with("etag", "\"e1\"")
                .with("cache-control", "max-age=60"),
            Some(Semantics::Rfc9111(Rfc9111::new())),
        ),
    ] {
        for asked in ["get", "head", "range", "304"] {
            // A fresh cache each time: the request under test is the first
            // hit (no decoded copy yet), then the second (the ready map).
            let (clock, cache) = (Clock::adjustable(), fresh_cache());
            let mut layer = cache_page(Duration::from_secs(300))
                .cache_status(true)
                .clock(clock.clone())
                .cache(cache.clone());
            if let Some(semantics) = semantics.clone() {
                layer = layer.semantics(semantics);
            }
            let app = origin.router().route_layer(layer);
            // `Age` counts whole seconds of the system's clock (moved on by
            // 3): the three requests are made within one of its seconds.
            let (first, second) = loop {
                let second_now = || std::time::UNIX_EPOCH.elapsed().unwrap().as_secs();
                let began = second_now();
                cache.clear().await.unwrap();
                send(&app, get(&[])).await;
                clock.advance(Duration::from_secs(3));
                let first = send(&app, asked_with(asked)).await;
                let second = send(&app, asked_with(asked)).await;
                if second_now() == began {
                    break (first, second);
                }
            };
            assert_eq!(first.outcome.unwrap().answer, Answer::Hit, "{name} {asked}");
            assert_eq!(
                second.outcome.unwrap().answer,
                Answer::Hit,
                "{name} {asked}"
            );
            assert_eq!(
                header_lines(&first),
                header_lines(&second),
                "{name} {asked}"
            );
            assert_eq!((first.status, &first.body), (second.status, &second.body));
            assert_eq!(second.headers["age"], "3", "{name} {asked}");
            let members = second.members();
            // A 304 keeps only the headers that describe the page, which
            // upstream's member does not.
            let upstream = usize::from(name.contains("upstream") && asked != "304");
            assert_eq!(members.len(), 1 + upstream, "{name} {asked} {members:?}");
            assert!(members.last().unwrap().contains("hit"), "{members:?}");
            let length = second
                .headers
                .get("content-length")
                .map(|v| v.to_str().unwrap());
            match asked {
                "get" => assert_eq!(length, Some("2")),
                "head" => assert_eq!((length, &second.body[..]), (Some("2"), &b""[..])),
                "range" if semantics.is_some() => {
                    assert_eq!(second.status, StatusCode::PARTIAL_CONTENT);
                    // The origin counts its calls in its body: `v<n>`.
                    assert_eq!((length, second.body.len()), (Some("1"), 1));
                    assert_eq!(second.headers["content-range"], "bytes 1-1/2");
                }
                "range" => assert_eq!(length, Some("2")),
                _ => assert_eq!(second.status, StatusCode::NOT_MODIFIED, "{name}"),
            }
        }
    }
}

/// A hit takes its URL hash and key from the layer's table of pages found
/// before. Layers made from one builder with other settings (another key
/// prefix, other allowed hosts) start with a table of their own: none
/// answers with another's key or lets through a host another allowed.
#[tokio::test]
async fn layers_made_from_one_builder_keep_their_own_page_keys() {
    use tower_cache::http::key::AllowedHosts;
    use tower_cache::http::policy::Bypass;
    let (origin, cache) = (Origin::new(), fresh_cache());
    let base = cache_page(Duration::from_secs(300)).cache(cache.clone());
    let first = origin.router().route_layer(base.clone());
    for _ in 0..3 {
        send(&first, get(&[])).await;
    }
    assert_eq!(origin.calls(), 1);
    let closed = origin.router().route_layer(
        base.clone()
            .allowed_hosts(AllowedHosts::new(["other.example"])),
    );
    let bypassed = send(&closed, get(&[])).await;
    assert_eq!(
        bypassed.outcome.unwrap().answer,
        Answer::Bypass(Bypass::HostNotAllowed)
    );
    let prefixed = origin.router().route_layer(base.key_prefix("other"));
    let miss = send(&prefixed, get(&[])).await;
    assert_eq!(miss.outcome.unwrap().answer, Answer::Miss(MissBecause::Url));
    assert_eq!(send(&prefixed, get(&[])).await.body, miss.body);
    // The first layer's table still answers it.
    assert_eq!(send(&first, get(&[])).await.body, "v1");
    assert_eq!(origin.calls(), 3);
}

/// On a backend that keeps no decoded forms (every backend but memory and
/// the tiered L1), a hit whose read returns the very bytes decoded before
/// takes that decoded form instead of parsing them again; any other bytes
/// under the key (the page stored again, here by another writer, with the
/// same length) are parsed and served.
#[tokio::test]
async fn a_remote_hit_reuses_a_decode_only_for_the_same_bytes() {
    use std::sync::{Arc, Mutex};
    use tower_cache::CacheBackend;
    use tower_cache::backends::MemoryBackend;
    use tower_cache::testing::{Call, Hooked};
    let memory = Arc::new(MemoryBackend::new());
    let read = Arc::new(Mutex::new(Vec::<String>::new()));
    let noted = read.clone();
    let remote = Hooked::new(memory.clone(), move |call, key| {
        if matches!(call, Call::Get) {
            noted.lock().unwrap().push(key.to_owned());
        }
        Box::pin(async {})
    });
    let cache = Cache::new(Arc::new(remote));
    let (origin, clock) = (Origin::new(), Clock::adjustable());
    let app = origin.router().route_layer(
        cache_page(Duration::from_secs(300))
            .clock(clock.clone())
            .cache(cache.clone()),
    );
    send(&app, get(&[])).await;
    for _ in 0..3 {
        let hit = send(&app, get(&[])).await;
        assert_eq!(
            (hit.outcome.unwrap().answer, &hit.body[..]),
            (Answer::Hit, &b"v1"[..])
        );
    }
    // The page's entry, rewritten by another writer: same length, other body.
    let key = read.lock().unwrap().last().cloned().unwrap();
    let entry = memory.get(&key).await.unwrap().unwrap();
    let at = entry.len() - 2;
    assert_eq!(&entry[at..], b"v1");
    let mut changed = entry.to_vec();
    changed[at + 1] = b'9';
    memory
        .set(&key, changed.into(), Some(Duration::from_secs(300)))
        .await
        .unwrap();
    for _ in 0..2 {
        let hit = send(&app, get(&[])).await;
        assert_eq!(
            (hit.outcome.unwrap().answer, &hit.body[..]),
            (Answer::Hit, &b"v9"[..])
        );
    }
    assert_eq!(origin.calls(), 1);
}
