//! Web cache deception: the attacker lures a signed-in victim to
//! `/account.css` (or `/account/x.css`), which the app answers with the
//! victim's account page, hoping the cache stores it because the path
//! looks static, then fetches the same URL. The layers have no rules by
//! file extension: only the response decides, and a page marked
//! `private`, one that sets a cookie, or one that varies on `Cookie` never
//! reaches another client.

use tower_cache::http::policy::{Bypass, SetCookiePolicy};

use crate::app::{Mount, Origin, configured_apps, get, get_with, headers, send};

const STATIC_LOOKING: [&str; 4] = [
    "/account.css",
    "/account/x.css",
    "/account;x.css",
    "/account/%2e%2e/x.css",
];

/// The victim's request: signed in.
fn victim(target: &str) -> http::Request<axum::body::Body> {
    get_with(target, &[("cookie", b"sessionid=victim")])
}

/// Plays the attack on `origin` behind `mount`: the victim's page must
/// not be stored for `expected`, and the attacker must get a page of
/// their own.
async fn deceive(origin: &Origin, app: &axum::Router, expected: Bypass) {
    for target in STATIC_LOOKING {
        let calls = origin.calls();
        let lured = send(app, victim(target)).await;
        assert!(lured.body.contains("sessionid=victim"), "{target}");
        assert_eq!(lured.not_stored_because(), Some(expected), "{target}");

        let attacker = send(app, get(target)).await;
        assert!(!attacker.body.contains("victim"), "{target}: leaked");
        assert_eq!(origin.calls(), calls + 2, "{target}");
    }
}

/// Attack: the account page says `Cache-Control: private`.
#[tokio::test]
async fn cache_deception_of_a_private_page_at_a_static_looking_path() {
    for mount in Mount::ALL {
        let origin = Origin::new(|parts| {
            let private: &[u8] = if parts.headers.contains_key("cookie") {
                b"private"
            } else {
                b"public, max-age=60"
            };
            headers(&[("cache-control", private)])
        });
        deceive(&origin, &origin.app(mount), Bypass::CacheControl("private")).await;
    }
}

/// Attack: the account page refreshes the session cookie (and says nothing
/// else); a response that sets a cookie is never stored by default.
#[tokio::test]
async fn cache_deception_of_a_page_that_sets_a_cookie() {
    for mount in Mount::ALL {
        let origin = Origin::new(|parts| {
            if parts.headers.contains_key("cookie") {
                headers(&[("set-cookie", b"sessionid=victim; HttpOnly")])
            } else {
                headers(&[])
            }
        });
        deceive(&origin, &origin.app(mount), Bypass::SetCookie).await;
    }
}

/// Attack: the account page varies on `Cookie` and sets one, under
/// Django's cookie rule (which stores cookie-setting pages unless they
/// vary on `Cookie`).
#[tokio::test]
async fn cache_deception_under_djangos_cookie_rule() {
    let origin = Origin::with(&[("set-cookie", b"csrftoken=victim"), ("vary", b"Cookie")]);
    for app in configured_apps!(origin, |layer| layer.set_cookie(SetCookiePolicy::Django)) {
        deceive(&origin, &app, Bypass::SetCookieVaryCookie).await;
    }
}

/// Attack: the account page varies on `Cookie` (and is otherwise
/// cacheable): it is stored, but per cookie, so the attacker without the
/// victim's cookie never gets it, and the victim gets theirs back.
#[tokio::test]
async fn cache_deception_of_a_page_that_varies_on_cookie() {
    for mount in Mount::ALL {
        let origin = Origin::with(&[("vary", b"Cookie")]);
        let app = origin.app(mount);
        for target in STATIC_LOOKING {
            let lured = send(&app, victim(target)).await;
            assert!(lured.outcome.stored(), "{mount:?} {target}");
            let attacker = send(&app, get(target)).await;
            assert!(!attacker.is_hit(), "{mount:?} {target}");
            assert!(!attacker.body.contains("victim"), "{mount:?} {target}");
            let other = send(&app, get_with(target, &[("cookie", b"sessionid=attacker")])).await;
            assert!(!other.body.contains("victim"), "{mount:?} {target}");
            assert!(send(&app, victim(target)).await.is_hit());
        }
        assert_eq!(origin.calls(), 3 * STATIC_LOOKING.len());
    }
}
