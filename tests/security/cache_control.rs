//! Duplicate and conflicting `Cache-Control`: two header lines, or one
//! directive twice. The most restrictive reading wins (RFC 9111 section
//! 4.2.1): a `private`, `no-cache` or `no-store` on any line, and the
//! smallest of several `max-age` (or `s-maxage`) values. Django reads the
//! last `max-age`, so `max-age=0, max-age=60` was stored for a minute.

use std::time::Duration;

use tower_cache::http::policy::Bypass;
use tower_cache::middleware::Store;

use crate::app::{Lines, Mount, Origin, get, send};

/// Attack (or a framework and a proxy that each add a line): a second
/// `Cache-Control` line that forbids what the first allows.
#[tokio::test]
async fn a_second_cache_control_line_that_forbids_storing_wins() {
    let cases: [(Lines<'_>, &str); 4] = [
        (
            &[
                ("cache-control", b"public, max-age=60"),
                ("cache-control", b"private"),
            ],
            "private",
        ),
        (
            &[
                ("cache-control", b"max-age=60"),
                ("cache-control", b"no-store"),
            ],
            "no-store",
        ),
        (
            &[
                ("cache-control", b"max-age=60"),
                ("cache-control", b"no-cache"),
            ],
            "no-cache",
        ),
        (
            &[("cache-control", b"public, private, max-age=60")],
            "private",
        ),
    ];
    for mount in Mount::ALL {
        for (lines, directive) in cases {
            let origin = Origin::with(lines);
            let app = origin.app(mount);
            let reply = send(&app, get("/")).await;
            assert_eq!(
                reply.not_stored_because(),
                Some(Bypass::CacheControl(directive)),
                "{mount:?} {lines:?}"
            );
            assert!(!send(&app, get("/")).await.is_hit());
        }
    }
}

/// Attack: `max-age` twice, the permissive value last (or on a second
/// line, or the other way round): the smallest wins, so a zero anywhere
/// means not stored.
#[tokio::test]
async fn the_smallest_of_several_max_ages_wins() {
    let zero: [Lines<'_>; 5] = [
        &[("cache-control", b"max-age=60, max-age=0")],
        &[("cache-control", b"max-age=0, max-age=60")],
        &[
            ("cache-control", b"max-age=0"),
            ("cache-control", b"max-age=60"),
        ],
        &[
            ("cache-control", b"max-age=60"),
            ("cache-control", b"max-age=0"),
        ],
        &[("cache-control", b"max-age=60, max-age=-1")],
    ];
    for mount in Mount::ALL {
        for lines in zero {
            let reply = send(&Origin::with(lines).app(mount), get("/")).await;
            assert_eq!(
                reply.not_stored_because(),
                Some(Bypass::ZeroMaxAge),
                "{mount:?} {lines:?}"
            );
        }
    }
    // Site-wide, where max-age is the lifetime: the smaller one.
    for lines in [
        &[("cache-control", &b"max-age=30, max-age=600"[..])][..],
        &[
            ("cache-control", b"max-age=600"),
            ("cache-control", b"max-age=30"),
        ],
    ] {
        let reply = send(&Origin::with(lines).app(Mount::SiteWide), get("/")).await;
        assert_eq!(
            reply.outcome.store,
            Some(Store::Stored(Duration::from_secs(30))),
            "{lines:?}"
        );
        assert_eq!(reply.headers["cache-control"], "max-age=30");
    }
}

/// Attack: `s-maxage` twice, `0` first: a shared cache must not reuse the
/// page, whatever the second says.
#[tokio::test]
async fn the_smallest_of_several_s_maxages_wins() {
    for mount in Mount::ALL {
        for lines in [
            &[("cache-control", &b"max-age=60, s-maxage=0, s-maxage=60"[..])][..],
            &[
                ("cache-control", b"s-maxage=60"),
                ("cache-control", b"s-maxage=0"),
            ],
        ] {
            let reply = send(&Origin::with(lines).app(mount), get("/")).await;
            assert_eq!(
                reply.not_stored_because(),
                Some(Bypass::ZeroSharedMaxAge),
                "{mount:?} {lines:?}"
            );
        }
    }
}

/// Attack (or slip): a negative `max-age`, more restrictive than 0, which
/// `cache_page`'s own lifetime used to win over (it was kept 300 s).
#[tokio::test]
async fn a_negative_max_age_is_never_stored() {
    for mount in Mount::ALL {
        let origin = Origin::with(&[("cache-control", b"max-age=-5")]);
        let app = origin.app(mount);
        let reply = send(&app, get("/")).await;
        assert_eq!(
            reply.not_stored_because(),
            Some(Bypass::ZeroMaxAge),
            "{mount:?}"
        );
        assert!(!send(&app, get("/")).await.is_hit(), "{mount:?}");
    }
}
