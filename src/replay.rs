//! Replay protection: accept a given signature once within the window.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
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

#[derive(Debug, Default)]
struct Seen {
    expiry: HashMap<Fingerprint, u64>,
    by_expiry: BinaryHeap<Reverse<(u64, Fingerprint)>>,
}

/// A replay guard for one process, with bounded memory.
///
/// Holds at most `capacity` entries (about 120 bytes each), allocated up front. Entries
/// are dropped once expired. When it is full of unexpired entries it **fails closed**:
/// new requests get [`Error::ReplayGuardUnavailable`] (503) until entries expire, rather
/// than being accepted unchecked. Size it above your peak accepted requests per window
/// (e.g. 1,000 requests/s × 300 s = 300,000).
///
/// It protects one instance only: behind a load balancer, use a shared store.
///
/// ```
/// let guard = jg_hmac::InMemoryReplayGuard::new(300_000);
/// assert_eq!(guard.len(), 0);
/// ```
#[derive(Debug)]
pub struct InMemoryReplayGuard {
    capacity: usize,
    seen: Mutex<Seen>,
}

impl InMemoryReplayGuard {
    /// A guard holding at most `capacity` requests.
    ///
    /// ```
    /// let guard = jg_hmac::InMemoryReplayGuard::new(10);
    /// # let _ = guard;
    /// ```
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            seen: Mutex::new(Seen {
                expiry: HashMap::with_capacity(capacity),
                by_expiry: BinaryHeap::with_capacity(capacity),
            }),
        }
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
        // The map stays consistent even if a holder panicked: every update is one insert.
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

impl ReplayGuard for InMemoryReplayGuard {
    fn check_and_record(
        &self,
        client_id: &str,
        signature: &Signature,
        expires_at: u64,
        now: u64,
    ) -> Result<(), Error> {
        let key = fingerprint(client_id, signature);
        let mut seen = self.lock();
        while let Some(Reverse((expiry, old))) = seen.by_expiry.peek().copied() {
            if expiry >= now {
                break;
            }
            seen.by_expiry.pop();
            if seen.expiry.get(&old) == Some(&expiry) {
                seen.expiry.remove(&old);
            }
        }
        if seen.expiry.contains_key(&key) {
            return Err(Error::ReplayedRequest);
        }
        if seen.expiry.len() >= self.capacity {
            return Err(Error::ReplayGuardUnavailable);
        }
        seen.expiry.insert(key, expires_at);
        seen.by_expiry.push(Reverse((expires_at, key)));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_and_frees_room() {
        let guard = InMemoryReplayGuard::new(1);
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
}
