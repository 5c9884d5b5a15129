//! Audit events (through `tracing`) and request ids.

use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use crate::signature::Signature;

use crate::swar::is_visible_ascii;

use super::event::Event;

/// The `tracing` target of the audit events (see the module docs of `jg_hmac::tower`).
pub(crate) const AUDIT_TARGET: &str = "jg_hmac::audit";

/// Longest incoming `X-Request-Id` reused as is; longer ones are replaced.
const MAX_REQUEST_ID_LEN: usize = 128;

/// Longest path prefix written to an audit event.
const MAX_LOGGED_PATH: usize = 256;

/// The header a request id is read from and answered in.
pub(crate) const X_REQUEST_ID: http::HeaderName = http::HeaderName::from_static("x-request-id");

/// A request's id: the caller's `X-Request-Id` when it is sane, else 16 hex digits made
/// here and kept inline (no allocation per request).
#[derive(Clone)]
pub(crate) enum RequestId {
    Made([u8; 16]),
    Given(Arc<str>),
}

impl std::ops::Deref for RequestId {
    type Target = str;

    fn deref(&self) -> &str {
        match self {
            // Hex digits only.
            Self::Made(digits) => core::str::from_utf8(digits).unwrap_or_default(),
            Self::Given(id) => id,
        }
    }
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

/// The incoming request id if it is sane (1 to 128 bytes of visible ASCII), else a new
/// one.
pub(crate) fn request_id(incoming: Option<&http::HeaderValue>) -> RequestId {
    match incoming.map(http::HeaderValue::to_str) {
        Some(Ok(v))
            if !v.is_empty() && v.len() <= MAX_REQUEST_ID_LEN && is_visible_ascii(v.as_bytes()) =>
        {
            RequestId::Given(Arc::from(v))
        }
        _ => new_request_id(),
    }
}

/// A fresh request id: 16 hex digits, unique within the process (a counter) and not
/// guessable across processes (hashed with a per-process random key).
pub(crate) fn new_request_id() -> RequestId {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static KEY: OnceLock<RandomState> = OnceLock::new();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let h = KEY.get_or_init(RandomState::new).hash_one(n);
    let mut digits = [0u8; 16];
    hex::encode_to_slice(h.to_be_bytes(), &mut digits).unwrap_or_default();
    RequestId::Made(digits)
}

/// The first 8 hex digits of a signature, quoted like a string field, formatted only if
/// the event is recorded.
struct ShortSig<'a>(&'a Signature);

impl fmt::Debug for ShortSig<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        for b in &self.0.as_bytes()[..4] {
            write!(f, "{b:02x}")?;
        }
        f.write_str("\"")
    }
}

/// Whether any subscriber records audit events (refusals are logged at `WARN`, the most
/// severe level used).
pub(crate) fn enabled() -> bool {
    tracing::enabled!(target: "jg_hmac::audit", tracing::Level::WARN)
}

/// Writes `event` to the audit log: `INFO` when accepted, `WARN` when refused.
pub(crate) fn record(event: &Event<'_>) {
    // Nothing below is worth computing for an event no subscriber records.
    if !enabled() {
        return;
    }
    let path = truncate(event.path, MAX_LOGGED_PATH);
    let latency_us = event
        .latency
        .map_or(0, |l| u64::try_from(l.as_micros()).unwrap_or(u64::MAX));
    let client_id = event.client_id.unwrap_or("-");
    let sig = event
        .signature
        .map(|sig| tracing::field::debug(ShortSig(sig)));
    let outcome = event.outcome_code();
    if event.outcome.is_ok() {
        tracing::info!(
            target: "jg_hmac::audit",
            request_id = event.request_id,
            outcome,
            status = event.status,
            client_id,
            method = event.method,
            path,
            key_id = event.key_id.unwrap_or("-"),
            sig,
            clock_skew = event.skew_warning,
            latency_us,
            "request authenticated"
        );
    } else {
        // An `Option` field is recorded only when it is `Some`.
        tracing::warn!(
            target: "jg_hmac::audit",
            request_id = event.request_id,
            outcome,
            status = event.status,
            client_id,
            method = event.method,
            path,
            // Only when the signature verified all the same: the claimed client sent it.
            key_id = event.key_id,
            sig,
            latency_us,
            store_error = event.store_error.map(tracing::field::display),
            "request refused"
        );
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_reused_only_when_sane() {
        let ok = http::HeaderValue::from_static("req-123_abc");
        assert_eq!(&*request_id(Some(&ok)), "req-123_abc");
        let spaced = http::HeaderValue::from_static("a b");
        assert_eq!(request_id(Some(&spaced)).len(), 16);
        let long = http::HeaderValue::from_str(&"x".repeat(129)).unwrap();
        assert_eq!(request_id(Some(&long)).len(), 16);
        let (a, b) = (new_request_id(), new_request_id());
        assert_ne!(&*a, &*b);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()), "{a:?}");
    }

    #[test]
    fn truncates_on_char_boundaries() {
        assert_eq!(truncate("abc", 2), "ab");
        assert_eq!(truncate("aé", 2), "a");
        assert_eq!(truncate("abc", 5), "abc");
    }
}
