//! The Redis replay guard in the shapes managed Redis comes in, against real servers that
//! each test starts on free loopback ports (and kills when done):
//!
//! - [`tls`]: `redis-server` with TLS only (`--port 0 --tls-port`), certificates the test
//!   makes with rcgen: accepted with the right CA, refused with another CA, without one,
//!   under another host name; client certificates when the server asks for them.
//! - [`sentinel`]: a primary, a replica and a Sentinel, taken through a failover (asked
//!   for, and the primary killed): the guard refuses while there is no primary, for a
//!   bounded time, works on the new primary after it, and a replay of a request recorded
//!   (and replicated) before the failover is refused after it; the same all over TLS.
//! - [`cluster`]: three `redis-server --cluster-enabled yes` joined by
//!   `redis-cli --cluster create`, plain and TLS-only: keys on different slots and nodes,
//!   each accepted once.
//!
//! Without `redis-server`, `redis-sentinel` or `redis-cli` on PATH the tests print
//! `SKIPPED` and pass, unless `CI` is set, where they fail: CI must install them.
//! Clocks are injected into the layers; waits are bounded polls for servers, replication
//! and failovers. Durations are printed (`--nocapture`), never asserted beyond "no hang".
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;
#[macro_use]
#[path = "support/redis.rs"]
mod redis_support;
#[path = "redis_scale/cluster.rs"]
mod cluster;
#[path = "redis_scale/sentinel.rs"]
mod sentinel;
#[path = "redis_scale/tls.rs"]
mod tls;
