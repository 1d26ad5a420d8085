//! [`CacheBody`]: the response body of every layer.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use crate::error::BoxError;

pin_project! {
    /// The body of a response that went through a cache layer: the cached
    /// bytes of a hit, the origin's body passed through, or a body that was
    /// read to be stored.
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
        // A cached hit, or a body read whole: one frame.
        Full { data: Option<Bytes> },
        // The origin's body, untouched.
        Origin { #[pin] body: B },
        // What was read of the origin's body before giving up on storing it,
        // then the rest of it.
        Resumed {
            data: Option<Bytes>,
            trailers: Option<HeaderMap>,
            error: Option<BoxError>,
            rest: Option<Pin<Box<B>>>,
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

    /// The origin's body, passed through.
    pub(crate) fn origin(body: B) -> CacheBody<B> {
        CacheBody {
            kind: Kind::Origin { body },
        }
    }

    /// `read` bytes already taken from `rest`, then what `rest` has left (or
    /// its trailers, or the error it failed with).
    pub(crate) fn resumed(
        read: Bytes,
        trailers: Option<HeaderMap>,
        error: Option<BoxError>,
        rest: Option<Pin<Box<B>>>,
    ) -> CacheBody<B> {
        CacheBody {
            kind: Kind::Resumed {
                data: (!read.is_empty()).then_some(read),
                trailers,
                error,
                rest,
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
            KindProj::Origin { body } => body.poll_frame(cx).map(convert),
            KindProj::Resumed {
                data,
                trailers,
                error,
                rest,
            } => {
                if let Some(data) = data.take() {
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                if let Some(trailers) = trailers.take() {
                    return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
                }
                if let Some(error) = error.take() {
                    return Poll::Ready(Some(Err(error)));
                }
                match rest {
                    Some(body) => body.as_mut().poll_frame(cx).map(convert),
                    None => Poll::Ready(None),
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Full { data } => data.is_none(),
            Kind::Origin { body } => body.is_end_stream(),
            Kind::Resumed {
                data,
                trailers,
                error,
                rest,
            } => {
                data.is_none()
                    && trailers.is_none()
                    && error.is_none()
                    && rest.as_ref().is_none_or(|body| body.is_end_stream())
            }
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full { data } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
            Kind::Origin { body } => body.size_hint(),
            Kind::Resumed { data, rest, .. } => {
                let read = data.as_ref().map_or(0, |d| d.len() as u64);
                let rest = rest
                    .as_ref()
                    .map_or_else(|| SizeHint::with_exact(0), |b| b.size_hint());
                let mut hint = SizeHint::new();
                hint.set_lower(read.saturating_add(rest.lower()));
                if let Some(upper) = rest.upper() {
                    hint.set_upper(read.saturating_add(upper));
                }
                hint
            }
        }
    }
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
            Kind::Origin { .. } => "Origin",
            Kind::Resumed { .. } => "Resumed",
        };
        f.debug_struct("CacheBody")
            .field("kind", &kind)
            .finish_non_exhaustive()
    }
}
