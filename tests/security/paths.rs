//! Path normalisation tricks: two spellings of a target that the cache
//! might fold together while the router (or a proxy, or the app) tells
//! them apart, so that one spelling's page is stored under the other's
//! key. The layers key the path and query exactly as sent (Django keys the
//! full URL), so every distinct target has its own entry and no request
//! can put its page under another path's key.

use tower_cache::http::key::url_hash;

use crate::app::{Mount, Origin, get, send};

/// `(trick, plain)`: targets that some component may treat as one.
const LOOKALIKES: [(&str, &str); 14] = [
    ("/a;/b", "/b"),
    ("/a;/b", "/a"),
    ("/b;x", "/b"),
    ("/a%2Fb", "/a/b"),
    ("/a%2fb", "/a%2Fb"),
    ("//b", "/b"),
    ("/./b", "/b"),
    ("/a/../b", "/b"),
    ("/a/%2e%2e/b", "/b"),
    ("/B", "/b"),
    ("/%62", "/b"),
    ("/b%3Fx=1", "/b?x=1"),
    ("/b?x=1&y=2", "/b?y=2&x=1"),
    ("/b?x=1", "/b"),
];

/// Attack: request the trick spelling first, so its page is stored, then
/// the plain one: the plain target gets its own page (the origin runs
/// again), and afterwards each spelling is answered from its own entry.
#[tokio::test]
async fn lookalike_targets_never_share_an_entry() {
    for mount in Mount::ALL {
        for (trick, plain) in LOOKALIKES {
            let origin = Origin::with(&[]);
            let app = origin.app(mount);
            let first = send(&app, get(trick)).await;
            assert!(first.outcome.stored(), "{mount:?} {trick}");
            assert!(first.body.starts_with(&format!("GET {trick}\n")));

            let second = send(&app, get(plain)).await;
            assert!(!second.is_hit(), "{mount:?}: {plain} got {trick}'s page");
            assert!(second.body.starts_with(&format!("GET {plain}\n")));

            for target in [trick, plain] {
                let hit = send(&app, get(target)).await;
                assert!(hit.is_hit(), "{mount:?} {target}");
                assert!(hit.body.starts_with(&format!("GET {target}\n")));
            }
            assert_eq!(origin.calls(), 2);
        }
    }
}

/// The same, on the keys themselves: every spelling hashes apart. The one
/// fold is Django's: an empty query is no query (`/b?` is `/b`), which no
/// router tells apart either.
#[test]
fn every_spelling_has_its_own_url_hash() {
    let hash = |target: &str| {
        let request = get(target);
        url_hash("http", request.uri(), request.headers()).unwrap()
    };
    let mut targets: Vec<&str> = LOOKALIKES.iter().flat_map(|(a, b)| [*a, *b]).collect();
    targets.sort_unstable();
    targets.dedup();
    for (i, a) in targets.iter().enumerate() {
        for b in &targets[i + 1..] {
            assert_ne!(hash(a), hash(b), "{a} and {b} share a key");
        }
    }
    assert_eq!(hash("/b?"), hash("/b"));
}
