//! Replay protection: accept a given signature once within the window.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::hash::{BuildHasher, RandomState};
use std::sync::{Mutex, PoisonError};

use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::signature::Signature;

/// Remembers verified requests so that each is accepted once.
///
/// Call it *after* a request verified (so only authentic requests take room), with the
/// time until which the request could still verify: its timestamp plus
/// [`Verifier::replay_horizon`](crate::Verifier::replay_horizon). Implementations for a
/// fleet of verifiers keep the set in a shared store.
///
/// ```
/// use jg_hmac::{Error, InMemoryReplayGuard, ReplayGuard, Signature};
/// let guard = InMemoryReplayGuard::new(1000);
/// let sig = Signature::from_bytes([7; 32]);
/// assert_eq!(guard.check_and_record("jk_live_example", &sig, 400, 100), Ok(()));
/// assert_eq!(guard.check_and_record("jk_live_example", &sig, 400, 101), Err(Error::ReplayedRequest));
/// ```
pub trait ReplayGuard {
    /// Records (`client_id`, `signature`) until `expires_at`; refuses one already recorded.
    ///
    /// # Errors
    /// [`Error::ReplayedRequest`] for a request seen before;
    /// [`Error::ReplayGuardUnavailable`] when it cannot record (full, store down) and so
    /// cannot vouch for the request.
    fn check_and_record(
        &self,
        client_id: &str,
        signature: &Signature,
        expires_at: u64,
        now: u64,
    ) -> Result<(), Error>;
}

type Fingerprint = [u8; 32];

/// The default share of an [`InMemoryReplayGuard`]'s capacity one client id may hold:
/// one tenth.
const DEFAULT_SHARE_DIVISOR: usize = 10;

#[derive(Debug, Default)]
struct Seen {
    /// Fingerprint → (expiry, client key).
    expiry: HashMap<Fingerprint, (u64, u64)>,
    by_expiry: BinaryHeap<Reverse<(u64, Fingerprint)>>,
    /// Client key → entries held; only clients holding at least one.
    per_client: HashMap<u64, usize>,
}

/// A replay guard for one process, with bounded memory, fair between clients.
///
/// Holds at most `capacity` entries (about 170 bytes each), allocated up front. Entries
/// are dropped once expired. It **fails closed**:
/// - a client id that already holds its share of the capacity (one tenth by default,
///   see [`with_client_limit`](Self::with_client_limit)) gets
///   [`Error::ReplayQuotaExceeded`] (429) until some of its entries expire, while other
///   clients keep being served: one partner, or one leaked secret, cannot fill the guard
///   and lock every other partner out;
/// - when the guard is full of unexpired entries, new requests get
///   [`Error::ReplayGuardUnavailable`] (503), rather than being accepted unchecked.
///
/// Size it above your peak accepted requests per window (e.g. 1,000 requests/s × 600 s,
/// the span a request dated at the future edge of a ±300 s window is held, = 600,000),
/// and the client limit above your largest partner's share of that.
///
/// It protects one instance only: behind a load balancer, use a shared store.
///
/// ```
/// let guard = jg_hmac::InMemoryReplayGuard::new(300_000);
/// assert_eq!((guard.len(), guard.capacity(), guard.client_limit()), (0, 300_000, 30_000));
/// ```
#[derive(Debug)]
pub struct InMemoryReplayGuard {
    capacity: usize,
    client_limit: usize,
    /// Keys the per-client counts, so that they hold 8 bytes per client whatever the id.
    hasher: RandomState,
    seen: Mutex<Seen>,
    #[cfg(feature = "metrics")]
    gauges: crate::metrics::GuardGauges,
}

impl InMemoryReplayGuard {
    /// A guard holding at most `capacity` requests, at most a tenth of them (rounded up)
    /// for any one client id.
    ///
    /// ```
    /// let guard = jg_hmac::InMemoryReplayGuard::new(10);
    /// assert_eq!(guard.client_limit(), 1);
    /// ```
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            client_limit: capacity.div_ceil(DEFAULT_SHARE_DIVISOR),
            hasher: RandomState::new(),
            seen: Mutex::new(Seen {
                expiry: HashMap::with_capacity(capacity),
                by_expiry: BinaryHeap::with_capacity(capacity),
                per_client: HashMap::new(),
            }),
            #[cfg(feature = "metrics")]
            gauges: crate::metrics::GuardGauges::default(),
        }
    }

    /// Sets how many entries one client id may hold at once (capped at the capacity).
    /// Defaults to a tenth of the capacity, rounded up. `usize::MAX` turns fairness off:
    /// then one client can fill the guard and every client gets `503` until it drains.
    ///
    /// ```
    /// let guard = jg_hmac::InMemoryReplayGuard::new(1000).with_client_limit(400);
    /// assert_eq!(guard.client_limit(), 400);
    /// ```
    #[must_use]
    pub fn with_client_limit(mut self, entries: usize) -> Self {
        self.client_limit = entries.min(self.capacity);
        self
    }

    /// The most entries the guard holds.
    ///
    /// ```
    /// assert_eq!(jg_hmac::InMemoryReplayGuard::new(10).capacity(), 10);
    /// ```
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The most entries one client id may hold.
    ///
    /// ```
    /// assert_eq!(jg_hmac::InMemoryReplayGuard::new(95).client_limit(), 10);
    /// ```
    pub fn client_limit(&self) -> usize {
        self.client_limit
    }

    /// Number of requests currently remembered (expired ones may linger until the next
    /// call).
    ///
    /// ```
    /// assert_eq!(jg_hmac::InMemoryReplayGuard::new(10).len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.lock().expiry.len()
    }

    /// Whether nothing is remembered.
    ///
    /// ```
    /// assert!(jg_hmac::InMemoryReplayGuard::new(10).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Seen> {
        // The maps stay consistent even if a holder panicked: nothing in an update panics.
        self.seen.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A fixed-size key for (client id, signature): length-prefixed so ids cannot run into
/// signatures, hashed so that entries have one size.
fn fingerprint(client_id: &str, signature: &Signature) -> Fingerprint {
    let mut h = Sha256::new();
    h.update((client_id.len() as u64).to_be_bytes());
    h.update(client_id.as_bytes());
    h.update(signature.as_bytes());
    h.finalize().into()
}

impl Seen {
    /// Drops every entry that expired before `now`.
    fn expire(&mut self, now: u64) {
        while let Some(Reverse((expiry, old))) = self.by_expiry.peek().copied() {
            if expiry >= now {
                break;
            }
            self.by_expiry.pop();
            if let Some(&(at, client)) = self.expiry.get(&old)
                && at == expiry
            {
                self.expiry.remove(&old);
                if let Some(held) = self.per_client.get_mut(&client) {
                    *held = held.saturating_sub(1);
                    if *held == 0 {
                        self.per_client.remove(&client);
                    }
                }
            }
        }
    }
}

impl ReplayGuard for InMemoryReplayGuard {
    fn check_and_record(
        &self,
        client_id: &str,
        signature: &Signature,
        expires_at: u64,
        now: u64,
    ) -> Result<(), Error> {
        let key = fingerprint(client_id, signature);
        let client = self.hasher.hash_one(client_id);
        let mut seen = self.lock();
        let verdict = seen.record(
            key,
            client,
            expires_at,
            now,
            self.capacity,
            self.client_limit,
        );
        #[cfg(feature = "metrics")]
        {
            let held = seen.expiry.len();
            drop(seen);
            self.gauges.set(held, self.capacity);
        }
        verdict
    }
}

impl Seen {
    /// Forgets what expired at `now`, then records (`key`, `client`) unless it is a replay
    /// or there is no room for it.
    fn record(
        &mut self,
        key: Fingerprint,
        client: u64,
        expires_at: u64,
        now: u64,
        capacity: usize,
        client_limit: usize,
    ) -> Result<(), Error> {
        self.expire(now);
        if self.expiry.contains_key(&key) {
            return Err(Error::ReplayedRequest);
        }
        if self.expiry.len() >= capacity {
            return Err(Error::ReplayGuardUnavailable);
        }
        let held = self.per_client.get(&client).copied().unwrap_or(0);
        if held >= client_limit {
            return Err(Error::ReplayQuotaExceeded);
        }
        self.expiry.insert(key, (expires_at, client));
        self.by_expiry.push(Reverse((expires_at, key)));
        *self.per_client.entry(client).or_insert(0) += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_and_frees_room() {
        let guard = InMemoryReplayGuard::new(1).with_client_limit(usize::MAX);
        let a = Signature::from_bytes([1; 32]);
        let b = Signature::from_bytes([2; 32]);
        assert_eq!(guard.check_and_record("c", &a, 10, 0), Ok(()));
        assert_eq!(
            guard.check_and_record("c", &b, 10, 5),
            Err(Error::ReplayGuardUnavailable)
        );
        // At the expiry second the entry still counts; one second later it is gone.
        assert_eq!(
            guard.check_and_record("c", &a, 10, 10),
            Err(Error::ReplayedRequest)
        );
        assert_eq!(guard.check_and_record("c", &b, 20, 11), Ok(()));
        assert_eq!(guard.len(), 1);
    }

    #[test]
    fn same_signature_other_client_is_not_a_replay() {
        let guard = InMemoryReplayGuard::new(10);
        let sig = Signature::from_bytes([1; 32]);
        assert_eq!(guard.check_and_record("a", &sig, 10, 0), Ok(()));
        assert_eq!(guard.check_and_record("b", &sig, 10, 0), Ok(()));
    }

    #[test]
    fn one_client_cannot_take_more_than_its_share() {
        let guard = InMemoryReplayGuard::new(20);
        assert_eq!(guard.client_limit(), 2);
        let sig = |n: u8| Signature::from_bytes([n; 32]);
        assert_eq!(guard.check_and_record("flood", &sig(1), 600, 0), Ok(()));
        assert_eq!(guard.check_and_record("flood", &sig(2), 600, 0), Ok(()));
        for n in 3..40 {
            assert_eq!(
                guard.check_and_record("flood", &sig(n), 600, 0),
                Err(Error::ReplayQuotaExceeded)
            );
        }
        // A replay is still a replay, not a quota refusal.
        assert_eq!(
            guard.check_and_record("flood", &sig(1), 600, 1),
            Err(Error::ReplayedRequest)
        );
        // Every other client is still served, up to the capacity.
        for n in 0..18u8 {
            let client = format!("partner-{}", n / 2);
            assert_eq!(guard.check_and_record(&client, &sig(n), 600, 1), Ok(()));
        }
        assert_eq!(
            guard.check_and_record("partner-x", &sig(99), 600, 1),
            Err(Error::ReplayGuardUnavailable)
        );
        // Once the flood's entries expire, its share is free again.
        assert_eq!(guard.check_and_record("flood", &sig(50), 700, 601), Ok(()));
    }

    #[test]
    fn counts_follow_expiry_exactly() {
        let guard = InMemoryReplayGuard::new(4).with_client_limit(2);
        let sig = |n: u8| Signature::from_bytes([n; 32]);
        assert_eq!(guard.check_and_record("a", &sig(1), 10, 0), Ok(()));
        assert_eq!(guard.check_and_record("a", &sig(2), 20, 0), Ok(()));
        assert_eq!(
            guard.check_and_record("a", &sig(3), 20, 10),
            Err(Error::ReplayQuotaExceeded)
        );
        // sig(1) expired at 10, so at 11 one slot is back.
        assert_eq!(guard.check_and_record("a", &sig(3), 20, 11), Ok(()));
        assert_eq!(guard.lock().per_client.len(), 1);
        assert_eq!(guard.check_and_record("b", &sig(4), 30, 21), Ok(()));
        // Both of a's entries are gone at 21; no count lingers for it.
        assert_eq!(guard.lock().per_client.len(), 1);
        assert_eq!(guard.len(), 1);
    }
}
