//! The request-target as the client sent it, kept for the verifying layer when
//! something between the connection and the layer rewrites the URI.

use std::task::{Context, Poll};

use http::{Request, Uri};
use tower_layer::Layer;
use tower_service::Service;

/// The request's URI as it was when [`OriginalTargetLayer`] saw it: what the client sent,
/// when that layer is the outermost. [`VerifyLayer`](super::VerifyLayer) verifies this
/// path and query when the extension is present.
///
/// ```
/// use jg_hmac::tower::OriginalTarget;
/// let mut request = http::Request::get("/v1/ping/").body(()).unwrap();
/// let sent = request.uri().clone();
/// request.extensions_mut().insert(OriginalTarget(sent));
/// *request.uri_mut() = "/v1/ping".parse().unwrap(); // e.g. NormalizePath
/// assert_eq!(request.extensions().get::<OriginalTarget>().unwrap().0.path(), "/v1/ping/");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OriginalTarget(pub Uri);

/// Keeps the request-target as received, for a [`VerifyLayer`](super::VerifyLayer)
/// further in, when middleware between them rewrites the URI.
///
/// Place it **outermost**, around every layer that may change the URI (tower-http's
/// `NormalizePath`, a prefix-stripping proxy layer): it stores the URI it receives in
/// the request's extensions as [`OriginalTarget`], unless an outer one already did.
/// Without it, a rewriting layer outside the router makes the verifying layer check the
/// rewritten path: a signature over `/v1/ping` is then accepted for `/v1/ping/`,
/// `//v1/ping` and every other spelling that normalises to it, and a partner who signed
/// the path as sent is refused. Inside an axum `Router` (`nest`, `nest_service`,
/// `route_layer`) it is not needed: the layer reads axum's `OriginalUri`.
///
/// ```
/// use axum::{Router, routing::get};
/// use jg_hmac::tower::{InMemoryCredentialStore, OriginalTargetLayer, VerifyLayer};
/// use tower_layer::Layer;
///
/// let api: Router = Router::new()
///     .route("/v1/ping", get(|| async { "pong" }))
///     .layer(VerifyLayer::new(InMemoryCredentialStore::new()));
/// // Any URI-rewriting middleware goes between the two, e.g.
/// // tower_http::normalize_path::NormalizePathLayer::trim_trailing_slash().layer(api):
/// let rewritten = api;
/// let app = OriginalTargetLayer.layer(rewritten);
/// # let _ = app;
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct OriginalTargetLayer;

impl<S> Layer<S> for OriginalTargetLayer {
    type Service = KeepOriginalTarget<S>;

    fn layer(&self, inner: S) -> Self::Service {
        KeepOriginalTarget { inner }
    }
}

/// The [`Service`] made by [`OriginalTargetLayer`].
///
/// ```
/// use jg_hmac::tower::OriginalTargetLayer;
/// use tower_layer::Layer;
/// let service = OriginalTargetLayer.layer(7);
/// assert_eq!(*service.get_ref(), 7);
/// ```
#[derive(Clone, Debug)]
pub struct KeepOriginalTarget<S> {
    inner: S,
}

impl<S> KeepOriginalTarget<S> {
    /// The inner service.
    ///
    /// ```
    /// use tower_layer::Layer;
    /// let service = jg_hmac::tower::OriginalTargetLayer.layer("inner");
    /// assert_eq!(*service.get_ref(), "inner");
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S, B> Service<Request<B>> for KeepOriginalTarget<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        if request.extensions().get::<OriginalTarget>().is_none() {
            let uri = request.uri().clone();
            request.extensions_mut().insert(OriginalTarget(uri));
        }
        self.inner.call(request)
    }
}

/// The URI whose path and query the client signed: [`OriginalTarget`], else axum's
/// `OriginalUri` (set by the outermost `Router` before nesting strips a prefix), else
/// the request's own.
pub(super) fn sent_uri(parts: &http::request::Parts) -> &Uri {
    if let Some(OriginalTarget(uri)) = parts.extensions.get() {
        return uri;
    }
    #[cfg(feature = "axum")]
    if let Some(axum::extract::OriginalUri(uri)) = parts.extensions.get() {
        return uri;
    }
    &parts.uri
}
