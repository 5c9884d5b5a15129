//! Forwarding to the upstream: the request exactly as verified (method, request-target as
//! sent, the body bytes that were hashed, end-to-end headers), hop-by-hop headers removed,
//! then what the gateway adds; the response streamed back. A dead upstream is `502
//! upstream_unavailable`, a slow one `504 upstream_timeout`.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use jg_hmac::Error;
use jg_hmac::tower::{Authenticated, VerifiedBody};
use tower_service::Service;
use zeroize::Zeroizing;

use super::config::{Config, ScopeRule};
use super::identity;
use super::routes;
use super::{LOG_TARGET, now};

/// The hop-by-hop headers of RFC 9110 §7.6.1 (and the obsolete ones still seen), never
/// forwarded in either direction; and `Expect`, which the gateway has already answered by
/// reading the whole body.
const HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::PROXY_AUTHORIZATION,
    header::EXPECT,
];

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// The upstream and what forwarding needs: shared by every connection (cheap to clone).
#[derive(Clone)]
pub struct Upstream {
    inner: Arc<Shared>,
}

struct Shared {
    client: Client<HttpConnector, Body>,
    authority: http::uri::Authority,
    timeout: Duration,
    identity_key: Option<Zeroizing<Vec<u8>>>,
    scopes: Arc<[ScopeRule]>,
    body_limit: usize,
}

impl Upstream {
    pub fn new(config: &Config) -> Result<Self, String> {
        let authority = config
            .upstream
            .parse()
            .map_err(|e| format!("--upstream: {e}"))?;
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(config.upstream_timeout));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(connector);
        Ok(Self {
            inner: Arc::new(Shared {
                client,
                authority,
                timeout: config.upstream_timeout,
                identity_key: config.identity_key.clone(),
                scopes: Arc::clone(&config.scopes),
                body_limit: config.body_limit,
            }),
        })
    }

    /// Forwards an unsigned request to a `--public` route: no identity, and its body
    /// streamed (at most the body limit).
    pub async fn forward_public(&self, request: Request<Body>) -> Response<Body> {
        let request_id = super::fresh_request_id();
        let (mut parts, body) = request.into_parts();
        let declared = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|n| n > self.inner.body_limit as u64) {
            return refusal(Error::TooLarge(jg_hmac::LimitKind::Body), &request_id);
        }
        strip(&mut parts.headers);
        forwarded_for(&mut parts);
        let body = Body::new(http_body_util::Limited::new(body, self.inner.body_limit));
        self.send(Request::from_parts(parts, body), &request_id, None)
            .await
    }

    /// Forwards a verified request with the identity of its client.
    async fn forward_verified(&self, request: Request<VerifiedBody>) -> Response<Body> {
        let (mut parts, body) = request.into_parts();
        let Some(who) = parts.extensions.get::<Authenticated>().cloned() else {
            // Only the verifying layer calls this service; refuse rather than forward.
            return refusal(Error::NotConfigured, &super::fresh_request_id());
        };
        if let Some(scope) =
            routes::missing_scope(&self.inner.scopes, &parts.method, parts.uri.path(), |s| {
                who.credential().has_scope(s)
            })
        {
            let error = Error::InsufficientScope;
            tracing::info!(
                target: "jg_hmac::audit",
                request_id = who.request_id(),
                outcome = error.code(),
                status = error.status(),
                client_id = who.client_id(),
                key_id = who.key_id(),
                required_scope = scope,
                "request refused: the client lacks the route's scope"
            );
            metrics::counter!("jg_hmac_gateway_refusals_total", "code" => error.code())
                .increment(1);
            return refusal(error, who.request_id());
        }
        strip(&mut parts.headers);
        forwarded_for(&mut parts);
        let target = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
        if let Err(e) = identity::add(
            &mut parts.headers,
            &who,
            parts.method.as_str(),
            target,
            self.inner.identity_key.as_deref().map(Vec::as_slice),
            now(),
        ) {
            tracing::error!(target: LOG_TARGET, request_id = who.request_id(), error = %e, "cannot add the identity headers");
            return refusal(Error::NotConfigured, who.request_id());
        }
        self.send(
            Request::from_parts(parts, Body::new(body)),
            who.request_id(),
            Some(&who),
        )
        .await
    }

    async fn send(
        &self,
        request: Request<Body>,
        request_id: &str,
        who: Option<&Authenticated>,
    ) -> Response<Body> {
        let (mut parts, body) = request.into_parts();
        // HTTP/2 clients send :authority, not Host; the upstream speaks HTTP/1.1.
        if !parts.headers.contains_key(header::HOST)
            && let Some(authority) = parts.uri.authority()
            && let Ok(host) = HeaderValue::from_str(authority.as_str())
        {
            parts.headers.insert(header::HOST, host);
        }
        let mut uri = Uri::builder()
            .scheme("http")
            .authority(self.inner.authority.clone());
        if let Some(target) = parts.uri.path_and_query() {
            uri = uri.path_and_query(target.clone());
        }
        parts.uri = match uri.build() {
            Ok(uri) => uri,
            Err(_) => return refusal(Error::UpstreamUnavailable, request_id),
        };
        parts.version = http::Version::HTTP_11;
        let method = parts.method.clone();
        let path = parts.uri.path().to_owned();
        let call = self.inner.client.request(Request::from_parts(parts, body));
        let failure = match tokio::time::timeout(self.inner.timeout, call).await {
            Ok(Ok(response)) => {
                let (mut head, body) = response.into_parts();
                strip_hop_by_hop(&mut head.headers);
                return Response::from_parts(head, Body::new(body));
            }
            Ok(Err(e)) => (Error::UpstreamUnavailable, e.to_string()),
            Err(_) => (
                Error::UpstreamTimeout,
                format!("no response head within {:?}", self.inner.timeout),
            ),
        };
        let (error, reason) = failure;
        tracing::warn!(
            target: "jg_hmac::audit",
            request_id,
            outcome = error.code(),
            status = error.status(),
            client_id = who.map_or("-", Authenticated::client_id),
            method = method.as_str(),
            path = path.get(..256).unwrap_or(&path),
            reason = %reason,
            "upstream failed"
        );
        metrics::counter!("jg_hmac_gateway_upstream_errors_total", "code" => error.code())
            .increment(1);
        refusal(error, request_id)
    }
}

impl Service<Request<VerifiedBody>> for Upstream {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<VerifiedBody>) -> Self::Future {
        let upstream = self.clone();
        Box::pin(async move { Ok(upstream.forward_verified(request).await) })
    }
}

/// Removes every hop-by-hop header (those the `Connection` header names first), then
/// every identity header a client may have sent: only the gateway sets those, after this.
fn strip(headers: &mut HeaderMap) {
    strip_hop_by_hop(headers);
    for name in identity::HEADERS {
        headers.remove(name);
    }
}

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|token| HeaderName::from_bytes(token.trim().as_bytes()).ok())
        .collect();
    for name in named.iter().chain(HOP_BY_HOP.iter()) {
        headers.remove(name);
    }
}

/// Appends the client's address to `X-Forwarded-For` and `http` to `X-Forwarded-Proto`.
fn forwarded_for(parts: &mut http::request::Parts) {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip().to_string());
    if let Some(peer) = peer {
        append(&mut parts.headers, X_FORWARDED_FOR, &peer);
    }
    append(&mut parts.headers, X_FORWARDED_PROTO, "http");
}

fn append(headers: &mut HeaderMap, name: HeaderName, value: &str) {
    let mut joined = String::new();
    for previous in headers.get_all(&name) {
        // A value that is not text is dropped rather than forwarded half-read.
        if let Ok(previous) = previous.to_str() {
            joined.push_str(previous);
            joined.push_str(", ");
        }
    }
    joined.push_str(value);
    if let Ok(joined) = HeaderValue::from_str(&joined) {
        headers.insert(name, joined);
    }
}

/// The seed's JSON error response, as the verifying layer answers.
pub fn refusal(error: Error, request_id: &str) -> Response<Body> {
    let mut response = Response::new(Body::from(error.to_json_body(request_id, now())));
    *response.status_mut() =
        StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(id) = HeaderValue::from_str(request_id) {
        headers.insert(HeaderName::from_static("x-request-id"), id);
    }
    response
}
