//! The `Cache-Status` response header (RFC 9211): each layer that handled a
//! request appends one member, read from the request's [`Outcome`], so the
//! header, the logs and the extensions never disagree.
//!
//! | Outcome | Member |
//! |---|---|
//! | hit | `tower-cache; hit; ttl=240` |
//! | stale, refreshing | `tower-cache; hit; ttl=-15; detail=stale-while-revalidate` |
//! | stale, the inner service failed | `tower-cache; fwd=stale; fwd-status=503; ttl=-15; detail=stale-if-error` |
//! | coalesced | `tower-cache; fwd=uri-miss; fwd-status=200; collapsed; ttl=300` |
//! | miss, stored | `tower-cache; fwd=uri-miss; fwd-status=200; stored; ttl=300` |
//! | miss, not stored | `tower-cache; fwd=vary-miss; fwd-status=200; detail=private` |
//! | revalidated with a 304 (RFC 9111 policy) | `tower-cache; fwd=stale; fwd-status=304; stored; ttl=100` |
//! | bypass | `tower-cache; fwd=method; fwd-status=200`, `tower-cache; fwd=bypass; fwd-status=200; detail=host-not-allowed` |
//!
//! `fwd` says why the request went to the inner service: `uri-miss` (nothing
//! stored for the URL), `vary-miss` (nothing for the request's values of the
//! headers the page varies on, or only a coding it does not accept), `stale`,
//! `miss` (the backend failed, or the entry was invalidated), `request` (the request's `Authorization`
//! keeps the entry from answering it, or, under RFC 9111, its `no-cache`,
//! `max-age` or `min-fresh`), `method`, `bypass`. `ttl` is the
//! remaining freshness of a response from the cache, or the lifetime of a
//! stored one.

use std::sync::{Arc, OnceLock};

use http::{HeaderName, HeaderValue, Response};

use super::decoded::put;
use super::outcome::{Answer, MissBecause, Outcome, StaleBecause, Store};
use crate::http::policy::Bypass;

/// The header's name.
const CACHE_STATUS: HeaderName = HeaderName::from_static("cache-status");

/// The name a layer gives itself in `Cache-Status` unless told otherwise.
pub(crate) const DEFAULT_NAME: &str = "tower-cache";

/// The longest name, quoted and escaped: with the longest parameters (107
/// bytes) a member fits [`MEMBER_CAPACITY`].
const LONGEST_NAME: usize = 128;

/// The room for a member on the stack.
const MEMBER_CAPACITY: usize = 256;

/// A cache's identifier in its `Cache-Status` members, serialized once: an
/// sf-token as it is, any other name as an sf-string (quoted, escaped);
/// with the hit members made for it.
#[derive(Debug, Clone)]
pub(crate) struct CacheStatusName {
    serialized: Arc<str>,
    hits: Arc<HitMembers>,
}

impl PartialEq for CacheStatusName {
    fn eq(&self, other: &CacheStatusName) -> bool {
        self.serialized == other.serialized
    }
}

impl Eq for CacheStatusName {}

/// How many `ttl`s a table's chunk holds.
const CHUNK: usize = 64;

/// The hit members of one name for `ttl` 0 to 4,095 seconds, each made by
/// the first hit that needs it and shared by the next: a hit's member then
/// costs a reference count, not its writing and an allocation (about 450
/// instructions of the demo's hit). Chunks of 64 are made as they are
/// needed (a 300-second page's hits need five, 13 KiB); longer `ttl`s are
/// written each time.
#[derive(Debug)]
struct HitMembers([OnceLock<Box<[OnceLock<HeaderValue>; CHUNK]>>; 64]);

impl HitMembers {
    fn new() -> HitMembers {
        HitMembers(std::array::from_fn(|_| OnceLock::new()))
    }

    /// The member of a plain hit (nothing but its `ttl`) with `ttl`.
    fn get(&self, ttl: i64, make: impl FnOnce() -> Option<HeaderValue>) -> Option<HeaderValue> {
        let Some((chunk, at)) = usize::try_from(ttl)
            .ok()
            .and_then(|ttl| Some((self.0.get(ttl / CHUNK)?, ttl % CHUNK)))
        else {
            return make();
        };
        let chunk = chunk.get_or_init(|| Box::new(std::array::from_fn(|_| OnceLock::new())));
        if let Some(made) = chunk[at].get() {
            return Some(made.clone());
        }
        let made = make()?;
        Some(chunk[at].get_or_init(|| made).clone())
    }
}

impl CacheStatusName {
    /// The identifier for `name`.
    ///
    /// # Panics
    ///
    /// When `name` is empty, has a character other than printable ASCII
    /// (which a structured-field string cannot hold), or is longer than 128
    /// bytes once quoted.
    pub(crate) fn new(name: &str) -> CacheStatusName {
        assert!(
            !name.is_empty() && name.bytes().all(|b| (0x20..0x7f).contains(&b)),
            "a Cache-Status name is printable ASCII (letters, digits, spaces, punctuation), not {name:?}"
        );
        let serialized = if is_token(name) {
            name.to_owned()
        } else {
            let mut quoted = String::with_capacity(name.len() + 2);
            quoted.push('"');
            for c in name.chars() {
                if c == '"' || c == '\\' {
                    quoted.push('\\');
                }
                quoted.push(c);
            }
            quoted.push('"');
            quoted
        };
        assert!(
            serialized.len() <= LONGEST_NAME,
            "a Cache-Status name is at most {LONGEST_NAME} bytes once quoted: shorten {name:?}"
        );
        CacheStatusName {
            serialized: serialized.into(),
            hits: Arc::new(HitMembers::new()),
        }
    }
}

/// An sf-token (RFC 8941 section 3.3.4): a letter or `*`, then tchars, `:`
/// or `/`.
fn is_token(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'*')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~:/".contains(&b))
}

/// Puts `outcome` in the response's extensions and, when the layer reports
/// `Cache-Status` (`name` is set), appends its member: after any member a
/// cache nearer the origin put there (RFC 9211: the one nearest the user
/// comes last).
///
/// Call it where the outcome is final, and after the headers to store were
/// copied: a stored page must not replay this request's member on its hits.
pub(crate) fn record<B>(
    response: &mut Response<B>,
    outcome: Outcome,
    name: Option<&CacheStatusName>,
) {
    if let Some(member) = name.and_then(|name| member(name, &outcome)) {
        response.headers_mut().append(CACHE_STATUS, member);
    }
    response.extensions_mut().insert(outcome);
}

/// [`record`], for a response whose only `Cache-Status` value is a stand-in
/// for this layer's member, at `place` in its headers' order: the member
/// takes its place.
pub(crate) fn replace_member<B>(
    response: &mut Response<B>,
    outcome: Outcome,
    name: Option<&CacheStatusName>,
    place: usize,
) {
    match name.and_then(|name| member(name, &outcome)) {
        Some(member) => put(response.headers_mut(), Some(place), CACHE_STATUS, member),
        None => {
            response.headers_mut().remove(CACHE_STATUS);
        }
    }
    response.extensions_mut().insert(outcome);
}

/// The member for `outcome`: a plain hit's from the name's table, any
/// other written on the stack, then copied into the header value, its one
/// allocation.
fn member(name: &CacheStatusName, outcome: &Outcome) -> Option<HeaderValue> {
    match outcome.ttl {
        Some(ttl) if *outcome == Outcome::hit(ttl) => {
            name.hits.get(ttl, || written_member(name, outcome))
        }
        _ => written_member(name, outcome),
    }
}

/// The member for `outcome`, written.
fn written_member(name: &CacheStatusName, outcome: &Outcome) -> Option<HeaderValue> {
    let mut member = Member {
        bytes: [0; MEMBER_CAPACITY],
        len: 0,
    };
    write_member(&mut member, name, outcome);
    HeaderValue::from_bytes(&member.bytes[..member.len]).ok()
}

/// A member being written. The name's bound and the parameters' make it
/// fit, so a push never runs out of room.
struct Member {
    bytes: [u8; MEMBER_CAPACITY],
    len: usize,
}

impl Member {
    fn push(&mut self, text: &str) {
        let end = self.len + text.len();
        self.bytes[self.len..end].copy_from_slice(text.as_bytes());
        self.len = end;
    }

    fn push_number(&mut self, number: impl itoa::Integer) {
        self.push(itoa::Buffer::new().format(number));
    }

    /// `; name=number`.
    fn param(&mut self, name: &str, number: impl itoa::Integer) {
        self.push("; ");
        self.push(name);
        self.push("=");
        self.push_number(number);
    }
}

fn write_member(out: &mut Member, name: &CacheStatusName, outcome: &Outcome) {
    out.push(&name.serialized);
    let forwarded = match outcome.answer {
        Answer::Hit | Answer::Stale(StaleBecause::Revalidating) => None,
        Answer::Stale(StaleBecause::OriginFailed) => Some("stale"),
        Answer::Coalesced => Some(outcome.missed.map_or("miss", fwd)),
        Answer::Miss(because) => Some(fwd(because)),
        Answer::Bypass(Bypass::Method) => Some("method"),
        Answer::Bypass(_) => Some("bypass"),
    };
    match forwarded {
        None => out.push("; hit"),
        Some(reason) => {
            out.push("; fwd=");
            out.push(reason);
            if let Some(status) = outcome.origin_status {
                out.param("fwd-status", status.as_u16());
            }
        }
    }
    if outcome.answer == Answer::Coalesced {
        out.push("; collapsed");
    }
    match (outcome.store, outcome.ttl) {
        (Some(Store::Stored(lifetime)), _) => {
            out.push("; stored");
            out.param("ttl", lifetime.as_secs());
        }
        (_, Some(ttl)) => out.param("ttl", ttl),
        _ => {}
    }
    let detail = match (outcome.answer, outcome.store) {
        (Answer::Stale(StaleBecause::Revalidating), _) => Detail::Word("stale-while-revalidate"),
        (Answer::Stale(StaleBecause::OriginFailed), _) => Detail::Word("stale-if-error"),
        (Answer::Bypass(Bypass::Method), _) => Detail::None,
        (Answer::Bypass(bypass), _) | (_, Some(Store::NotStored(bypass))) => slug(bypass),
        (_, Some(Store::Failed)) => Detail::Word("store-failed"),
        _ => Detail::None,
    };
    match detail {
        Detail::None => {}
        Detail::Word(word) => {
            out.push("; detail=");
            out.push(word);
        }
        Detail::Status(status) => {
            out.push("; detail=status-");
            out.push_number(status);
        }
    }
}

/// The `fwd` value of a miss (RFC 9211 section 2.2).
fn fwd(because: MissBecause) -> &'static str {
    match because {
        MissBecause::Url => "uri-miss",
        // Either way the URL is known but no stored response fits the request.
        MissBecause::Vary | MissBecause::Coding => "vary-miss",
        MissBecause::Stale => "stale",
        // The entry is there but unusable, for a reason RFC 9211 has no
        // word for.
        MissBecause::Backend | MissBecause::Invalidated => "miss",
        MissBecause::Authorization | MissBecause::Request => "request",
    }
}

/// A `detail` parameter: an sf-token.
enum Detail {
    None,
    Word(&'static str),
    /// `status-404`.
    Status(u16),
}

/// The short `detail` token of a reason not to cache.
fn slug(bypass: Bypass) -> Detail {
    Detail::Word(match bypass {
        Bypass::Status(status) => return Detail::Status(status.as_u16()),
        Bypass::Method => "method",
        Bypass::RequestBody => "request-body",
        Bypass::NoHost => "no-host",
        Bypass::HostNotAllowed => "host-not-allowed",
        Bypass::Authorization => "authorization",
        Bypass::TooLarge => "too-large",
        Bypass::SetCookie => "set-cookie",
        Bypass::SetCookieVaryCookie => "set-cookie-vary-cookie",
        // `private`, `no-cache`, `no-store`: tokens already.
        Bypass::CacheControl(directive) => directive,
        Bypass::VaryStar => "vary-star",
        Bypass::Unreadable("Vary") => "unreadable-vary",
        Bypass::Unreadable(_) => "unreadable-cache-control",
        Bypass::ZeroMaxAge => "zero-max-age",
        Bypass::ZeroSharedMaxAge => "zero-s-maxage",
        Bypass::NotFetched => "not-fetched",
        Bypass::Tags => "tags",
        Bypass::Stale => "stale",
        Bypass::RequestNoStore => "request-no-store",
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use http::StatusCode;

    use super::*;

    #[test]
    fn a_plain_hit_member_is_made_once_per_ttl_and_is_the_written_one() {
        let name = CacheStatusName::new("edge \"eu\"");
        for ttl in [0, 1, 63, 64, 300, 4095, 4096, 86_400, -1, i64::MAX] {
            let outcome = Outcome::hit(ttl);
            let first = member(&name, &outcome).unwrap();
            assert_eq!(first, written_member(&name, &outcome).unwrap(), "{ttl}");
            let second = member(&name, &outcome).unwrap();
            let shared = first.as_bytes().as_ptr() == second.as_bytes().as_ptr();
            assert_eq!(shared, (0..4096).contains(&ttl), "{ttl}");
        }
        // Anything beside the ttl: written, never the table's.
        let revalidating = Outcome {
            answer: Answer::Stale(StaleBecause::Revalidating),
            ..Outcome::hit(300)
        };
        assert!(
            member(&name, &revalidating)
                .unwrap()
                .to_str()
                .unwrap()
                .ends_with("detail=stale-while-revalidate")
        );
        // Another layer's name has a table of its own.
        let other = CacheStatusName::new("other");
        assert!(
            member(&other, &Outcome::hit(300))
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("other; hit")
        );
    }

    fn text(outcome: Outcome) -> String {
        let name = CacheStatusName::new(DEFAULT_NAME);
        member(&name, &outcome)
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned()
    }

    fn miss(because: MissBecause, store: Store) -> Outcome {
        Outcome {
            store: Some(store),
            origin_status: Some(StatusCode::OK),
            ..Outcome::answered(Answer::Miss(because))
        }
    }

    #[test]
    fn every_outcome_has_its_member() {
        let stored = Store::Stored(Duration::from_secs(300));
        // Served from the cache, this many seconds fresh, with this status
        // from the inner service.
        let served = |outcome: Outcome, ttl, status| Outcome {
            ttl: Some(ttl),
            origin_status: status,
            ..outcome
        };
        let answered = Outcome::answered;
        let (revalidating, failed) = (
            Answer::Stale(StaleBecause::Revalidating),
            Answer::Stale(StaleBecause::OriginFailed),
        );
        let cases = [
            (
                served(answered(Answer::Hit), 240, None),
                "tower-cache; hit; ttl=240",
            ),
            (
                served(answered(revalidating), -15, None),
                "tower-cache; hit; ttl=-15; detail=stale-while-revalidate",
            ),
            (
                served(answered(failed), -15, Some(StatusCode::SERVICE_UNAVAILABLE)),
                "tower-cache; fwd=stale; fwd-status=503; ttl=-15; detail=stale-if-error",
            ),
            (
                served(answered(failed), -15, None),
                "tower-cache; fwd=stale; ttl=-15; detail=stale-if-error",
            ),
            (
                served(
                    Outcome::coalesced(Answer::Miss(MissBecause::Url), StatusCode::OK),
                    300,
                    Some(StatusCode::OK),
                ),
                "tower-cache; fwd=uri-miss; fwd-status=200; collapsed; ttl=300",
            ),
            (
                miss(MissBecause::Url, stored),
                "tower-cache; fwd=uri-miss; fwd-status=200; stored; ttl=300",
            ),
            (
                miss(
                    MissBecause::Vary,
                    Store::NotStored(Bypass::CacheControl("private")),
                ),
                "tower-cache; fwd=vary-miss; fwd-status=200; detail=private",
            ),
            (
                miss(MissBecause::Coding, stored),
                "tower-cache; fwd=vary-miss; fwd-status=200; stored; ttl=300",
            ),
            (
                miss(MissBecause::Stale, stored),
                "tower-cache; fwd=stale; fwd-status=200; stored; ttl=300",
            ),
            (
                miss(MissBecause::Backend, Store::Failed),
                "tower-cache; fwd=miss; fwd-status=200; detail=store-failed",
            ),
            (
                miss(
                    MissBecause::Authorization,
                    Store::NotStored(Bypass::Status(StatusCode::NOT_FOUND)),
                ),
                "tower-cache; fwd=request; fwd-status=200; detail=status-404",
            ),
            (
                Outcome {
                    origin_status: Some(StatusCode::CREATED),
                    ..Outcome::answered(Answer::Bypass(Bypass::Method))
                },
                "tower-cache; fwd=method; fwd-status=201",
            ),
            (
                Outcome::answered(Answer::Bypass(Bypass::HostNotAllowed)),
                "tower-cache; fwd=bypass; detail=host-not-allowed",
            ),
        ];
        for (outcome, expected) in cases {
            assert_eq!(text(outcome), expected);
        }
    }

    #[test]
    fn every_detail_is_an_sf_token() {
        let bypasses = [
            Bypass::Method,
            Bypass::NoHost,
            Bypass::HostNotAllowed,
            Bypass::Authorization,
            Bypass::Status(StatusCode::NOT_FOUND),
            Bypass::TooLarge,
            Bypass::SetCookie,
            Bypass::SetCookieVaryCookie,
            Bypass::CacheControl("private"),
            Bypass::CacheControl("no-cache"),
            Bypass::CacheControl("no-store"),
            Bypass::VaryStar,
            Bypass::ZeroMaxAge,
            Bypass::ZeroSharedMaxAge,
            Bypass::NotFetched,
            Bypass::RequestBody,
            Bypass::Unreadable("Vary"),
            Bypass::Unreadable("Cache-Control"),
            Bypass::Tags,
        ];
        for bypass in bypasses {
            let token = match slug(bypass) {
                Detail::Word(word) => word.to_owned(),
                Detail::Status(status) => format!("status-{status}"),
                Detail::None => panic!("{bypass:?} has a slug"),
            };
            assert!(is_token(&token), "{token}");
        }
    }

    #[test]
    fn names_are_tokens_or_quoted_strings() {
        assert_eq!(
            &*CacheStatusName::new("edge-1.example.com").serialized,
            "edge-1.example.com"
        );
        assert_eq!(
            &*CacheStatusName::new("Example CDN").serialized,
            "\"Example CDN\""
        );
        assert_eq!(
            &*CacheStatusName::new("a\"b\\c").serialized,
            "\"a\\\"b\\\\c\""
        );
        assert_eq!(&*CacheStatusName::new("1cache").serialized, "\"1cache\"");
        let outcome = Outcome {
            ttl: Some(1),
            ..Outcome::answered(Answer::Hit)
        };
        let quoted = member(&CacheStatusName::new("My Cache"), &outcome).unwrap();
        assert_eq!(quoted, "\"My Cache\"; hit; ttl=1");
    }

    #[test]
    #[should_panic(expected = "printable ASCII")]
    fn a_name_outside_printable_ascii_panics() {
        let _ = CacheStatusName::new("caché");
    }

    /// The longest name with the longest parameters fits the stack buffer.
    #[test]
    fn the_longest_member_fits() {
        let name = CacheStatusName::new(&"\"".repeat(63));
        assert_eq!(name.serialized.len(), LONGEST_NAME);
        let outcome = Outcome {
            store: Some(Store::Stored(Duration::MAX)),
            ttl: Some(i64::MIN),
            missed: Some(MissBecause::Vary),
            origin_status: Some(StatusCode::NOT_FOUND),
            ..Outcome::answered(Answer::Coalesced)
        };
        let longest = member(&name, &outcome).unwrap();
        assert!(longest.len() <= MEMBER_CAPACITY);
        let detail = Outcome {
            store: Some(Store::NotStored(Bypass::SetCookieVaryCookie)),
            ..outcome
        };
        assert!(member(&name, &detail).unwrap().len() > LONGEST_NAME);
    }

    #[test]
    #[should_panic(expected = "at most 128 bytes")]
    fn a_name_too_long_panics() {
        let _ = CacheStatusName::new(&"a b".repeat(50));
    }
}
