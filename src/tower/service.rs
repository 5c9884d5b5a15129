//! The verifying [`Service`]: one pass over each request, from its head to the inner
//! service's response.

use std::fmt;
use std::mem;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderName, HeaderValue, Request, Response, StatusCode, header};
use http_body::Body;
use http_body_util::{Either, Full};
use tower_service::Service;

use crate::credential::Credential;
use crate::diagnose::{Diagnosis, Received, diagnose_key};
use crate::error::{Error, LimitKind};
use crate::headers::AuthHeaders;
use crate::signature::ContentHash;
use crate::target::Target;
use crate::verifier::{Prepared, Verified};

use super::audit::{self, Event};
use super::body::{BodyError, read_to_limit};
use super::future::{ResponseBody, ResponseFuture};
use super::identity::Authenticated;
use super::layer::Shared;
#[cfg(feature = "metrics")]
use super::metrics::Observation;
use super::refusal::{Diagnostics, Refusal, RefusalCause};
use super::replay::{AsyncReplayGuard, NoReplayGuard};
use super::store::{CredentialStore, StoreError};
use super::target::sent_uri;
use crate::Environment;

/// The body type the layer hands to the inner service: the bytes received, in one piece.
///
/// ```
/// use http_body_util::BodyExt;
/// async fn handler(req: http::Request<jg_hmac::tower::VerifiedBody>) -> usize {
///     // The exact bytes that were verified.
///     req.into_body().collect().await.map(|b| b.to_bytes().len()).unwrap_or(0)
/// }
/// ```
pub type VerifiedBody = Full<Bytes>;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The [`Service`] made by [`VerifyLayer`](super::VerifyLayer): verifies, then calls
/// `inner`.
///
/// ```
/// use jg_hmac::tower::{InMemoryCredentialStore, VerifyLayer};
/// use tower_layer::Layer;
/// let service = VerifyLayer::new(InMemoryCredentialStore::new()).layer(());
/// assert_eq!(service.get_ref(), &());
/// ```
pub struct Verify<I, S, R = NoReplayGuard> {
    inner: I,
    shared: Arc<Shared<S, R>>,
}

impl<I, S, R> Verify<I, S, R> {
    pub(super) fn new(inner: I, shared: Arc<Shared<S, R>>) -> Self {
        Self { inner, shared }
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

impl<I: Clone, S, R> Clone for Verify<I, S, R> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<I: fmt::Debug, S, R> fmt::Debug for Verify<I, S, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verify")
            .field("inner", &self.inner)
            .field("settings", &*self.shared)
            .finish()
    }
}

impl<I, S, R, ReqBody, ResBody> Service<Request<ReqBody>> for Verify<I, S, R>
where
    I: Service<Request<VerifiedBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    I::Future: Send + 'static,
    I::Error: Send + 'static,
    S: CredentialStore,
    R: AsyncReplayGuard,
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
        let shared = Arc::clone(&self.shared);
        ResponseFuture::new(Box::pin(shared.serve(inner, request)))
    }
}

impl<S: CredentialStore, R: AsyncReplayGuard> Shared<S, R> {
    /// Verifies, then calls `inner` with the verified bytes and an [`Authenticated`].
    async fn serve<I, B, ResBody>(
        self: Arc<Self>,
        mut inner: I,
        request: Request<B>,
    ) -> Result<Response<ResponseBody<ResBody>>, I::Error>
    where
        I: Service<Request<VerifiedBody>, Response = Response<ResBody>>,
        B: Body,
        B::Error: Into<BoxError>,
    {
        // Latency is measured only for an audit event that something records (or metrics).
        let started = (cfg!(feature = "metrics") || audit::enabled()).then(Instant::now);
        let (mut parts, body) = request.into_parts();
        let request_id = audit::request_id(parts.headers.get(&audit::X_REQUEST_ID));
        let (verified, bytes, now) = match self.authenticate(&parts, body).await {
            Ok(done) => done,
            Err(refusal) => {
                #[cfg(feature = "metrics")]
                self.observe_refusal(&refusal, started);
                let response = self.refuse(&parts, &request_id, started, refusal);
                return Ok(response.map(Either::Right));
            }
        };
        let skew = skew(now, verified.timestamp());
        #[cfg(feature = "metrics")]
        self.metrics.record(&Observation {
            outcome: "accepted",
            client_id: Some(verified.client_id()),
            key_id: Some(verified.key_id()),
            skew: Some(skew),
            elapsed: started.map(|t| t.elapsed()),
        });
        let skew_warning = self
            .skew_warning
            .is_some_and(|threshold| skew.unsigned_abs() > threshold)
            .then_some(skew);
        let who = Authenticated::new(verified, request_id.clone());
        parts.extensions.insert(who.clone());
        let method = parts.method.clone();
        // The inner service takes the request: keep the path as sent for the audit event,
        // if anything records it.
        let sent = audit::enabled()
            .then(|| sent_uri(&parts).path_and_query().cloned())
            .flatten();
        let result = inner
            .call(Request::from_parts(parts, Full::new(bytes)))
            .await;
        let status = result
            .as_ref()
            .map_or(StatusCode::INTERNAL_SERVER_ERROR, Response::status);
        Event {
            request_id: &request_id,
            outcome: "accepted",
            status: status.as_u16(),
            client_id: Some(who.client_id()),
            method: method.as_str(),
            path: sent.as_ref().map_or("", http::uri::PathAndQuery::path),
            key_id: Some(who.key_id()),
            sig: Some(who.verified().signature()),
            clock_skew: skew_warning,
            latency: started.map(|t| t.elapsed()).unwrap_or_default(),
            store_error: None,
        }
        .emit();
        result.map(|mut response| {
            if let Some(skew) = skew_warning {
                response
                    .headers_mut()
                    .insert(X_JG_CLOCK_SKEW, HeaderValue::from(skew));
            }
            response.map(Either::Left)
        })
    }

    /// The credential store's answer for `client_id`, timed for the metrics.
    async fn lookup(&self, client_id: &str) -> Result<Option<Arc<Credential>>, StoreError> {
        #[cfg(feature = "metrics")]
        let started = Instant::now();
        let found = self.store.get(client_id).await;
        #[cfg(feature = "metrics")]
        self.metrics.lookup(started.elapsed(), found.is_err());
        found
    }

    /// Records a refusal in the metrics: under its client id only if the credential store
    /// knows that id, from this request's lookup or, for a request refused on its head
    /// alone (no lookup is made for those), from an earlier one; else as `unknown`.
    #[cfg(feature = "metrics")]
    fn observe_refusal(&self, refusal: &Refusal<'_>, started: Option<Instant>) {
        let known = match (refusal.client_id, refusal.known) {
            (Some(_), Some(known)) => known,
            (Some(id), None) => self.metrics.knows(id),
            (None, _) => false,
        };
        self.metrics.record(&Observation {
            outcome: refusal.failure.code(),
            client_id: refusal.client_id.filter(|_| known),
            key_id: None,
            skew: refusal.timestamp.map(|ts| skew(refusal.now, ts)),
            elapsed: started.map(|t| t.elapsed()),
        });
    }

    /// Every check, in one pass: the head against the clock on arrival, then the lookup,
    /// the body, and the decision against the clock once the body is complete. Returns
    /// the identity, the body bytes and the time of the decision.
    async fn authenticate<'p, B>(
        &self,
        parts: &'p Parts,
        body: B,
    ) -> Result<(Verified, Bytes, u64), Refusal<'p>>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        let arrived = self.clock.now();
        let headers = AuthHeaders::from_header_map(&parts.headers);
        let target = Target::from_uri(sent_uri(parts));
        let prepared = self
            .verifier
            .prepare(parts.method.as_str(), target, &headers, arrived)
            .map_err(|e| Refusal {
                client_id: claimed_client_id(parts),
                timestamp: sent_timestamp(parts),
                ..Refusal::new(RefusalCause::Auth(e), arrived)
            })?;
        let refuse = |failure, now| Refusal {
            client_id: Some(prepared.client_id()),
            timestamp: Some(prepared.timestamp()),
            sig: Some(*prepared.signature()),
            ..Refusal::new(failure, now)
        };

        // A client id of another environment is answered like an unknown one.
        let other_env = self
            .environment
            .is_some_and(|env| Environment::of(prepared.client_id()) != Some(env));
        let credential = if other_env {
            None
        } else {
            if declared_length(parts).is_some_and(|len| len > self.body_limit as u64) {
                return Err(refuse(
                    RefusalCause::Auth(Error::TooLarge(LimitKind::Body)),
                    arrived,
                ));
            }
            match self.lookup(prepared.client_id()).await {
                Ok(credential) => credential,
                Err(e) => {
                    return Err(Refusal {
                        store_error: Some(e),
                        ..refuse(RefusalCause::StoreUnavailable, arrived)
                    });
                }
            }
        };
        let known = credential.is_some();
        let refuse = |failure, now| Refusal {
            known: Some(known),
            ..refuse(failure, now)
        };
        self.verifier
            .check_client(&prepared, credential.as_deref(), arrived)
            .map_err(|e| refuse(RefusalCause::Auth(e), arrived))?;

        let bytes = read_to_limit(body, self.body_limit).await.map_err(|e| {
            let failure = match e {
                BodyError::TooLarge => RefusalCause::Auth(Error::TooLarge(LimitKind::Body)),
                BodyError::Unreadable => RefusalCause::BodyUnreadable,
            };
            refuse(failure, self.clock.now())
        })?;

        // The request is complete: every decision from here is taken at this time.
        let now = self.clock.now();
        let content = ContentHash::of(&bytes);
        let kept = self.diagnostics.then(|| credential.clone()).flatten();
        let verified = self
            .verifier
            .finish(&prepared, credential, &content, now)
            .map_err(|e| {
                let diagnostics =
                    (self.diagnostics && e == Error::InvalidSignature).then(|| Diagnostics {
                        string_to_sign: prepared.string_to_sign(&content),
                        hint: kept
                            .as_deref()
                            .and_then(|c| hint(c, parts, &prepared, &bytes, now)),
                    });
                Refusal {
                    diagnostics,
                    ..refuse(RefusalCause::Auth(e), now)
                }
            })?;
        let expires_at = prepared
            .timestamp()
            .saturating_add(self.verifier.replay_horizon());
        self.guard
            .check_and_record(prepared.client_id(), prepared.signature(), expires_at, now)
            .await
            .map_err(|e| refuse(RefusalCause::Auth(e), now))?;
        Ok((verified, bytes, now))
    }

    /// Emits the audit event of a refusal and builds its response.
    fn refuse(
        &self,
        parts: &Parts,
        request_id: &str,
        started: Option<Instant>,
        refusal: Refusal<'_>,
    ) -> Response<Full<Bytes>> {
        let response =
            refusal
                .failure
                .response(request_id, refusal.now, refusal.diagnostics.as_ref());
        Event {
            request_id,
            outcome: refusal.failure.code(),
            status: response.status().as_u16(),
            client_id: refusal.client_id,
            method: parts.method.as_str(),
            path: sent_uri(parts).path(),
            key_id: None,
            sig: refusal.sig.as_ref(),
            clock_skew: None,
            latency: started.map(|t| t.elapsed()).unwrap_or_default(),
            store_error: refusal.store_error.as_ref().map(|e| e as &dyn fmt::Display),
        }
        .emit();
        response
    }
}

/// The code of the typical partner mistake that reproduces the sent signature under the
/// first key active at `now` (sandbox diagnostics only; never part of the decision).
fn hint(
    credential: &Credential,
    parts: &Parts,
    prepared: &Prepared<'_>,
    body: &[u8],
    now: u64,
) -> Option<&'static str> {
    let key = credential.keys().iter().find(|k| k.is_active_at(now))?;
    let timestamp = parts.headers.get("x-timestamp")?.to_str().ok()?;
    let target = Target::from_uri(sent_uri(parts));
    let received = Received::new(parts.method.as_str(), target, timestamp, body);
    match diagnose_key(key, &received, prepared.signature()) {
        Diagnosis::None | Diagnosis::Unknown => None,
        found => Some(found.code()),
    }
}

/// The response header of the clock-skew early warning.
const X_JG_CLOCK_SKEW: HeaderName = HeaderName::from_static("x-jg-clock-skew");

/// Server time minus the request's timestamp, in seconds (positive: the client's clock is
/// behind), saturated at the ends of `i64`.
fn skew(now: u64, timestamp: u64) -> i64 {
    let difference = i128::from(now) - i128::from(timestamp);
    i64::try_from(difference).unwrap_or(if difference < 0 { i64::MIN } else { i64::MAX })
}

/// The `X-Timestamp` of a request refused before it was prepared, if it has exactly one
/// that parses.
fn sent_timestamp(parts: &Parts) -> Option<u64> {
    let mut values = parts.headers.get_all("x-timestamp").iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    crate::verifier::parse_timestamp(value.as_bytes()).ok()
}

/// The client id a refused request claimed, for the audit log only: one value, visible
/// ASCII, at most 128 bytes; else none.
fn claimed_client_id(parts: &Parts) -> Option<&str> {
    let mut values = parts
        .headers
        .get_all("x-client-id")
        .iter()
        .chain(parts.headers.get_all("x-access-key"));
    let value = values.next()?;
    crate::client_id::is_well_formed(value.as_bytes(), crate::client_id::MAX_LEN)
        .then(|| value.to_str().ok())
        .flatten()
}

/// `Content-Length` as declared, when it is one number.
fn declared_length(parts: &Parts) -> Option<u64> {
    let mut values = parts.headers.get_all(header::CONTENT_LENGTH).iter();
    let first = values.next()?;
    if values.next().is_some() {
        return None;
    }
    first.to_str().ok()?.trim().parse().ok()
}
