//! What the verifying layer records (feature `metrics`; names in [`crate::metrics`]).
//!
//! Handles are registered once per outcome and per known client and kept, so a request
//! costs one map lookup and a few atomic operations rather than a registration per
//! metric.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, PoisonError, RwLock};

use metrics::{Counter, Histogram, counter, histogram};

use super::event::Event;

use crate::error::Error;
use crate::metrics::{
    CLIENT_REQUESTS_TOTAL, CLOCK_SKEW_SECONDS, KEY_USED_TOTAL, REQUESTS_TOTAL, STORE_ERRORS_TOTAL,
    STORE_LOOKUP_SECONDS, UNKNOWN_CLIENT, VERIFY_SECONDS,
};

/// Handle slots: `accepted`, then one per code of [`Error::ALL`].
const OUTCOMES: usize = Error::ALL.len() + 1;

/// The slot of an outcome: 0 for `accepted`, else 1 + the code's place in [`Error::ALL`].
fn slot(outcome: Result<(), Error>) -> usize {
    match outcome {
        Ok(()) => 0,
        Err(e) => Error::ALL
            .iter()
            .position(|known| known.code() == e.code())
            .map_or(OUTCOMES, |i| i + 1),
    }
}

/// The handles of one client id (or of every unknown one).
struct ClientHandles {
    label: Arc<str>,
    outcomes: [OnceLock<Counter>; OUTCOMES],
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

    fn count(&self, event: &Event<'_>) {
        let outcome = event.outcome_code();
        let register = || {
            counter!(
                CLIENT_REQUESTS_TOTAL,
                "client_id" => self.label.to_string(),
                "outcome" => outcome
            )
        };
        match self.outcomes.get(slot(event.outcome)) {
            Some(cell) => cell.get_or_init(register).increment(1),
            None => register().increment(1),
        }
    }

    fn record(&self, event: &Event<'_>) {
        self.count(event);
        if let Some(skew) = event.skew {
            self.skew().record(skew as f64);
        }
        if let Some(key_id) = event.key_id {
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
    outcomes: [OnceLock<Counter>; OUTCOMES],
    verify: OnceLock<Histogram>,
    lookup: OnceLock<Histogram>,
    store_errors: OnceLock<Counter>,
    unknown: OnceLock<ClientHandles>,
    /// Only ids a request's signature verified under: made-up ids never get in, so the
    /// (seeded) fast hash cannot be steered into collisions by a client.
    clients: RwLock<HashMap<Box<str>, Arc<ClientHandles>, foldhash::fast::RandomState>>,
}

impl std::fmt::Debug for LayerMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LayerMetrics").finish_non_exhaustive()
    }
}

impl LayerMetrics {
    /// One answered request: counted under its client id only if its signature verified
    /// under that client's key (accepted, or refused all the same), else as `unknown`:
    /// a client id is public, a signature is not.
    pub(super) fn record(&self, event: &Event<'_>) {
        if let Some(lookup) = event.lookup {
            if let Some(elapsed) = lookup.elapsed {
                self.lookup
                    .get_or_init(|| histogram!(STORE_LOOKUP_SECONDS))
                    .record(elapsed.as_secs_f64());
            }
            if lookup.failed {
                self.store_errors
                    .get_or_init(|| counter!(STORE_ERRORS_TOTAL))
                    .increment(1);
            }
        }
        let outcome = event.outcome_code();
        let register = || counter!(REQUESTS_TOTAL, "outcome" => outcome);
        match self.outcomes.get(slot(event.outcome)) {
            Some(cell) => cell.get_or_init(register).increment(1),
            None => register().increment(1),
        }
        if let Some(elapsed) = event.decided_in {
            self.verify
                .get_or_init(|| histogram!(VERIFY_SECONDS))
                .record(elapsed.as_secs_f64());
        }
        match event.client_id.filter(|_| event.key_id.is_some()) {
            Some(id) => {
                let clients = self.clients.read().unwrap_or_else(PoisonError::into_inner);
                if let Some(client) = clients.get(id) {
                    client.record(event);
                    return;
                }
                drop(clients);
                self.client(id).record(event);
            }
            None => self
                .unknown
                .get_or_init(|| ClientHandles::new(UNKNOWN_CLIENT))
                .record(event),
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

    fn event<'a>(
        outcome: Result<(), Error>,
        client_id: Option<&'a str>,
        key_id: Option<&'a str>,
    ) -> Event<'a> {
        Event {
            request_id: "r",
            method: "GET",
            path: "/",
            outcome,
            status: 200,
            client_id,
            key_id,
            signature: None,
            skew: Some(3),
            skew_warning: None,
            decided_in: None,
            latency: None,
            lookup: None,
            store_error: None,
        }
    }

    #[test]
    fn every_outcome_has_a_cached_handle() {
        let slots: Vec<usize> = Error::ALL.iter().map(|e| slot(Err(*e))).collect();
        assert!(slots.iter().all(|&i| i > 0 && i < OUTCOMES), "{slots:?}");
        let mut distinct = slots.clone();
        distinct.dedup();
        assert_eq!(distinct.len(), Error::ALL.len());
        assert_eq!(slot(Ok(())), 0);
    }

    #[test]
    fn only_ids_a_signature_verified_under_are_kept() {
        let m = LayerMetrics::default();
        let kept = |m: &LayerMetrics| {
            let clients = m.clients.read().unwrap_or_else(PoisonError::into_inner);
            clients.keys().map(|k| k.to_string()).collect::<Vec<_>>()
        };
        m.record(&event(
            Err(Error::InvalidSignature),
            Some("jk_live_a"),
            None,
        ));
        m.record(&event(
            Err(Error::TimestampOutOfRange),
            Some("jk_live_a"),
            None,
        ));
        assert!(kept(&m).is_empty());
        m.record(&event(
            Err(Error::TimestampOutOfRange),
            Some("jk_live_a"),
            Some("k1"),
        ));
        assert_eq!(kept(&m), ["jk_live_a"]);
        m.record(&event(Ok(()), Some("jk_live_b"), Some("k1")));
        assert_eq!(kept(&m).len(), 2);
    }
}
