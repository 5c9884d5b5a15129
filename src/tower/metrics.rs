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
    fn knows(&self, client_id: &str) -> bool {
        self.clients
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(client_id)
    }

    /// One answered request: counted under its client id only if the credential store
    /// knows that id, from this request's lookup or, for a request refused on its head
    /// alone (no lookup is made for those), from an earlier one; else as `unknown`.
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
        let named = match (event.client_id, event.known) {
            (Some(_), Some(known)) => known,
            (Some(id), None) => self.knows(id),
            (None, _) => false,
        };
        match event.client_id.filter(|_| named) {
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

    fn event(
        outcome: Result<(), Error>,
        client_id: Option<&str>,
        known: Option<bool>,
    ) -> Event<'_> {
        Event {
            request_id: "r",
            method: "GET",
            path: "/",
            outcome,
            status: 200,
            client_id,
            known,
            key_id: outcome.is_ok().then_some("k1"),
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
    fn only_known_ids_are_kept() {
        let m = LayerMetrics::default();
        m.record(&event(
            Err(Error::InvalidSignature),
            Some("jk_live_a"),
            Some(false),
        ));
        assert!(!m.knows("jk_live_a"));
        m.record(&event(
            Err(Error::TimestampOutOfRange),
            Some("jk_live_a"),
            None,
        ));
        assert!(!m.knows("jk_live_a"));
        m.record(&event(Ok(()), Some("jk_live_a"), Some(true)));
        assert!(m.knows("jk_live_a"));
    }
}
