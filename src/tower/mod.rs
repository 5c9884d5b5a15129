//! Server side: a tower/axum middleware that verifies JG-HMAC-SHA256 requests (feature
//! `tower`; the [`Authenticated`] extractor needs feature `axum`).
//!
//! - [`VerifyLayer`]: add verification to a service with one `.layer(...)`. It rejects
//!   what the headers alone condemn before reading the body, reads the body up to a
//!   limit, verifies the signature over the exact bytes, and hands the inner service the
//!   same bytes plus an [`Authenticated`] identity. Refusals carry the seed's JSON error
//!   body.
//! - [`CredentialStore`]: the async lookup behind it (a database, a vault), with
//!   [`InMemoryCredentialStore`] for the common case: keys added beside old ones, keys
//!   with a validity period, revocation at once, and whole-content swaps while serving.
//! - [`AsyncReplayGuard`]: accept each signature once; every sync
//!   [`ReplayGuard`](crate::ReplayGuard) such as
//!   [`InMemoryReplayGuard`](crate::InMemoryReplayGuard) is one.
//! - [`RateLimiter`]: per-partner rate limits (a GCRA per client id, each under its
//!   credential's [`RateLimit`](crate::RateLimit) or the layer's default), spent only by
//!   requests that verified; [`InMemoryRateLimiter`] for one process (the default),
//!   `jg_hmac::redis::RedisReplayGuard` for a fleet. Over the limit:
//!   `429 rate_limited` with `Retry-After`, and `RateLimit`/`RateLimit-Policy` headers.
//! - [`RequireScope`]: a per-route guard (axum's `route_layer`) answering `403
//!   insufficient_scope` to a verified client without the route's scope.
//! - Audit events through `tracing`, target `jg_hmac::audit`: one event per request, at
//!   `INFO` when accepted and `WARN` when refused, with fields `request_id`, `outcome`
//!   (`accepted` or the error code), `status`, `client_id` (`-` when none could be read),
//!   `method`, `path` (first 256 bytes), `key_id` (accepted only), `sig` (the signature's
//!   first 8 hex digits, when it could be read), `latency_us` (until the response head was
//!   ready, inner service included) and, on a store failure, `store_error`; a scope guard's
//!   refusal adds `required_scope`. Never a secret, a full signature, a body or a query
//!   string.
//!
//! ```
//! use axum::{Router, routing::{get, post}};
//! use jg_hmac::{Credential, InMemoryReplayGuard, Secret};
//! use jg_hmac::tower::{Authenticated, InMemoryCredentialStore, VerifyLayer};
//!
//! let store = InMemoryCredentialStore::from_credentials([
//!     Credential::new("jk_live_example").with_key(jg_hmac::SigningKey::new("0", &Secret::from("s3cr3t_test_key_justgold"))),
//! ]);
//! let verify = VerifyLayer::builder(store.clone())
//!     .replay_guard(InMemoryReplayGuard::new(100_000))
//!     .build();
//! let app: Router = Router::new()
//!     .route("/v1/health/secure", get(|who: Authenticated| async move { who.client_id().to_owned() }))
//!     .route("/v1/transactions/buy", post(|who: Authenticated, body: String| async move {
//!         format!("{} sent {body}", who.client_id())
//!     }))
//!     .layer(verify)                                   // everything above is verified
//!     .route("/v1/health", get(|| async { "ok" }));    // added after: not verified
//! # let _ = app;
//! ```

pub(crate) mod audit;
mod authorize;
mod body;
mod cache;
mod event;
mod future;
mod gcra;
mod identity;
mod layer;
mod limit;
#[cfg(feature = "metrics")]
mod metrics;
mod observe;
mod replay;
mod response;
mod scope;
mod service;
mod settings;
mod store;
mod target;

pub use cache::{CachedStore, CachedStoreBuilder};
pub use future::ResponseFuture;
pub use gcra::InMemoryRateLimiter;
pub use identity::Authenticated;
pub use layer::{VerifyLayer, VerifyLayerBuilder};
pub use limit::{RateDecision, RateLimiter};
pub use replay::{AsyncReplayGuard, NoReplayGuard};
pub use response::{ResponseBody, VerifiedBody};
pub use scope::{RequireScope, RequireScopeLayer};
pub use service::Verify;
pub use store::{CredentialStore, InMemoryCredentialStore, StoreError};
pub use target::{OriginalTarget, OriginalTargetLayer};
