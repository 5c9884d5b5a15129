#![doc = include_str!("../README.md")]
//!
//! # Design
//!
//! - **Pure core.** Canonicalization, signing and verification do no I/O and read no
//!   clock: `now` is an argument (integrations take a [`Clock`]).
//! - **No allocation on the hot path.** The query's pairs are sorted as borrowed slices
//!   (or, for a short query, as offsets) in arrays on the stack; the string-to-sign is
//!   assembled in a stack buffer (streamed in pieces when longer) and fed to an HMAC state
//!   that was keyed once when the secret was loaded. Verification allocates nothing for
//!   requests with up to 32 query pairs.
//! - **Secrets and tags are types.** [`Secret`] and keyed states are wiped on drop and print
//!   as `[redacted]`; a [`Signature`] compares in constant time and prints 8 hex digits.
//! - **One error type.** [`Error`] carries the wire code, the HTTP status and a message
//!   that is safe to return to a partner.
//! - **Two-step verification** for async key stores: [`Verifier::prepare`] needs no
//!   secret, [`Verifier::finish`] takes the credential however the caller fetched it.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod canonical;
mod client_id;
mod clock;
mod credential;
mod error;
mod headers;
mod http_adapter;
mod json;
mod query;
mod rate_limit;
mod replay;
mod request;
mod secret;
mod signature;
mod signer;
mod sink;
mod swar;
mod target;
mod verified;
mod verifier;

#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub mod tower;

pub mod diagnose;
pub mod identity;
#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub mod metrics;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub mod postgres;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis;
#[cfg(feature = "reqwest")]
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
pub mod reqwest;

pub use canonical::CanonicalRequest;
pub use client_id::{Environment, UnknownEnvironment};
pub use clock::{Clock, SystemClock};
pub use credential::{Credential, CredentialLookup, SigningKey};
pub use error::{Error, HeaderKind, LimitKind};
pub use query::CanonicalQuery;
pub use rate_limit::{InvalidRateLimit, RateLimit};
pub use replay::{InMemoryReplayGuard, ReplayGuard};
pub use request::SignedRequest;
pub use secret::Secret;
pub use signature::{BodyHasher, ContentHash, Signature};
pub use signer::{SignedHeaders, Signer};
pub use target::Target;
pub use verified::{Prepared, Verified};
pub(crate) use verifier::DEFAULT_WINDOW;
pub use verifier::{Limits, Verifier};

// The pages under docs/ are doctested too (their Rust blocks compile and run with
// `cargo test --doc`); they are not part of the rendered crate docs.
#[cfg(doctest)]
#[doc = include_str!("../docs/server.md")]
struct ServerDocs;

#[cfg(doctest)]
#[doc = include_str!("../docs/redis.md")]
struct RedisDocs;

#[cfg(doctest)]
#[doc = include_str!("../docs/rate-limits.md")]
struct RateLimitsDocs;

#[cfg(doctest)]
#[doc = include_str!("../docs/reqwest.md")]
struct ReqwestDocs;

#[cfg(doctest)]
#[doc = include_str!("../docs/cli.md")]
struct CliDocs;

#[cfg(doctest)]
#[doc = include_str!("../docs/postgres.md")]
struct PostgresDocs;

#[cfg(doctest)]
#[doc = include_str!("../docs/metrics.md")]
struct MetricsDocs;

#[cfg(doctest)]
#[doc = include_str!("../docs/performance.md")]
struct PerformanceDocs;
