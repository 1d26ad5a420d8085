//! Unkeyed headers: request headers that are not part of the key
//! (`Forwarded`, `X-Forwarded-Host`, `X-Original-URL`,
//! `X-HTTP-Method-Override`, ...).
//!
//! A cache keys a page by method, scheme, `Host`, path and query, and by
//! the headers the response names in `Vary`. An origin that reflects any
//! other header in its page lets one request choose the page every client
//! of that key gets (web cache poisoning); no cache can tell. The rule the
//! layers keep, and SECURITY.md asks of origins: a response that depends
//! on a request header says so in `Vary`, and layers that rewrite requests
//! from headers (method override, trusted forwarding headers) go outside
//! the cache layers, so the cache sees the request the app serves.

use axum::body::Body;
use axum::middleware::{Next, from_fn};
use http::{Method, Request};
use tower_cache::http::policy::Bypass;

use crate::app::{Mount, Origin, fresh_cache, get, get_with, plain_page_key, request, send};

/// The headers proxies and frameworks act on that no cache keys by
/// (axum-extra's `Host` extractor reads the first two before `Host`).
const UNKEYED: [&str; 7] = [
    "forwarded",
    "x-forwarded-host",
    "x-forwarded-scheme",
    "x-forwarded-proto",
    "x-original-url",
    "x-rewrite-url",
    "x-http-method-override",
];

/// Attack: each unkeyed header with an evil value, against an origin that
/// reflects it and says `Vary: <header>`. Every value gets its own entry:
/// the attacker's page is stored (and served back to the attacker), but
/// never to a request without the header.
#[tokio::test]
async fn reflected_unkeyed_headers_are_keyed_per_value_when_the_origin_varies_on_them() {
    for mount in Mount::ALL {
        for name in UNKEYED {
            let origin = Origin::with(&[("vary", name.as_bytes())]);
            let app = origin.app(mount);
            let evil = || get_with("/", &[(name, b"evil.example")]);

            let poisoned = send(&app, evil()).await;
            assert!(poisoned.body.contains("evil.example"), "{mount:?} {name}");
            assert!(poisoned.outcome.stored(), "{mount:?} {name}");

            let normal = send(&app, get("/")).await;
            assert_eq!(
                origin.calls(),
                2,
                "{mount:?} {name}: a miss, not the evil page"
            );
            assert!(!normal.body.contains("evil"), "{mount:?} {name}");

            // Both pages are cached, each under its own key.
            assert!(send(&app, evil()).await.is_hit(), "{mount:?} {name}");
            let again = send(&app, get("/")).await;
            assert!(
                again.is_hit() && !again.body.contains("evil"),
                "{mount:?} {name}"
            );
            assert_eq!(origin.calls(), 2);
        }
    }
}

/// Attack: `X-Forwarded-Proto: https` (and `X-Forwarded-Scheme`) with no
/// trusted scheme header configured, to put a page under the `https://`
/// key. The layers read neither: the request is keyed as the URI says
/// (`http`), it is answered from that entry, and nothing is stored under
/// the `https://` key.
#[tokio::test]
async fn forwarded_proto_is_not_a_key_unless_configured() {
    for mount in Mount::ALL {
        let cache = fresh_cache();
        let origin = Origin::with(&[]);
        let app = origin.app_on(mount, cache.clone());
        let spoofed = || {
            get_with(
                "/",
                &[
                    ("x-forwarded-proto", b"https"),
                    ("x-forwarded-scheme", b"https"),
                ],
            )
        };
        assert!(send(&app, spoofed()).await.outcome.stored());
        assert!(send(&app, get("/")).await.is_hit(), "{mount:?}: one entry");
        assert!(send(&app, spoofed()).await.is_hit(), "{mount:?}");
        assert_eq!(origin.calls(), 1);

        for (scheme, stored) in [("http", true), ("https", false)] {
            let key = plain_page_key(scheme, &spoofed());
            assert_eq!(
                cache.get_bytes(&key).await.unwrap().is_some(),
                stored,
                "{mount:?} {scheme}"
            );
        }
    }
}

/// Attack: a method override header. A GET that says `POST` is still a GET
/// to the cache (answered from the GET entry), and a POST that says `GET`
/// is still a POST: never answered from the GET entry, never stored.
#[tokio::test]
async fn method_override_headers_do_not_change_what_the_cache_does() {
    const OVERRIDES: [&str; 3] = [
        "x-http-method-override",
        "x-http-method",
        "x-method-override",
    ];
    for mount in Mount::ALL {
        let origin = Origin::with(&[]);
        let app = origin.app(mount);
        send(&app, get("/")).await;
        for name in OVERRIDES {
            let get_as_post = send(&app, get_with("/", &[(name, b"POST")])).await;
            assert!(get_as_post.is_hit(), "{mount:?} {name}");

            let post_as_get = request(Method::POST, "/", &[(name, b"GET")], Body::empty());
            let post = send(&app, post_as_get).await;
            assert!(
                post.body.starts_with("POST /"),
                "{mount:?} {name}: the origin ran"
            );
            assert_eq!(post.not_stored_because(), Some(Bypass::Method));
        }
        assert_eq!(origin.calls(), 1 + OVERRIDES.len(), "{mount:?}");
        let after = send(&app, get("/")).await;
        assert!(
            after.is_hit() && after.body.starts_with("GET /"),
            "{mount:?}"
        );
    }
}

/// Rewrites the method from `X-HTTP-Method-Override`, as some frameworks do.
async fn method_override(mut request: Request<Body>, next: Next) -> axum::response::Response {
    let method = request
        .headers()
        .get("x-http-method-override")
        .and_then(|value| Method::from_bytes(value.as_bytes()).ok());
    if let Some(method) = method {
        *request.method_mut() = method;
    }
    next.run(request).await
}

/// Attack: `GET /` with `X-HTTP-Method-Override: DELETE` against an app
/// that honours the header. With the override layer outside the cache
/// layers (the documented rule), the cache sees the request the app
/// serves, a DELETE: neither answered from nor stored in the GET entry.
#[tokio::test]
async fn an_honoured_method_override_outside_the_cache_never_reaches_the_get_entry() {
    let origin = Origin::with(&[]);
    let app = origin.app(Mount::SiteWide).layer(from_fn(method_override));
    let normal = send(&app, get("/")).await;
    assert!(normal.outcome.stored());

    let delete = send(
        &app,
        get_with("/", &[("x-http-method-override", b"DELETE")]),
    )
    .await;
    assert!(delete.body.starts_with("DELETE /"));
    assert_eq!(delete.not_stored_because(), Some(Bypass::Method));

    let after = send(&app, get("/")).await;
    assert!(after.is_hit() && after.body.starts_with("GET /"));
    assert_eq!(origin.calls(), 2);
}
