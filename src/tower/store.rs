//! Async credential stores: the trait the layer looks credentials up through, and an
//! in-memory store that can be rotated while serving.

use std::collections::HashMap;
use std::fmt;
use std::future::{Future, ready};
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;

use crate::credential::{Credential, CredentialLookup, SigningKey};

/// A boxed error from a store (a database or vault that could not answer).
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A credential store could not answer (connection lost, timeout, bad data).
///
/// The layer answers such a request with `503 credential_store_unavailable` and logs the
/// error's `Display` form to the audit log at `warn`; the partner never sees it. Keep
/// secrets out of the errors you build.
///
/// ```
/// use jg_hmac::tower::StoreError;
/// let err = StoreError::new("vault timed out after 2 s");
/// assert_eq!(err.to_string(), "credential store unavailable: vault timed out after 2 s");
/// ```
pub struct StoreError(BoxError);

impl StoreError {
    /// Wraps any error (or message) from the store's backend.
    ///
    /// ```
    /// let io = std::io::Error::other("connection reset");
    /// let err = jg_hmac::tower::StoreError::new(io);
    /// assert!(std::error::Error::source(&err).is_some());
    /// ```
    pub fn new(source: impl Into<BoxError>) -> Self {
        Self(source.into())
    }
}

impl fmt::Debug for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("StoreError").field(&self.0).finish()
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "credential store unavailable: {}", self.0)
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

/// Where the [`VerifyLayer`](super::VerifyLayer) finds the credential of a client id:
/// an async lookup, so a database or a vault can sit behind it.
///
/// Return `Ok(None)` for an unknown or revoked client, `Err` when the store cannot answer.
/// The returned future must be `Send` (servers move requests between threads); it should
/// bound its own I/O with a timeout, since the layer waits for it.
///
/// Implement it with `async fn` (the trait uses return-position `impl Future`, so static
/// dispatch costs no allocation). Every synchronous [`CredentialLookup`] (a `HashMap`, a
/// closure) is a `CredentialStore` already.
///
/// ```
/// use std::sync::Arc;
/// use jg_hmac::Credential;
/// use jg_hmac::tower::{CredentialStore, StoreError};
///
/// struct Vault; // stands for a client of a real secret store
///
/// impl CredentialStore for Vault {
///     async fn get(&self, client_id: &str) -> Result<Option<Arc<Credential>>, StoreError> {
///         // let row = self.pool.query(...).await.map_err(StoreError::new)?;
///         Ok((client_id == "jk_live_example").then(|| {
///             Arc::new(Credential::new(client_id).with_key(jg_hmac::SigningKey::new("0", &"s3cr3t_test_key_justgold".into())))
///         }))
///     }
/// }
/// let layer = jg_hmac::tower::VerifyLayer::new(Vault);
/// # let _ = layer;
/// ```
pub trait CredentialStore: Send + Sync + 'static {
    /// The credential of `client_id`, `None` if it is unknown or revoked.
    ///
    /// # Errors
    /// [`StoreError`] when the store cannot answer; the request is then refused with 503.
    fn get(
        &self,
        client_id: &str,
    ) -> impl Future<Output = Result<Option<Arc<Credential>>, StoreError>> + Send;
}

/// Every synchronous [`CredentialLookup`] (a `HashMap`, a closure, an
/// [`InMemoryCredentialStore`]) is a `CredentialStore` that never fails.
impl<L: CredentialLookup + Send + Sync + 'static> CredentialStore for L {
    fn get(
        &self,
        client_id: &str,
    ) -> impl Future<Output = Result<Option<Arc<Credential>>, StoreError>> + Send {
        ready(Ok(self.lookup(client_id)))
    }
}

type Snapshot = HashMap<String, Arc<Credential>>;

/// An in-memory credential store for the common case, safe to change while serving.
///
/// Readers load an immutable snapshot through [`arc_swap::ArcSwap`]: a lookup takes no
/// lock and never waits for a writer. Writers copy the map (credentials are shared
/// `Arc`s, so a copy is one pointer per client), change the copy and swap it in; they are
/// serialised among themselves by a mutex. A request sees the store as it was when its
/// lookup ran: a key revoked after that lookup still verifies that one request.
///
/// Clones share the same contents: keep one to rotate keys, give one to the layer.
///
/// Rotation, step by step:
/// 1. [`add_key`](Self::add_key) the new key beside the old (both verify: the overlap),
///    or add it with [`SigningKey::with_validity`] to schedule it;
/// 2. partners switch to the new secret;
/// 3. [`revoke_key`](Self::revoke_key) the old one (or let its `not_after` pass).
///
/// ```
/// use jg_hmac::CredentialLookup;
/// use jg_hmac::{Credential, Secret, SigningKey};
/// use jg_hmac::tower::InMemoryCredentialStore;
///
/// let store = InMemoryCredentialStore::new();
/// store.insert(Credential::new("jk_live_example").with_key(SigningKey::new("2025", &Secret::from("old"))));
/// store.add_key("jk_live_example", SigningKey::new("2026", &Secret::from("new")));
/// assert_eq!(store.lookup("jk_live_example").unwrap().keys().len(), 2);
/// assert!(store.revoke_key("jk_live_example", "2025"));
/// assert!(store.revoke_client("jk_live_example"));
/// assert!(store.lookup("jk_live_example").is_none());
/// ```
#[derive(Clone, Default)]
pub struct InMemoryCredentialStore {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    snapshot: ArcSwap<Snapshot>,
    writer: Mutex<()>,
}

impl InMemoryCredentialStore {
    /// An empty store.
    ///
    /// ```
    /// assert!(jg_hmac::tower::InMemoryCredentialStore::new().is_empty());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// A store holding these credentials (a later one replaces an earlier one of the same
    /// client id).
    ///
    /// ```
    /// use jg_hmac::Credential;
    /// let store = jg_hmac::tower::InMemoryCredentialStore::from_credentials([
    ///     Credential::new("jk_live_a").with_key(jg_hmac::SigningKey::new("0", &"a".into())),
    ///     Credential::new("jk_live_b").with_key(jg_hmac::SigningKey::new("0", &"b".into())),
    /// ]);
    /// assert_eq!(store.len(), 2);
    /// ```
    pub fn from_credentials(credentials: impl IntoIterator<Item = Credential>) -> Self {
        let store = Self::new();
        store.replace_all(credentials);
        store
    }

    /// Number of clients.
    ///
    /// ```
    /// assert_eq!(jg_hmac::tower::InMemoryCredentialStore::new().len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.inner.snapshot.load().len()
    }

    /// Whether the store holds no client.
    ///
    /// ```
    /// assert!(jg_hmac::tower::InMemoryCredentialStore::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds a client, or replaces the credential of its client id.
    ///
    /// ```
    /// let store = jg_hmac::tower::InMemoryCredentialStore::new();
    /// store.insert(jg_hmac::Credential::new("jk_live_a"));
    /// assert_eq!(store.len(), 1);
    /// ```
    pub fn insert(&self, credential: Credential) {
        self.update(|map| {
            map.insert(credential.client_id().to_owned(), Arc::new(credential));
        });
    }

    /// Adds a key to a client beside its current ones (the rotation overlap), creating
    /// the client if it is not there. Give the key a validity period to schedule it.
    ///
    /// ```
    /// use jg_hmac::CredentialLookup;
    /// use jg_hmac::SigningKey;
    /// let store = jg_hmac::tower::InMemoryCredentialStore::new();
    /// store.add_key("jk_live_a", SigningKey::new("k1", &"s".into()).with_validity(Some(1_800_000_000), None));
    /// assert_eq!(store.lookup("jk_live_a").unwrap().keys()[0].id(), "k1");
    /// ```
    pub fn add_key(&self, client_id: &str, key: SigningKey) {
        self.update(|map| {
            let mut credential = map
                .get(client_id)
                .map_or_else(|| Credential::new(client_id), |c| Credential::clone(c));
            credential.add_key(key);
            map.insert(client_id.to_owned(), Arc::new(credential));
        });
    }

    /// Removes a client's key(s) with id `key_id` at once; says whether one was removed.
    /// Requests whose lookup runs after this no longer verify with that key.
    ///
    /// ```
    /// let store = jg_hmac::tower::InMemoryCredentialStore::from_credentials([
    ///     jg_hmac::Credential::new("jk_live_a").with_key(jg_hmac::SigningKey::new("0", &"s".into())),
    /// ]);
    /// assert!(store.revoke_key("jk_live_a", "0"));
    /// assert!(!store.revoke_key("jk_live_a", "0"));
    /// ```
    pub fn revoke_key(&self, client_id: &str, key_id: &str) -> bool {
        let mut removed = false;
        self.update(|map| {
            if let Some(current) = map.get(client_id) {
                let mut credential = Credential::clone(current);
                removed = credential.revoke(key_id);
                if removed {
                    map.insert(client_id.to_owned(), Arc::new(credential));
                }
            }
        });
        removed
    }

    /// Removes a client at once; says whether it was there.
    ///
    /// ```
    /// let store = jg_hmac::tower::InMemoryCredentialStore::new();
    /// assert!(!store.revoke_client("jk_live_a"));
    /// ```
    pub fn revoke_client(&self, client_id: &str) -> bool {
        let mut removed = false;
        self.update(|map| removed = map.remove(client_id).is_some());
        removed
    }

    /// Replaces the whole contents in one swap (e.g. after reloading from a database):
    /// each lookup sees either the old contents or the new, never a mix.
    ///
    /// ```
    /// use jg_hmac::CredentialLookup;
    /// let store = jg_hmac::tower::InMemoryCredentialStore::new();
    /// store.replace_all([jg_hmac::Credential::new("jk_live_a")]);
    /// store.replace_all([jg_hmac::Credential::new("jk_live_b")]);
    /// assert!(store.lookup("jk_live_a").is_none() && store.lookup("jk_live_b").is_some());
    /// ```
    pub fn replace_all(&self, credentials: impl IntoIterator<Item = Credential>) {
        let map: Snapshot = credentials
            .into_iter()
            .map(|c| (c.client_id().to_owned(), Arc::new(c)))
            .collect();
        let _writer = self.lock_writer();
        self.inner.snapshot.store(Arc::new(map));
    }

    fn update(&self, change: impl FnOnce(&mut Snapshot)) {
        let _writer = self.lock_writer();
        let mut map = Snapshot::clone(&self.inner.snapshot.load());
        change(&mut map);
        self.inner.snapshot.store(Arc::new(map));
    }

    fn lock_writer(&self) -> std::sync::MutexGuard<'_, ()> {
        // The mutex guards no data, only the order of writers: poison is harmless.
        self.inner
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for InMemoryCredentialStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InMemoryCredentialStore")
            .field("clients", &self.len())
            .finish_non_exhaustive()
    }
}

/// The credential of a client id in the current snapshot.
impl CredentialLookup for InMemoryCredentialStore {
    fn lookup(&self, client_id: &str) -> Option<Arc<Credential>> {
        let snapshot = self.inner.snapshot.load();
        Snapshot::get(&snapshot, client_id).cloned()
    }
}
