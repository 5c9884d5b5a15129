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

/// The default share of an [`InMemoryReplayGuard`]'s capacity one client id may hold
/// under pressure: one tenth.
const DEFAULT_SHARE_DIVISOR: usize = 10;

/// An [`InMemoryReplayGuard`] is under pressure once it holds half its capacity (rounded
/// up); below that, no client is refused for its share.
const fn pressure_level(capacity: usize) -> usize {
    capacity - capacity / 2
}

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
/// are dropped once expired. A client may use free room: while the guard holds less than
/// half its capacity (the *pressure level*, rounded up), no request is refused for its
/// client's share. It **fails closed**:
/// - under pressure, a client id that already holds its share (one tenth of the capacity
///   by default, see [`with_client_limit`](Self::with_client_limit)) gets
///   [`Error::ReplayQuotaExceeded`] (429) until enough of its entries expire to bring it
///   back under its share, while other clients keep being served. A partner that grew
///   past its share while the guard was quiet therefore stops at the pressure level, and
///   the other half is left to the others: one partner, or one leaked secret, cannot
///   fill the guard and lock every other partner out. With the defaults the half above
///   the level holds five full shares: only a client under its share adds to it, so
///   filling it takes at least five clients;
/// - when the guard is full of unexpired entries, new requests get
///   [`Error::ReplayGuardUnavailable`] (503), rather than being accepted unchecked.
///
/// Size it so that your peak stays under the pressure level: twice your peak of accepted
/// requests per 330 s (each entry is held for the 300 s window, plus a margin for
/// clients whose clocks run ahead), e.g. 1,000 requests/s × 660 s = 660,000.
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
    /// A guard holding at most `capacity` requests; once it holds half of them, at most a
    /// tenth of the capacity (rounded up) for any one client id.
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

    /// Sets how many entries one client id may hold once the guard is under pressure (at
    /// least half full), capped at the capacity. Defaults to a tenth of the capacity,
    /// rounded up. `usize::MAX` turns fairness off: then one client can fill the guard
    /// and every client gets `503` until it drains.
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

    /// The most entries one client id may hold once the guard is under pressure (holds
    /// half its capacity, rounded up, or more); below that, a client may hold more.
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
    /// Forgets what expired at `now`, then records (`key`, `client`) unless it is a replay,
    /// there is no room for it, or the guard is under pressure and `client` holds its
    /// share.
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
        let fill = self.expiry.len();
        if fill >= capacity {
            return Err(Error::ReplayGuardUnavailable);
        }
        // The share applies under pressure only: below the level, free room is anyone's.
        let held = self.per_client.get(&client).copied().unwrap_or(0);
        if fill >= pressure_level(capacity) && held >= client_limit {
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

    fn sig(n: u32) -> Signature {
        let mut bytes = [0; 32];
        bytes[..4].copy_from_slice(&n.to_be_bytes());
        Signature::from_bytes(bytes)
    }

    /// A guard of 20 (share 2, pressure level 10) into which "flood" sent 10 requests,
    /// expiring at 100, 101, …, 109.
    fn flooded() -> InMemoryReplayGuard {
        let guard = InMemoryReplayGuard::new(20);
        assert_eq!((guard.client_limit(), pressure_level(20)), (2, 10));
        for n in 0..10 {
            assert_eq!(
                guard.check_and_record("flood", &sig(n), 100 + u64::from(n), 0),
                Ok(())
            );
        }
        guard
    }

    /// Five partners, two requests each (their share), expiring at 600: the guard is full.
    fn five_partners_take_the_other_half(guard: &InMemoryReplayGuard) {
        for n in 0..10u32 {
            let client = format!("partner-{}", n / 2);
            assert_eq!(guard.check_and_record(&client, &sig(n), 600, 1), Ok(()));
        }
        assert_eq!(guard.len(), guard.capacity());
    }

    #[test]
    fn one_client_alone_may_fill_the_guard_up_to_the_pressure_level() {
        // The reproduction: five times its share, and the guard half empty: no refusal.
        let guard = flooded();
        assert_eq!(guard.len(), 10);
        // At the level it holds more than its share, so it is refused; a replay is still
        // a replay, not a quota refusal.
        assert_eq!(
            guard.check_and_record("flood", &sig(10), 600, 1),
            Err(Error::ReplayQuotaExceeded)
        );
        assert_eq!(
            guard.check_and_record("flood", &sig(0), 600, 1),
            Err(Error::ReplayedRequest)
        );
    }

    #[test]
    fn under_pressure_a_client_over_its_share_is_refused_while_others_are_admitted() {
        let guard = flooded();
        // Others use the free half, each up to its share.
        for n in 0..10u32 {
            let client = format!("partner-{}", n / 2);
            assert_eq!(
                guard.check_and_record("flood", &sig(100 + n), 600, 1),
                Err(Error::ReplayQuotaExceeded)
            );
            assert_eq!(guard.check_and_record(&client, &sig(n), 600, 1), Ok(()));
            if n == 1 {
                // Under pressure, a partner at its share is refused too.
                assert_eq!(
                    guard.check_and_record("partner-0", &sig(50), 600, 1),
                    Err(Error::ReplayQuotaExceeded)
                );
            }
        }
        assert_eq!(guard.len(), 20);
    }

    #[test]
    fn a_full_guard_refuses_everyone() {
        let guard = flooded();
        five_partners_take_the_other_half(&guard);
        // Full: fail closed, whoever asks, share or not.
        for client in ["flood", "partner-0", "newcomer"] {
            assert_eq!(
                guard.check_and_record(client, &sig(99), 600, 2),
                Err(Error::ReplayGuardUnavailable)
            );
        }
    }

    #[test]
    fn under_pressure_a_client_is_admitted_again_once_back_under_its_share() {
        let guard = flooded();
        five_partners_take_the_other_half(&guard);
        // At 108 the flood's entries expiring at 100..=107 are gone: it holds 2, its
        // share, and the guard 12, above the level.
        assert_eq!(
            guard.check_and_record("flood", &sig(200), 600, 108),
            Err(Error::ReplayQuotaExceeded)
        );
        assert_eq!(guard.len(), 12);
        // At 109 it holds 1: under its share, so admitted although under pressure.
        assert_eq!(guard.check_and_record("flood", &sig(200), 600, 109), Ok(()));
        assert_eq!(
            guard.check_and_record("flood", &sig(201), 600, 109),
            Err(Error::ReplayQuotaExceeded)
        );
        // Once everything expired, the guard is quiet and free room is anyone's again.
        for n in 0..10u32 {
            assert_eq!(
                guard.check_and_record("flood", &sig(300 + n), 900, 601),
                Ok(())
            );
        }
        assert_eq!(guard.len(), 10);
    }

    /// The sizing rule of `docs/server.md` and of [`InMemoryReplayGuard`]: twice the peak
    /// per 330 s. One partner sending at that peak, for three windows, is never refused,
    /// even with its clock 29 s ahead.
    #[test]
    fn one_partner_at_the_sized_peak_is_never_refused() {
        const PEAK: u32 = 20; // requests/s
        let guard = InMemoryReplayGuard::new(PEAK as usize * 660);
        for ahead in [0u64, 29] {
            let mut n = 0;
            for second in 0..900 {
                let now = 10_000 * ahead + second;
                for _ in 0..PEAK {
                    let expires_at = now + ahead + 300;
                    assert_eq!(
                        guard.check_and_record("partner", &sig(n), expires_at, now),
                        Ok(()),
                        "request {n} at second {second}, {ahead} s ahead"
                    );
                    n += 1;
                }
            }
            assert!(guard.len() <= pressure_level(guard.capacity()));
        }
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
