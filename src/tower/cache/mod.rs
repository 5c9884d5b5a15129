//! A read-through cache with a time-to-live in front of a slow credential store.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::clock::{Clock, SystemClock};
use crate::credential::Credential;

use super::store::{CredentialStore, StoreError};

/// Default lifetime of a cached credential: 30 s, the bound on revocation.
const DEFAULT_TTL: Duration = Duration::from_secs(30);
/// Default lifetime of a cached "unknown client": 5 s.
const DEFAULT_NEGATIVE_TTL: Duration = Duration::from_secs(5);
/// Default number of credentials held.
const DEFAULT_CAPACITY: usize = 10_000;
/// Default number of unknown client ids held.
const DEFAULT_NEGATIVE_CAPACITY: usize = 1_000;

/// A read-through cache in front of any [`CredentialStore`] (a database, a vault): a
/// client's credential is fetched once and then served from memory for a time-to-live.
///
/// # Revocation bound
///
/// A credential is served from the cache for at most `ttl` (default 30 s) after the
/// lookup that fetched it *started*. So a key revoked (or a client removed) in the
/// backing store at time `r` is refused by every lookup that starts at or after
/// `r + ttl`, on every instance; a key added is likewise seen within `ttl`, or within the
/// negative TTL for a client that was unknown. (Add the store's own replication lag, if
/// it has one.) To revoke at once on this instance, call [`invalidate`](Self::invalidate)
/// or [`clear`](Self::clear); a lookup already under way when you do is not cached.
///
/// # Unknown clients
///
/// An unknown client id (`Ok(None)`) is cached too, for a shorter `negative_ttl` (default
/// 5 s), so that a misconfigured partner retrying in a loop does not send every request
/// to the slow store. Unknown ids have their own, smaller capacity (default 1,000), so a
/// flood of made-up ids cannot push real credentials out. A client created in the store
/// is seen within `negative_ttl`.
///
/// # Errors are not cached
///
/// When the store fails, the error goes to the layer (`503 credential_store_unavailable`)
/// and nothing is cached: the next lookup asks the store again. An expired entry is not
/// served while the store is down either, since that would break the revocation bound.
///
/// # Size and time
///
/// At most `capacity` credentials and `negative_capacity` unknown ids are held; beyond
/// that the oldest entry goes first. The clock is the crate's [`Clock`] (whole seconds;
/// tests inject one), so TTLs are counted in whole seconds. Concurrent lookups of an id
/// that is not cached each ask the store (no request coalescing).
///
/// Clones share the cache: keep one to [`invalidate`](Self::invalidate), give one to
/// the layer.
///
/// ```
/// use std::time::Duration;
/// use jg_hmac::{Credential};
/// use jg_hmac::tower::{CachedStore, CredentialStore, InMemoryCredentialStore};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let backend = InMemoryCredentialStore::from_credentials([
///     Credential::new("jk_live_example").with_key(jg_hmac::SigningKey::new("0", &"s3cr3t_test_key_justgold".into())),
/// ]);
/// let cache = CachedStore::builder(backend.clone())
///     .ttl(Duration::from_secs(60))
///     .clock(|| 1_000u64)
///     .build();
/// assert!(cache.get("jk_live_example").await.unwrap().is_some());
/// backend.revoke_client("jk_live_example");
/// // Still served from the cache until 60 s after it was fetched...
/// assert!(cache.get("jk_live_example").await.unwrap().is_some());
/// // ...unless invalidated.
/// cache.invalidate("jk_live_example");
/// assert!(cache.get("jk_live_example").await.unwrap().is_none());
/// # });
/// ```
pub struct CachedStore<S, C = SystemClock> {
    inner: Arc<Inner<S, C>>,
}

struct Inner<S, C> {
    store: S,
    clock: C,
    ttl: u64,
    negative_ttl: u64,
    state: Mutex<State>,
}

struct State {
    /// Bumped by every invalidation: a lookup that started before does not cache.
    epoch: u64,
    found: Slots<Arc<Credential>>,
    missing: Slots<()>,
}

impl<S: CredentialStore> CachedStore<S> {
    /// A cache with the defaults: TTL 30 s, negative TTL 5 s, 10,000 credentials, 1,000
    /// unknown ids, the system clock.
    ///
    /// ```
    /// use jg_hmac::tower::{CachedStore, InMemoryCredentialStore, VerifyLayer};
    /// let layer = VerifyLayer::new(CachedStore::new(InMemoryCredentialStore::new()));
    /// assert!(format!("{:?}", layer.store()).contains("ttl_secs: 30, negative_ttl_secs: 5"));
    /// ```
    pub fn new(store: S) -> Self {
        Self::builder(store).build()
    }

    /// A builder starting from the defaults of [`new`](Self::new).
    ///
    /// ```
    /// use std::time::Duration;
    /// use jg_hmac::tower::{CachedStore, InMemoryCredentialStore};
    /// let cache = CachedStore::builder(InMemoryCredentialStore::new())
    ///     .ttl(Duration::from_secs(10))
    ///     .negative_ttl(Duration::from_secs(2))
    ///     .capacity(50_000)
    ///     .negative_capacity(5_000)
    ///     .build();
    /// # let _ = cache;
    /// ```
    pub fn builder(store: S) -> CachedStoreBuilder<S> {
        CachedStoreBuilder {
            store,
            clock: SystemClock,
            ttl: DEFAULT_TTL,
            negative_ttl: DEFAULT_NEGATIVE_TTL,
            capacity: DEFAULT_CAPACITY,
            negative_capacity: DEFAULT_NEGATIVE_CAPACITY,
        }
    }
}

impl<S, C> CachedStore<S, C> {
    /// The store behind the cache.
    ///
    /// ```
    /// use jg_hmac::tower::{CachedStore, InMemoryCredentialStore};
    /// let cache = CachedStore::new(InMemoryCredentialStore::new());
    /// assert!(cache.store().is_empty());
    /// ```
    pub fn store(&self) -> &S {
        &self.inner.store
    }

    /// Drops the cached entry of `client_id` (credential or "unknown"), so the next
    /// lookup asks the store; a lookup under way does not cache its answer.
    ///
    /// ```
    /// use jg_hmac::tower::{CachedStore, InMemoryCredentialStore};
    /// let cache = CachedStore::new(InMemoryCredentialStore::new());
    /// cache.invalidate("jk_live_example");
    /// ```
    pub fn invalidate(&self, client_id: &str) {
        let mut state = self.lock();
        state.epoch = state.epoch.wrapping_add(1);
        state.found.remove(client_id);
        state.missing.remove(client_id);
    }

    /// Drops every cached entry (after a bulk revocation).
    ///
    /// ```
    /// use jg_hmac::tower::{CachedStore, InMemoryCredentialStore};
    /// let cache = CachedStore::new(InMemoryCredentialStore::new());
    /// cache.clear();
    /// assert!(cache.is_empty());
    /// ```
    pub fn clear(&self) {
        let mut state = self.lock();
        state.epoch = state.epoch.wrapping_add(1);
        state.found.clear();
        state.missing.clear();
    }

    /// Number of entries held, credentials and unknown ids (expired ones count until
    /// they are replaced or pushed out).
    ///
    /// ```
    /// use jg_hmac::tower::{CachedStore, InMemoryCredentialStore};
    /// assert_eq!(CachedStore::new(InMemoryCredentialStore::new()).len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        let state = self.lock();
        state.found.len() + state.missing.len()
    }

    /// Whether no entry is held.
    ///
    /// ```
    /// use jg_hmac::tower::{CachedStore, InMemoryCredentialStore};
    /// assert!(CachedStore::new(InMemoryCredentialStore::new()).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Each update leaves the maps consistent; a panic elsewhere cannot corrupt them.
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl<S, C> Clone for CachedStore<S, C> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<S, C> fmt::Debug for CachedStore<S, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("CachedStore")
            .field("ttl_secs", &self.inner.ttl)
            .field("negative_ttl_secs", &self.inner.negative_ttl)
            .field("credentials", &state.found.len())
            .field("unknown_ids", &state.missing.len())
            .finish_non_exhaustive()
    }
}

impl<S: CredentialStore, C: Clock + 'static> CredentialStore for CachedStore<S, C> {
    async fn get(&self, client_id: &str) -> Result<Option<Arc<Credential>>, StoreError> {
        // Read before the lookup starts: entries expire `ttl` after this instant.
        let now = self.inner.clock.now();
        let epoch = {
            let state = self.lock();
            if let Some(credential) = state.found.get(client_id, now) {
                return Ok(Some(Arc::clone(credential)));
            }
            if state.missing.get(client_id, now).is_some() {
                return Ok(None);
            }
            state.epoch
        };
        // An error goes back as is, and is not cached.
        let fetched = self.inner.store.get(client_id).await?;
        let mut state = self.lock();
        if state.epoch == epoch {
            match &fetched {
                Some(credential) => {
                    state.missing.remove(client_id);
                    let expires = now.saturating_add(self.inner.ttl);
                    state
                        .found
                        .insert(client_id, Arc::clone(credential), expires);
                }
                None => {
                    state.found.remove(client_id);
                    let expires = now.saturating_add(self.inner.negative_ttl);
                    state.missing.insert(client_id, (), expires);
                }
            }
        }
        Ok(fetched)
    }
}

/// Settings of a [`CachedStore`]; each method documents its default.
///
/// ```
/// use jg_hmac::tower::{CachedStore, InMemoryCredentialStore};
/// let cache = CachedStore::builder(InMemoryCredentialStore::new()).clock(|| 0u64).build();
/// assert!(cache.is_empty());
/// ```
pub struct CachedStoreBuilder<S, C = SystemClock> {
    store: S,
    clock: C,
    ttl: Duration,
    negative_ttl: Duration,
    capacity: usize,
    negative_capacity: usize,
}

impl<S, C> fmt::Debug for CachedStoreBuilder<S, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedStoreBuilder")
            .field("ttl", &self.ttl)
            .field("negative_ttl", &self.negative_ttl)
            .field("capacity", &self.capacity)
            .field("negative_capacity", &self.negative_capacity)
            .finish_non_exhaustive()
    }
}

impl<S: CredentialStore, C: Clock + 'static> CachedStoreBuilder<S, C> {
    /// How long a credential is served from the cache: the revocation bound. Whole
    /// seconds (the fraction is dropped); zero disables caching of credentials. Defaults
    /// to 30 s.
    ///
    /// ```
    /// use std::time::Duration;
    /// use jg_hmac::tower::{CachedStore, InMemoryCredentialStore};
    /// let cache = CachedStore::builder(InMemoryCredentialStore::new()).ttl(Duration::from_secs(5)).build();
    /// assert!(format!("{cache:?}").contains("ttl_secs: 5,"));
    /// ```
    #[must_use]
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// How long an unknown client id is remembered as unknown. Whole seconds; zero
    /// disables negative caching. Defaults to 5 s.
    ///
    /// ```
    /// use std::time::Duration;
    /// use jg_hmac::tower::{CachedStore, InMemoryCredentialStore};
    /// let cache = CachedStore::builder(InMemoryCredentialStore::new()).negative_ttl(Duration::ZERO).build();
    /// assert!(format!("{cache:?}").contains("negative_ttl_secs: 0,"));
    /// ```
    #[must_use]
    pub fn negative_ttl(mut self, ttl: Duration) -> Self {
        self.negative_ttl = ttl;
        self
    }

    /// Most credentials held; beyond it the oldest goes. Defaults to 10,000.
    ///
    /// ```
    /// use jg_hmac::tower::{CachedStore, InMemoryCredentialStore};
    /// let cache = CachedStore::builder(InMemoryCredentialStore::new()).capacity(100).build();
    /// # let _ = cache;
    /// ```
    #[must_use]
    pub fn capacity(mut self, entries: usize) -> Self {
        self.capacity = entries;
        self
    }

    /// Most unknown client ids held; beyond it the oldest goes. Defaults to 1,000.
    ///
    /// ```
    /// use jg_hmac::tower::{CachedStore, InMemoryCredentialStore};
    /// let cache = CachedStore::builder(InMemoryCredentialStore::new()).negative_capacity(0).build();
    /// # let _ = cache;
    /// ```
    #[must_use]
    pub fn negative_capacity(mut self, entries: usize) -> Self {
        self.negative_capacity = entries;
        self
    }

    /// The clock entries expire by. Defaults to [`SystemClock`]; tests inject one.
    ///
    /// ```
    /// use jg_hmac::tower::{CachedStore, InMemoryCredentialStore};
    /// let cache = CachedStore::builder(InMemoryCredentialStore::new()).clock(|| 42u64).build();
    /// # let _ = cache;
    /// ```
    #[must_use]
    pub fn clock<C2: Clock + 'static>(self, clock: C2) -> CachedStoreBuilder<S, C2> {
        CachedStoreBuilder {
            store: self.store,
            clock,
            ttl: self.ttl,
            negative_ttl: self.negative_ttl,
            capacity: self.capacity,
            negative_capacity: self.negative_capacity,
        }
    }

    /// The cache.
    ///
    /// ```
    /// use jg_hmac::tower::{CachedStore, InMemoryCredentialStore};
    /// let cache = CachedStore::builder(InMemoryCredentialStore::new()).build();
    /// # let _ = cache;
    /// ```
    pub fn build(self) -> CachedStore<S, C> {
        CachedStore {
            inner: Arc::new(Inner {
                store: self.store,
                clock: self.clock,
                ttl: self.ttl.as_secs(),
                negative_ttl: self.negative_ttl.as_secs(),
                state: Mutex::new(State {
                    epoch: 0,
                    found: Slots::new(self.capacity),
                    missing: Slots::new(self.negative_capacity),
                }),
            }),
        }
    }
}

/// A bounded map whose entries expire; when full, the oldest insertion goes.
struct Slots<V> {
    capacity: usize,
    entries: HashMap<String, Slot<V>>,
    /// Insertion order, as (sequence number, key); stale pairs (the key was replaced or
    /// removed since) are skipped, and dropped when they outnumber live ones.
    order: VecDeque<(u64, String)>,
    next: u64,
}

struct Slot<V> {
    value: V,
    expires: u64,
    seq: u64,
}

impl<V> Slots<V> {
    fn new(capacity: usize) -> Self {
        Self {
            capacity,
            entries: HashMap::new(),
            order: VecDeque::new(),
            next: 0,
        }
    }

    fn len(&self) -> usize {
        self.entries.len()
    }

    /// The value of `key` if it has not expired at `now`.
    fn get(&self, key: &str, now: u64) -> Option<&V> {
        self.entries
            .get(key)
            .filter(|slot| now < slot.expires)
            .map(|slot| &slot.value)
    }

    fn insert(&mut self, key: &str, value: V, expires: u64) {
        if self.capacity == 0 {
            return;
        }
        let seq = self.next;
        self.next = self.next.wrapping_add(1);
        self.entries.insert(
            key.to_owned(),
            Slot {
                value,
                expires,
                seq,
            },
        );
        self.order.push_back((seq, key.to_owned()));
        while self.entries.len() > self.capacity {
            let Some((seq, oldest)) = self.order.pop_front() else {
                break;
            };
            if self.entries.get(&oldest).is_some_and(|s| s.seq == seq) {
                self.entries.remove(&oldest);
            }
        }
        if self.order.len() > self.capacity.saturating_mul(2) {
            let entries = &self.entries;
            self.order
                .retain(|(seq, key)| entries.get(key).is_some_and(|s| s.seq == *seq));
        }
    }

    fn remove(&mut self, key: &str) {
        self.entries.remove(key);
    }

    fn clear(&mut self) {
        self.entries.clear();
        self.order.clear();
    }
}

#[cfg(test)]
mod tests;
