//! [`CacheBody`]: the response body of every layer.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use super::future::BoxFuture;
use super::store::Tee;
use crate::error::BoxError;

pin_project! {
    /// The body of a response that went through a cache layer: the cached
    /// bytes of a hit, or the origin's body passed through (and, on a miss
    /// that is stored, copied on its way to the client).
    ///
    /// Its data is [`Bytes`] and its error a [`BoxError`], whatever the
    /// origin's were, so it fits axum and hyper as is.
    pub struct CacheBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<B> {
        // A cached hit: one frame.
        Full { data: Option<Bytes> },
        // No body at all, of no stated size (a 304). pin-project-lite
        // wants a field.
        Absent { _none: () },
        // The origin's body, untouched.
        Origin { #[pin] body: B },
        // The origin's body, streamed to the client and copied into the
        // cache (`tee` is `None` once storing was given up or done). When
        // it ends, `storing` runs before `last` (the end, or the last data
        // frame of a body that knows it has ended) is handed on.
        Tee {
            #[pin] body: B,
            tee: Option<Box<Tee>>,
            storing: Option<BoxFuture<()>>,
            last: Option<Option<Result<Frame<Bytes>, BoxError>>>,
        },
        // A tee polled once already (see `CacheBody::tee`): the frame it
        // gave, then the rest.
        Started {
            first: Option<Option<Result<Frame<Bytes>, BoxError>>>,
            rest: Pin<Box<CacheBody<B>>>,
        },
    }
}

impl<B> CacheBody<B> {
    /// A body of these bytes.
    pub(crate) fn full(data: Bytes) -> CacheBody<B> {
        CacheBody {
            kind: Kind::Full {
                data: (!data.is_empty()).then_some(data),
            },
        }
    }

    /// An empty body (a HEAD response).
    pub(crate) fn empty() -> CacheBody<B> {
        CacheBody {
            kind: Kind::Full { data: None },
        }
    }

    /// The absent body of a 304. Its size is left unknown, not zero: a
    /// zero would make an outer layer (axum's router) add
    /// `Content-Length: 0`, which a 304 may not carry (RFC 9110 section
    /// 8.6: it would claim the page is empty); HTTP/1.1 servers (hyper)
    /// send a 304 without a body or a length of their own.
    pub(crate) fn absent() -> CacheBody<B> {
        CacheBody {
            kind: Kind::Absent { _none: () },
        }
    }

    /// The origin's body, passed through.
    pub(crate) fn origin(body: B) -> CacheBody<B> {
        CacheBody {
            kind: Kind::Origin { body },
        }
    }

    /// The origin's body, streamed through and copied by `tee`.
    ///
    /// It is polled once at once: a body that is already whole (axum's
    /// usual one-chunk body) is stored now, whether or not the client reads
    /// it, and becomes a plain body of its bytes.
    pub(crate) fn tee(body: B, tee: Tee) -> CacheBody<B>
    where
        B: Body,
        B::Data: Into<Bytes>,
        B::Error: Into<BoxError>,
    {
        let mut teed = Box::pin(CacheBody {
            kind: Kind::Tee {
                body,
                tee: Some(Box::new(tee)),
                storing: None,
                last: None,
            },
        });
        let mut cx = Context::from_waker(std::task::Waker::noop());
        match teed.as_mut().poll_frame(&mut cx) {
            Poll::Ready(Some(Ok(frame))) if teed.is_end_stream() && frame.is_data() => {
                match frame.into_data() {
                    Ok(data) => CacheBody::full(data),
                    Err(_) => unreachable!("checked to be data"),
                }
            }
            Poll::Ready(frame) => CacheBody {
                kind: Kind::Started {
                    first: Some(frame),
                    rest: teed,
                },
            },
            Poll::Pending => CacheBody {
                kind: Kind::Started {
                    first: None,
                    rest: teed,
                },
            },
        }
    }
}

impl<B> Body for CacheBody<B>
where
    B: Body,
    B::Data: Into<Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.project().kind.project() {
            KindProj::Full { data } => Poll::Ready(data.take().map(|data| Ok(Frame::data(data)))),
            KindProj::Absent { .. } => Poll::Ready(None),
            KindProj::Origin { body } => body.poll_frame(cx).map(convert),
            KindProj::Started { first, rest } => match first.take() {
                Some(frame) => Poll::Ready(frame),
                None => rest.as_mut().poll_frame(cx),
            },
            KindProj::Tee {
                mut body,
                tee,
                storing,
                last,
            } => loop {
                if let Some(store) = storing {
                    ready!(store.as_mut().poll(cx));
                    *storing = None;
                }
                if let Some(frame) = last.take() {
                    return Poll::Ready(frame);
                }
                let frame = ready!(body.as_mut().poll_frame(cx)).map(|frame| {
                    frame
                        .map(|frame| frame.map_data(Into::into))
                        .map_err(Into::into)
                });
                let ended = match &frame {
                    None => true,
                    Some(Ok(frame)) => match frame.data_ref() {
                        Some(data) => {
                            if tee.as_mut().is_some_and(|t| !t.keep(data)) {
                                *tee = None;
                            }
                            // A body that knows it has ended may not be
                            // polled again.
                            body.is_end_stream()
                        }
                        None => {
                            if let Some(tee) = tee.take() {
                                tee.abandon("body has trailers");
                            }
                            false
                        }
                    },
                    Some(Err(_)) => {
                        if let Some(tee) = tee.take() {
                            tee.abandon("body failed");
                        }
                        false
                    }
                };
                match tee.take_if(|_| ended) {
                    Some(done) => {
                        *storing = Some(done.finish());
                        *last = Some(frame);
                    }
                    None => return Poll::Ready(frame),
                }
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Full { data } => data.is_none(),
            Kind::Absent { .. } => true,
            Kind::Origin { body } => body.is_end_stream(),
            Kind::Tee {
                body,
                tee,
                storing,
                last,
            } => tee.is_none() && storing.is_none() && last.is_none() && body.is_end_stream(),
            Kind::Started { first, rest } => {
                first.as_ref().is_none_or(Option::is_none) && rest.is_end_stream()
            }
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full { data } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
            Kind::Absent { .. } => SizeHint::default(),
            Kind::Origin { body } => body.size_hint(),
            // What the body has left, plus a frame read and held back.
            Kind::Tee { body, last, .. } => plus_held(body.size_hint(), last),
            Kind::Started { first, rest } => plus_held(rest.size_hint(), first),
        }
    }
}

/// `hint` grown by the data of a frame read but not yet handed on.
fn plus_held(
    mut hint: SizeHint,
    held: &Option<Option<Result<Frame<Bytes>, BoxError>>>,
) -> SizeHint {
    if let Some(Some(Ok(frame))) = held {
        let len = frame.data_ref().map_or(0, |d| d.len() as u64);
        // Upper first: `set_lower` refuses a lower bound above the upper.
        if let Some(upper) = hint.upper() {
            hint.set_upper(upper.saturating_add(len));
        }
        hint.set_lower(hint.lower().saturating_add(len));
    }
    hint
}

fn convert<D: Into<Bytes>, E: Into<BoxError>>(
    frame: Option<Result<Frame<D>, E>>,
) -> Option<Result<Frame<Bytes>, BoxError>> {
    frame.map(|result| {
        result
            .map(|frame| frame.map_data(Into::into))
            .map_err(Into::into)
    })
}

impl<B> std::fmt::Debug for CacheBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.kind {
            Kind::Full { .. } => "Full",
            Kind::Absent { .. } => "Absent",
            Kind::Origin { .. } => "Origin",
            Kind::Tee { .. } | Kind::Started { .. } => "Tee",
        };
        f.debug_struct("CacheBody")
            .field("kind", &kind)
            .finish_non_exhaustive()
    }
}
