//! Over-long and malformed `Host` values. The host is part of every key,
//! so a made-up or ambiguous one must never put its page under a real
//! site's key: a `Host` that is not a valid host (Django's
//! `host_validation_re`) is not cached at all, a valid one is keyed
//! apart (an md5 of the URL, whatever its length), and `allowed_hosts`
//! keeps every host it does not name out of the cache.

use axum::body::Body;
use http::Method;
use tower_cache::http::key::AllowedHosts;
use tower_cache::http::policy::Bypass;

use crate::app::{HOST, Mount, Origin, configured_apps, get, get_with, request, send};

/// `Host` values that name no host, or more than one.
const MALFORMED: [&[u8]; 14] = [
    b"evil.example:80@shop.example",
    b"shop.example:80@evil.example",
    b"shop.example\t",
    b"shop.example%00",
    b"",
    b"shop.example/evil",
    b"shop.example evil.example",
    b"sh\xefp.example",
    b"shop.example:",
    b"shop.example:80x",
    b"[::1",
    b"[::1]x",
    b"[evil.example]",
    b"shop.example#evil.example",
];

/// A request for `/` with this `Host`.
fn with_host(host: &[u8]) -> http::Request<Body> {
    get_with("/", &[("host", host)])
}

/// Attack: each malformed `Host`, twice, then the real site. None is
/// stored (the origin runs every time), and the real site's page is its
/// own.
#[tokio::test]
async fn malformed_hosts_are_never_cached() {
    for mount in Mount::ALL {
        let origin = Origin::with(&[]);
        let app = origin.app(mount);
        for host in MALFORMED {
            for _ in 0..2 {
                let reply = send(&app, with_host(host)).await;
                assert_eq!(reply.not_stored_because(), Some(Bypass::NoHost), "{host:?}");
            }
        }
        assert_eq!(origin.calls(), 2 * MALFORMED.len(), "{mount:?}");
        let real = send(&app, get("/")).await;
        assert!(!real.is_hit() && !real.body.contains("evil"), "{mount:?}");
        assert!(send(&app, get("/")).await.is_hit());
    }
}

/// Attack: a request with no `Host` at all (nor an authority in the
/// target) has no key.
#[tokio::test]
async fn a_request_without_a_host_is_never_cached() {
    for mount in Mount::ALL {
        let origin = Origin::with(&[]);
        let app = origin.app(mount);
        let mut hostless = get("/");
        hostless.headers_mut().remove(http::header::HOST);
        let reply = send(&app, hostless).await;
        assert_eq!(
            reply.not_stored_because(),
            Some(Bypass::NoHost),
            "{mount:?}"
        );
    }
}

/// Attack: a 64 KiB `Host` (valid characters). No panic, and its page is
/// keyed apart from the real site's; with `allowed_hosts` it is not
/// cached at all.
#[tokio::test]
async fn an_over_long_host_is_keyed_apart_or_refused() {
    let long = format!("{}.{HOST}", "a".repeat(64 * 1024));
    for mount in Mount::ALL {
        let origin = Origin::with(&[]);
        let app = origin.app(mount);
        assert!(
            send(&app, with_host(long.as_bytes()))
                .await
                .outcome
                .stored()
        );
        let real = send(&app, get("/")).await;
        assert!(
            !real.is_hit(),
            "{mount:?}: the real site got the long host's page"
        );
        assert!(send(&app, with_host(long.as_bytes())).await.is_hit());
    }
    let origin = Origin::with(&[]);
    for app in configured_apps!(origin, |layer| layer
        .allowed_hosts(AllowedHosts::new([HOST])))
    {
        let reply = send(&app, with_host(long.as_bytes())).await;
        assert_eq!(reply.not_stored_because(), Some(Bypass::HostNotAllowed));
    }
}

/// IPv6 literals are hosts: cached, each spelling (port, no port) apart.
#[tokio::test]
async fn ipv6_hosts_are_keyed_with_their_brackets_and_ports() {
    for mount in Mount::ALL {
        let origin = Origin::with(&[]);
        let app = origin.app(mount);
        for host in [&b"[::1]"[..], b"[::1]:8080", b"[2001:db8::1]:80"] {
            assert!(
                send(&app, with_host(host)).await.outcome.stored(),
                "{host:?}"
            );
        }
        for host in [&b"[::1]"[..], b"[::1]:8080", b"[2001:db8::1]:80"] {
            assert!(send(&app, with_host(host)).await.is_hit(), "{host:?}");
        }
        assert_eq!(origin.calls(), 3);
    }
}

/// Attack: hosts that look like an allowed one, to get into a cache that
/// `allowed_hosts` guards. Only the names it lists (any case, any port, a
/// trailing dot, and subdomains of a `.domain` pattern) are cached.
#[tokio::test]
async fn allowed_hosts_are_not_fooled_by_lookalikes() {
    let allowed = || AllowedHosts::new([HOST, ".cdn.example"]);
    let refused: [&[u8]; 10] = [
        b"shop.example.evil.example",
        b"evilshop.example",
        b"evil-shop.example",
        b"shop.example@evil.example",
        b"evil.example#shop.example",
        b"evilcdn.example",
        b"cdn.example.evil",
        b"[shop.example]",
        b"shop.example:80@evil.example",
        b"xn--shop.example",
    ];
    let cached: [&[u8]; 5] = [
        b"SHOP.example",
        b"shop.example:8443",
        b"shop.example.",
        b"cdn.example",
        b"img.cdn.example:8080",
    ];
    let origin = Origin::with(&[]);
    for app in configured_apps!(origin, |layer| layer.allowed_hosts(allowed())) {
        for host in refused {
            let reply = send(&app, with_host(host)).await;
            assert_eq!(
                reply.not_stored_because(),
                Some(Bypass::HostNotAllowed),
                "{host:?}"
            );
        }
        for host in cached {
            assert!(
                send(&app, with_host(host)).await.outcome.stored(),
                "{host:?}"
            );
            assert!(send(&app, with_host(host)).await.is_hit(), "{host:?}");
        }
    }
}

/// Attack: an absolute-form target naming a malformed authority, with the
/// real `Host` (the request line wins in RFC 9112, and the two disagree):
/// not cached.
#[tokio::test]
async fn an_absolute_target_with_another_authority_is_never_cached() {
    for mount in Mount::ALL {
        let origin = Origin::with(&[]);
        let app = origin.app(mount);
        for target in [
            "http://evil.example/",
            "http://shop.example:80@evil.example/",
            "http://shop.example.evil.example/",
        ] {
            let reply = send(&app, request(Method::GET, target, &[], Body::empty())).await;
            assert_eq!(reply.not_stored_because(), Some(Bypass::NoHost), "{target}");
        }
        let real = send(&app, get("/")).await;
        assert!(!real.is_hit() && !real.body.contains("evil"), "{mount:?}");
    }
}
