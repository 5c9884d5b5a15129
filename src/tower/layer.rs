//! The verifying `Layer`, its `Service` and its response future.

use std::fmt;
use std::future::Future;
use std::mem;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body::Body;
use http_body_util::{BodyExt, Either, Full, LengthLimitError, Limited};
use tower_layer::Layer;
use tower_service::Service;

use crate::clock::{Clock, SystemClock};
use crate::credential::Credential;
use crate::error::{Error, LimitKind, json_error_body, push_json_string};
use crate::signature::{ContentHash, Signature};
use crate::verifier::{Verified, Verifier};

use super::audit::{self, Event};
use super::identity::Authenticated;
use super::replay::{AsyncReplayGuard, NoReplayGuard};
use super::store::{CredentialStore, Environment, StoreError};

/// Default largest body the layer reads: 1 MiB. Larger is `413 request_too_large`.
///
/// ```
/// assert_eq!(jg_hmac::tower::DEFAULT_BODY_LIMIT, 1 << 20);
/// ```
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

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

/// The layer's response body: the inner service's, or the layer's JSON error body.
///
/// ```
/// type Body = jg_hmac::tower::ResponseBody<http_body_util::Full<bytes::Bytes>>;
/// let error_body: Body = http_body_util::Either::Right(http_body_util::Full::default());
/// # let _ = error_body;
/// ```
pub type ResponseBody<B> = Either<B, Full<Bytes>>;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A tower [`Layer`] that verifies JG-HMAC-SHA256 signatures before the inner service
/// runs.
///
/// For each request, in this order:
/// 1. **Headers only, body unread:** missing or malformed auth headers, content type not
///    in the allow-list, timestamp out of window, query too large (all from
///    [`Verifier::prepare`]), client id of the wrong [`Environment`], a declared
///    `Content-Length` above the body limit; then the [`CredentialStore`] lookup: an
///    unknown or revoked client (or one without an active key) is refused here too,
///    unless the verifier [hides unknown clients](Verifier::with_hidden_unknown_clients),
///    in which case the body is read and the answer is `invalid_signature`.
/// 2. **Body:** read up to the limit ([`DEFAULT_BODY_LIMIT`]); more is `413`.
/// 3. **Signature** over the exact bytes, against every active key of the credential.
/// 4. **Replay guard**, if one is set: a signature is accepted once.
/// 5. The inner service gets the request with the same bytes as body and an
///    [`Authenticated`] in its extensions.
///
/// A refusal answers the seed's JSON error body (`status`, `error`, `message`,
/// `requestId`, `timestamp`) with the status of [`Error::status`], `Content-Type:
/// application/json` and `X-Request-Id`. A store that fails answers `503
/// credential_store_unavailable`; an unreadable body `400 malformed_body`. Each request
/// emits one audit event (see [`AUDIT_TARGET`](super::AUDIT_TARGET)).
///
/// Cloning is cheap (one `Arc`): the store, the replay guard and the settings are shared
/// by every route and connection the layer wraps.
///
/// ```
/// use axum::{Router, routing::post};
/// use jg_hmac::{Credential, InMemoryReplayGuard, Secret};
/// use jg_hmac::tower::{Authenticated, Environment, InMemoryCredentialStore, VerifyLayer};
///
/// let store = InMemoryCredentialStore::from_credentials([Credential::new("jk_live_example")
///     .with_secret(&Secret::from("s3cr3t_test_key_justgold"))
///     .with_scope("transactions:write")]);
///
/// // The one line: every route above it is verified.
/// let app: Router = Router::new()
///     .route("/v1/transactions/buy", post(|who: Authenticated| async move { who.client_id().to_owned() }))
///     .layer(VerifyLayer::new(store.clone()));
///
/// // With every setting:
/// let layer = VerifyLayer::builder(store)
///     .content_types(["application/json"])
///     .body_limit(64 * 1024)
///     .environment(Environment::Live)
///     .replay_guard(InMemoryReplayGuard::new(300_000))
///     .build();
/// # let _ = (app, layer);
/// ```
pub struct VerifyLayer<S, R = NoReplayGuard> {
    shared: Arc<Shared<S, R>>,
}

struct Shared<S, R> {
    store: S,
    guard: R,
    verifier: Verifier,
    clock: Box<dyn Clock>,
    body_limit: usize,
    environment: Option<Environment>,
    diagnostics: bool,
}

impl<S: CredentialStore> VerifyLayer<S> {
    /// A layer with the defaults: [`Verifier::new`] (±300 s), the system clock, a 1 MiB
    /// body limit, any environment, no replay guard, no diagnostics.
    ///
    /// ```
    /// let layer = jg_hmac::tower::VerifyLayer::new(jg_hmac::tower::InMemoryCredentialStore::new());
    /// # let _ = layer;
    /// ```
    pub fn new(store: S) -> Self {
        Self::builder(store).build()
    }

    /// A builder starting from the defaults of [`VerifyLayer::new`].
    ///
    /// ```
    /// let layer = jg_hmac::tower::VerifyLayer::builder(jg_hmac::tower::InMemoryCredentialStore::new())
    ///     .body_limit(4096)
    ///     .build();
    /// # let _ = layer;
    /// ```
    pub fn builder(store: S) -> VerifyLayerBuilder<S> {
        VerifyLayerBuilder {
            store,
            guard: NoReplayGuard,
            verifier: Verifier::new(),
            clock: Box::new(SystemClock),
            body_limit: DEFAULT_BODY_LIMIT,
            environment: None,
            diagnostics: false,
        }
    }
}

impl<S, R> VerifyLayer<S, R> {
    /// The credential store.
    ///
    /// ```
    /// let store = jg_hmac::tower::InMemoryCredentialStore::new();
    /// let layer = jg_hmac::tower::VerifyLayer::new(store);
    /// assert!(layer.store().is_empty());
    /// ```
    pub fn store(&self) -> &S {
        &self.shared.store
    }

    /// The replay guard.
    ///
    /// ```
    /// let layer = jg_hmac::tower::VerifyLayer::builder(jg_hmac::tower::InMemoryCredentialStore::new())
    ///     .replay_guard(jg_hmac::InMemoryReplayGuard::new(10))
    ///     .build();
    /// assert!(layer.replay_guard().is_empty());
    /// ```
    pub fn replay_guard(&self) -> &R {
        &self.shared.guard
    }
}

impl<S, R> Clone for VerifyLayer<S, R> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S, R> fmt::Debug for VerifyLayer<S, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyLayer")
            .field("settings", &*self.shared)
            .finish()
    }
}

impl<S, R> fmt::Debug for Shared<S, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("verifier", &self.verifier)
            .field("body_limit", &self.body_limit)
            .field("environment", &self.environment)
            .field("diagnostics", &self.diagnostics)
            .finish_non_exhaustive()
    }
}

/// Settings of a [`VerifyLayer`]; each method documents its default.
///
/// ```
/// use jg_hmac::{FixedClock, Verifier};
/// use jg_hmac::tower::{InMemoryCredentialStore, VerifyLayer};
/// let layer = VerifyLayer::builder(InMemoryCredentialStore::new())
///     .verifier(Verifier::new().with_window(120).with_access_key_alias(false))
///     .clock(FixedClock(1_735_550_160))
///     .sandbox_diagnostics(true)
///     .build();
/// # let _ = layer;
/// ```
pub struct VerifyLayerBuilder<S, R = NoReplayGuard> {
    store: S,
    guard: R,
    verifier: Verifier,
    clock: Box<dyn Clock>,
    body_limit: usize,
    environment: Option<Environment>,
    diagnostics: bool,
}

impl<S, R> fmt::Debug for VerifyLayerBuilder<S, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyLayerBuilder")
            .field("verifier", &self.verifier)
            .field("body_limit", &self.body_limit)
            .field("environment", &self.environment)
            .field("diagnostics", &self.diagnostics)
            .finish_non_exhaustive()
    }
}

impl<S: CredentialStore, R: AsyncReplayGuard> VerifyLayerBuilder<S, R> {
    /// The verifier: window, `X-Access-Key` alias, content types, hidden unknown clients,
    /// query limits. Defaults to [`Verifier::new`]. It replaces the whole verifier, so
    /// call it before [`content_types`](Self::content_types).
    ///
    /// ```
    /// let layer = jg_hmac::tower::VerifyLayer::builder(jg_hmac::tower::InMemoryCredentialStore::new())
    ///     .verifier(jg_hmac::Verifier::new().with_hidden_unknown_clients(true))
    ///     .build();
    /// # let _ = layer;
    /// ```
    #[must_use]
    pub fn verifier(mut self, verifier: Verifier) -> Self {
        self.verifier = verifier;
        self
    }

    /// Allows only these media types (shorthand for the verifier's
    /// [`with_content_types`](Verifier::with_content_types)); anything else is
    /// `415 unsupported_content_type`. Defaults to any.
    ///
    /// ```
    /// let layer = jg_hmac::tower::VerifyLayer::builder(jg_hmac::tower::InMemoryCredentialStore::new())
    ///     .content_types(["application/json"])
    ///     .build();
    /// # let _ = layer;
    /// ```
    #[must_use]
    pub fn content_types<I, T>(mut self, types: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        self.verifier = self.verifier.with_content_types(types);
        self
    }

    /// The clock requests are checked against. Defaults to [`SystemClock`]; tests inject
    /// one (a closure returning `u64` is a clock).
    ///
    /// ```
    /// use std::sync::{Arc, atomic::{AtomicU64, Ordering}};
    /// let now = Arc::new(AtomicU64::new(1_735_550_160));
    /// let clock = { let now = now.clone(); move || now.load(Ordering::SeqCst) };
    /// let layer = jg_hmac::tower::VerifyLayer::builder(jg_hmac::tower::InMemoryCredentialStore::new())
    ///     .clock(clock)
    ///     .build();
    /// # let _ = layer;
    /// ```
    #[must_use]
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Box::new(clock);
        self
    }

    /// The largest body read, in bytes; larger is `413 request_too_large`, answered
    /// before reading when `Content-Length` says so. Defaults to [`DEFAULT_BODY_LIMIT`]
    /// (1 MiB). The whole body is held in memory: the limit bounds memory per request.
    ///
    /// ```
    /// let layer = jg_hmac::tower::VerifyLayer::builder(jg_hmac::tower::InMemoryCredentialStore::new())
    ///     .body_limit(16 * 1024)
    ///     .build();
    /// # let _ = layer;
    /// ```
    #[must_use]
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// Accepts only client ids of this environment (`jk_live_…` for
    /// [`Environment::Live`]); others, and ids with no environment prefix, are refused as
    /// `client_id` before any lookup. Defaults to any client id.
    ///
    /// ```
    /// use jg_hmac::tower::{Environment, InMemoryCredentialStore, VerifyLayer};
    /// let layer = VerifyLayer::builder(InMemoryCredentialStore::new()).environment(Environment::Live).build();
    /// # let _ = layer;
    /// ```
    #[must_use]
    pub fn environment(mut self, environment: Environment) -> Self {
        self.environment = Some(environment);
        self
    }

    /// The replay guard: each verified signature is accepted once within the window.
    /// Defaults to [`NoReplayGuard`]. An [`InMemoryReplayGuard`](crate::InMemoryReplayGuard)
    /// protects one instance; a fleet needs a shared [`AsyncReplayGuard`].
    ///
    /// ```
    /// let layer = jg_hmac::tower::VerifyLayer::builder(jg_hmac::tower::InMemoryCredentialStore::new())
    ///     .replay_guard(jg_hmac::InMemoryReplayGuard::new(300_000))
    ///     .build();
    /// # let _ = layer;
    /// ```
    #[must_use]
    pub fn replay_guard<G: AsyncReplayGuard>(self, guard: G) -> VerifyLayerBuilder<S, G> {
        VerifyLayerBuilder {
            store: self.store,
            guard,
            verifier: self.verifier,
            clock: self.clock,
            body_limit: self.body_limit,
            environment: self.environment,
            diagnostics: self.diagnostics,
        }
    }

    /// Sandbox diagnostics: on `invalid_signature` the error body also carries
    /// `stringToSign`, the string the server computed (as AWS SigV4 does), so a partner
    /// can diff it against theirs. It holds no secret, only what the request said and
    /// the hash of the body received. Defaults to `false`; meant for sandbox services.
    ///
    /// ```
    /// let layer = jg_hmac::tower::VerifyLayer::builder(jg_hmac::tower::InMemoryCredentialStore::new())
    ///     .sandbox_diagnostics(true)
    ///     .build();
    /// # let _ = layer;
    /// ```
    #[must_use]
    pub fn sandbox_diagnostics(mut self, enabled: bool) -> Self {
        self.diagnostics = enabled;
        self
    }

    /// The layer.
    ///
    /// ```
    /// let layer = jg_hmac::tower::VerifyLayer::builder(jg_hmac::tower::InMemoryCredentialStore::new()).build();
    /// # let _ = layer;
    /// ```
    pub fn build(self) -> VerifyLayer<S, R> {
        VerifyLayer {
            shared: Arc::new(Shared {
                store: self.store,
                guard: self.guard,
                verifier: self.verifier,
                clock: self.clock,
                body_limit: self.body_limit,
                environment: self.environment,
                diagnostics: self.diagnostics,
            }),
        }
    }
}

impl<I, S, R> Layer<I> for VerifyLayer<S, R> {
    type Service = Verify<I, S, R>;

    fn layer(&self, inner: I) -> Self::Service {
        Verify {
            inner,
            shared: Arc::clone(&self.shared),
        }
    }
}

/// The [`Service`] made by [`VerifyLayer`]: verifies, then calls `inner`.
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
        let started = Instant::now();
        let shared = Arc::clone(&self.shared);
        let now = shared.clock.now();
        let request_id = audit::request_id(request.headers().get("x-request-id"));
        let (parts, body) = request.into_parts();
        match shared.check_headers(&parts, now) {
            Err(refusal) => {
                let response = shared.refuse(&parts, &request_id, now, started, refusal);
                ResponseFuture::ready(Ok(response.map(Either::Right)))
            }
            Ok(checked) => {
                // Use the service that was polled ready; leave a fresh clone in its place.
                let clone = self.inner.clone();
                let inner = mem::replace(&mut self.inner, clone);
                ResponseFuture::boxed(Box::pin(
                    shared.finish(inner, parts, body, checked, request_id, now, started),
                ))
            }
        }
    }
}

/// What the header checks learnt: owned, so the request parts can move into the future.
struct Checked {
    client_id: String,
    signature: Signature,
    timestamp: u64,
    /// The client id cannot be accepted (wrong environment) but unknown clients are
    /// hidden: go on as if the store had no credential.
    known_unknown: bool,
}

/// Why a request was refused, with what the audit event says about it.
struct Refusal<'a> {
    failure: Failure,
    client_id: Option<&'a str>,
    sig: Option<String>,
    string_to_sign: Option<String>,
    store_error: Option<StoreError>,
}

impl<'a> Refusal<'a> {
    fn new(failure: Failure) -> Self {
        Self {
            failure,
            client_id: None,
            sig: None,
            string_to_sign: None,
            store_error: None,
        }
    }

    fn of(failure: Failure, checked: &'a Checked) -> Self {
        Self {
            client_id: Some(&checked.client_id),
            sig: Some(checked.signature.short_hex()),
            ..Self::new(failure)
        }
    }
}

impl<S: CredentialStore, R: AsyncReplayGuard> Shared<S, R> {
    /// Everything decided from the head of the request, before any I/O.
    fn check_headers<'p>(&self, parts: &'p Parts, now: u64) -> Result<Checked, Refusal<'p>> {
        let prepared = self
            .verifier
            .prepare_parts(parts, now)
            .map_err(|e| Refusal {
                client_id: claimed_client_id(parts),
                ..Refusal::new(Failure::Auth(e))
            })?;
        let checked = Checked {
            client_id: prepared.client_id().to_owned(),
            signature: *prepared.signature(),
            timestamp: prepared.timestamp(),
            known_unknown: false,
        };
        let wrong_env = self
            .environment
            .is_some_and(|env| Environment::of(&checked.client_id) != Some(env));
        if wrong_env {
            if !self.verifier.hides_unknown_clients() {
                return Err(Refusal {
                    client_id: Some(prepared.client_id()),
                    sig: Some(checked.signature.short_hex()),
                    ..Refusal::new(Failure::Auth(Error::UnknownClient))
                });
            }
            return Ok(Checked {
                known_unknown: true,
                ..checked
            });
        }
        if declared_length(parts).is_some_and(|len| len > self.body_limit as u64) {
            return Err(Refusal {
                client_id: Some(prepared.client_id()),
                sig: Some(checked.signature.short_hex()),
                ..Refusal::new(Failure::Auth(Error::TooLarge(LimitKind::Body)))
            });
        }
        Ok(checked)
    }

    /// The rest, after the header checks passed: lookup, body, signature, replay, inner.
    #[allow(clippy::too_many_arguments)]
    async fn finish<I, B, ResBody>(
        self: Arc<Self>,
        mut inner: I,
        mut parts: Parts,
        body: B,
        checked: Checked,
        request_id: String,
        now: u64,
        started: Instant,
    ) -> Result<Response<ResponseBody<ResBody>>, I::Error>
    where
        I: Service<Request<VerifiedBody>, Response = Response<ResBody>>,
        B: Body,
        B::Error: Into<BoxError>,
    {
        let verified = match self.authenticate(&parts, body, &checked, now).await {
            Ok(verified) => verified,
            Err(refusal) => {
                let response = self.refuse(&parts, &request_id, now, started, refusal);
                return Ok(response.map(Either::Right));
            }
        };
        let (credential, key_index, bytes) = verified;
        let request_id: Arc<str> = request_id.into();
        let who = Authenticated::new(
            Verified::new(credential, key_index, checked.timestamp, checked.signature),
            Arc::clone(&request_id),
        );
        parts.extensions.insert(who.clone());
        let method = parts.method.clone();
        let uri = parts.uri.clone();
        let result = inner
            .call(Request::from_parts(parts, Full::new(bytes)))
            .await;
        let status = result
            .as_ref()
            .map_or(StatusCode::INTERNAL_SERVER_ERROR, Response::status);
        let sig = checked.signature.short_hex();
        Event {
            request_id: &request_id,
            outcome: "accepted",
            status: status.as_u16(),
            client_id: Some(who.client_id()),
            method: method.as_str(),
            path: uri.path(),
            key_id: Some(who.key_id()),
            sig: Some(&sig),
            latency: started.elapsed(),
            store_error: None,
        }
        .emit();
        result.map(|response| response.map(Either::Left))
    }

    /// Lookup, body, signature and replay: the credential, the key that matched and the
    /// body bytes.
    async fn authenticate<'c, B>(
        &self,
        parts: &Parts,
        body: B,
        checked: &'c Checked,
        now: u64,
    ) -> Result<(Arc<Credential>, usize, Bytes), Refusal<'c>>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        let refuse = |failure| Refusal::of(failure, checked);
        let credential = if checked.known_unknown {
            None
        } else {
            match self.store.get(&checked.client_id).await {
                Ok(credential) => credential,
                Err(e) => {
                    return Err(Refusal {
                        store_error: Some(e),
                        ..refuse(Failure::StoreUnavailable)
                    });
                }
            }
        };
        let usable = credential.as_deref().is_some_and(|c| {
            c.client_id() == checked.client_id && c.keys().iter().any(|k| k.is_active_at(now))
        });
        if !usable && !self.verifier.hides_unknown_clients() {
            return Err(refuse(Failure::Auth(Error::UnknownClient)));
        }

        let bytes = match Limited::new(body, self.body_limit).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) if e.is::<LengthLimitError>() => {
                return Err(refuse(Failure::Auth(Error::TooLarge(LimitKind::Body))));
            }
            Err(_) => return Err(refuse(Failure::BodyUnreadable)),
        };
        let content = ContentHash::of(&bytes);

        // Preparing again is cheap and allocation-free; it cannot fail differently.
        let prepared = self
            .verifier
            .prepare_parts(parts, now)
            .map_err(|e| refuse(Failure::Auth(e)))?;
        let key_index = match self
            .verifier
            .finish(&prepared, credential.as_deref(), &content)
        {
            Ok(key) => credential
                .as_deref()
                .and_then(|c| c.keys().iter().position(|k| core::ptr::eq(k, key))),
            Err(e) => {
                let string_to_sign = (self.diagnostics && e == Error::InvalidSignature)
                    .then(|| prepared.string_to_sign(&content));
                return Err(Refusal {
                    string_to_sign,
                    ..refuse(Failure::Auth(e))
                });
            }
        };
        let (Some(credential), Some(key_index)) = (credential, key_index) else {
            return Err(refuse(Failure::Auth(Error::InvalidSignature)));
        };

        let expires_at = checked
            .timestamp
            .saturating_add(self.verifier.replay_horizon());
        self.guard
            .check_and_record(&checked.client_id, &checked.signature, expires_at, now)
            .await
            .map_err(|e| refuse(Failure::Auth(e)))?;
        Ok((credential, key_index, bytes))
    }

    /// Emits the audit event of a refusal and builds its response.
    fn refuse(
        &self,
        parts: &Parts,
        request_id: &str,
        now: u64,
        started: Instant,
        refusal: Refusal<'_>,
    ) -> Response<Full<Bytes>> {
        let response = refusal
            .failure
            .response(request_id, now, refusal.string_to_sign.as_deref());
        Event {
            request_id,
            outcome: refusal.failure.code(),
            status: response.status().as_u16(),
            client_id: refusal.client_id,
            method: parts.method.as_str(),
            path: parts.uri.path(),
            key_id: None,
            sig: refusal.sig.as_deref(),
            latency: started.elapsed(),
            store_error: refusal.store_error.as_ref().map(|e| e as &dyn fmt::Display),
        }
        .emit();
        response
    }
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
    let bytes = value.as_bytes();
    let sane = !bytes.is_empty()
        && bytes.len() <= audit::MAX_REQUEST_ID_LEN
        && crate::swar::is_visible_ascii(bytes);
    if sane { value.to_str().ok() } else { None }
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

/// Every reason the layer refuses a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The core's verdict.
    Auth(Error),
    /// The credential store failed: 503.
    StoreUnavailable,
    /// The body could not be read (the connection broke, bad chunked encoding): 400.
    BodyUnreadable,
    /// The extractor ran without the layer: 500.
    #[cfg_attr(not(feature = "axum"), allow(dead_code))]
    NotConfigured,
}

impl Failure {
    fn code(self) -> &'static str {
        match self {
            Self::Auth(e) => e.code(),
            Self::StoreUnavailable => "credential_store_unavailable",
            Self::BodyUnreadable => "malformed_body",
            Self::NotConfigured => "authentication_not_configured",
        }
    }

    fn status(self) -> u16 {
        match self {
            Self::Auth(e) => e.status(),
            Self::StoreUnavailable => 503,
            Self::BodyUnreadable => 400,
            Self::NotConfigured => 500,
        }
    }

    fn message(self) -> &'static str {
        match self {
            Self::Auth(e) => e.message(),
            Self::StoreUnavailable => "Credentials cannot be checked right now",
            Self::BodyUnreadable => "Request body could not be read",
            Self::NotConfigured => "Authentication is not configured for this route",
        }
    }

    /// The JSON error body, as [`Error::to_json_body`] writes it, plus `stringToSign`
    /// when given.
    fn json_body(self, request_id: &str, timestamp: u64, string_to_sign: Option<&str>) -> String {
        let mut out = match self {
            Self::Auth(e) => e.to_json_body(request_id, timestamp),
            _ => json_error_body(
                self.status(),
                self.code(),
                self.message(),
                request_id,
                timestamp,
            ),
        };
        if let Some(sts) = string_to_sign {
            out.pop();
            out.push_str(",\"stringToSign\":");
            push_json_string(&mut out, sts);
            out.push('}');
        }
        out
    }

    pub(crate) fn response(
        self,
        request_id: &str,
        timestamp: u64,
        string_to_sign: Option<&str>,
    ) -> Response<Full<Bytes>> {
        let body = self.json_body(request_id, timestamp, string_to_sign);
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() =
            StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Ok(id) = HeaderValue::from_str(request_id) {
            headers.insert("x-request-id", id);
        }
        response
    }
}

/// The future of [`Verify`]: ready at once when the headers alone condemn the request
/// (no allocation), else the boxed verification and inner call.
///
/// ```
/// fn is_future<F: std::future::Future>() {}
/// is_future::<jg_hmac::tower::ResponseFuture<http_body_util::Full<bytes::Bytes>, std::convert::Infallible>>();
/// ```
pub struct ResponseFuture<B, E> {
    state: State<B, E>,
}

enum State<B, E> {
    Ready(Option<Result<Response<ResponseBody<B>>, E>>),
    Pending(BoxFuture<Result<Response<ResponseBody<B>>, E>>),
}

impl<B, E> ResponseFuture<B, E> {
    fn ready(result: Result<Response<ResponseBody<B>>, E>) -> Self {
        Self {
            state: State::Ready(Some(result)),
        }
    }

    fn boxed(future: BoxFuture<Result<Response<ResponseBody<B>>, E>>) -> Self {
        Self {
            state: State::Pending(future),
        }
    }
}

// Neither state is pinned structurally: the ready value is moved out, the pending future
// is already pinned in its box.
impl<B, E> Unpin for ResponseFuture<B, E> {}

impl<B, E> Future for ResponseFuture<B, E> {
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().state {
            State::Ready(result) => match result.take() {
                Some(result) => Poll::Ready(result),
                None => Poll::Pending,
            },
            State::Pending(future) => future.as_mut().poll(cx),
        }
    }
}

impl<B, E> fmt::Debug for ResponseFuture<B, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Ready(_) => "ready",
            State::Pending(_) => "pending",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish()
    }
}
