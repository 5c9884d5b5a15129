//! The in-process rate limiter: a GCRA per client id, each with the client's own limit,
//! in bounded memory.
//!
//! Why not `governor`: its keyed limiter (`RateLimiter::keyed(quota)`) applies ONE quota
//! to every key, and partners here have limits of their own (`Credential::rate_limit`).
//! The GCRA is a few lines; what matters is kept here: one `u64` per tracked client (its
//! theoretical arrival time, TAT, in nanoseconds of the limiter's clock), entries dropped
//! once their TAT has passed (such a client is back to a full burst, exactly as if it had
//! never been seen), and a cap on tracked clients.

use std::collections::HashMap;
use std::fmt;
use std::future::{Future, ready};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::rate_limit::RateLimit;

use super::limit::{RateDecision, RateLimiter};

/// Default cap on the clients an [`InMemoryRateLimiter`] tracks at once.
const DEFAULT_MAX_CLIENTS: usize = 100_000;

/// Shards of the client map (each behind its own lock), at most.
const SHARDS: usize = 16;

type NanoClock = Box<dyn Fn() -> Duration + Send + Sync>;

/// The TATs (ns) of the clients of one shard, by client id.
type Shard = HashMap<Box<str>, u64, BuildHasherDefault<Fnv>>;

/// The layer's default rate limiter: a GCRA per client id in this process, each client
/// under its own [`RateLimit`].
///
/// **Memory is bounded.** Only client ids whose signature verified are ever inserted (the
/// layer calls it after verification), one entry each (about 80 bytes with a 15-byte id).
/// An entry whose theoretical arrival time has passed is dropped when room is needed: the
/// client is then back to a full burst, as if never seen, so dropping it changes no
/// decision. At most `max_clients` are tracked (default 100,000, in up to 16 shards of
/// `max_clients / 16`); when a shard is full of clients still inside their limit, the one
/// closest to a full burst is forgotten, which can only let that client send a little
/// more. Size it above the number of partners with a limit.
///
/// **Time** is a monotonic clock with nanosecond resolution by default (the `Instant` of
/// creation as epoch); tests inject one with [`with_clock`](Self::with_clock).
///
/// A fleet of instances needs a shared limiter: each instance's in-process budget is the
/// partner's whole limit. See `jg_hmac::redis::RedisReplayGuard`.
///
/// ```
/// use std::sync::{Arc, atomic::{AtomicU64, Ordering}};
/// use std::time::Duration;
/// use jg_hmac::RateLimit;
/// use jg_hmac::tower::{InMemoryRateLimiter, RateLimiter};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let now = Arc::new(AtomicU64::new(0));
/// let clock = { let now = now.clone(); move || Duration::from_nanos(now.load(Ordering::SeqCst)) };
/// let limiter = InMemoryRateLimiter::new(1_000).with_clock(clock);
/// let limit: RateLimit = "10/s:2".parse().unwrap();
/// assert!(limiter.acquire("c", limit).await.unwrap().unwrap().is_allowed());
/// assert!(limiter.acquire("c", limit).await.unwrap().unwrap().is_allowed());
/// let refused = limiter.acquire("c", limit).await.unwrap().unwrap();
/// assert!(!refused.is_allowed());
/// assert_eq!(refused.wait(), Duration::from_millis(100));
/// now.store(100_000_000, Ordering::SeqCst); // 100 ms later: one more
/// assert!(limiter.acquire("c", limit).await.unwrap().unwrap().is_allowed());
/// # });
/// ```
pub struct InMemoryRateLimiter {
    shards: Box<[Mutex<Shard>]>,
    per_shard: usize,
    max_clients: usize,
    clock: NanoClock,
}

impl InMemoryRateLimiter {
    /// A limiter tracking at most `max_clients` clients at once (at least 1), on a
    /// monotonic clock.
    ///
    /// ```
    /// let limiter = jg_hmac::tower::InMemoryRateLimiter::new(10_000);
    /// assert!(limiter.is_empty());
    /// ```
    pub fn new(max_clients: usize) -> Self {
        let max_clients = max_clients.max(1);
        let shards = max_clients.min(SHARDS);
        let epoch = Instant::now();
        Self {
            shards: (0..shards)
                .map(|_| Mutex::new(HashMap::default()))
                .collect(),
            per_shard: max_clients / shards,
            max_clients,
            clock: Box::new(move || epoch.elapsed()),
        }
    }

    /// The clock the limiter reads on every decision: any monotonic time since an epoch
    /// of your choice, as a [`Duration`] (nanoseconds count: a GCRA at 100/s has 10 ms
    /// between requests). For tests.
    ///
    /// ```
    /// use std::time::Duration;
    /// let limiter = jg_hmac::tower::InMemoryRateLimiter::new(10).with_clock(|| Duration::from_secs(5));
    /// # let _ = limiter;
    /// ```
    #[must_use]
    pub fn with_clock(mut self, clock: impl Fn() -> Duration + Send + Sync + 'static) -> Self {
        self.clock = Box::new(clock);
        self
    }

    /// The number of clients tracked now (entries not yet dropped).
    ///
    /// ```
    /// assert_eq!(jg_hmac::tower::InMemoryRateLimiter::default().len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).len()).sum()
    }

    /// Whether no client is tracked.
    ///
    /// ```
    /// assert!(jg_hmac::tower::InMemoryRateLimiter::default().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most clients tracked at once, as given to [`new`](Self::new) (at least 1; each
    /// of the up to 16 shards holds a sixteenth of it, rounded down).
    ///
    /// ```
    /// assert_eq!(jg_hmac::tower::InMemoryRateLimiter::new(64).max_clients(), 64);
    /// ```
    pub fn max_clients(&self) -> usize {
        self.max_clients
    }

    /// The limiter's clock, in ns.
    fn now(&self) -> u64 {
        u64::try_from((self.clock)().as_nanos()).unwrap_or(u64::MAX)
    }

    /// One request of `client_id` under `limit`, now.
    fn decide(&self, client_id: &str, limit: RateLimit) -> RateDecision {
        let index = shard_of(client_id) % self.shards.len();
        let Some(shard) = self.shards.get(index) else {
            return gcra(None, limit, self.now()).1;
        };
        let mut map = lock(shard);
        // Read under the lock: a decision never sees a time older than the one before it
        // (a thread paused between reading the clock and locking would otherwise find the
        // TAT moved ahead by a later request and refuse it wrongly).
        let now = self.now();
        if let Some(tat) = map.get_mut(client_id) {
            let (next, decision) = gcra(Some(*tat), limit, now);
            if let Some(next) = next {
                *tat = next;
            }
            return decision;
        }
        let (next, decision) = gcra(None, limit, now);
        if let Some(next) = next {
            if map.len() >= self.per_shard {
                map.retain(|_, tat| *tat > now);
            }
            if map.len() >= self.per_shard {
                // Full of clients inside their limit: forget the one nearest a full burst.
                let nearest = map
                    .iter()
                    .min_by_key(|(_, tat)| **tat)
                    .map(|(id, _)| id.clone());
                if let Some(id) = nearest {
                    map.remove(&id);
                }
            }
            map.insert(client_id.into(), next);
        }
        decision
    }
}

impl Default for InMemoryRateLimiter {
    /// [`InMemoryRateLimiter::new`] with 100,000 clients.
    fn default() -> Self {
        Self::new(DEFAULT_MAX_CLIENTS)
    }
}

impl fmt::Debug for InMemoryRateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InMemoryRateLimiter")
            .field("max_clients", &self.max_clients())
            .finish_non_exhaustive()
    }
}

impl RateLimiter for InMemoryRateLimiter {
    fn acquire(
        &self,
        client_id: &str,
        limit: RateLimit,
    ) -> impl Future<Output = Result<Option<RateDecision>, Error>> + Send {
        ready(Ok(Some(self.decide(client_id, limit))))
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// FNV-1a, for the shard of an id and within the shard's map: ids are inserted only once
/// verified, so nobody can choose them to collide, and a short id hashes in a few ns.
#[derive(Default)]
struct Fnv(u64);

impl Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        let start = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        self.0 = bytes.iter().fold(start, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
        });
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Which shard `client_id` lives in (the high bits: the map uses the low ones).
fn shard_of(client_id: &str) -> usize {
    let mut hasher = Fnv::default();
    hasher.write(client_id.as_bytes());
    (hasher.finish() >> 40) as usize
}

/// One GCRA step at `now` (ns) for a client whose stored TAT is `tat` (`None`: not
/// tracked): the TAT to store (`None`: refused, nothing changes) and the decision.
///
/// With `T` = the limit's interval and `B` its burst, a request is allowed when
/// `TAT - now ≤ (B - 1) × T` (with `TAT` = max(stored, now)), and moves `TAT` on by `T`.
/// After it, `B × T - (TAT - now)` ns of budget are left: `remaining` whole requests, and
/// the next one frees in `T - left mod T`.
pub(super) fn gcra(tat: Option<u64>, limit: RateLimit, now: u64) -> (Option<u64>, RateDecision) {
    let interval = u64::try_from(limit.interval().as_nanos())
        .unwrap_or(u64::MAX)
        .max(1);
    let burst = u64::from(limit.burst());
    let tolerance = (burst - 1).saturating_mul(interval);
    let tat = tat.unwrap_or(now).max(now);
    let ahead = tat - now;
    if ahead > tolerance {
        return (
            None,
            RateDecision::limited(Duration::from_nanos(ahead - tolerance)),
        );
    }
    let next = tat.saturating_add(interval);
    let left = burst.saturating_mul(interval).saturating_sub(next - now);
    let remaining = u32::try_from(left / interval).unwrap_or(u32::MAX);
    let wait = Duration::from_nanos(interval - left % interval);
    (Some(next), RateDecision::allowed(remaining, wait))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use proptest::prelude::*;

    use super::*;

    /// The oracle: a plain token bucket per client (capacity `B × T` ns of budget, one
    /// request costs `T`, refilled 1 ns per ns), every client kept forever.
    #[derive(Default)]
    struct Bucket {
        clients: HashMap<String, (u64, u64)>, // (level, last)
    }

    impl Bucket {
        fn decide(&mut self, client: &str, limit: RateLimit, now: u64) -> RateDecision {
            let t = limit.interval().as_nanos() as u64;
            let full = u64::from(limit.burst()) * t;
            let (level, last) = self.clients.get(client).copied().unwrap_or((full, now));
            let level = (level + (now - last)).min(full);
            if level < t {
                self.clients.insert(client.to_owned(), (level, now));
                return RateDecision::limited(Duration::from_nanos(t - level));
            }
            let level = level - t;
            self.clients.insert(client.to_owned(), (level, now));
            RateDecision::allowed((level / t) as u32, Duration::from_nanos(t - level % t))
        }
    }

    fn limiter(max: usize) -> (InMemoryRateLimiter, Arc<AtomicU64>) {
        let now = Arc::new(AtomicU64::new(0));
        let clock = {
            let now = now.clone();
            move || Duration::from_nanos(now.load(Ordering::SeqCst))
        };
        (InMemoryRateLimiter::new(max).with_clock(clock), now)
    }

    const LIMITS: [&str; 4] = ["3/s:1", "100/s:200", "7/min:3", "1000000/s:5"];

    proptest! {
        #[test]
        fn agrees_with_a_token_bucket(
            steps in proptest::collection::vec((0usize..6, 0u64..400_000_000), 1..300),
        ) {
            let (limiter, clock) = limiter(1_000);
            let mut oracle = Bucket::default();
            let mut now = 0u64;
            for (client, dt) in steps {
                now += dt;
                clock.store(now, Ordering::SeqCst);
                let limit: RateLimit = LIMITS[client % LIMITS.len()].parse().unwrap();
                let id = format!("c{client}");
                let got = limiter.decide(&id, limit);
                prop_assert_eq!(got, oracle.decide(&id, limit, now), "{} at {}", id, now);
            }
        }
    }

    #[test]
    fn a_burst_then_one_per_interval() {
        let (limiter, clock) = limiter(10);
        let limit: RateLimit = "100/s:200".parse().unwrap();
        let allowed = (0..300)
            .filter(|_| limiter.decide("c", limit).is_allowed())
            .count();
        assert_eq!(allowed, 200);
        clock.store(1_000_000_000, Ordering::SeqCst);
        let allowed = (0..300)
            .filter(|_| limiter.decide("c", limit).is_allowed())
            .count();
        assert_eq!(allowed, 100, "one second refills 100");
        // Another client is untouched by the first one's flood.
        assert!(limiter.decide("other", limit).is_allowed());
    }

    #[test]
    fn memory_is_bounded_and_expired_entries_go_first() {
        let (limiter, clock) = limiter(32);
        let limit: RateLimit = "1/s:1".parse().unwrap();
        for i in 0..10_000 {
            assert!(limiter.decide(&format!("client-{i}"), limit).is_allowed());
        }
        assert!(limiter.len() <= 32, "{}", limiter.len());
        // All of them are back to a full burst after a second: tracked or not, the same.
        clock.store(1_000_000_000, Ordering::SeqCst);
        for i in 0..10_000 {
            assert!(limiter.decide(&format!("client-{i}"), limit).is_allowed());
        }
        assert!(limiter.len() <= 32);
        // A client held in its shard keeps its state while others come and go in others.
        assert!(!limiter.decide("client-9999", limit).is_allowed());
    }

    #[test]
    fn refusals_spend_nothing() {
        let (limiter, clock) = limiter(4);
        let limit: RateLimit = "1/s:1".parse().unwrap();
        assert!(limiter.decide("c", limit).is_allowed());
        for _ in 0..100 {
            assert!(!limiter.decide("c", limit).is_allowed());
        }
        clock.store(1_000_000_000, Ordering::SeqCst);
        assert!(limiter.decide("c", limit).is_allowed());
    }
}
