//! The cache against a store that counts its lookups, on an injected clock.

use std::pin::pin;

use crate::credential::{CredentialLookup, SigningKey};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};

use super::*;
use crate::tower::InMemoryCredentialStore;

const ID: &str = "jk_live_example";

/// A store that counts lookups and can be made to fail.
#[derive(Clone, Default)]
struct Backend {
    inner: InMemoryCredentialStore,
    lookups: Arc<AtomicUsize>,
    failing: Arc<AtomicBool>,
}

impl CredentialStore for Backend {
    async fn get(&self, client_id: &str) -> Result<Option<Arc<Credential>>, StoreError> {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        if self.failing.load(Ordering::SeqCst) {
            return Err(StoreError::new("backend down"));
        }
        Ok(self.inner.lookup(client_id))
    }
}

fn backend() -> Backend {
    let backend = Backend::default();
    backend
        .inner
        .insert(Credential::new(ID).with_key(SigningKey::new("0", &"secret".into())));
    backend
}

fn clock() -> (Arc<AtomicU64>, impl Clock + 'static) {
    let now = Arc::new(AtomicU64::new(1_000));
    let read = Arc::clone(&now);
    (now, move || read.load(Ordering::SeqCst))
}

#[tokio::test]
async fn revocation_takes_effect_within_the_ttl() {
    let backend = backend();
    let (now, clock) = clock();
    let cache = CachedStore::builder(backend.clone())
        .ttl(Duration::from_secs(30))
        .clock(clock)
        .build();
    assert!(cache.get(ID).await.unwrap().is_some());
    assert_eq!(backend.lookups.load(Ordering::SeqCst), 1);

    backend.inner.revoke_client(ID);
    // Served from the cache for the rest of the TTL: no lookup...
    now.store(1_029, Ordering::SeqCst);
    assert!(cache.get(ID).await.unwrap().is_some());
    assert_eq!(backend.lookups.load(Ordering::SeqCst), 1);
    // ...and refused once it has passed.
    now.store(1_030, Ordering::SeqCst);
    assert!(cache.get(ID).await.unwrap().is_none());
    assert_eq!(backend.lookups.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn unknown_ids_are_cached_for_the_negative_ttl() {
    let backend = backend();
    let (now, clock) = clock();
    let cache = CachedStore::builder(backend.clone())
        .negative_ttl(Duration::from_secs(5))
        .clock(clock)
        .build();
    assert!(cache.get("jk_live_new").await.unwrap().is_none());
    assert!(cache.get("jk_live_new").await.unwrap().is_none());
    assert_eq!(backend.lookups.load(Ordering::SeqCst), 1);

    backend
        .inner
        .insert(Credential::new("jk_live_new").with_key(SigningKey::new("0", &"s".into())));
    now.store(1_004, Ordering::SeqCst);
    assert!(cache.get("jk_live_new").await.unwrap().is_none());
    now.store(1_005, Ordering::SeqCst);
    assert!(cache.get("jk_live_new").await.unwrap().is_some());
    assert_eq!(backend.lookups.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn errors_are_not_cached_and_expired_entries_are_not_served_on_error() {
    let backend = backend();
    let (now, clock) = clock();
    let cache = CachedStore::builder(backend.clone())
        .ttl(Duration::from_secs(30))
        .clock(clock)
        .build();
    backend.failing.store(true, Ordering::SeqCst);
    assert!(cache.get(ID).await.is_err());
    assert!(cache.get(ID).await.is_err());
    assert_eq!(backend.lookups.load(Ordering::SeqCst), 2);
    assert!(cache.is_empty());

    backend.failing.store(false, Ordering::SeqCst);
    assert!(cache.get(ID).await.unwrap().is_some());
    backend.failing.store(true, Ordering::SeqCst);
    now.store(1_030, Ordering::SeqCst);
    assert!(cache.get(ID).await.is_err(), "an expired entry was served");
    backend.failing.store(false, Ordering::SeqCst);
    assert!(cache.get(ID).await.unwrap().is_some());
    assert_eq!(backend.lookups.load(Ordering::SeqCst), 5);
}

#[tokio::test]
async fn invalidate_and_clear_take_effect_at_once() {
    let backend = backend();
    let (_now, clock) = clock();
    let cache = CachedStore::builder(backend.clone()).clock(clock).build();
    assert!(cache.get(ID).await.unwrap().is_some());
    backend.inner.revoke_client(ID);
    assert!(cache.get(ID).await.unwrap().is_some());
    cache.invalidate(ID);
    assert!(cache.get(ID).await.unwrap().is_none());
    backend
        .inner
        .insert(Credential::new(ID).with_key(SigningKey::new("0", &"s".into())));
    cache.clear();
    assert!(cache.get(ID).await.unwrap().is_some());
}

/// A store whose lookup waits until released, to interleave an invalidation.
#[derive(Default)]
struct Gate {
    inner: InMemoryCredentialStore,
    released: AtomicBool,
}

impl CredentialStore for Arc<Gate> {
    async fn get(&self, client_id: &str) -> Result<Option<Arc<Credential>>, StoreError> {
        let found = self.inner.lookup(client_id);
        std::future::poll_fn(|_| {
            if self.released.load(Ordering::SeqCst) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
        Ok(found)
    }
}

#[test]
fn a_lookup_under_way_during_invalidation_is_not_cached() {
    let gate = Arc::new(Gate {
        inner: backend().inner,
        ..Gate::default()
    });
    let (_now, clock) = clock();
    let cache = CachedStore::builder(Arc::clone(&gate)).clock(clock).build();
    let mut cx = Context::from_waker(Waker::noop());
    let mut lookup = pin!(cache.get(ID));
    // The lookup has read the credential and waits.
    assert!(lookup.as_mut().poll(&mut cx).is_pending());
    gate.inner.revoke_client(ID);
    cache.invalidate(ID);
    gate.released.store(true, Ordering::SeqCst);
    let Poll::Ready(answer) = lookup.as_mut().poll(&mut cx) else {
        panic!("the released lookup did not finish");
    };
    assert!(answer.unwrap().is_some(), "the lookup answers what it read");
    assert!(cache.is_empty(), "but does not cache it");
    let Poll::Ready(next) = pin!(cache.get(ID)).poll(&mut cx) else {
        panic!("lookup did not finish");
    };
    assert!(next.unwrap().is_none());
}

#[test]
fn slots_are_bounded_and_drop_the_oldest() {
    let mut slots = Slots::new(2);
    slots.insert("a", 1, 100);
    slots.insert("b", 2, 100);
    slots.insert("a", 3, 100); // replaces a: b is now the oldest
    slots.insert("c", 4, 100);
    assert_eq!(slots.len(), 2);
    assert_eq!(slots.get("b", 0), None);
    assert_eq!(slots.get("a", 0), Some(&3));
    assert_eq!(slots.get("c", 0), Some(&4));
    assert_eq!(slots.get("c", 100), None, "expired at its expiry second");
    for i in 0..100 {
        slots.insert("a", i, 100);
    }
    assert!(slots.order.len() <= 4, "stale order entries are compacted");
    let mut none = Slots::new(0);
    none.insert("a", 1, 100);
    assert_eq!(none.len(), 0);
}

#[tokio::test]
async fn unknown_ids_do_not_push_out_credentials() {
    let backend = backend();
    let (_now, clock) = clock();
    let cache = CachedStore::builder(backend.clone())
        .capacity(1)
        .negative_capacity(2)
        .clock(clock)
        .build();
    assert!(cache.get(ID).await.unwrap().is_some());
    for i in 0..10 {
        assert!(cache.get(&format!("jk_live_x{i}")).await.unwrap().is_none());
    }
    assert_eq!(cache.len(), 3);
    let before = backend.lookups.load(Ordering::SeqCst);
    assert!(cache.get(ID).await.unwrap().is_some());
    assert_eq!(backend.lookups.load(Ordering::SeqCst), before);
}
