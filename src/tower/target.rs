//! The request-target as the client sent it, kept for the verifying layer when
//! something between the connection and the layer rewrites the URI.

use std::task::{Context, Poll};

use http::{Request, Uri};
use tower_layer::Layer;
use tower_service::Service;

/// The URI the client sent, recorded by [`OriginalTarget`]; the verifying layer checks
/// its path and query when present. Private: only this module writes it.
#[derive(Clone, Debug)]
struct SentTarget(Uri);

/// Keeps the request-target as received, for a [`VerifyLayer`](super::VerifyLayer)
/// further in, when middleware between them rewrites the URI.
///
/// Place it **outermost**, around every layer that may change the URI (tower-http's
/// `NormalizePath`, a prefix-stripping proxy layer). Without it, a rewriting layer outside
/// the router makes the verifying layer check the rewritten path: a signature over
/// `/v1/ping` is then accepted for `/v1/ping/`, `//v1/ping` and every other spelling that
/// normalises to it, and a partner who signed the path as sent is refused. Inside an axum
/// `Router` (`nest`, `nest_service`, `route_layer`) it is not needed: the layer reads
/// axum's `OriginalUri`.
///
/// It cannot be misplaced into trusting a stripped path: it records the first URI it
/// sees for a request, and inside an axum `Router` (where axum has already recorded the
/// URI as received in `OriginalUri`) it records that one, never the path a nested router
/// stripped its prefix from.
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
/// assert!(format!("{app:?}").starts_with("OriginalTarget"));
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct OriginalTargetLayer;

impl<S> Layer<S> for OriginalTargetLayer {
    type Service = OriginalTarget<S>;

    fn layer(&self, inner: S) -> Self::Service {
        OriginalTarget { inner }
    }
}

/// The [`Service`] made by [`OriginalTargetLayer`]: records the request-target as
/// received, then calls `inner`.
///
/// ```
/// use jg_hmac::tower::OriginalTargetLayer;
/// use tower_layer::Layer;
/// let service = OriginalTargetLayer.layer(7);
/// assert_eq!(*service.get_ref(), 7);
/// ```
#[derive(Clone, Debug)]
pub struct OriginalTarget<S> {
    inner: S,
}

impl<S> OriginalTarget<S> {
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

impl<S, B> Service<Request<B>> for OriginalTarget<S>
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
        if request.extensions().get::<SentTarget>().is_none() {
            let sent = router_received(request.extensions())
                .unwrap_or_else(|| request.uri())
                .clone();
            request.extensions_mut().insert(SentTarget(sent));
        }
        self.inner.call(request)
    }
}

/// The URI an enclosing axum `Router` received, before any nesting stripped a prefix.
#[cfg(feature = "axum")]
fn router_received(extensions: &http::Extensions) -> Option<&Uri> {
    extensions
        .get::<axum::extract::OriginalUri>()
        .map(|axum::extract::OriginalUri(uri)| uri)
}

#[cfg(not(feature = "axum"))]
fn router_received(_: &http::Extensions) -> Option<&Uri> {
    None
}

/// The URI whose path and query the client signed: the one [`OriginalTarget`] recorded,
/// else axum's `OriginalUri` (set by the outermost `Router` before nesting strips a
/// prefix), else the request's own.
pub(super) fn sent_uri(parts: &http::request::Parts) -> &Uri {
    if let Some(SentTarget(uri)) = parts.extensions.get() {
        return uri;
    }
    router_received(&parts.extensions).unwrap_or(&parts.uri)
}
