//! Hostile bytes in the headers the layers read: invalid UTF-8, obs-text
//! (0x80-0xFF) and the one control byte a header value may carry (HTAB;
//! `http` refuses the others, as hyper does on the wire). No value panics;
//! a value the rules cannot read fails closed (not stored); and no
//! value lets one client's page reach another.

use tower_cache::http::key::RequestScheme;
use tower_cache::http::policy::Bypass;

use crate::app::{Lines, Mount, Origin, get, get_with, headers, page_layer, send, site};

/// Values no well-behaved peer sends.
const HOSTILE: [&[u8]; 8] = [
    b"\xff",
    b"\xc3\x28",
    b"caf\xe9",
    b"\xc2\xa0private",
    b"a\tb",
    b"\t",
    b"\x80\x81\x82, \xfe",
    b"gzip;q=\xff, max-age=\xff",
];

/// Request headers the layers (or the rules) read.
const REQUEST_HEADERS: [&str; 9] = [
    "authorization",
    "accept-encoding",
    "accept-language",
    "cookie",
    "if-none-match",
    "if-modified-since",
    "x-forwarded-proto",
    "content-length",
    "transfer-encoding",
];

/// Response headers the layers read or rewrite.
const RESPONSE_HEADERS: [&str; 9] = [
    "cache-control",
    "cache-tag",
    "vary",
    "expires",
    "set-cookie",
    "age",
    "content-length",
    "content-encoding",
    "last-modified",
];

/// Attack: every hostile value in every header the layers read, in the
/// request and in the response (which varies on the request header, so
/// the value reaches the key too). Nothing panics, every answer is the
/// origin's 200, and a hit is byte for byte the page that was stored.
#[tokio::test]
async fn hostile_bytes_in_every_header_the_layers_read_never_panic() {
    for mount in Mount::ALL {
        for value in HOSTILE {
            for name in REQUEST_HEADERS {
                let vary = format!("{name}, Accept-Encoding");
                let origin = Origin::with(&[("vary", vary.as_bytes())]);
                let app = origin.app(mount);
                let first = send(&app, get_with("/", &[(name, value)])).await;
                let second = send(&app, get_with("/", &[(name, value)])).await;
                assert_eq!(first.status, 200, "{mount:?} {name}: {value:?}");
                if second.is_hit() {
                    assert_eq!(first.body, second.body, "{mount:?} {name}: {value:?}");
                }
            }
            for name in RESPONSE_HEADERS {
                let origin = Origin::with(&[(name, value)]);
                let app = origin.app(mount);
                let first = send(&app, get("/")).await;
                let second = send(&app, get("/")).await;
                assert_eq!(first.status, 200, "{mount:?} {name}");
                assert_eq!(first.body, second.body, "{mount:?} {name}");
            }
        }
    }
}

/// Attack (or an origin's slip): a `Cache-Control` the rules cannot read,
/// such as `private` behind a UTF-8 no-break space (`\xc2\xa0private`, a
/// copy-paste from a document), a directive name with a tab or obs-text in
/// it, or a `max-age` that is not a number. RFC 9111 section 4.2.1 asks
/// caches to treat invalid freshness information as stale: not stored.
/// Obs-text inside a quoted value is legal, and changes nothing.
#[tokio::test]
async fn a_cache_control_that_cannot_be_read_is_never_stored() {
    let cases: [(&'static [u8], Option<Bypass>); 8] = [
        (
            b"\xc2\xa0private",
            Some(Bypass::Unreadable("Cache-Control")),
        ),
        (b"pri\tvate", Some(Bypass::Unreadable("Cache-Control"))),
        (b"public, \xff", Some(Bypass::Unreadable("Cache-Control"))),
        (b"max-age=6\xb90", Some(Bypass::Unreadable("Cache-Control"))),
        (b"max-age=abc", Some(Bypass::Unreadable("Cache-Control"))),
        (b"s-maxage=", Some(Bypass::Unreadable("Cache-Control"))),
        (
            b"private, x-note=\"caf\xe9\"",
            Some(Bypass::CacheControl("private")),
        ),
        (b"public, x-note=\"caf\xe9\", max-age=60", None),
    ];
    for mount in Mount::ALL {
        for (value, refused) in cases {
            let cache_control = headers(&[("cache-control", value)]);
            let origin = Origin::new(move |parts| {
                // Only the victim's page says it.
                if parts.headers.contains_key("cookie") {
                    cache_control.clone()
                } else {
                    headers(&[])
                }
            });
            let app = origin.app(mount);
            let lured = send(&app, get_with("/", &[("cookie", b"sessionid=victim")])).await;
            assert_eq!(lured.not_stored_because(), refused, "{mount:?} {value:?}");
            if refused.is_some() {
                let attacker = send(&app, get("/")).await;
                assert!(!attacker.body.contains("victim"), "{mount:?} {value:?}");
            }
        }
    }
}

/// Attack (or slip): a `Vary` the rules cannot read. `\xc2\xa0Cookie` is
/// no header name, so it used to vary on nothing: one user's page went to
/// every other. A token that is not a header name (obs-text, a tab, a
/// quote) now fails closed; a `*` beside obs-text is still a `*`.
#[tokio::test]
async fn a_vary_that_cannot_be_read_is_never_stored() {
    let cases: [(&'static [u8], Bypass); 5] = [
        (b"\xc2\xa0Cookie", Bypass::Unreadable("Vary")),
        (b"Cookie, X-Caf\xe9", Bypass::Unreadable("Vary")),
        (b"Coo\tkie", Bypass::Unreadable("Vary")),
        (b"X-\"quoted\"", Bypass::Unreadable("Vary")),
        (b"X-\xff, *", Bypass::VaryStar),
    ];
    for mount in Mount::ALL {
        for (value, refused) in cases {
            let origin = Origin::with(&[("vary", value)]);
            let app = origin.app(mount);
            let lured = send(&app, get_with("/", &[("cookie", b"sessionid=victim")])).await;
            assert_eq!(
                lured.not_stored_because(),
                Some(refused),
                "{mount:?} {value:?}"
            );
            let attacker = send(&app, get("/")).await;
            assert!(!attacker.body.contains("victim"), "{mount:?} {value:?}");
        }
    }
}

/// Attack (issue 12, bug 1): `private` beside a quoted value with obs-text
/// (`private, ext="\xe9"`). Read as a string, the whole value was
/// unreadable: `private` was missed, the page was stored for everyone, and
/// the layers rewrote the header to `max-age=300`, so browsers lost
/// `private` too. The page is neither stored nor rewritten: the client gets
/// the origin's `Cache-Control` byte for byte.
#[tokio::test]
async fn a_private_beside_obs_text_is_never_stored_nor_rewritten() {
    const SENT: &[u8] = b"private, ext=\"\xe9\"";
    for mount in Mount::ALL {
        let origin = Origin::new(|parts| {
            if parts.headers.contains_key("cookie") {
                headers(&[("cache-control", SENT)])
            } else {
                headers(&[])
            }
        });
        let app = origin.app(mount);
        let victim = send(&app, get_with("/", &[("cookie", b"sessionid=victim")])).await;
        let kept: Vec<&[u8]> = victim
            .headers
            .get_all("cache-control")
            .iter()
            .map(|value| value.as_bytes())
            .collect();
        assert_eq!(kept, [SENT], "{mount:?}");
        assert_eq!(
            victim.not_stored_because(),
            Some(Bypass::CacheControl("private")),
            "{mount:?}"
        );
        let attacker = send(&app, get("/")).await;
        assert!(!attacker.body.contains("victim"), "{mount:?}");
    }
}

/// Attack: a `Set-Cookie` with obs-text is still a cookie: never stored.
#[tokio::test]
async fn a_set_cookie_with_obs_text_is_never_stored() {
    for mount in Mount::ALL {
        let origin = Origin::with(&[("set-cookie", b"sessionid=caf\xe9")]);
        let reply = send(&origin.app(mount), get("/")).await;
        assert_eq!(reply.not_stored_because(), Some(Bypass::SetCookie));
    }
}

/// Attack: an `Authorization` of obs-text, to be served the shared page or
/// to have a credentialed page stored. It is a credential like any other:
/// not answered from a page that is not `public`, and not stored.
#[tokio::test]
async fn an_obs_text_authorization_is_neither_served_a_shared_page_nor_stored() {
    for mount in Mount::ALL {
        let origin = Origin::with(&[]);
        let app = origin.app(mount);
        send(&app, get("/")).await;
        for credential in [&b"Bearer \xff\xfe"[..], b"\xa0", b"\tx"] {
            let signed_in = send(&app, get_with("/", &[("authorization", credential)])).await;
            assert!(!signed_in.is_hit(), "{mount:?} {credential:?}");
            assert_eq!(signed_in.not_stored_because(), Some(Bypass::Authorization));
        }
        let anonymous = send(&app, get("/")).await;
        assert!(anonymous.is_hit() && !anonymous.body.contains("authorization"));
    }
}

/// Attack: cookies that differ only in obs-text bytes, against a page that
/// varies on `Cookie`: each is its own entry.
#[tokio::test]
async fn cookies_that_differ_only_in_obs_text_get_their_own_pages() {
    let cookies: [&[u8]; 3] = [b"s=\xe9", b"s=\xe8", b"s=\xc3\xa9"];
    for mount in Mount::ALL {
        let origin = Origin::with(&[("vary", b"Cookie")]);
        let app = origin.app(mount);
        for cookie in cookies {
            let reply = send(&app, get_with("/", &[("cookie", cookie)])).await;
            assert!(!reply.is_hit(), "{mount:?} {cookie:?}");
        }
        // Each cookie gets the page made for it (its origin call).
        for (call, cookie) in (1..).zip(cookies) {
            let reply = send(&app, get_with("/", &[("cookie", cookie)])).await;
            assert!(reply.is_hit(), "{mount:?} {cookie:?}");
            assert_eq!(
                reply.headers["x-origin-call"],
                call.to_string(),
                "{mount:?}"
            );
        }
    }
}

/// Attack: an unreadable `Accept-Encoding`, to be served a compressed page
/// the client did not ask for (garbage to it) or to poison the
/// uncompressed entry. The origin compresses only for `gzip`.
#[tokio::test]
async fn an_unreadable_accept_encoding_is_never_served_a_coding_it_did_not_accept() {
    for mount in Mount::ALL {
        let origin = Origin::new(|parts| {
            let gzip = parts
                .headers
                .get("accept-encoding")
                .is_some_and(|v| v.as_bytes() == b"gzip");
            let coding: Lines<'_> = if gzip {
                &[("vary", b"Accept-Encoding"), ("content-encoding", b"gzip")]
            } else {
                &[("vary", b"Accept-Encoding")]
            };
            headers(coding)
        });
        let app = origin.app(mount);
        assert!(
            send(&app, get_with("/", &[("accept-encoding", b"gzip")]))
                .await
                .outcome
                .stored()
        );
        for unreadable in [&b"\xff\xfe"[..], b"gzip;q=\xff", b"gz\xefip", b"gzip\t;q=0"] {
            let reply = send(&app, get_with("/", &[("accept-encoding", unreadable)])).await;
            assert!(
                !reply.headers.contains_key("content-encoding"),
                "{mount:?} {unreadable:?} got gzip"
            );
        }
        let gzip = send(&app, get_with("/", &[("accept-encoding", b"gzip")])).await;
        assert!(gzip.is_hit(), "{mount:?}");
        assert_eq!(gzip.headers["content-encoding"], "gzip");
    }
}

/// The layers do not read `If-None-Match` or `If-Modified-Since` (Django's
/// cache middleware does not): hostile ones get the whole cached page, and
/// never turn a hit into an empty answer.
#[tokio::test]
async fn conditional_headers_of_obs_text_get_the_whole_page() {
    for mount in Mount::ALL {
        let origin = Origin::with(&[]);
        let app = origin.app(mount);
        let stored = send(&app, get("/")).await;
        for (name, value) in [
            ("if-none-match", &b"\"\xff\", *"[..]),
            ("if-modified-since", b"\xc3\x28"),
        ] {
            let reply = send(&app, get_with("/", &[(name, value)])).await;
            assert!(reply.is_hit(), "{mount:?} {name}");
            assert_eq!((reply.status, &reply.body), (stored.status, &stored.body));
        }
    }
}

/// Attack: behind a proxy whose `X-Forwarded-Proto` is trusted, a value
/// that is not `https` (obs-text, a tab, garbage) is keyed as `http`, as
/// Django reads `SECURE_PROXY_SSL_HEADER`: never under the `https` key.
#[tokio::test]
async fn an_unreadable_trusted_forwarded_proto_is_never_keyed_as_https() {
    let trusted = RequestScheme::trusted_header("x-forwarded-proto", "https").unwrap();
    let origin = Origin::with(&[]);
    let app = origin.site_app(site().scheme(trusted));
    let https = || get_with("/", &[("x-forwarded-proto", b"https")]);
    assert!(send(&app, https()).await.outcome.stored());
    for garbage in [&b"http\xff"[..], b"\xff", b"ht\ttps", b"\xc2\xa0https"] {
        let reply = send(&app, get_with("/", &[("x-forwarded-proto", garbage)])).await;
        assert!(
            !reply.body.contains("x-forwarded-proto: https\n"),
            "{garbage:?}"
        );
    }
    // Every garbage value went to the one `http` entry.
    assert_eq!(origin.calls(), 2);
    assert!(send(&app, get("/")).await.is_hit());
    let https = send(&app, https()).await;
    assert!(https.is_hit() && https.body.contains("x-forwarded-proto: https\n"));
}

/// Attack (a hostile upstream): an `Age` that is not a number, negative,
/// or past `u64::MAX`. A hit's `Age` is still the time the page spent
/// here: 0 just after storing.
#[tokio::test]
async fn an_unreadable_or_huge_age_from_the_origin_gives_a_true_age() {
    let ages: [&'static [u8]; 5] = [
        b"\xff",
        b"-1",
        b"18446744073709551615",
        b"99999999999999999999999",
        b"1\t2",
    ];
    for mount in Mount::ALL {
        for age in ages {
            let origin = Origin::with(&[("age", age)]);
            let app = origin.app(mount);
            send(&app, get("/")).await;
            let hit = send(&app, get("/")).await;
            assert!(hit.is_hit(), "{mount:?} {age:?}");
            assert_eq!(hit.headers["age"], "0", "{mount:?} {age:?}");
        }
    }
}

/// Attack (a hostile upstream): a `Content-Length` that does not match the
/// body. The cache keeps the body, not the header: a hit (GET or HEAD)
/// says the stored body's true length, never the forged one.
#[tokio::test]
async fn a_forged_content_length_from_the_origin_is_not_kept() {
    for forged in [&b"999"[..], b"\xff", b"1"] {
        let origin = Origin::with(&[("content-length", forged)]);
        let app = origin.page_app(page_layer());
        let stored = send(&app, get("/")).await;
        let length = stored.body.len().to_string();
        let head = crate::app::request(http::Method::HEAD, "/", &[], axum::body::Body::empty());
        for hit in [send(&app, get("/")).await, send(&app, head).await] {
            assert!(hit.is_hit(), "{forged:?}");
            assert_eq!(hit.headers["content-length"], length, "{forged:?}");
        }
    }
}
