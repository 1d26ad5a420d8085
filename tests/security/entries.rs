//! Foreign bytes under a page key: a cache shared with other programs (or
//! with an attacker who can write to it) may hold anything where the
//! layers look. Bytes that are not an entry of this layout are a miss and
//! are deleted, never served and never a panic; an entry of another layout
//! version (another release, during a rolling deploy) is a miss and is
//! left alone. A well-formed entry is trusted: whoever can write those
//! owns the cache (SECURITY.md).

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use tower_cache::http::key::{header_key, url_hash};
use tower_cache::http::stored::{Freshness, StoredResponse, VERSION};
use tower_cache::middleware::{Answer, MissBecause};

use crate::app::{Mount, Origin, fresh_cache, get, plain_page_key, send};

/// A well-formed entry whose page says `forged`, fresh for a day.
fn entry() -> Vec<u8> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let times = Freshness::fresh_for(now, 86_400);
    StoredResponse::encode(StatusCode::OK, &HeaderMap::new(), b"forged", &times)
        .unwrap()
        .to_vec()
}

/// Attack: damaged or foreign bytes under the page key: empty, a pickle,
/// cut short, one byte too long (the body length no longer matches), a
/// header count past what follows. Each is a miss for a damaged entry,
/// the origin's page is served and stored in its place.
#[tokio::test]
async fn foreign_bytes_under_a_page_key_are_a_miss_and_replaced() {
    let whole = entry();
    let mut longer = whole.clone();
    longer.push(b'!');
    let mut counted = whole.clone();
    // magic+version 4, status 2, flags 2, stored_at 8, fresh_until 8, windows 8.
    counted[32..34].copy_from_slice(&u16::MAX.to_be_bytes());
    let foreign = [
        Vec::new(),
        b"\x80\x05\x95pickled".to_vec(),
        whole[..whole.len() - 1].to_vec(),
        longer,
        counted,
    ];
    for mount in Mount::ALL {
        for bytes in &foreign {
            let cache = fresh_cache();
            let origin = Origin::with(&[]);
            let app = origin.app_on(mount, cache.clone());
            let key = plain_page_key("http", &get("/"));
            let planted = Bytes::from(bytes.clone());
            cache
                .set_bytes(&key, planted.clone(), Duration::from_secs(300))
                .await
                .unwrap();
            let reply = send(&app, get("/")).await;
            assert_eq!(
                reply.outcome.answer,
                Answer::Miss(MissBecause::Backend),
                "{mount:?}"
            );
            assert!(!reply.body.contains("forged") && reply.outcome.stored());
            let replaced = cache.get_bytes(&key).await.unwrap().unwrap();
            assert_ne!(replaced, planted, "{mount:?}");
            assert!(send(&app, get("/")).await.is_hit());
        }
    }
}

/// An entry of another layout version is another release's: a miss, and
/// not deleted (the page is `private` here, so nothing replaces it).
#[tokio::test]
async fn an_entry_of_another_layout_version_is_a_miss_and_left_alone() {
    for mount in Mount::ALL {
        let cache = fresh_cache();
        let origin = Origin::with(&[("cache-control", b"private")]);
        let app = origin.app_on(mount, cache.clone());
        let key = plain_page_key("http", &get("/"));
        let mut other = entry();
        // The next layout version: one this release does not read.
        other[3] = VERSION + 1;
        let other = Bytes::from(other);
        cache
            .set_bytes(&key, other.clone(), Duration::from_secs(300))
            .await
            .unwrap();
        let reply = send(&app, get("/")).await;
        assert!(matches!(reply.outcome.answer, Answer::Miss(_)), "{mount:?}");
        assert!(!reply.body.contains("forged"), "{mount:?}");
        assert_eq!(
            cache.get_bytes(&key).await.unwrap(),
            Some(other),
            "{mount:?}"
        );
    }
}

/// The header list under a URL's header-list key is another release's too
/// when its magic is `tcv` with another version digit (the older `tcv1`,
/// or a later one): a miss, and not deleted, so that two releases running
/// side by side do not delete each other's lists on every request.
#[tokio::test]
async fn a_header_list_of_another_release_is_a_miss_and_left_alone() {
    let lists: [&[u8]; 2] = [b"tcv1\ncookie\n", b"tcv3\n0000000000000001\ncookie\n"];
    for mount in Mount::ALL {
        for list in lists {
            let cache = fresh_cache();
            let origin = Origin::with(&[("cache-control", b"private")]);
            let app = origin.app_on(mount, cache.clone());
            let request = get("/");
            let url = url_hash("http", request.uri(), request.headers()).unwrap();
            let key = header_key("", &url, "");
            let list = Bytes::from_static(list);
            cache
                .set_bytes(&key, list.clone(), Duration::from_secs(300))
                .await
                .unwrap();
            let reply = send(&app, request).await;
            assert!(matches!(reply.outcome.answer, Answer::Miss(_)), "{mount:?}");
            assert_eq!(
                cache.get_bytes(&key).await.unwrap(),
                Some(list),
                "{mount:?}"
            );
        }
    }
}
