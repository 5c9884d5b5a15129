//! A replay guard shared by a fleet of verifiers, on Redis (feature `redis`).
//!
//! An [`InMemoryReplayGuard`](crate::InMemoryReplayGuard) protects one instance: behind a
//! load balancer, a captured request replayed to *another* instance inside the window
//! gets through. [`RedisReplayGuard`] keeps the set of seen signatures in one Redis that
//! every instance shares, so each signature is accepted once across the fleet.
//!
//! - **One atomic round trip per request:** `SET key 1 NX EX ttl`. Redis runs commands one
//!   at a time, so of two instances receiving the same request at once exactly one sets
//!   the key; the other gets `nil` and answers `replayed_request`.
//! - **Bounded wait:** every call is cut off after a [timeout](RedisReplayGuard::with_timeout)
//!   (50 ms by default), connecting included. A request never waits on Redis longer.
//! - **Fail behaviour as a setting:** when Redis errors or is too slow, [`FailMode::Closed`]
//!   (the default) refuses the request with `503 replay_guard_unavailable` (and logs the
//!   cause at `warn`, target `jg_hmac::redis`); [`FailMode::Open`] accepts it unchecked
//!   and emits a `warn` audit event saying so.
//! - **Per-partner rate limits too:** the guard is a
//!   [`RateLimiter`](crate::tower::RateLimiter) (a GCRA per client in one Lua script, on
//!   Redis time); given to the layer as replay guard *and* limiter, one script does both
//!   checks, one round trip per request (docs/rate-limits.md).
//! - **Connections:** one multiplexed connection per guard (a
//!   [`ConnectionManager`]), reconnecting by itself after Redis restarts. Clones of the
//!   guard share it.
//!
//! ```no_run
//! # async fn run() -> Result<(), redis::RedisError> {
//! use std::time::Duration;
//! use jg_hmac::redis::{FailMode, RedisReplayGuard};
//! use jg_hmac::tower::{InMemoryCredentialStore, VerifyLayer};
//!
//! let guard = RedisReplayGuard::new("redis://10.0.0.5:6379/")?  // no I/O yet
//!     .with_timeout(Duration::from_millis(50))
//!     .with_fail_mode(FailMode::Closed);
//! guard.ping().await?; // optional: refuse to start while Redis is unreachable
//! let layer = VerifyLayer::builder(InMemoryCredentialStore::new())
//!     .replay_guard(guard)
//!     .build();
//! # let _ = layer;
//! # Ok(())
//! # }
//! ```
//!
//! # Running the Redis
//!
//! - **No eviction:** set `maxmemory-policy noeviction` (a dedicated Redis, or one whose
//!   other keys have no TTL). An evicted key is a replay accepted; with `noeviction` a
//!   full Redis refuses the `SET` and the fail mode decides. Each key takes about
//!   170 bytes of Redis memory (100,000 keys with a 15-byte client id: 16.6 MB on
//!   Redis 7.0) and lives about window + skew (330 s by default): at 1,000 accepted
//!   requests/s, about 330,000 keys, some 55 MB.
//! - **Restarts and failover lose recent keys** unless persisted (AOF) or replicated
//!   synchronously: for the rest of their window, requests recorded only in the lost
//!   keys could be replayed once more. Weigh that against the cost of persistence.
//! - **Redis Cluster** is not supported by this guard's connection (one endpoint);
//!   a primary with replicas behind one stable address (a managed service's endpoint, a
//!   proxy in front of Sentinel) is.
//!
//! # Why one multiplexed connection is enough
//!
//! Redis executes commands on one thread; a client gains nothing from many sockets to
//! it. A multiplexed connection pipelines the commands of all concurrent requests onto
//! one socket and matches replies in order, so concurrent requests do not wait for each
//! other's round trips. This is what redis-rs recommends for async code, and it keeps
//! one socket per instance on the Redis side. (A pool would add a checkout per request
//! and a dependency, for no gain here.)

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

mod limit;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{Client, ErrorKind, RedisError, Value};
use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::signature::Signature;
use crate::tower::AsyncReplayGuard;
use crate::tower::audit::AUDIT_TARGET;

/// The `tracing` target of the guard's operational events (why Redis failed, in fail
/// closed mode; the layer's audit event records the refusal itself).
const LOG_TARGET: &str = "jg_hmac::redis";

/// Default prefix of the guard's Redis keys.
const DEFAULT_KEY_PREFIX: &str = "jg:replay:";

/// Default bound on one Redis call: 50 ms.
const DEFAULT_TIMEOUT: Duration = Duration::from_millis(50);

/// Default margin, in seconds, added to each key's lifetime for clock differences
/// between instances: 30 s.
const DEFAULT_CLOCK_SKEW: u64 = 30;

/// What a [`RedisReplayGuard`] does when Redis cannot answer in time.
///
/// ```
/// use jg_hmac::redis::FailMode;
/// assert_eq!(FailMode::default(), FailMode::Closed);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailMode {
    /// Refuse the request with `503 replay_guard_unavailable`: no request is accepted
    /// that might be a replay. The default.
    #[default]
    Closed,
    /// Accept the request without a replay check and emit a `warn` event on
    /// `jg_hmac::audit` with `outcome = "replay_check_skipped"`. Availability over
    /// replay protection, for the length of a Redis outage.
    Open,
}

/// A replay guard on Redis, shared by every instance that points at the same Redis (and
/// key prefix): a signature is accepted once across all of them.
///
/// Each verified request costs one `SET key 1 NX EX ttl` round trip, where
///
/// - `key` = prefix + `{{len}:{client_id}}:` + the first 32 hex digits of SHA-256 of the
///   signature (see [`key`](Self::key)); the braces are a Cluster hash tag. The client id is length-prefixed, so no two
///   (client id, signature) pairs share a key whatever characters ids contain; the
///   signature is hashed so that Redis (`MONITOR`, `SCAN`, the slow log) never holds a
///   signature that could still be sent.
/// - `ttl` = `expires_at - now + clock_skew` seconds, at least 1. A *relative* expiry
///   (`EX`, not `EXAT`) so that the Redis server's clock does not matter, only the
///   instances'. `clock_skew` covers an instance whose clock lags the one that recorded
///   the request: that instance would still accept the request for that much longer.
///   Set it to the largest clock difference between your instances (NTP keeps it well
///   under a second; the default 30 s is generous).
///
/// Redis 2.6.12 or later (and compatible servers) will do.
///
/// A call that does not finish within the timeout counts as a failure of Redis: it is
/// refused or accepted as the [`FailMode`] says. A `SET` that reached Redis before the
/// timeout may still have recorded the request; a client that retries must sign the
/// retry afresh (a new timestamp), as it should anyway.
///
/// Cloning is cheap and clones share the connection.
///
/// ```no_run
/// # async fn run() -> Result<(), redis::RedisError> {
/// use jg_hmac::redis::{FailMode, RedisReplayGuard};
/// let guard = RedisReplayGuard::new("redis://127.0.0.1:6379/")?
///     .with_key_prefix("payments:replay:")
///     .with_fail_mode(FailMode::Open)
///     .with_clock_skew(5);
/// # let _ = guard;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisReplayGuard {
    connection: ConnectionManager,
    /// Shared by the clones of one guard (one connection): a layer given the same guard
    /// as replay guard and as rate limiter checks both in one round trip.
    id: Arc<()>,
    prefix: String,
    timeout: Duration,
    fail_mode: FailMode,
    clock_skew: u64,
}

impl RedisReplayGuard {
    /// A guard for the Redis at `url` (`redis://[:password@]host:port/[db]`), with the
    /// defaults: prefix `jg:replay:`, timeout 50 ms,
    /// [`FailMode::Closed`], clock skew 30 s.
    ///
    /// It connects on first use, not here: a service starts while Redis is down, and its
    /// requests are then treated as the fail mode says. Call [`ping`](Self::ping) at
    /// startup to refuse to start instead. Lost connections are re-established in the
    /// background (backoff up to 1 s between attempts).
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), redis::RedisError> {
    /// let guard = jg_hmac::redis::RedisReplayGuard::new("redis://127.0.0.1:6379/")?;
    /// # let _ = guard;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// A [`RedisError`] if `url` is not a Redis URL, or if it is called outside a Tokio
    /// runtime.
    pub fn new(url: &str) -> Result<Self, RedisError> {
        let client = Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_max_delay(Duration::from_secs(1));
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(RedisError::from((
                ErrorKind::Client,
                "RedisReplayGuard::new must be called within a Tokio runtime",
            )));
        }
        let connection = ConnectionManager::new_lazy_with_config(client, config)?;
        Ok(Self::from_connection_manager(connection))
    }

    /// A guard on a connection you configured yourself (TLS, by turning on a TLS feature
    /// of the `redis` crate in your own manifest; your own timeouts and reconnect
    /// policy), with the defaults of [`new`](Self::new) otherwise.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), redis::RedisError> {
    /// let client = redis::Client::open("redis://127.0.0.1:6379/")?;
    /// let connection = redis::aio::ConnectionManager::new(client).await?;
    /// let guard = jg_hmac::redis::RedisReplayGuard::from_connection_manager(connection);
    /// # let _ = guard;
    /// # Ok(())
    /// # }
    /// ```
    pub fn from_connection_manager(connection: ConnectionManager) -> Self {
        Self {
            connection,
            id: Arc::new(()),
            prefix: DEFAULT_KEY_PREFIX.to_owned(),
            timeout: DEFAULT_TIMEOUT,
            fail_mode: FailMode::Closed,
            clock_skew: DEFAULT_CLOCK_SKEW,
        }
    }

    /// The prefix of every key. Instances that must share replay protection use the same
    /// prefix; services that verify different credentials may use their own. Defaults to
    /// `jg:replay:`.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), redis::RedisError> {
    /// let guard = jg_hmac::redis::RedisReplayGuard::new("redis://127.0.0.1/")?.with_key_prefix("svc:");
    /// # let _ = guard;
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn with_key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The longest a request waits for Redis, connecting included; past it the call
    /// fails as the [`FailMode`] says. Defaults to 50 ms.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), redis::RedisError> {
    /// use std::time::Duration;
    /// let guard = jg_hmac::redis::RedisReplayGuard::new("redis://127.0.0.1/")?
    ///     .with_timeout(Duration::from_millis(20));
    /// # let _ = guard;
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// What to do when Redis fails or times out. Defaults to [`FailMode::Closed`].
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), redis::RedisError> {
    /// use jg_hmac::redis::{FailMode, RedisReplayGuard};
    /// let guard = RedisReplayGuard::new("redis://127.0.0.1/")?.with_fail_mode(FailMode::Open);
    /// # let _ = guard;
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn with_fail_mode(mut self, fail_mode: FailMode) -> Self {
        self.fail_mode = fail_mode;
        self
    }

    /// Seconds added to each key's lifetime for clock differences between instances.
    /// Defaults to 30 s.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), redis::RedisError> {
    /// let guard = jg_hmac::redis::RedisReplayGuard::new("redis://127.0.0.1/")?.with_clock_skew(2);
    /// # let _ = guard;
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn with_clock_skew(mut self, seconds: u64) -> Self {
        self.clock_skew = seconds;
        self
    }

    /// The fail mode in force.
    ///
    /// ```
    /// use jg_hmac::redis::{FailMode, RedisReplayGuard};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// // No I/O here: the connection is made on first use.
    /// let guard = RedisReplayGuard::new("redis://127.0.0.1/").unwrap();
    /// assert_eq!(guard.fail_mode(), FailMode::Closed);
    /// assert_eq!(guard.with_fail_mode(FailMode::Open).fail_mode(), FailMode::Open);
    /// # });
    /// ```
    pub fn fail_mode(&self) -> FailMode {
        self.fail_mode
    }

    /// The Redis key a request of `client_id` with `signature` is recorded under:
    /// `{prefix}{{len}:{client_id}}:{32 hex digits}`, where `len` is the client id's
    /// length in bytes and the hex digits are the first half of SHA-256(signature). The
    /// braces are a Redis Cluster hash tag: a client's replay keys and its rate-limit key
    /// (`…}:rate`) share a slot.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let guard = jg_hmac::redis::RedisReplayGuard::new("redis://127.0.0.1/").unwrap();
    /// let key = guard.key("jk_live_example", &jg_hmac::Signature::from_bytes([0; 32]));
    /// assert_eq!(key.len(), "jg:replay:{15:jk_live_example}:".len() + 32);
    /// assert!(key.starts_with("jg:replay:{15:jk_live_example}:"));
    /// # });
    /// ```
    pub fn key(&self, client_id: &str, signature: &Signature) -> String {
        replay_key(&self.prefix, client_id, signature)
    }

    /// The lifetime of a key recorded at `now` for a request that expires at
    /// `expires_at`: what is left of its window plus the clock skew, at least 1 s.
    fn ttl(&self, expires_at: u64, now: u64) -> u64 {
        expires_at
            .saturating_sub(now)
            .saturating_add(self.clock_skew)
            .max(1)
    }

    /// Sends `PING` and waits for the answer, within the timeout: a startup or health
    /// check.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), redis::RedisError> {
    /// let guard = jg_hmac::redis::RedisReplayGuard::new("redis://127.0.0.1/")?;
    /// guard.ping().await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// The [`RedisError`] of a failed call, or one of kind `Io` on timeout.
    pub async fn ping(&self) -> Result<(), RedisError> {
        let mut connection = self.connection.clone();
        let ping = ::redis::cmd("PING");
        match tokio::time::timeout(self.timeout, ping.query_async::<Value>(&mut connection)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(RedisError::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "redis did not answer PING within the timeout",
            ))),
        }
    }

    /// Redis could not vouch for the request: refuse (closed) or accept and say so (open).
    fn unavailable(
        &self,
        client_id: &str,
        signature: &Signature,
        cause: &dyn fmt::Display,
    ) -> Result<(), Error> {
        #[cfg(feature = "metrics")]
        crate::metrics::replay_guard_error();
        let sig = signature.short_hex();
        match self.fail_mode {
            FailMode::Closed => {
                // The layer's own audit event records the refusal; this says why.
                tracing::warn!(
                    target: LOG_TARGET,
                    client_id,
                    sig,
                    cause = %cause,
                    "redis replay guard unavailable: request refused (fail closed)"
                );
                Err(Error::ReplayGuardUnavailable)
            }
            FailMode::Open => {
                tracing::warn!(
                    target: AUDIT_TARGET,
                    outcome = "replay_check_skipped",
                    client_id,
                    sig,
                    cause = %cause,
                    "redis replay guard unavailable: request accepted without replay check (fail open)"
                );
                Ok(())
            }
        }
    }
}

/// `{prefix}{{len}:{client_id}}:{first 16 bytes of SHA-256(signature), hex}`.
fn replay_key(prefix: &str, client_id: &str, signature: &Signature) -> String {
    let digest = Sha256::digest(signature.as_bytes());
    let half = digest.get(..16).unwrap_or_default();
    client_key(prefix, client_id, &hex::encode(half))
}

/// `{prefix}{{len}:{client_id}}:{suffix}`: every key of one client carries the same
/// hash tag (never empty: it starts with the length), so a Redis Cluster keeps them in
/// one slot and one script may touch them all. The length prefix keeps ids apart
/// whatever characters they contain.
fn client_key(prefix: &str, client_id: &str, suffix: &str) -> String {
    let len = client_id.len().to_string();
    let mut key =
        String::with_capacity(prefix.len() + len.len() + client_id.len() + suffix.len() + 4);
    key.push_str(prefix);
    key.push('{');
    key.push_str(&len);
    key.push(':');
    key.push_str(client_id);
    key.push_str("}:");
    key.push_str(suffix);
    key
}

impl fmt::Debug for RedisReplayGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The connection is left out: its settings may hold a password.
        f.debug_struct("RedisReplayGuard")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("fail_mode", &self.fail_mode)
            .field("clock_skew", &self.clock_skew)
            .finish_non_exhaustive()
    }
}

/// Why a call did not give an answer.
enum NoAnswer {
    Redis(RedisError),
    Timeout(Duration),
    Unexpected(Value),
}

impl fmt::Display for NoAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Redis(e) => write!(f, "{e}"),
            Self::Timeout(t) => write!(f, "no answer within {} ms", t.as_millis()),
            Self::Unexpected(v) => write!(f, "unexpected reply to SET: {v:?}"),
        }
    }
}

impl AsyncReplayGuard for RedisReplayGuard {
    async fn check_and_record(
        &self,
        client_id: &str,
        signature: &Signature,
        expires_at: u64,
        now: u64,
    ) -> Result<(), Error> {
        let mut set = ::redis::cmd("SET");
        set.arg(self.key(client_id, signature))
            .arg(1)
            .arg("NX")
            .arg("EX")
            .arg(self.ttl(expires_at, now));
        let mut connection = self.connection.clone();
        let reply =
            tokio::time::timeout(self.timeout, set.query_async::<Value>(&mut connection)).await;
        let failure = match reply {
            // `OK`: the key was set, the request is new.
            Ok(Ok(Value::Okay | Value::SimpleString(_))) => return Ok(()),
            // `nil`: the key existed, the request was seen before.
            Ok(Ok(Value::Nil)) => return Err(Error::ReplayedRequest),
            Ok(Ok(other)) => NoAnswer::Unexpected(other),
            Ok(Err(e)) => NoAnswer::Redis(e),
            Err(_) => NoAnswer::Timeout(self.timeout),
        };
        self.unavailable(client_id, signature, &failure)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_cannot_collide_between_client_ids() {
        let s = Signature::from_bytes([1; 32]);
        let a = replay_key("p:", "a", &s);
        let b = replay_key("p:", "a:", &s);
        assert_ne!(a, b);
        assert!(a.starts_with("p:{1:a}:"));
        assert!(b.starts_with("p:{2:a:}:"));
        assert_eq!(a.len(), "p:{1:a}:".len() + 32);
        // The signature itself is not in the key.
        assert!(!a.contains(&s.to_hex()[..32]));
        assert_ne!(
            replay_key("p:", "a", &s),
            replay_key("p:", "a", &Signature::from_bytes([2; 32]))
        );
    }

    #[tokio::test]
    async fn ttl_is_what_is_left_of_the_window_plus_skew() {
        let guard = RedisReplayGuard::new("redis://127.0.0.1:1/")
            .unwrap()
            .with_clock_skew(30);
        assert_eq!(guard.ttl(1300, 1000), 330);
        assert_eq!(guard.ttl(1000, 1000), 30);
        assert_eq!(guard.ttl(900, 1000), 30);
        assert_eq!(guard.with_clock_skew(0).ttl(900, 1000), 1);
    }

    #[test]
    fn new_outside_a_runtime_is_an_error_not_a_panic() {
        assert!(RedisReplayGuard::new("redis://127.0.0.1:1/").is_err());
        assert!(RedisReplayGuard::new("not a url").is_err());
    }
}
