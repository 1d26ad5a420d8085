//! [`ResponseFuture`]: what the three layers return. A small state machine
//! over the two halves of caching: the [lookup](super::lookup) (request
//! side) and the [store](super::store) (response side).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker, ready};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use pin_project_lite::pin_project;
use tower_service::Service;

use super::body::CacheBody;
use super::lookup::{Looked, Snapshot, lookup, start};
use super::settings::Settings;
use super::store::{Respond, respond};
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
    /// Pass it through.
    Nothing,
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
        },
        Finish {
            future: BoxFuture<Response<CacheBody<ResB>>>,
        },
        Ready {
            response: Option<Response<CacheBody<ResB>>>,
        },
        Done,
    }
}

impl<S, ReqB, ResB> ResponseFuture<S, ReqB, ResB>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    ReqB: Send + 'static,
    ResB: Body + Send + 'static,
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
        request: Request<ReqB>,
        side: Side,
    ) -> Self
    where
        S: Clone,
    {
        let url = match start(settings, &request) {
            Ok(url) => url,
            Err(()) => return ResponseFuture::inner(service.call(request), After::Nothing),
        };
        // The one clone of the settings a hit costs (the future is 'static).
        let mut lookup: BoxFuture<Looked<ReqB, ResB>> =
            Box::pin(lookup(settings.clone(), request, url, side));
        match lookup
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
        {
            Poll::Ready(Looked::Hit(response)) => ResponseFuture {
                state: State::Ready {
                    response: Some(response),
                },
            },
            Poll::Ready(Looked::Miss(request, after)) => {
                ResponseFuture::inner(service.call(request), after)
            }
            Poll::Pending => {
                // The ready service goes with the request; a clone stays for the next.
                let clone = service.clone();
                let service = std::mem::replace(service, clone);
                ResponseFuture {
                    state: State::Lookup {
                        lookup,
                        service: Some(service),
                    },
                }
            }
        }
    }

    /// The inner service's future, then `after` with its response.
    pub(crate) fn inner(future: S::Future, after: After) -> Self {
        ResponseFuture {
            state: State::Inner {
                future,
                after: Some(after),
            },
        }
    }
}

impl<S, ReqB, ResB> Future for ResponseFuture<S, ReqB, ResB>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    ResB: Body + Send + 'static,
    ResB::Data: Into<Bytes>,
    ResB::Error: Into<BoxError>,
{
    type Output = Result<Response<CacheBody<ResB>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Lookup { lookup, service } => match ready!(lookup.as_mut().poll(cx)) {
                    Looked::Hit(response) => {
                        this.state.set(State::Done);
                        return Poll::Ready(Ok(response));
                    }
                    Looked::Miss(request, after) => {
                        let mut service = service.take().expect("service is taken once");
                        let future = service.call(request);
                        this.state.set(State::Inner {
                            future,
                            after: Some(after),
                        });
                    }
                },
                StateProj::Inner { future, after } => {
                    let response = ready!(future.poll(cx))?;
                    let after = after.take().expect("response is handled once");
                    match respond(after, response) {
                        Respond::Now(response) => {
                            this.state.set(State::Done);
                            return Poll::Ready(Ok(response));
                        }
                        Respond::Later(future) => this.state.set(State::Finish { future }),
                    }
                }
                StateProj::Finish { future } => {
                    let response = ready!(future.as_mut().poll(cx));
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
