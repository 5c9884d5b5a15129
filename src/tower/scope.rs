//! A per-route guard: the verified client must hold a scope.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use crate::clock::{Clock, SystemClock};
use crate::error::Error;

use super::audit::{AUDIT_TARGET, new_request_id};
use super::future::ResponseFuture;
use super::identity::Authenticated;
use super::response::{ResponseBody, refusal};

/// The layer of [`RequireScope`]: lets a request through only if the client the
/// [`VerifyLayer`](super::VerifyLayer) authenticated holds a scope; put it on the routes
/// that need it (axum's `route_layer`), under the verifying layer.
///
/// - Verified client with the scope: the inner service runs.
/// - Verified client without it: `403` with the crate's JSON error body, code
///   `insufficient_scope`; the inner service does not run. An audit event (target
///   `jg_hmac::audit`, `info`) records the client and the scope.
/// - No [`Authenticated`] in the request (the route is not behind a `VerifyLayer`, a
///   server misconfiguration): `500`, code `authentication_not_configured`, as the
///   `Authenticated` extractor answers; never the handler unauthenticated.
///
/// Scopes are compared exactly ([`Credential::has_scope`](crate::Credential::has_scope)).
/// A [`PgCredentialStore`](crate::postgres::PgCredentialStore) fills them from
/// `jg_hmac.clients.scopes`; an in-memory credential takes them from
/// [`with_scope`](crate::Credential::with_scope).
///
/// ```
/// # #[cfg(feature = "axum")] {
/// use axum::{Router, routing::{get, post}};
/// use jg_hmac::tower::{InMemoryCredentialStore, RequireScopeLayer, VerifyLayer};
///
/// let app: Router = Router::new()
///     .route("/v1/transactions/buy", post(|| async { "bought" }))
///     .route_layer(RequireScopeLayer::new("transactions:write")) // only the routes above
///     .route("/v1/prices", get(|| async { "prices" }))
///     .layer(VerifyLayer::new(InMemoryCredentialStore::new())); // every route above
/// # let _ = app;
/// # }
/// ```
#[derive(Clone)]
pub struct RequireScopeLayer {
    scope: Arc<str>,
}

impl RequireScopeLayer {
    /// A guard requiring `scope`.
    ///
    /// ```
    /// let guard = jg_hmac::tower::RequireScopeLayer::new("transactions:write");
    /// assert_eq!(guard.scope(), "transactions:write");
    /// ```
    pub fn new(scope: impl Into<Arc<str>>) -> Self {
        Self {
            scope: scope.into(),
        }
    }

    /// The scope required.
    ///
    /// ```
    /// assert_eq!(jg_hmac::tower::RequireScopeLayer::new("a").scope(), "a");
    /// ```
    pub fn scope(&self) -> &str {
        &self.scope
    }
}

impl fmt::Debug for RequireScopeLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequireScopeLayer")
            .field("scope", &self.scope)
            .finish()
    }
}

impl<S> Layer<S> for RequireScopeLayer {
    type Service = RequireScope<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireScope {
            inner,
            scope: Arc::clone(&self.scope),
        }
    }
}

/// The [`Service`] made by [`RequireScopeLayer`]: runs `inner` only for a verified client
/// that holds the scope.
///
/// ```
/// use tower_layer::Layer;
/// let inner = (); // any tower service; axum's `route_layer` does this for you
/// let service = jg_hmac::tower::RequireScopeLayer::new("a").layer(inner);
/// assert!(format!("{service:?}").contains("\"a\""));
/// ```
#[derive(Clone)]
pub struct RequireScope<S> {
    inner: S,
    scope: Arc<str>,
}

impl<S> fmt::Debug for RequireScope<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequireScope")
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl<S, B, ResBody> Service<Request<B>> for RequireScope<S>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ResBody: Send + 'static,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let refused = match request.extensions().get::<Authenticated>() {
            Some(who) if who.credential().has_scope(&self.scope) => None,
            Some(who) => {
                let error = Error::InsufficientScope;
                tracing::info!(
                    target: AUDIT_TARGET,
                    request_id = who.request_id(),
                    outcome = error.code(),
                    status = error.status(),
                    client_id = who.client_id(),
                    key_id = who.key_id(),
                    required_scope = &*self.scope,
                    "request refused: the client lacks the route's scope"
                );
                Some(refusal(error, who.request_id(), SystemClock.now(), None))
            }
            None => {
                let error = Error::NotConfigured;
                let request_id = new_request_id();
                tracing::error!(
                    target: AUDIT_TARGET,
                    request_id = &*request_id,
                    outcome = error.code(),
                    status = error.status(),
                    required_scope = &*self.scope,
                    "RequireScope on a route that no VerifyLayer covers"
                );
                Some(refusal(error, &request_id, SystemClock.now(), None))
            }
        };
        match refused {
            Some(response) => ResponseFuture::new(Box::pin(std::future::ready(Ok(response)))),
            None => {
                let future = self.inner.call(request);
                ResponseFuture::new(Box::pin(async move {
                    future.await.map(|r| r.map(ResponseBody::inner))
                }))
            }
        }
    }
}
