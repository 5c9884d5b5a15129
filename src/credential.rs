//! Credentials (a client id with its secrets) and the lookup trait verifiers use.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Arc;

use crate::rate_limit::RateLimit;
use crate::secret::{KeyedMac, Secret};

/// One secret of a client, keyed for HMAC once when it is loaded.
///
/// A key has an id (a label such as `"2026-11"`, reported when it matches, never secret)
/// and an optional validity period in UNIX seconds, so that a rotation can be scheduled:
/// a key is active at `now` when `not_before <= now <= not_after`.
///
/// The secret bytes are not kept: only the keyed HMAC state, which is wiped on drop and
/// never printed.
///
/// ```
/// use jg_hmac::{Secret, SigningKey};
/// let key = SigningKey::new("2026-11", &Secret::from("s3cr3t_test_key_justgold"))
///     .with_validity(Some(1_700_000_000), None);
/// assert!(key.is_active_at(1_735_550_160));
/// assert!(!key.is_active_at(1_600_000_000));
/// assert!(!format!("{key:?}").contains("s3cr3t"));
/// ```
#[derive(Clone)]
pub struct SigningKey {
    id: String,
    mac: KeyedMac,
    not_before: Option<u64>,
    not_after: Option<u64>,
}

impl SigningKey {
    /// A key with id `id`, active at all times.
    ///
    /// ```
    /// let key = jg_hmac::SigningKey::new("k1", &jg_hmac::Secret::from("secret"));
    /// assert_eq!(key.id(), "k1");
    /// ```
    pub fn new(id: impl Into<String>, secret: &Secret) -> Self {
        Self {
            id: id.into(),
            mac: KeyedMac::new(secret),
            not_before: None,
            not_after: None,
        }
    }

    /// Sets the validity period (inclusive bounds, UNIX seconds; `None` is unbounded).
    ///
    /// ```
    /// let key = jg_hmac::SigningKey::new("k1", &jg_hmac::Secret::from("s")).with_validity(None, Some(10));
    /// assert!(key.is_active_at(10));
    /// assert!(!key.is_active_at(11));
    /// ```
    #[must_use]
    pub fn with_validity(mut self, not_before: Option<u64>, not_after: Option<u64>) -> Self {
        self.not_before = not_before;
        self.not_after = not_after;
        self
    }

    /// The key's id.
    ///
    /// ```
    /// assert_eq!(jg_hmac::SigningKey::new("old", &jg_hmac::Secret::from("s")).id(), "old");
    /// ```
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Whether the key may verify a request at `now`.
    ///
    /// ```
    /// let key = jg_hmac::SigningKey::new("k", &jg_hmac::Secret::from("s")).with_validity(Some(5), Some(5));
    /// assert!(key.is_active_at(5) && !key.is_active_at(4) && !key.is_active_at(6));
    /// ```
    pub fn is_active_at(&self, now: u64) -> bool {
        self.not_before.is_none_or(|nb| nb <= now) && self.not_after.is_none_or(|na| now <= na)
    }

    pub(crate) fn mac(&self) -> &KeyedMac {
        &self.mac
    }
}

impl core::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SigningKey")
            .field("id", &self.id)
            .field("secret", &"[redacted]")
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .finish()
    }
}

/// A client id with the secrets that may sign its requests.
///
/// Several keys may be active at once, the overlap during a rotation (SPEC.md §8): a
/// request verifies if it matches any active key. A store revokes a key by removing it
/// (e.g. [`InMemoryCredentialStore::revoke_key`](crate::tower::InMemoryCredentialStore::revoke_key)
/// with feature `tower`), which takes effect at once.
///
/// ```
/// use jg_hmac::{Credential, Secret, SigningKey};
/// let cred = Credential::new("jk_live_example")
///     .with_key(SigningKey::new("old", &Secret::from("old secret")))
///     .with_key(SigningKey::new("new", &Secret::from("new secret")));
/// assert_eq!(cred.keys().len(), 2);
/// assert_eq!(cred.keys()[1].id(), "new");
/// ```
///
/// A credential may also carry what the service needs to know about the client once it
/// is authenticated: [scopes](Credential::with_scope) and any typed
/// [attributes](Credential::with_extension) (an environment, a tenant, rate-limit tier).
/// Verification never reads them; middleware hands them to the handler.
#[derive(Clone, Debug)]
pub struct Credential {
    client_id: String,
    keys: Vec<SigningKey>,
    scopes: Vec<String>,
    rate_limit: Option<RateLimit>,
    extensions: http::Extensions,
}

impl Credential {
    /// A credential with no keys yet (it verifies nothing until one is added).
    ///
    /// ```
    /// assert!(jg_hmac::Credential::new("jk_test_1").keys().is_empty());
    /// ```
    pub fn new(client_id: impl Into<String>) -> Self {
        Self {
            client_id: client_id.into(),
            keys: Vec::new(),
            scopes: Vec::new(),
            rate_limit: None,
            extensions: http::Extensions::new(),
        }
    }

    /// Adds a key.
    ///
    /// ```
    /// let cred = jg_hmac::Credential::new("c").with_key(jg_hmac::SigningKey::new("k", &"s".into()));
    /// assert_eq!(cred.keys().len(), 1);
    /// ```
    #[must_use]
    pub fn with_key(mut self, key: SigningKey) -> Self {
        self.keys.push(key);
        self
    }

    /// Adds a key in place (the stores' rotation).
    #[cfg(feature = "tower")]
    pub(crate) fn add_key(&mut self, key: SigningKey) {
        self.keys.push(key);
    }

    /// Removes every key with id `key_id`; says whether one was removed (the stores'
    /// revocation).
    #[cfg(feature = "tower")]
    pub(crate) fn revoke(&mut self, key_id: &str) -> bool {
        let before = self.keys.len();
        self.keys.retain(|k| k.id != key_id);
        self.keys.len() != before
    }

    /// The client id.
    ///
    /// ```
    /// assert_eq!(jg_hmac::Credential::new("jk_live_example").client_id(), "jk_live_example");
    /// ```
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The keys, in the order they were added.
    ///
    /// ```
    /// assert!(jg_hmac::Credential::new("c").keys().is_empty());
    /// ```
    pub fn keys(&self) -> &[SigningKey] {
        &self.keys
    }

    /// Grants a scope (an opaque label such as `"transactions:write"`), kept in order.
    ///
    /// ```
    /// let cred = jg_hmac::Credential::new("c").with_scope("orders:read").with_scope("orders:write");
    /// assert_eq!(cred.scopes(), ["orders:read", "orders:write"]);
    /// ```
    #[must_use]
    pub fn with_scope(mut self, scope: impl Into<String>) -> Self {
        self.scopes.push(scope.into());
        self
    }

    /// The scopes granted, in the order they were added.
    ///
    /// ```
    /// assert!(jg_hmac::Credential::new("c").scopes().is_empty());
    /// ```
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// Whether `scope` was granted (exact, case-sensitive match).
    ///
    /// ```
    /// let cred = jg_hmac::Credential::new("c").with_scope("orders:read");
    /// assert!(cred.has_scope("orders:read") && !cred.has_scope("orders:write"));
    /// ```
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// Sets the client's own rate limit, which takes precedence over a limiter's default.
    ///
    /// ```
    /// let limit = jg_hmac::RateLimit::per_second(100, 200).unwrap();
    /// let cred = jg_hmac::Credential::new("c").with_rate_limit(limit);
    /// assert_eq!(cred.rate_limit(), Some(limit));
    /// ```
    #[must_use]
    pub fn with_rate_limit(mut self, limit: RateLimit) -> Self {
        self.rate_limit = Some(limit);
        self
    }

    /// The client's own rate limit, if it has one.
    ///
    /// ```
    /// assert_eq!(jg_hmac::Credential::new("c").rate_limit(), None);
    /// ```
    pub fn rate_limit(&self) -> Option<RateLimit> {
        self.rate_limit
    }

    /// Attaches a typed attribute, replacing any earlier one of the same type.
    ///
    /// ```
    /// #[derive(Clone, Debug, PartialEq)]
    /// struct Tenant(u32);
    /// let cred = jg_hmac::Credential::new("c").with_extension(Tenant(7));
    /// assert_eq!(cred.extensions().get::<Tenant>(), Some(&Tenant(7)));
    /// ```
    #[must_use]
    pub fn with_extension<T: Clone + Send + Sync + 'static>(mut self, value: T) -> Self {
        self.extensions.insert(value);
        self
    }

    /// The typed attributes (an [`http::Extensions`] map; its `Debug` shows no values).
    ///
    /// ```
    /// assert!(jg_hmac::Credential::new("c").extensions().is_empty());
    /// ```
    pub fn extensions(&self) -> &http::Extensions {
        &self.extensions
    }
}

/// Finds the credential of a client id: the verifier's pluggable secret lookup.
///
/// Return `None` for an unknown or revoked client. Implemented for
/// `HashMap<String, Arc<Credential>>`, for closures, and through `&T` and `Arc<T>`.
/// Stores that must `.await` (a database, a vault) use the two-step path instead:
/// [`Verifier::prepare`](crate::Verifier::prepare), look up, then
/// [`Verifier::finish`](crate::Verifier::finish).
///
/// ```
/// use std::{collections::HashMap, sync::Arc};
/// use jg_hmac::{Credential, CredentialLookup};
/// let mut store: HashMap<String, Arc<Credential>> = HashMap::new();
/// store.insert("jk_live_example".into(), Arc::new(Credential::new("jk_live_example")));
/// assert!(store.lookup("jk_live_example").is_some());
/// assert!(store.lookup("jk_live_other").is_none());
///
/// let by_closure = |id: &str| (id == "a").then(|| Arc::new(Credential::new("a")));
/// assert!(by_closure.lookup("a").is_some());
/// ```
pub trait CredentialLookup {
    /// The credential of `client_id`, if it exists and is not revoked.
    fn lookup(&self, client_id: &str) -> Option<Arc<Credential>>;
}

impl<S: BuildHasher> CredentialLookup for HashMap<String, Arc<Credential>, S> {
    fn lookup(&self, client_id: &str) -> Option<Arc<Credential>> {
        self.get(client_id).cloned()
    }
}

impl<F> CredentialLookup for F
where
    F: Fn(&str) -> Option<Arc<Credential>>,
{
    fn lookup(&self, client_id: &str) -> Option<Arc<Credential>> {
        self(client_id)
    }
}

impl<T: CredentialLookup + ?Sized> CredentialLookup for Arc<T> {
    fn lookup(&self, client_id: &str) -> Option<Arc<Credential>> {
        (**self).lookup(client_id)
    }
}
