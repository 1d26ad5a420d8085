//! [`Outcome`]: what a cache layer did with one request, the one value that
//! tracing (and `Cache-Status` and metrics) read, so they never disagree.

use std::fmt;
use std::time::Duration;

use http::StatusCode;

use crate::http::policy::Bypass;

/// What a cache layer did with a request: how it was answered, and what
/// became of the response.
///
/// Every response that went through [`cache_page`](super::cache_page) or
/// the site-wide layers carries one in its extensions:
///
/// ```
/// # use std::time::Duration;
/// # use axum::{Router, body::Body, routing::get};
/// # use tower::ServiceExt;
/// use tower_cache::middleware::{Answer, Outcome, cache_page};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// # let cache = tower_cache::Cache::from_url("memory://").await.unwrap();
/// let app = Router::new()
///     .route("/", get(|| async { "page" }))
///     .route_layer(cache_page(Duration::from_secs(60)).cache(cache));
/// let request = || http::Request::get("/").header("host", "example.com").body(Body::empty()).unwrap();
/// let miss = app.clone().oneshot(request()).await.unwrap();
/// assert!(miss.extensions().get::<Outcome>().unwrap().stored());
/// let hit = app.oneshot(request()).await.unwrap();
/// assert_eq!(hit.extensions().get::<Outcome>().unwrap().answer, Answer::Hit);
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Outcome {
    /// How the request was answered.
    pub answer: Answer,
    /// What became of the response, when the inner service gave one that
    /// the layer considered storing (`None` for hits and bypasses).
    pub store: Option<Store>,
    /// For a response from the cache: its remaining freshness when it was
    /// served, in seconds; negative when it was stale.
    pub ttl: Option<i64>,
    /// For [`Answer::Coalesced`]: why the request missed before it waited
    /// for another's response. (A miss has its reason in [`Answer::Miss`].)
    pub missed: Option<MissBecause>,
    /// The status the inner service answered with, when it was called for
    /// this request (or, for [`Answer::Coalesced`], for the request it
    /// waited for); for [`StaleBecause::OriginFailed`], the 5xx the stale
    /// page replaced (`None` after an error or a timeout).
    pub origin_status: Option<StatusCode>,
}

/// How a request was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Answer {
    /// From a fresh entry.
    Hit,
    /// From an entry past its freshness (RFC 5861).
    Stale(StaleBecause),
    /// With the response another request for the same page was fetching
    /// at the same time (request coalescing): the inner service was not
    /// called for this one.
    Coalesced,
    /// By the inner service: there was no usable entry.
    Miss(MissBecause),
    /// By the inner service, without looking at the cache.
    Bypass(Bypass),
}

/// Why a stale entry was served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StaleBecause {
    /// Inside its `stale-while-revalidate` window: a refresh runs in the
    /// background.
    Revalidating,
    /// Inside its `stale-if-error` window, and the inner service failed.
    OriginFailed,
}

/// Why there was no usable entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MissBecause {
    /// Nothing is stored for the URL (Cache-Status `fwd=uri-miss`).
    Url,
    /// The URL is known, but not for the request's values of the headers
    /// the page varies on (`fwd=vary-miss`).
    Vary,
    /// The entry is past its freshness and any stale window (`fwd=stale`).
    Stale,
    /// The stored coding is not one the client accepts.
    Coding,
    /// The backend failed, or held a damaged entry.
    Backend,
    /// The request carries `Authorization` and the entry may not answer it.
    Authorization,
    /// The entry was invalidated: one of its tags, or its URL, was purged.
    Invalidated,
    /// The entry is fresh, but not for what the request asked (its
    /// `no-cache`, `max-age` or `min-fresh`, under RFC 9111).
    Request,
}

/// What became of the inner service's response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Store {
    /// Stored, for this long.
    Stored(Duration),
    /// Not stored, for this reason.
    NotStored(Bypass),
    /// The backend refused it or failed.
    Failed,
}

impl Outcome {
    pub(crate) fn answered(answer: Answer) -> Outcome {
        Outcome {
            answer,
            store: None,
            ttl: None,
            missed: None,
            origin_status: None,
        }
    }

    /// A plain hit, fresh for `ttl` more seconds.
    pub(crate) fn hit(ttl: i64) -> Outcome {
        Outcome {
            ttl: Some(ttl),
            ..Outcome::answered(Answer::Hit)
        }
    }

    /// A request answered with another's response after it missed
    /// (`answer`, always a miss) and waited; the shared response had
    /// `status`.
    pub(crate) fn coalesced(answer: Answer, status: StatusCode) -> Outcome {
        Outcome {
            missed: match answer {
                Answer::Miss(because) => Some(because),
                _ => None,
            },
            origin_status: Some(status),
            ..Outcome::answered(Answer::Coalesced)
        }
    }

    /// Whether the response was stored.
    pub fn stored(&self) -> bool {
        matches!(self.store, Some(Store::Stored(_)))
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.answer {
            Answer::Hit => f.write_str("hit")?,
            Answer::Stale(StaleBecause::Revalidating) => f.write_str("stale, revalidating")?,
            Answer::Stale(StaleBecause::OriginFailed) => f.write_str("stale, origin failed")?,
            Answer::Coalesced => f.write_str("coalesced")?,
            Answer::Miss(because) => write!(f, "miss ({})", because.reason())?,
            Answer::Bypass(bypass) => write!(f, "bypass ({bypass})")?,
        }
        match self.store {
            None => Ok(()),
            Some(Store::Stored(ttl)) => write!(f, ", stored for {} s", ttl.as_secs()),
            Some(Store::NotStored(bypass)) => write!(f, ", not stored ({bypass})"),
            Some(Store::Failed) => f.write_str(", store failed"),
        }
    }
}

impl MissBecause {
    /// A short reason for logs.
    pub fn reason(&self) -> &'static str {
        match self {
            MissBecause::Url => "nothing stored for the URL",
            MissBecause::Vary => "nothing stored for these Vary values",
            MissBecause::Stale => "entry is stale",
            MissBecause::Coding => "stored coding not accepted",
            MissBecause::Backend => "backend error or damaged entry",
            MissBecause::Authorization => "entry may not answer a request with Authorization",
            MissBecause::Invalidated => "entry was invalidated (tag or URL purge)",
            MissBecause::Request => "entry is not fresh enough for the request",
        }
    }
}
