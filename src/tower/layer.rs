//! The verifying [`Layer`], its settings and their builder.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tower_layer::Layer;

use crate::clock::{Clock, SystemClock};
use crate::rate_limit::RateLimit;
use crate::verifier::Verifier;

use super::gcra::InMemoryRateLimiter;
use super::limit::RateLimiter;
use super::observe::Observers;
use super::replay::{AsyncReplayGuard, NoReplayGuard};
use super::service::Verify;
use super::settings::Settings;
use super::store::CredentialStore;
use crate::Environment;

/// Default largest body the layer reads: 1 MiB. Larger is `413 request_too_large`.
const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// The clock skew, in seconds, above which an accepted request's response carries
/// `X-JG-Clock-Skew` (see [`VerifyLayerBuilder::skew_warning`]).
const DEFAULT_SKEW_WARNING: u64 = 60;

/// How long a request may take from its head to the decision, by default: 30 s.
const DEFAULT_DEADLINE: Duration = Duration::from_secs(30);

/// A tower [`Layer`] that verifies JG-HMAC-SHA256 signatures before the inner service
/// runs.
///
/// **What is verified.** The request-target *as the client sent it*: the layer reads
/// the path and query from the [`OriginalTarget`](super::OriginalTarget) extension when
/// an [`OriginalTargetLayer`](super::OriginalTargetLayer) sits outermost, else (feature
/// `axum`) from axum's `OriginalUri`, which axum's `Router` sets before `nest`,
/// `nest_service` or any route strips a prefix, else from the request's URI. So the layer
/// may sit at the top of an app, inside a nested router, or under `route_layer`, and
/// verify the same path the client signed. Middleware *outside* the router that rewrites
/// the URI (tower-http's `NormalizePath`, a prefix-stripping proxy layer) is invisible to
/// it unless an [`OriginalTargetLayer`](super::OriginalTargetLayer) wraps that
/// middleware too.
///
/// For each request, in this order:
/// 1. **Headers only, body unread**, against the clock read on arrival: missing or
///    malformed auth headers, content type not in the allow-list, timestamp out of
///    window, query too large (all from [`Verifier::prepare`]), client id of the wrong
///    [`Environment`], a declared `Content-Length` above the body limit; then the
///    [`CredentialStore`] lookup: an unknown or revoked client (or one without an active
///    key) is refused here too ([`Verifier::check_client`]), unless the verifier [hides
///    unknown clients](Verifier::with_hidden_unknown_clients), in which case the body is
///    read and the answer is `invalid_signature`. A request refused for its window or
///    content type is still looked up and its body read (within the limit and the
///    deadline) when the metrics or the audit log are on, only to learn whether its
///    signature is its client's: the answer stays the refusal (`docs/metrics.md`).
/// 2. **Body:** read up to the limit (1 MiB by default); more is `413`. Steps 1 to 3 must
///    be done within the [request deadline](VerifyLayerBuilder::request_timeout) (30 s by
///    default), else `408 request_timeout`.
/// 3. **The clock is read again**, now that the request is complete. Against that
///    reading: the window again (a body that arrives after the window closed is
///    `timestamp_out_of_range`), the keys' validity (a key that expired while the body
///    streamed is not used), the **signature** over the exact bytes against every active
///    key ([`Verifier::finish`]), and the **replay guard**, if one is set: a signature is
///    accepted once. Then the client's **rate limit**, if it has one (its credential's,
///    else the [default](VerifyLayerBuilder::rate_limit)): over it, `429 rate_limited`
///    with `Retry-After`; responses to a limited client carry `RateLimit` and
///    `RateLimit-Policy` (see [`RateLimiter`](super::RateLimiter)).
/// 4. The inner service gets the request with the same bytes as body and an
///    [`Authenticated`](super::Authenticated) in its extensions.
///
/// A refusal answers the seed's JSON error body (`status`, `error`, `message`,
/// `requestId`, `timestamp`) with the status of [`Error::status`](crate::Error::status),
/// `Content-Type: application/json` and `X-Request-Id`. A store that fails answers `503
/// credential_store_unavailable`; an unreadable body `400 malformed_body`. Each request
/// emits one audit event (target `jg_hmac::audit`, see the [module docs](super)), whose path is the
/// path as sent.
///
/// Cloning is cheap (one `Arc`): the store, the replay guard and the settings are shared
/// by every route and connection the layer wraps.
///
/// ```
/// use axum::{Router, routing::post};
/// use jg_hmac::{Credential, Environment, InMemoryReplayGuard, Secret, Verifier};
/// use jg_hmac::tower::{Authenticated, InMemoryCredentialStore, VerifyLayer};
///
/// let store = InMemoryCredentialStore::from_credentials([Credential::new("jk_live_example")
///     .with_key(jg_hmac::SigningKey::new("0", &Secret::from("s3cr3t_test_key_justgold")))
///     .with_scope("transactions:write")]);
///
/// // The one line: every route above it is verified.
/// let app: Router = Router::new()
///     .route("/v1/transactions/buy", post(|who: Authenticated| async move { who.client_id().to_owned() }))
///     .layer(VerifyLayer::new(store.clone()));
///
/// // With every setting:
/// let layer = VerifyLayer::builder(store)
///     .verifier(Verifier::new().with_content_types(["application/json"]))
///     .body_limit(64 * 1024)
///     .environment(Environment::Live)
///     .replay_guard(InMemoryReplayGuard::new(300_000))
///     .build();
/// assert!(format!("{layer:?}").contains("body_limit: 65536, environment: Some(Live)"));
/// # let _ = app;
/// ```
pub struct VerifyLayer<S, R = NoReplayGuard, L = InMemoryRateLimiter> {
    settings: Arc<Settings<S, R, L>>,
}

impl<S: CredentialStore> VerifyLayer<S> {
    /// A layer with the defaults: [`Verifier::new`] (±300 s), the system clock, a 1 MiB
    /// body limit, any environment, no replay guard, no diagnostics.
    ///
    /// ```
    /// let layer = jg_hmac::tower::VerifyLayer::new(jg_hmac::tower::InMemoryCredentialStore::new());
    /// let settings = format!("{layer:?}");
    /// assert!(settings.contains("past: 300, future: 300") && settings.contains("body_limit: 1048576"));
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
    /// assert!(format!("{layer:?}").contains("body_limit: 4096"));
    /// ```
    pub fn builder(store: S) -> VerifyLayerBuilder<S> {
        VerifyLayerBuilder {
            settings: Settings {
                store,
                guard: NoReplayGuard,
                limiter: InMemoryRateLimiter::default(),
                default_limit: None,
                verifier: Verifier::new(),
                clock: Box::new(SystemClock),
                body_limit: DEFAULT_BODY_LIMIT,
                environment: None,
                diagnostics: false,
                skew_warning: Some(DEFAULT_SKEW_WARNING),
                deadline: DEFAULT_DEADLINE,
                observers: Observers::default(),
            },
        }
    }
}

impl<S, R, L> VerifyLayer<S, R, L> {
    /// The credential store.
    ///
    /// ```
    /// let store = jg_hmac::tower::InMemoryCredentialStore::new();
    /// let layer = jg_hmac::tower::VerifyLayer::new(store);
    /// assert!(layer.store().is_empty());
    /// ```
    pub fn store(&self) -> &S {
        &self.settings.store
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
        &self.settings.guard
    }

    /// The rate limiter.
    ///
    /// ```
    /// let layer = jg_hmac::tower::VerifyLayer::new(jg_hmac::tower::InMemoryCredentialStore::new());
    /// assert!(layer.rate_limiter().is_empty());
    /// ```
    pub fn rate_limiter(&self) -> &L {
        &self.settings.limiter
    }

    /// The largest body read, in bytes (see [`VerifyLayerBuilder::body_limit`]): what a
    /// front end that buffers bodies for the layer (Envoy's `max_request_bytes`) sizes
    /// its own limit by.
    ///
    /// ```
    /// let layer = jg_hmac::tower::VerifyLayer::builder(jg_hmac::tower::InMemoryCredentialStore::new())
    ///     .body_limit(4096)
    ///     .build();
    /// assert_eq!(layer.body_limit(), 4096);
    /// ```
    pub fn body_limit(&self) -> usize {
        self.settings.body_limit
    }
}

impl<S, R, L> Clone for VerifyLayer<S, R, L> {
    fn clone(&self) -> Self {
        Self {
            settings: Arc::clone(&self.settings),
        }
    }
}

impl<S, R, L> fmt::Debug for VerifyLayer<S, R, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyLayer")
            .field("settings", &*self.settings)
            .finish()
    }
}

/// Settings of a [`VerifyLayer`]; each method documents its default.
///
/// ```
/// use jg_hmac::{Verifier};
/// use jg_hmac::tower::{InMemoryCredentialStore, VerifyLayer};
/// let layer = VerifyLayer::builder(InMemoryCredentialStore::new())
///     .verifier(Verifier::new().with_window(120).with_access_key_alias(false))
///     .clock(|| 1_735_550_160u64)
///     .sandbox_diagnostics(true)
///     .build();
/// let settings = format!("{layer:?}");
/// assert!(settings.contains("past: 120") && settings.contains("diagnostics: true"));
/// ```
pub struct VerifyLayerBuilder<S, R = NoReplayGuard, L = InMemoryRateLimiter> {
    settings: Settings<S, R, L>,
}

impl<S, R, L> fmt::Debug for VerifyLayerBuilder<S, R, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("VerifyLayerBuilder")
            .field(&self.settings)
            .finish()
    }
}

impl<S: CredentialStore, R: AsyncReplayGuard, L: RateLimiter> VerifyLayerBuilder<S, R, L> {
    /// The verifier: window, `X-Access-Key` alias, content types, hidden unknown clients,
    /// query limits. Defaults to [`Verifier::new`].
    ///
    /// ```
    /// let layer = jg_hmac::tower::VerifyLayer::builder(jg_hmac::tower::InMemoryCredentialStore::new())
    ///     .verifier(jg_hmac::Verifier::new().with_hidden_unknown_clients(true))
    ///     .build();
    /// assert!(format!("{layer:?}").contains("hide_unknown_clients: true"));
    /// ```
    #[must_use]
    pub fn verifier(mut self, verifier: Verifier) -> Self {
        self.settings.verifier = verifier;
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
    /// now.store(1_735_550_161, Ordering::SeqCst); // the layer reads it on every request
    /// # let _ = layer;
    /// ```
    #[must_use]
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.settings.clock = Box::new(clock);
        self
    }

    /// The largest body read, in bytes; larger is `413 request_too_large`, answered
    /// before reading when `Content-Length` says so. Defaults to 1 MiB. The whole body is held in memory: the limit bounds memory per request.
    ///
    /// ```
    /// let layer = jg_hmac::tower::VerifyLayer::builder(jg_hmac::tower::InMemoryCredentialStore::new())
    ///     .body_limit(16 * 1024)
    ///     .build();
    /// assert!(format!("{layer:?}").contains("body_limit: 16384"));
    /// ```
    #[must_use]
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.settings.body_limit = bytes;
        self
    }

    /// Accepts only client ids of this environment (`jk_live_…` for
    /// [`Environment::Live`]); others, and ids with no environment prefix, are refused as
    /// `client_id` before any lookup. Defaults to any client id.
    ///
    /// ```
    /// use jg_hmac::Environment;
    /// use jg_hmac::tower::{InMemoryCredentialStore, VerifyLayer};
    /// let layer = VerifyLayer::builder(InMemoryCredentialStore::new()).environment(Environment::Live).build();
    /// assert!(format!("{layer:?}").contains("environment: Some(Live)"));
    /// ```
    #[must_use]
    pub fn environment(mut self, environment: Environment) -> Self {
        self.settings.environment = Some(environment);
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
    /// assert_eq!(layer.replay_guard().capacity(), 300_000);
    /// ```
    #[must_use]
    pub fn replay_guard<G: AsyncReplayGuard>(self, guard: G) -> VerifyLayerBuilder<S, G, L> {
        self.with_parts(|_, limiter| (guard, limiter))
    }

    /// The rate limit of clients whose [`Credential`](crate::Credential) has none
    /// ([`Credential::rate_limit`](crate::Credential::rate_limit) wins where set).
    /// Defaults to `None`: only clients with a limit of their own are limited.
    ///
    /// Only requests whose signature verified and that the replay guard accepted spend a
    /// client's budget. One over it is answered `429 rate_limited` with `Retry-After`
    /// (whole seconds, at least 1); every response to a limited client, accepted or
    /// refused, carries `RateLimit-Policy` and `RateLimit`
    /// (draft-ietf-httpapi-ratelimit-headers-10, see [`RateLimiter`]).
    ///
    /// ```
    /// let layer = jg_hmac::tower::VerifyLayer::builder(jg_hmac::tower::InMemoryCredentialStore::new())
    ///     .rate_limit("100/s:200".parse().unwrap())
    ///     .build();
    /// assert!(format!("{layer:?}").contains("default_limit: Some(RateLimit { requests: 100"));
    /// ```
    #[must_use]
    pub fn rate_limit(mut self, limit: RateLimit) -> Self {
        self.settings.default_limit = Some(limit);
        self
    }

    /// Where the rate budgets are kept. Defaults to an [`InMemoryRateLimiter`] (this
    /// process; 100,000 clients at most). A fleet shares one: give the same
    /// `jg_hmac::redis::RedisReplayGuard` as replay guard and as
    /// limiter, and each request costs one Redis round trip for both.
    ///
    /// ```
    /// let layer = jg_hmac::tower::VerifyLayer::builder(jg_hmac::tower::InMemoryCredentialStore::new())
    ///     .rate_limiter(jg_hmac::tower::InMemoryRateLimiter::new(1_000))
    ///     .build();
    /// assert_eq!(layer.rate_limiter().max_clients(), 1_000);
    /// ```
    #[must_use]
    pub fn rate_limiter<M: RateLimiter>(self, limiter: M) -> VerifyLayerBuilder<S, R, M> {
        self.with_parts(|guard, _| (guard, limiter))
    }

    /// The same settings with the replay guard and the limiter `parts` makes of the
    /// current ones.
    fn with_parts<G, M>(self, parts: impl FnOnce(R, L) -> (G, M)) -> VerifyLayerBuilder<S, G, M> {
        let Settings {
            store,
            guard,
            limiter,
            default_limit,
            verifier,
            clock,
            body_limit,
            environment,
            diagnostics,
            skew_warning,
            deadline,
            observers,
        } = self.settings;
        let (guard, limiter) = parts(guard, limiter);
        VerifyLayerBuilder {
            settings: Settings {
                store,
                guard,
                limiter,
                default_limit,
                verifier,
                clock,
                body_limit,
                environment,
                diagnostics,
                skew_warning,
                deadline,
                observers,
            },
        }
    }

    /// Clock-skew early warning: when an accepted request's timestamp differs from the
    /// server's clock by more than `threshold` seconds, its response carries
    /// `X-JG-Clock-Skew: <server time minus X-Timestamp>` (positive: the partner's clock is
    /// behind) and its audit event a `clock_skew` field, so a partner learns of drift while
    /// its requests still succeed. Defaults to 60 s; `None`
    /// turns it off.
    ///
    /// ```
    /// let layer = jg_hmac::tower::VerifyLayer::builder(jg_hmac::tower::InMemoryCredentialStore::new())
    ///     .skew_warning(Some(30))
    ///     .build();
    /// assert!(format!("{layer:?}").contains("skew_warning: Some(30)"));
    /// ```
    #[must_use]
    pub fn skew_warning(mut self, threshold: Option<u64>) -> Self {
        self.settings.skew_warning = threshold;
        self
    }

    /// The deadline of a request: from its head to the decision (the credential lookups
    /// and the whole body included, the inner service not), else `408 request_timeout`
    /// and the connection is done with. So a client that sends a head and holds its body,
    /// or a store that hangs, cannot keep a request open for minutes. Defaults to 30 s.
    ///
    /// The timer is Tokio's: the layer runs on a Tokio runtime with timers enabled (as
    /// `#[tokio::main]` and `axum::serve` have them).
    ///
    /// ```
    /// use std::time::Duration;
    /// let layer = jg_hmac::tower::VerifyLayer::builder(jg_hmac::tower::InMemoryCredentialStore::new())
    ///     .request_timeout(Duration::from_secs(10))
    ///     .build();
    /// assert!(format!("{layer:?}").contains("deadline: 10s"));
    /// ```
    #[must_use]
    pub fn request_timeout(mut self, deadline: Duration) -> Self {
        self.settings.deadline = deadline;
        self
    }

    /// Sandbox diagnostics: on `invalid_signature` the error body also carries
    /// `stringToSign`, the string the server computed (as AWS SigV4 does), so a partner
    /// can diff it against theirs, and `hint`, the code of the typical partner mistake
    /// that reproduces the sent signature (`query_unsorted`, `path_prefix`, …, see
    /// [`diagnose`](crate::diagnose::diagnose())), when one does. It holds no secret, only what the
    /// request said and the hash of the body received; the search (at most about 700
    /// HMACs) runs only for a refused request and never changes a decision. Defaults to
    /// `false`; meant for sandbox services.
    ///
    /// ```
    /// let layer = jg_hmac::tower::VerifyLayer::builder(jg_hmac::tower::InMemoryCredentialStore::new())
    ///     .sandbox_diagnostics(true)
    ///     .build();
    /// assert!(format!("{layer:?}").contains("diagnostics: true"));
    /// ```
    #[must_use]
    pub fn sandbox_diagnostics(mut self, enabled: bool) -> Self {
        self.settings.diagnostics = enabled;
        self
    }

    /// The layer.
    ///
    /// ```
    /// let layer = jg_hmac::tower::VerifyLayer::builder(jg_hmac::tower::InMemoryCredentialStore::new()).build();
    /// assert!(layer.store().is_empty());
    /// ```
    pub fn build(self) -> VerifyLayer<S, R, L> {
        VerifyLayer {
            settings: Arc::new(self.settings),
        }
    }
}

impl<I, S, R, L> Layer<I> for VerifyLayer<S, R, L> {
    type Service = Verify<I, S, R, L>;

    fn layer(&self, inner: I) -> Self::Service {
        Verify::new(inner, Arc::clone(&self.settings))
    }
}
