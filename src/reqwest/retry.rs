//! When [`SigningMiddleware`](super::SigningMiddleware) retries: `429` and `503` only, for
//! the methods the caller chose, after `Retry-After` or a capped exponential backoff with
//! full jitter, within a total deadline and a number of attempts.

use std::hash::{BuildHasher, RandomState};
use std::time::{Duration, UNIX_EPOCH};

use http::{HeaderMap, Method, StatusCode, header};

/// The most attempts one request gets, the first included, whatever the caller asks.
pub(crate) const MAX_ATTEMPTS: u32 = 10;

/// How one middleware retries. The default retries nothing (one attempt).
#[derive(Clone, Debug)]
pub(crate) struct RetryPolicy {
    /// Attempts in all, the first included: 1 (no retry) to [`MAX_ATTEMPTS`].
    pub(crate) attempts: u32,
    /// From the first attempt's start: no wait may end after it.
    pub(crate) deadline: Duration,
    /// The first backoff's ceiling; it doubles per attempt up to `cap`.
    pub(crate) base: Duration,
    pub(crate) cap: Duration,
    /// The methods retried.
    pub(crate) methods: Vec<Method>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 1,
            deadline: Duration::ZERO,
            base: Duration::from_millis(500),
            cap: Duration::from_secs(30),
            // RFC 9110 §9.2.2's idempotent methods, TRACE left out.
            methods: vec![
                Method::GET,
                Method::HEAD,
                Method::OPTIONS,
                Method::PUT,
                Method::DELETE,
            ],
        }
    }
}

impl RetryPolicy {
    /// Whether a request with `method` may be sent more than once.
    pub(crate) fn retries(&self, method: &Method) -> bool {
        self.attempts > 1 && self.methods.contains(method)
    }

    /// How long to wait before the attempt after attempt number `attempt` (1 for the
    /// first), which was answered `status` with `headers`, `elapsed` after the first
    /// attempt started; `now` is the signing clock (UNIX seconds) for an HTTP-date
    /// `Retry-After`, and `jitter` draws a uniform fraction of the backoff's ceiling.
    /// `None`: answer with this response.
    pub(crate) fn wait(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        attempt: u32,
        elapsed: Duration,
        now: u64,
        jitter: impl FnOnce() -> f64,
    ) -> Option<Duration> {
        let retried =
            status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE;
        if !retried || attempt >= self.attempts {
            return None;
        }
        let wait = match headers.get(header::RETRY_AFTER).map(|v| v.to_str()) {
            Some(Ok(value)) => retry_after(value, now),
            _ => None,
        }
        .unwrap_or_else(|| self.backoff(attempt).mul_f64(jitter().clamp(0.0, 1.0)));
        (elapsed.checked_add(wait)? <= self.deadline).then_some(wait)
    }

    /// The ceiling of the wait after attempt `attempt`: `base`, doubled per attempt, at
    /// most `cap`.
    fn backoff(&self, attempt: u32) -> Duration {
        let doubled = 2u32
            .checked_pow(attempt.saturating_sub(1))
            .and_then(|factor| self.base.checked_mul(factor));
        doubled.map_or(self.cap, |d| d.min(self.cap))
    }
}

/// `Retry-After` (RFC 9110 §10.2.3) as a wait: delta-seconds, or an HTTP-date (any of its
/// three formats) less `now`, nothing when it is past. `None` when it is neither.
fn retry_after(value: &str, now: u64) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Too many digits for a u64 is a very long time, not a malformed header.
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    let at = at.duration_since(UNIX_EPOCH).ok()?.as_secs();
    Some(Duration::from_secs(at.saturating_sub(now)))
}

/// A uniform draw in `[0, 1)` for full jitter: not for secrets, only to keep a fleet of
/// clients from retrying in step (std's per-instance random hash keys, no dependency).
pub(crate) fn jitter() -> f64 {
    let bits = RandomState::new().hash_one(0u8) >> 11;
    bits as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            attempts: 4,
            deadline: Duration::from_secs(60),
            base: Duration::from_secs(1),
            cap: Duration::from_secs(3),
            ..RetryPolicy::default()
        }
    }

    fn headers(retry_after: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::RETRY_AFTER, retry_after.parse().unwrap());
        headers
    }

    const NOW: u64 = 1_735_550_160; // Mon, 30 Dec 2024 09:16:00 GMT

    fn wait(
        p: &RetryPolicy,
        status: u16,
        h: &HeaderMap,
        attempt: u32,
        elapsed: u64,
    ) -> Option<Duration> {
        let status = StatusCode::from_u16(status).unwrap();
        p.wait(
            status,
            h,
            attempt,
            Duration::from_secs(elapsed),
            NOW,
            || 1.0,
        )
    }

    #[test]
    fn only_429_and_503_and_only_up_to_the_attempts() {
        let p = policy();
        let none = HeaderMap::new();
        for status in [200, 400, 401, 500, 502, 504] {
            assert_eq!(wait(&p, status, &headers("1"), 1, 0), None, "{status}");
        }
        assert_eq!(wait(&p, 429, &none, 1, 0), Some(Duration::from_secs(1)));
        assert_eq!(wait(&p, 503, &none, 3, 0), Some(Duration::from_secs(3)));
        assert_eq!(wait(&p, 503, &none, 4, 0), None);
        assert!(!RetryPolicy::default().retries(&Method::GET));
        assert!(p.retries(&Method::PUT) && !p.retries(&Method::POST));
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let p = policy();
        let secs = |v: &str| wait(&p, 429, &headers(v), 1, 0).map(|d| d.as_secs());
        assert_eq!(secs("7"), Some(7));
        assert_eq!(secs(" 0 "), Some(0));
        // IMF-fixdate, RFC 850 and asctime, 20 s after NOW; a date past is no wait.
        assert_eq!(secs("Mon, 30 Dec 2024 09:16:20 GMT"), Some(20));
        assert_eq!(secs("Monday, 30-Dec-24 09:16:20 GMT"), Some(20));
        assert_eq!(secs("Mon Dec 30 09:16:20 2024"), Some(20));
        assert_eq!(secs("Mon, 30 Dec 2024 09:00:00 GMT"), Some(0));
        // Not a Retry-After: the backoff (ceiling 1 s for the first retry, jitter 1.0).
        assert_eq!(secs("soon"), Some(1));
        assert_eq!(secs("-5"), Some(1));
        // More than the deadline allows, from the start or from where we are: answer now.
        assert_eq!(secs("61"), None);
        assert_eq!(wait(&p, 429, &headers("30"), 1, 31), None);
        assert_eq!(
            wait(&p, 429, &headers("30"), 1, 30).map(|d| d.as_secs()),
            Some(30)
        );
        assert_eq!(secs("99999999999999999999999"), None);
    }

    #[test]
    fn backoff_doubles_up_to_its_cap_with_full_jitter() {
        let p = RetryPolicy {
            attempts: MAX_ATTEMPTS,
            ..policy()
        };
        let ceilings: Vec<u64> = (1..MAX_ATTEMPTS).map(|a| p.backoff(a).as_secs()).collect();
        assert_eq!(ceilings, [1, 2, 3, 3, 3, 3, 3, 3, 3]);
        let huge = RetryPolicy {
            base: Duration::MAX,
            ..policy()
        };
        assert_eq!(huge.backoff(40), huge.cap);
        let at = |fraction: f64| {
            p.wait(
                StatusCode::SERVICE_UNAVAILABLE,
                &HeaderMap::new(),
                2,
                Duration::ZERO,
                NOW,
                || fraction,
            )
        };
        assert_eq!(at(0.0), Some(Duration::ZERO));
        assert_eq!(at(0.25), Some(Duration::from_millis(500)));
        assert_eq!(
            at(7.0),
            Some(Duration::from_secs(2)),
            "clamped to the ceiling"
        );
        let draws: Vec<f64> = (0..64).map(|_| jitter()).collect();
        assert!(draws.iter().all(|d| (0.0..1.0).contains(d)), "{draws:?}");
        assert!(draws.iter().any(|d| *d != draws[0]), "{draws:?}");
    }
}
