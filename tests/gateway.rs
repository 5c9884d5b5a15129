//! `jg-hmac gateway` as it runs: the binary, a raw-socket echo upstream, raw-socket
//! clients. Each file under tests/gateway/ is one concern.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

#[cfg(feature = "redis")]
#[macro_use]
#[path = "support/redis.rs"]
mod redis_support;

#[path = "gateway/harness.rs"]
mod harness;

#[path = "gateway/forwarding.rs"]
mod forwarding;

#[path = "gateway/refusals.rs"]
mod refusals;

#[path = "gateway/lifecycle.rs"]
mod lifecycle;

#[path = "gateway/express.rs"]
mod express;
