//! `--ext-authz-grpc ADDR`: Envoy's ext_authz service (src/bin/jg-hmac/ext_authz/) next to
//! the proxy, on the same layer (credentials, replay guard, limits, audit, metrics), with
//! the gateway's `--scope` rules in front of its answer.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use http::{Request, Response};
use jg_hmac::Error;
use jg_hmac::tower::{AsyncReplayGuard, Authenticated, CredentialStore, VerifiedBody, VerifyLayer};
use tower_layer::Layer;
use tower_service::Service;

use super::config::ScopeRule;
use super::forward::refusal;
use super::routes;

/// Binds `addr` and serves ext_authz there until `shutdown` completes.
pub async fn spawn<S: CredentialStore, R: AsyncReplayGuard>(
    addr: SocketAddr,
    layer: VerifyLayer<S, R>,
    rules: Arc<[ScopeRule]>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("--ext-authz-grpc {addr}: {e}"))?;
    tokio::spawn(async move {
        let guard = ScopeLayer { rules };
        if let Err(e) = crate::ext_authz::serve_guarded(listener, layer, guard, shutdown).await {
            tracing::error!(target: super::LOG_TARGET, error = %e, "ext_authz service stopped");
        }
    });
    Ok(())
}

/// The `--scope` rules as a guard of the ext_authz answer.
#[derive(Clone)]
struct ScopeLayer {
    rules: Arc<[ScopeRule]>,
}

impl<I> Layer<I> for ScopeLayer {
    type Service = Scoped<I>;

    fn layer(&self, inner: I) -> Scoped<I> {
        Scoped {
            inner,
            rules: Arc::clone(&self.rules),
        }
    }
}

#[derive(Clone)]
struct Scoped<I> {
    inner: I,
    rules: Arc<[ScopeRule]>,
}

impl<I, B> Service<Request<VerifiedBody>> for Scoped<I>
where
    I: Service<Request<VerifiedBody>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    I::Future: Send + 'static,
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<VerifiedBody>) -> Self::Future {
        if let Some(who) = request.extensions().get::<Authenticated>()
            && routes::missing_scope(&self.rules, request.method(), request.uri().path(), |s| {
                who.credential().has_scope(s)
            })
            .is_some()
        {
            let response = refusal(Error::InsufficientScope, who.request_id());
            return Box::pin(std::future::ready(Ok(response)));
        }
        let future = self.inner.call(request);
        Box::pin(async move { future.await.map(|r| r.map(Body::new)) })
    }
}
