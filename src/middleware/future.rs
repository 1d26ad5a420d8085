//! [`ResponseFuture`]: what the three layers return. A small state machine
//! over the two halves of caching, the [lookup](super::lookup) (request
//! side) and the [store](super::store) (response side), with the two
//! detours of stale serving: a background refresh, and a stale entry
//! served when the inner service fails.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker, ready};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use http_body_util::BodyExt;
use pin_project_lite::pin_project;
use tokio::time::Sleep;
use tower_service::Service;
use tracing::Instrument;

use super::body::CacheBody;
use super::cache_status::CacheStatusName;
use super::hit::{Tried, try_hit};
use super::invalidate::UnsafeRequest;
use super::lookup::{Looked, RefreshTicket, Snapshot, lookup, start};
use super::outcome::{Answer, Outcome};
use super::settings::Settings;
use super::store::{fallback, respond};
use super::{TARGET, spawn_or_skip};
use crate::error::BoxError;

pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Which sides of caching a layer does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// Look up, and store misses here ([`CachePage`](super::CachePage)).
    Both,
    /// Look up, and mark misses for an [`UpdateCache`](super::UpdateCache)
    /// further out ([`FetchFromCache`](super::FetchFromCache)).
    Fetch,
}

/// What to do with the inner service's response.
pub(crate) enum After {
    /// Pass it through, with this outcome (a bypass) if any, and the
    /// layer's `Cache-Status` name if it reports one.
    Pass(Option<Outcome>, Option<CacheStatusName>),
    /// Mark it for an [`UpdateCache`](super::UpdateCache) further out.
    Mark(Arc<Snapshot>),
    /// Store it here ([`CachePage`](super::CachePage)).
    Store(Arc<Snapshot>),
    /// Store it if the request side marked it ([`UpdateCache`](super::UpdateCache)).
    StoreIfMarked,
}

pin_project! {
    /// The response future of [`FetchFromCache`](super::FetchFromCache),
    /// [`UpdateCache`](super::UpdateCache) and [`CachePage`](super::CachePage).
    pub struct ResponseFuture<S, ReqB, ResB>
    where
        S: Service<Request<ReqB>>,
    {
        #[pin]
        state: State<S, ReqB, ResB, S::Future>,
        // The update layer's: a ready-to-clone inner service and how to make
        // a request, to refresh stale pages the fetch layer hands up.
        refresher: Option<(S, fn(&RefreshTicket) -> Request<ReqB>)>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, ReqB, ResB, F> {
        Lookup {
            lookup: BoxFuture<Looked<ReqB, ResB>>,
            service: Option<S>,
        },
        Inner {
            #[pin]
            future: F,
            after: Option<After>,
            // An unsafe request's purge, made once it has its response.
            purge: Option<UnsafeRequest>,
            // When a stale entry may answer instead, the bound on the call.
            deadline: Option<Pin<Box<Sleep>>>,
            // The inner call's span, entered while it is polled.
            span: tracing::Span,
        },
        Ready {
            response: Option<Response<CacheBody<ResB>>>,
        },
        Purging {
            purge: BoxFuture<()>,
            response: Option<Response<CacheBody<ResB>>>,
        },
        Done,
    }
}

impl<S, ReqB, ResB> ResponseFuture<S, ReqB, ResB>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    S::Future: Send + 'static,
    ReqB: Send + 'static,
    ResB: Body + Send + 'static,
    ResB::Data: Into<Bytes>,
    ResB::Error: Into<BoxError>,
{
    /// The request side, then the ready `service` on a miss.
    ///
    /// The lookup is polled once at once: a backend that answers without
    /// waiting (the memory backend) gives a hit without cloning the inner
    /// service, or a miss that calls the ready service itself. Only a lookup
    /// that has to wait takes the ready service along and leaves a clone.
    pub(crate) fn lookup(
        settings: &Arc<Settings>,
        service: &mut S,
        mut request: Request<ReqB>,
        side: Side,
    ) -> Self
    where
        S: Clone,
    {
        let page = match start(settings, &request) {
            Ok(page) => page,
            Err(bypass) => {
                let outcome = Outcome::answered(Answer::Bypass(bypass));
                let after = After::Pass(Some(outcome), settings.cache_status.clone());
                let purge = UnsafeRequest::of(settings, &request);
                let mut future = ResponseFuture::inner(service.call(request), after);
                if let State::Inner { purge: slot, .. } = &mut future.state {
                    *slot = purge;
                }
                return future;
            }
        };
        // Made only when something may record it: a disabled span still
        // costs its fields' formatting (tracing's `log` fallback, which axum
        // turns on), about 270 instructions of an in-process hit.
        let span = if tracing::level_enabled!(tracing::Level::DEBUG) {
            tracing::debug_span!(target: TARGET, "cache_lookup", method = %request.method(),
                url = %page.url, key = tracing::field::Empty, outcome = tracing::field::Empty)
        } else {
            tracing::Span::none()
        };
        let tried = span.in_scope(|| try_hit(settings, &mut request, &page));
        let known = match tried {
            Tried::Hit(response) => {
                return ResponseFuture {
                    state: State::Ready {
                        response: Some(response),
                    },
                    refresher: None,
                };
            }
            Tried::Lookup(known) => known,
        };
        // The one clone of the settings a lookup costs (the future is 'static).
        let mut lookup: BoxFuture<Looked<ReqB, ResB>> =
            Box::pin(lookup(settings.clone(), request, page, side, known).instrument(span));
        match lookup
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
        {
            Poll::Ready(looked) => ResponseFuture::looked(looked, service),
            Poll::Pending => {
                // The ready service goes with the request; a clone stays for the next.
                let clone = service.clone();
                let service = std::mem::replace(service, clone);
                ResponseFuture {
                    state: State::Lookup {
                        lookup,
                        service: Some(service),
                    },
                    refresher: None,
                }
            }
        }
    }

    /// The inner service's future, then `after` with its response.
    pub(crate) fn inner(future: S::Future, after: After) -> Self {
        ResponseFuture {
            state: inner_state(future, after),
            refresher: None,
        }
    }

    /// The update layer's: the inner service's future, then the store of
    /// a marked response, and the background refresh of a stale one.
    pub(crate) fn update(
        future: S::Future,
        service: S,
        make_request: fn(&RefreshTicket) -> Request<ReqB>,
    ) -> Self {
        ResponseFuture {
            state: inner_state(future, After::StoreIfMarked),
            refresher: Some((service, make_request)),
        }
    }

    /// What the lookup found, with the ready `service`.
    fn looked(looked: Looked<ReqB, ResB>, service: &mut S) -> Self {
        match looked {
            Looked::Hit(response) => ResponseFuture {
                state: State::Ready {
                    response: Some(response),
                },
                refresher: None,
            },
            Looked::Stale(response, refresh) => {
                if let Some((request, after)) = refresh {
                    spawn_refresh(service.call(request), after);
                }
                ResponseFuture {
                    state: State::Ready {
                        response: Some(response),
                    },
                    refresher: None,
                }
            }
            Looked::Miss(request, after) => ResponseFuture::inner(service.call(request), after),
        }
    }
}

fn inner_state<S, ReqB, ResB, F>(future: F, after: After) -> State<S, ReqB, ResB, F> {
    let bound = match &after {
        After::Store(snapshot) | After::Mark(snapshot) if snapshot.fallback.is_some() => {
            snapshot.settings.origin_timeout
        }
        _ => None,
    };
    State::Inner {
        future,
        after: Some(after),
        purge: None,
        deadline: bound.map(|bound| Box::pin(tokio::time::sleep(bound))),
        span: tracing::debug_span!(target: TARGET, "cache_inner_call"),
    }
}

/// Runs a refresh of a stale page in the background, bounded by the
/// coalescing wait: the response is stored (and its flight published) as
/// its body is read; a refresh that fails leaves the stale entry.
pub(crate) fn spawn_refresh<F, ResB, E>(future: F, after: After)
where
    F: Future<Output = Result<Response<ResB>, E>> + Send + 'static,
    ResB: Body + Send + 'static,
    ResB::Data: Into<Bytes>,
    ResB::Error: Into<BoxError>,
{
    let bound = match &after {
        After::Store(s) | After::Mark(s) => s.settings.coalesce,
        _ => None,
    }
    .unwrap_or(super::settings::DEFAULT_COALESCE_WAIT);
    spawn_or_skip("refresh a stale page", async move {
        let response = match tokio::time::timeout(bound, future).await {
            Ok(Ok(response)) => response,
            Ok(Err(_)) => return tracing::debug!(target: TARGET, "stale page refresh failed"),
            Err(_) => return tracing::debug!(target: TARGET, "stale page refresh timed out"),
        };
        // Reading the body to its end stores it.
        let _ = respond(after, response).into_body().collect().await;
    });
}

/// The update layer's background refresh: the request goes through every
/// layer below it (the fetch layer marks its response), and is stored here.
fn refresh_through<S, ReqB, ResB>(mut service: S, request: Request<ReqB>)
where
    S: Service<Request<ReqB>, Response = Response<ResB>> + Send + 'static,
    S::Future: Send + 'static,
    ReqB: Send + 'static,
    ResB: Body + Send + 'static,
    ResB::Data: Into<Bytes>,
    ResB::Error: Into<BoxError>,
{
    spawn_or_skip("refresh a stale page", async move {
        if std::future::poll_fn(|cx| service.poll_ready(cx))
            .await
            .is_ok()
        {
            spawn_refresh(service.call(request), After::StoreIfMarked);
        }
    });
}

impl<S, ReqB, ResB> Future for ResponseFuture<S, ReqB, ResB>
where
    S: Service<Request<ReqB>, Response = Response<ResB>> + Send + 'static,
    S::Future: Send + 'static,
    ReqB: Send + 'static,
    ResB: Body + Send + 'static,
    ResB::Data: Into<Bytes>,
    ResB::Error: Into<BoxError>,
{
    type Output = Result<Response<CacheBody<ResB>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Lookup { lookup, service } => {
                    let looked = ready!(lookup.as_mut().poll(cx));
                    let mut service = service.take().expect("service is taken once");
                    let next = ResponseFuture::looked(looked, &mut service);
                    this.state.set(next.state);
                }
                StateProj::Inner {
                    future,
                    after,
                    purge,
                    deadline,
                    span,
                } => {
                    let stale = |after: &mut Option<After>, status| {
                        after
                            .as_ref()
                            .and_then(|after| fallback::<ResB>(after, status))
                    };
                    let result = match span.in_scope(|| future.poll(cx)) {
                        Poll::Ready(result) => result,
                        Poll::Pending => {
                            let late = deadline
                                .as_mut()
                                .is_some_and(|d| d.as_mut().poll(cx).is_ready());
                            match late.then(|| stale(after, None)).flatten() {
                                Some(response) => {
                                    this.state.set(State::Done);
                                    return Poll::Ready(Ok(response));
                                }
                                None => return Poll::Pending,
                            }
                        }
                    };
                    // A stale entry inside its stale-if-error window answers
                    // instead of an error or a 5xx.
                    let instead = match &result {
                        Ok(response) if !response.status().is_server_error() => None,
                        Ok(response) => stale(after, Some(response.status())),
                        Err(_) => stale(after, None),
                    };
                    let mut pass = |mut response: Response<ResB>| {
                        if let Some((service, make_request)) = this.refresher.take() {
                            if let Some(ticket) =
                                response.extensions_mut().remove::<RefreshTicket>()
                            {
                                refresh_through(service, make_request(&ticket));
                            }
                        }
                        let after = after.take().expect("response is handled once");
                        respond(after, response)
                    };
                    let out = match (instead, result) {
                        (Some(stale), _) => Ok(stale),
                        (None, Ok(response)) => {
                            let purging = purge.take().and_then(|p| p.after(&response));
                            let response = pass(response);
                            if let Some(purge) = purging {
                                // The response waits for the purge: a client
                                // that reads it then finds no stale page.
                                this.state.set(State::Purging {
                                    purge,
                                    response: Some(response),
                                });
                                continue;
                            }
                            Ok(response)
                        }
                        (None, Err(error)) => Err(error),
                    };
                    this.state.set(State::Done);
                    return Poll::Ready(out);
                }
                StateProj::Purging { purge, response } => {
                    ready!(purge.as_mut().poll(cx));
                    let response = response.take().expect("response is taken once");
                    this.state.set(State::Done);
                    return Poll::Ready(Ok(response));
                }
                StateProj::Ready { response } => {
                    let response = response.take().expect("response is taken once");
                    this.state.set(State::Done);
                    return Poll::Ready(Ok(response));
                }
                StateProj::Done => panic!("ResponseFuture polled after it completed"),
            }
        }
    }
}
