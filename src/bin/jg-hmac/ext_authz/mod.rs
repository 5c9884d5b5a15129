//! Envoy's external authorization over gRPC (feature `ext-authz`):
//! `envoy.service.auth.v3.Authorization/Check`, answered by the crate's `VerifyLayer`.
//!
//! Each `CheckRequest` becomes the `http::Request` Envoy received (method, request-target
//! as sent, headers, the `raw_body` bytes) and goes through the layer, so every guarantee
//! of the layer holds here as in the gateway: the windows, the replay guard, the body
//! limit and deadline, the audit event and the metrics. The layer's inner service only
//! takes the `Authenticated` identity; the answer is OK with the identity headers for the
//! upstream, or Denied with the layer's status, headers and JSON body. docs/gateway.md,
//! "Envoy ext_authz", has the Envoy configuration and every refusal.

mod answer;
mod identity;
mod request;
#[cfg(test)]
mod tests;

use std::convert::Infallible;
use std::future::{Future, Ready, poll_fn, ready};
use std::io;
use std::task::{Context, Poll};

use bytes::Bytes;
use envoy_types::ext_authz::v3::pb::{
    Authorization, AuthorizationServer, CheckRequest, CheckResponse,
};
use http::{Request, Response};
use http_body::Body;
use http_body_util::{BodyExt, Collected, Empty};
use jg_hmac::tower::{
    AsyncReplayGuard, Authenticated, CredentialStore, VerifiedBody, Verify, VerifyLayer,
};
use tokio::net::TcpListener;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tower_layer::{Identity, Layer};
use tower_service::Service;

use request::{Checked, Refused};

/// Room above the body limit for the rest of a `CheckRequest` (headers, addresses,
/// metadata): a larger message fails the RPC, and Envoy refuses the request.
const CHECK_REQUEST_OVERHEAD: usize = 1024 * 1024;

/// Serves `Authorization/Check` on `listener` (plaintext HTTP/2, no TLS: bind it where
/// only Envoy reaches it) until `shutdown` completes; checks in flight then finish.
///
/// Every request goes through `layer`. A `CheckRequest` may be as large as the layer's
/// body limit plus 1 MiB.
pub(crate) async fn serve<S, R>(
    listener: TcpListener,
    layer: VerifyLayer<S, R>,
    shutdown: impl Future<Output = ()> + Send,
) -> io::Result<()>
where
    S: CredentialStore,
    R: AsyncReplayGuard,
{
    serve_guarded(listener, layer, Identity::new(), shutdown).await
}

/// [`serve`] with `guard` between the layer and the capture of the identity: a request
/// the layer accepts is allowed only if `guard` calls its inner service (a
/// `RequireScopeLayer`, the gateway's `--scope` rules); whatever `guard` answers instead
/// is the Denied response.
pub(crate) async fn serve_guarded<S, R, G, B>(
    listener: TcpListener,
    layer: VerifyLayer<S, R>,
    guard: G,
    shutdown: impl Future<Output = ()> + Send,
) -> io::Result<()>
where
    S: CredentialStore,
    R: AsyncReplayGuard,
    G: Layer<Capture>,
    G::Service: Service<Request<VerifiedBody>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    <G::Service as Service<Request<VerifiedBody>>>::Future: Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
{
    let limit = layer.body_limit().saturating_add(CHECK_REQUEST_OVERHEAD);
    let service = AuthorizationServer::new(ExtAuthz {
        verify: layer.layer(guard.layer(Capture)),
    })
    .max_decoding_message_size(limit);
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    Server::builder()
        .serve_with_incoming_shutdown(service, incoming, shutdown)
        .await
        .map_err(io::Error::other)
}

/// The `Authorization` service: the layer around the guarded [`Capture`].
struct ExtAuthz<I, S, R> {
    verify: Verify<I, S, R>,
}

#[tonic::async_trait]
impl<I, S, R, B> Authorization for ExtAuthz<I, S, R>
where
    I: Service<Request<VerifiedBody>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    I::Future: Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    S: CredentialStore,
    R: AsyncReplayGuard,
{
    async fn check(
        &self,
        request: tonic::Request<CheckRequest>,
    ) -> Result<tonic::Response<CheckResponse>, tonic::Status> {
        check(self.verify.clone(), request.into_inner())
            .await
            .map(tonic::Response::new)
    }
}

/// One check: the request through the layer, the layer's decision as the answer.
async fn check<I, S, R, B>(
    mut verify: Verify<I, S, R>,
    check: CheckRequest,
) -> Result<CheckResponse, tonic::Status>
where
    I: Service<Request<VerifiedBody>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    I::Future: Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    S: CredentialStore,
    R: AsyncReplayGuard,
{
    let request = match request::to_http(check) {
        Ok(request) => request,
        Err(Refused::Deny {
            error,
            request_id,
            method,
            path,
            why,
        }) => {
            tracing::warn!(
                target: "jg_hmac::audit",
                request_id = %request_id,
                outcome = error.code(),
                status = error.status(),
                client_id = "-",
                method = %method,
                path = logged_path(&path),
                reason = why,
            );
            return Ok(answer::refused(error, &request_id));
        }
        Err(Refused::Invalid(why)) => {
            tracing::warn!(target: "jg_hmac::audit", reason = why, "CheckRequest refused");
            return Err(tonic::Status::invalid_argument(why));
        }
    };
    let Ok(()) = poll_fn(|cx| Service::<Checked>::poll_ready(&mut verify, cx)).await;
    let Ok(response) = verify.call(request).await;
    let (parts, body) = response.into_parts();
    if let Some(who) = parts.extensions.get::<Authenticated>() {
        return Ok(answer::allowed(who, &parts.headers));
    }
    // The layer's and the crate's guards' bodies never fail; another's failing body is
    // answered empty.
    let body = body
        .collect()
        .await
        .map(Collected::to_bytes)
        .unwrap_or_default();
    Ok(answer::denied(parts.status, &parts.headers, &body))
}

/// The path as the audit events log it: no query, at most 256 bytes.
fn logged_path(path: &str) -> &str {
    let path = path.split('?').next().unwrap_or_default();
    let mut end = path.len().min(256);
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    path.get(..end).unwrap_or_default()
}

/// The innermost service: answers an empty 200 carrying the request's
/// [`Authenticated`] in its extensions, which only an accepted request has.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Capture;

impl Service<Request<VerifiedBody>> for Capture {
    type Response = Response<Empty<Bytes>>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<VerifiedBody>) -> Self::Future {
        let mut response = Response::new(Empty::new());
        if let Some(who) = request.extensions().get::<Authenticated>() {
            response.extensions_mut().insert(who.clone());
        }
        ready(Ok(response))
    }
}
