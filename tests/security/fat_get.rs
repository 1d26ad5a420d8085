//! Fat GET: a GET (or HEAD) with a body. The key never holds the body, so
//! an origin that reads it would let one request choose the page every
//! client of the URL gets. Such a request bypasses the cache: it is
//! neither answered from nor stored in it.

use axum::body::Body;
use http::Method;
use tower_cache::http::policy::Bypass;

use crate::app::{Lines, Mount, Origin, get, get_with, request, send};

/// Attack: `GET /search` with a body the origin reads, announced by
/// `Content-Length`, by `Transfer-Encoding`, or by a `Content-Length` that
/// cannot be read. It is never stored, and never answered from the page
/// that requests without a body share.
#[tokio::test]
async fn a_get_with_a_body_is_never_stored_nor_served_from_the_cache() {
    let announced: [Lines<'_>; 3] = [
        &[("content-length", b"4")],
        &[("transfer-encoding", b"chunked")],
        &[("content-length", b"four")],
    ];
    for mount in Mount::ALL {
        for framing in announced {
            let origin = Origin::with(&[]);
            let app = origin.app(mount);
            let fat = || request(Method::GET, "/search", framing, Body::from("evil"));

            let poisoned = send(&app, fat()).await;
            assert!(
                poisoned.body.contains("body: evil"),
                "{mount:?} {framing:?}"
            );
            assert_eq!(
                poisoned.not_stored_because(),
                Some(Bypass::RequestBody),
                "{mount:?} {framing:?}"
            );

            let normal = send(&app, get("/search")).await;
            assert!(!normal.body.contains("evil"), "{mount:?} {framing:?}");
            assert!(normal.outcome.stored(), "{mount:?} {framing:?}");

            // The body may matter to the origin: not answered from the
            // shared page either.
            let again = send(&app, fat()).await;
            assert_eq!(again.not_stored_because(), Some(Bypass::RequestBody));
            assert!(again.body.contains("body: evil"));
            assert!(send(&app, get("/search")).await.is_hit());
            assert_eq!(origin.calls(), 3, "{mount:?} {framing:?}");
        }
    }
}

/// Attack: the same with HEAD, whose entry answers later HEAD requests.
#[tokio::test]
async fn a_head_with_a_body_is_never_stored() {
    for mount in Mount::ALL {
        let origin = Origin::with(&[]);
        let app = origin.app(mount);
        let head = |extra: Lines<'_>, body: &'static str| {
            request(Method::HEAD, "/", extra, Body::from(body))
        };
        let fat = send(&app, head(&[("content-length", b"4")], "evil")).await;
        assert_eq!(
            fat.not_stored_because(),
            Some(Bypass::RequestBody),
            "{mount:?}"
        );
        let normal = send(&app, head(&[], "")).await;
        assert!(!normal.is_hit(), "{mount:?}: not the fat request's entry");
        assert_eq!(origin.calls(), 2);
    }
}

/// Not an attack: clients that send `Content-Length: 0` on a GET are cached
/// as any other (the rule must not turn caching off for them).
#[tokio::test]
async fn content_length_zero_is_not_a_body() {
    for mount in Mount::ALL {
        let origin = Origin::with(&[]);
        let app = origin.app(mount);
        let empty = || get_with("/", &[("content-length", b"0")]);
        assert!(send(&app, empty()).await.outcome.stored(), "{mount:?}");
        assert!(send(&app, empty()).await.is_hit(), "{mount:?}");
        assert!(send(&app, get("/")).await.is_hit(), "{mount:?}");
        assert_eq!(origin.calls(), 1);
    }
}
