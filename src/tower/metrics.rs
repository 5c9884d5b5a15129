//! What the verifying layer records (feature `metrics`; names in [`crate::metrics`]).
//!
//! Handles are registered once per outcome and per known client and kept, so a request
//! costs one map lookup and a few atomic operations rather than a registration per
//! metric.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, PoisonError, RwLock};
use std::time::Duration;

use metrics::{Counter, Histogram, counter, histogram};

use crate::metrics::{
    CLIENT_REQUESTS_TOTAL, CLOCK_SKEW_SECONDS, KEY_USED_TOTAL, REQUESTS_TOTAL, STORE_ERRORS_TOTAL,
    STORE_LOOKUP_SECONDS, UNKNOWN_CLIENT, VERIFY_SECONDS,
};

/// Every outcome the layer answers with: `accepted` and the wire codes. An outcome not
/// listed (none today) is still counted, through an uncached registration.
const OUTCOMES: [&str; 14] = [
    "accepted",
    "missing_header",
    "malformed_header",
    "timestamp_out_of_range",
    "client_id",
    "invalid_signature",
    "unsupported_content_type",
    "replayed_request",
    "replay_guard_unavailable",
    "replay_quota_exceeded",
    "request_too_large",
    "credential_store_unavailable",
    "malformed_body",
    "authentication_not_configured",
];

fn outcome_index(outcome: &str) -> Option<usize> {
    OUTCOMES.iter().position(|o| *o == outcome)
}

/// One request, as the metrics see it.
pub(super) struct Observation<'a> {
    /// `accepted` or the wire code.
    pub(super) outcome: &'static str,
    /// The client id, if the credential store knows it; else counted as `unknown`.
    pub(super) client_id: Option<&'a str>,
    /// The key that verified, for an accepted request.
    pub(super) key_id: Option<&'a str>,
    /// Server time minus `X-Timestamp`, if the timestamp parsed.
    pub(super) skew: Option<i64>,
    /// The layer's own time, from the request's head to its decision.
    pub(super) elapsed: Option<Duration>,
}

/// The handles of one client id (or of every unknown one).
struct ClientHandles {
    label: Arc<str>,
    outcomes: [OnceLock<Counter>; OUTCOMES.len()],
    skew: OnceLock<Histogram>,
    keys: RwLock<Vec<(Box<str>, Counter)>>,
}

impl ClientHandles {
    fn new(label: &str) -> Self {
        Self {
            label: Arc::from(label),
            outcomes: Default::default(),
            skew: OnceLock::new(),
            keys: RwLock::new(Vec::new()),
        }
    }

    fn count(&self, outcome: &'static str) {
        let register = || {
            counter!(
                CLIENT_REQUESTS_TOTAL,
                "client_id" => self.label.to_string(),
                "outcome" => outcome
            )
        };
        match outcome_index(outcome).and_then(|i| self.outcomes.get(i)) {
            Some(cell) => cell.get_or_init(register).increment(1),
            None => register().increment(1),
        }
    }

    fn record(&self, o: &Observation<'_>) {
        self.count(o.outcome);
        if let Some(skew) = o.skew {
            self.skew().record(skew as f64);
        }
        if let Some(key_id) = o.key_id {
            self.key_used(key_id);
        }
    }

    fn skew(&self) -> &Histogram {
        self.skew
            .get_or_init(|| histogram!(CLOCK_SKEW_SECONDS, "client_id" => self.label.to_string()))
    }

    fn key_used(&self, key_id: &str) {
        let keys = self.keys.read().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, counter)) = keys.iter().find(|(k, _)| &**k == key_id) {
            counter.increment(1);
            return;
        }
        drop(keys);
        let mut keys = self.keys.write().unwrap_or_else(PoisonError::into_inner);
        if !keys.iter().any(|(k, _)| &**k == key_id) {
            let counter = counter!(
                KEY_USED_TOTAL,
                "client_id" => self.label.to_string(),
                "key_id" => key_id.to_owned()
            );
            keys.push((key_id.into(), counter));
        }
        if let Some((_, counter)) = keys.iter().find(|(k, _)| &**k == key_id) {
            counter.increment(1);
        }
    }
}

/// The layer's metric handles.
#[derive(Default)]
pub(super) struct LayerMetrics {
    outcomes: [OnceLock<Counter>; OUTCOMES.len()],
    verify: OnceLock<Histogram>,
    lookup: OnceLock<Histogram>,
    store_errors: OnceLock<Counter>,
    unknown: OnceLock<ClientHandles>,
    /// Only ids the credential store returned a credential for: made-up ids never get in,
    /// so the (seeded) fast hash cannot be steered into collisions by a client.
    clients: RwLock<HashMap<Box<str>, Arc<ClientHandles>, foldhash::fast::RandomState>>,
}

impl std::fmt::Debug for LayerMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LayerMetrics").finish_non_exhaustive()
    }
}

impl LayerMetrics {
    /// Whether `client_id` was known to the store in an earlier request.
    pub(super) fn knows(&self, client_id: &str) -> bool {
        self.clients
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(client_id)
    }

    /// One credential store lookup.
    pub(super) fn lookup(&self, elapsed: Duration, failed: bool) {
        self.lookup
            .get_or_init(|| histogram!(STORE_LOOKUP_SECONDS))
            .record(elapsed.as_secs_f64());
        if failed {
            self.store_errors
                .get_or_init(|| counter!(STORE_ERRORS_TOTAL))
                .increment(1);
        }
    }

    /// One answered request.
    pub(super) fn record(&self, o: &Observation<'_>) {
        let register = || counter!(REQUESTS_TOTAL, "outcome" => o.outcome);
        match outcome_index(o.outcome).and_then(|i| self.outcomes.get(i)) {
            Some(cell) => cell.get_or_init(register).increment(1),
            None => register().increment(1),
        }
        if let Some(elapsed) = o.elapsed {
            self.verify
                .get_or_init(|| histogram!(VERIFY_SECONDS))
                .record(elapsed.as_secs_f64());
        }
        match o.client_id {
            Some(id) => {
                let clients = self.clients.read().unwrap_or_else(PoisonError::into_inner);
                if let Some(client) = clients.get(id) {
                    client.record(o);
                    return;
                }
                drop(clients);
                self.client(id).record(o);
            }
            None => self
                .unknown
                .get_or_init(|| ClientHandles::new(UNKNOWN_CLIENT))
                .record(o),
        }
    }

    /// The handles of a client id seen for the first time (or by two requests at once).
    fn client(&self, id: &str) -> Arc<ClientHandles> {
        let mut clients = self.clients.write().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(
            clients
                .entry(id.into())
                .or_insert_with(|| Arc::new(ClientHandles::new(id))),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Error, LimitKind};
    use crate::tower::refusal::RefusalCause;

    #[test]
    fn every_outcome_has_a_cached_handle() {
        let failures = [
            RefusalCause::Auth(Error::TimestampOutOfRange),
            RefusalCause::Auth(Error::UnknownClient),
            RefusalCause::Auth(Error::InvalidSignature),
            RefusalCause::Auth(Error::UnsupportedContentType),
            RefusalCause::Auth(Error::ReplayedRequest),
            RefusalCause::Auth(Error::ReplayGuardUnavailable),
            RefusalCause::Auth(Error::ReplayQuotaExceeded),
            RefusalCause::Auth(Error::TooLarge(LimitKind::Body)),
            RefusalCause::StoreUnavailable,
            RefusalCause::BodyUnreadable,
            RefusalCause::NotConfigured,
        ];
        for failure in failures {
            assert!(
                outcome_index(failure.code()).is_some(),
                "{}",
                failure.code()
            );
        }
        assert_eq!(outcome_index("accepted"), Some(0));
        assert_eq!(outcome_index("no_such_code"), None);
    }

    #[test]
    fn only_known_ids_are_kept() {
        let m = LayerMetrics::default();
        assert!(!m.knows("jk_live_a"));
        m.record(&Observation {
            outcome: "invalid_signature",
            client_id: None,
            key_id: None,
            skew: Some(3),
            elapsed: None,
        });
        assert!(!m.knows("jk_live_a"));
        m.record(&Observation {
            outcome: "accepted",
            client_id: Some("jk_live_a"),
            key_id: Some("k1"),
            skew: Some(-2),
            elapsed: Some(Duration::from_micros(3)),
        });
        assert!(m.knows("jk_live_a"));
    }
}
