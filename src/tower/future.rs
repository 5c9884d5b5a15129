//! The response future of the verifying service.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::Response;
use http_body_util::{Either, Full};

/// The layer's response body: the inner service's, or the layer's JSON error body.
///
/// ```
/// type Body = jg_hmac::tower::ResponseBody<http_body_util::Full<bytes::Bytes>>;
/// let error_body: Body = http_body_util::Either::Right(http_body_util::Full::default());
/// # let _ = error_body;
/// ```
pub type ResponseBody<B> = Either<B, Full<Bytes>>;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// The future of [`Verify`](super::Verify): the boxed verification, then the inner
/// service's call. Verification borrows the request's head while it reads the body, so
/// it lives in one boxed future (one allocation per request).
///
/// ```
/// fn is_future<F: std::future::Future>() {}
/// is_future::<jg_hmac::tower::ResponseFuture<http_body_util::Full<bytes::Bytes>, std::convert::Infallible>>();
/// ```
pub struct ResponseFuture<B, E> {
    future: BoxFuture<Result<Response<ResponseBody<B>>, E>>,
}

impl<B, E> ResponseFuture<B, E> {
    pub(super) fn new(future: BoxFuture<Result<Response<ResponseBody<B>>, E>>) -> Self {
        Self { future }
    }
}

impl<B, E> Future for ResponseFuture<B, E> {
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.future.as_mut().poll(cx)
    }
}

impl<B, E> fmt::Debug for ResponseFuture<B, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
