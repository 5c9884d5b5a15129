//! Per-partner rate limits for the layer: the limiter trait the layer calls once a
//! request verified and passed the replay guard, the decision it answers with, and the
//! response headers that tell a partner about it.
//!
//! The headers are those of the IETF httpapi draft *RateLimit header fields for HTTP*,
//! [draft-ietf-httpapi-ratelimit-headers-10] (structured fields, unchanged in -11):
//!
//! ```text
//! RateLimit-Policy: "partner";q=100;w=1;jg-burst=200
//! RateLimit: "partner";r=199;t=1
//! ```
//!
//! [draft-ietf-httpapi-ratelimit-headers-10]: https://datatracker.ietf.org/doc/html/draft-ietf-httpapi-ratelimit-headers-10

use std::cell::RefCell;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, header};

use crate::error::Error;
use crate::rate_limit::RateLimit;
use crate::signature::Signature;

use super::replay::AsyncReplayGuard;

/// What a [`RateLimiter`] decided for one request of a client.
///
/// `remaining` is how many more requests the client could send at once right now,
/// `wait` how long until one more becomes available: for a refused request, the time to
/// wait before a retry can succeed (the answer's `Retry-After`, rounded up to whole
/// seconds).
///
/// ```
/// use std::time::Duration;
/// use jg_hmac::tower::RateDecision;
/// let ok = RateDecision::allowed(4, Duration::from_millis(100));
/// assert!(ok.is_allowed() && ok.remaining() == 4);
/// let no = RateDecision::limited(Duration::from_millis(1500));
/// assert!(!no.is_allowed() && no.remaining() == 0);
/// assert_eq!(no.retry_after(), 2); // whole seconds, rounded up
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateDecision {
    allowed: bool,
    remaining: u32,
    wait: Duration,
}

impl RateDecision {
    /// The request spends one unit; `remaining` more could be sent at once now, and one
    /// more unit becomes available after `wait`.
    ///
    /// ```
    /// let d = jg_hmac::tower::RateDecision::allowed(0, std::time::Duration::from_secs(1));
    /// assert!(d.is_allowed());
    /// ```
    pub const fn allowed(remaining: u32, wait: Duration) -> Self {
        Self {
            allowed: true,
            remaining,
            wait,
        }
    }

    /// The request is over the limit; a retry can succeed after `wait`.
    ///
    /// ```
    /// let d = jg_hmac::tower::RateDecision::limited(std::time::Duration::from_millis(10));
    /// assert!(!d.is_allowed());
    /// assert_eq!(d.retry_after(), 1);
    /// ```
    pub const fn limited(wait: Duration) -> Self {
        Self {
            allowed: false,
            remaining: 0,
            wait,
        }
    }

    /// Whether the request may go on.
    ///
    /// ```
    /// assert!(jg_hmac::tower::RateDecision::allowed(1, std::time::Duration::ZERO).is_allowed());
    /// ```
    pub const fn is_allowed(&self) -> bool {
        self.allowed
    }

    /// How many more requests the client could send at once now.
    ///
    /// ```
    /// assert_eq!(jg_hmac::tower::RateDecision::allowed(7, std::time::Duration::ZERO).remaining(), 7);
    /// ```
    pub const fn remaining(&self) -> u32 {
        self.remaining
    }

    /// How long until one more request becomes available.
    ///
    /// ```
    /// use std::time::Duration;
    /// let d = jg_hmac::tower::RateDecision::limited(Duration::from_millis(250));
    /// assert_eq!(d.wait(), Duration::from_millis(250));
    /// ```
    pub const fn wait(&self) -> Duration {
        self.wait
    }

    /// [`wait`](Self::wait) in whole seconds, rounded up, at least 1: the value of
    /// `Retry-After` and of the `t` parameter of `RateLimit`.
    ///
    /// ```
    /// use std::time::Duration;
    /// assert_eq!(jg_hmac::tower::RateDecision::limited(Duration::ZERO).retry_after(), 1);
    /// assert_eq!(jg_hmac::tower::RateDecision::limited(Duration::from_secs(3)).retry_after(), 3);
    /// ```
    pub const fn retry_after(&self) -> u64 {
        let secs = self.wait.as_secs() + (self.wait.subsec_nanos() > 0) as u64;
        if secs == 0 { 1 } else { secs }
    }
}

/// Where the layer keeps each partner's rate budget: in this process
/// ([`InMemoryRateLimiter`](super::InMemoryRateLimiter), the default) or shared by a
/// fleet (`jg_hmac::redis::RedisReplayGuard`, feature `redis`). Set
/// with [`VerifyLayerBuilder::rate_limiter`](super::VerifyLayerBuilder::rate_limiter).
///
/// The layer calls it only for requests whose signature verified and that the replay
/// guard accepted, under the client's [`RateLimit`] (its credential's, else the layer's
/// default): an impostor using a partner's client id, or a replay, spends nothing. The
/// limiter keeps its own clock (a GCRA needs sub-second time).
///
/// ```
/// use jg_hmac::{Error, RateLimit};
/// use jg_hmac::tower::{RateDecision, RateLimiter};
///
/// struct Unlimited;
///
/// impl RateLimiter for Unlimited {
///     async fn acquire(&self, _client_id: &str, limit: RateLimit) -> Result<Option<RateDecision>, Error> {
///         Ok(Some(RateDecision::allowed(limit.burst() - 1, limit.interval())))
///     }
/// }
/// ```
pub trait RateLimiter: Send + Sync + 'static {
    /// Spends one request of `client_id`'s budget under `limit`, or says when it can.
    ///
    /// # Errors
    /// An [`Error`] (503) when the limiter cannot decide and fails closed;
    /// `Ok(None)` when it cannot decide and lets the request through (fails open).
    fn acquire(
        &self,
        client_id: &str,
        limit: RateLimit,
    ) -> impl Future<Output = Result<Option<RateDecision>, Error>> + Send;

    /// The replay check of `guard` and then, when a limit applies, [`acquire`](Self::acquire),
    /// for a request that verified. A limiter that is also the layer's replay guard (the
    /// same `jg_hmac::redis::RedisReplayGuard`) overrides it to do both
    /// in one round trip; others keep this default.
    ///
    /// # Errors
    /// The guard's refusal, or the limiter's failure (see [`acquire`](Self::acquire)).
    fn check_and_acquire<G: AsyncReplayGuard>(
        &self,
        guard: &G,
        client_id: &str,
        signature: &Signature,
        expires_at: u64,
        now: u64,
        limit: Option<RateLimit>,
    ) -> impl Future<Output = Result<Option<RateDecision>, Error>> + Send {
        async move {
            guard
                .check_and_record(client_id, signature, expires_at, now)
                .await?;
            match limit {
                Some(limit) => self.acquire(client_id, limit).await,
                None => Ok(None),
            }
        }
    }
}

impl<L: RateLimiter + ?Sized> RateLimiter for Arc<L> {
    fn acquire(
        &self,
        client_id: &str,
        limit: RateLimit,
    ) -> impl Future<Output = Result<Option<RateDecision>, Error>> + Send {
        (**self).acquire(client_id, limit)
    }

    fn check_and_acquire<G: AsyncReplayGuard>(
        &self,
        guard: &G,
        client_id: &str,
        signature: &Signature,
        expires_at: u64,
        now: u64,
        limit: Option<RateLimit>,
    ) -> impl Future<Output = Result<Option<RateDecision>, Error>> + Send {
        (**self).check_and_acquire(guard, client_id, signature, expires_at, now, limit)
    }
}

/// The name of the one policy the layer announces.
const POLICY: &str = "partner";

const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");

/// The limit a request was checked against, and the decision.
#[derive(Clone, Copy, Debug)]
pub(super) struct Checked {
    pub(super) limit: RateLimit,
    pub(super) decision: RateDecision,
}

impl Checked {
    /// Adds `RateLimit-Policy` and `RateLimit` (and, when refused, `Retry-After`).
    pub(super) fn write(&self, headers: &mut HeaderMap) {
        let mut state = Vec::with_capacity(40);
        field(
            &mut state,
            &[
                ("r=", u64::from(self.decision.remaining())),
                (";t=", self.decision.retry_after()),
            ],
        );
        headers.insert(RATELIMIT_POLICY, policy(self.limit));
        // Visible ASCII only: always a valid header value.
        if let Ok(state) = HeaderValue::from_maybe_shared(Bytes::from(state)) {
            headers.insert(RATELIMIT, state);
        }
        if !self.decision.is_allowed() {
            headers.insert(
                header::RETRY_AFTER,
                HeaderValue::from(self.decision.retry_after()),
            );
        }
    }
}

/// Slots of the per-thread cache of `RateLimit-Policy` values.
const POLICY_SLOTS: usize = 16;

thread_local! {
    /// The `RateLimit-Policy` values of the limits this thread answered last, one slot per
    /// limit's hash: a partner's limit rarely changes, so its value is built once per
    /// thread rather than on every response.
    static POLICIES: RefCell<[Option<(RateLimit, HeaderValue)>; POLICY_SLOTS]> =
        const { RefCell::new([const { None }; POLICY_SLOTS]) };
}

/// The `RateLimit-Policy` value of `limit`.
fn policy(limit: RateLimit) -> HeaderValue {
    let slot = (limit.requests() as usize
        ^ (limit.burst() as usize).rotate_left(7)
        ^ limit.period().as_secs() as usize)
        % POLICY_SLOTS;
    POLICIES.with(|cache| {
        let mut cache = cache.borrow_mut();
        let entry = cache.get_mut(slot);
        if let Some(Some((cached, value))) = entry.as_deref()
            && *cached == limit
        {
            return value.clone();
        }
        let mut text = Vec::with_capacity(48);
        field(
            &mut text,
            &[
                ("q=", u64::from(limit.requests())),
                (";w=", limit.period().as_secs()),
                (";jg-burst=", u64::from(limit.burst())),
            ],
        );
        let value = HeaderValue::from_maybe_shared(Bytes::from(text))
            .unwrap_or_else(|_| HeaderValue::from_static(""));
        if let Some(entry) = entry {
            *entry = Some((limit, value.clone()));
        }
        value
    })
}

/// Appends `"partner";` and each name and number: a structured-field item with integer
/// parameters, written without the formatting machinery (it is on every limited response).
fn field(out: &mut Vec<u8>, parameters: &[(&str, u64)]) {
    out.push(b'"');
    out.extend_from_slice(POLICY.as_bytes());
    out.extend_from_slice(b"\";");
    let mut digits = itoa::Buffer::new();
    for &(name, number) in parameters {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(digits.format(number).as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_the_drafts_structured_fields() {
        let limit: RateLimit = "100/s:200".parse().unwrap();
        let mut headers = HeaderMap::new();
        Checked {
            limit,
            decision: RateDecision::allowed(199, Duration::from_millis(10)),
        }
        .write(&mut headers);
        assert_eq!(
            headers["ratelimit-policy"],
            "\"partner\";q=100;w=1;jg-burst=200"
        );
        assert_eq!(headers["ratelimit"], "\"partner\";r=199;t=1");
        assert!(headers.get("retry-after").is_none());

        let mut headers = HeaderMap::new();
        Checked {
            limit: "30/min:5".parse().unwrap(),
            decision: RateDecision::limited(Duration::from_millis(2_001)),
        }
        .write(&mut headers);
        assert_eq!(
            headers["ratelimit-policy"],
            "\"partner\";q=30;w=60;jg-burst=5"
        );
        assert_eq!(headers["ratelimit"], "\"partner\";r=0;t=3");
        assert_eq!(headers["retry-after"], "3");

        let mut out = Vec::new();
        field(&mut out, &[("q=", 0), (";w=", 10), (";x=", u64::MAX)]);
        assert_eq!(out, b"\"partner\";q=0;w=10;x=18446744073709551615");
    }
}
