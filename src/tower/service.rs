//! The verifying [`Service`]: `poll_ready`, and `call`, which hands each request to the
//! [`ResponseFuture`].

use std::fmt;
use std::mem;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use http_body::Body;
use tower_service::Service;

use super::authorize::BoxError;
use super::future::{ResponseFuture, respond};
use super::gcra::InMemoryRateLimiter;
use super::limit::RateLimiter;
use super::replay::{AsyncReplayGuard, NoReplayGuard};
use super::response::{ResponseBody, VerifiedBody};
use super::settings::Settings;
use super::store::CredentialStore;

/// The [`Service`] made by [`VerifyLayer`](super::VerifyLayer): verifies, then calls
/// `inner`.
///
/// ```
/// use jg_hmac::tower::{InMemoryCredentialStore, VerifyLayer};
/// use tower_layer::Layer;
/// let service = VerifyLayer::new(InMemoryCredentialStore::new()).layer(());
/// assert_eq!(service.get_ref(), &());
/// ```
pub struct Verify<I, S, R = NoReplayGuard, L = InMemoryRateLimiter> {
    inner: I,
    settings: Arc<Settings<S, R, L>>,
}

impl<I, S, R, L> Verify<I, S, R, L> {
    pub(super) fn new(inner: I, settings: Arc<Settings<S, R, L>>) -> Self {
        Self { inner, settings }
    }

    /// The inner service.
    ///
    /// ```
    /// # use tower_layer::Layer;
    /// let service = jg_hmac::tower::VerifyLayer::new(jg_hmac::tower::InMemoryCredentialStore::new()).layer(7);
    /// assert_eq!(*service.get_ref(), 7);
    /// ```
    pub fn get_ref(&self) -> &I {
        &self.inner
    }

    /// The inner service, mutably.
    ///
    /// ```
    /// # use tower_layer::Layer;
    /// let mut service = jg_hmac::tower::VerifyLayer::new(jg_hmac::tower::InMemoryCredentialStore::new()).layer(7);
    /// *service.get_mut() = 8;
    /// assert_eq!(*service.get_ref(), 8);
    /// ```
    pub fn get_mut(&mut self) -> &mut I {
        &mut self.inner
    }

    /// The inner service, unwrapped.
    ///
    /// ```
    /// # use tower_layer::Layer;
    /// let service = jg_hmac::tower::VerifyLayer::new(jg_hmac::tower::InMemoryCredentialStore::new()).layer(7);
    /// assert_eq!(service.into_inner(), 7);
    /// ```
    pub fn into_inner(self) -> I {
        self.inner
    }
}

impl<I: Clone, S, R, L> Clone for Verify<I, S, R, L> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            settings: Arc::clone(&self.settings),
        }
    }
}

impl<I: fmt::Debug, S, R, L> fmt::Debug for Verify<I, S, R, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verify")
            .field("inner", &self.inner)
            .field("settings", &*self.settings)
            .finish()
    }
}

impl<I, S, R, L, ReqBody, ResBody> Service<Request<ReqBody>> for Verify<I, S, R, L>
where
    I: Service<Request<VerifiedBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    I::Future: Send + 'static,
    I::Error: Send + 'static,
    S: CredentialStore,
    R: AsyncReplayGuard,
    L: RateLimiter,
    ReqBody: Body + Send + 'static,
    ReqBody::Data: Send,
    ReqBody::Error: Into<BoxError>,
    ResBody: Send + 'static,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = I::Error;
    type Future = ResponseFuture<ResBody, I::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // Use the service that was polled ready; leave a fresh clone in its place.
        let clone = self.inner.clone();
        let inner = mem::replace(&mut self.inner, clone);
        let settings = Arc::clone(&self.settings);
        ResponseFuture::new(Box::pin(respond(settings, inner, request)))
    }
}
