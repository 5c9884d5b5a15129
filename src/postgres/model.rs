//! What the operator's calls take and give: a new client, a key just issued, the
//! listing of clients and keys, a re-key's report. Times are UNIX seconds, as everywhere
//! in the crate.

use std::fmt;

use zeroize::Zeroizing;

use crate::Environment;
use crate::secret::Secret;

/// A new client to [create](super::PgCredentialStore::create_client).
///
/// ```
/// use jg_hmac::postgres::NewClient;
/// use jg_hmac::Environment;
/// let client = NewClient::new(Environment::Live)
///     .client_id("jk_live_acme")
///     .scope("transactions:write");
/// assert!(format!("{client:?}").contains("\"transactions:write\""));
/// ```
#[derive(Clone, Debug)]
pub struct NewClient {
    pub(super) environment: Environment,
    pub(super) client_id: Option<String>,
    pub(super) scopes: Vec<String>,
}

impl NewClient {
    /// A client of `environment` with a generated id and no scopes.
    ///
    /// ```
    /// let c = jg_hmac::postgres::NewClient::new(jg_hmac::Environment::Test);
    /// assert!(format!("{c:?}").contains("environment: Test, client_id: None"));
    /// ```
    pub fn new(environment: Environment) -> Self {
        Self {
            environment,
            client_id: None,
            scopes: Vec::new(),
        }
    }

    /// Uses this id instead of a generated one; it must start with the environment's
    /// prefix.
    ///
    /// ```
    /// let c = jg_hmac::postgres::NewClient::new(jg_hmac::Environment::Test).client_id("jk_test_acme");
    /// assert!(format!("{c:?}").contains("Some(\"jk_test_acme\")"));
    /// ```
    #[must_use]
    pub fn client_id(mut self, id: impl Into<String>) -> Self {
        self.client_id = Some(id.into());
        self
    }

    /// Grants a scope (repeatable).
    ///
    /// ```
    /// let c = jg_hmac::postgres::NewClient::new(jg_hmac::Environment::Test).scope("orders:read");
    /// assert!(format!("{c:?}").contains("[\"orders:read\"]"));
    /// ```
    #[must_use]
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scopes.push(scope.into());
        self
    }
}

/// A key just issued: the client id, the key id, and the secret, which is shown this
/// once (the database keeps only its ciphertext). Wiped on drop; `Debug` hides it.
///
/// ```no_run
/// use std::io::Write;
/// # async fn run(store: jg_hmac::postgres::PgCredentialStore) -> Result<(), jg_hmac::postgres::PgError> {
/// let overlap = std::time::Duration::from_secs(86_400);
/// store
///     .rotate("jk_live_acme", overlap, "ops", |issued| {
///         // shown this once, before the new key is committed
///         writeln!(std::io::stdout(), "{} {}", issued.key_id, issued.secret_hex())
///     })
///     .await?;
/// # Ok(()) }
/// ```
pub struct Issued {
    /// The client id.
    pub client_id: String,
    /// The new key's id.
    pub key_id: String,
    pub(super) secret: Zeroizing<String>,
}

impl Issued {
    /// The secret, 64 lowercase hex digits; the partner signs with their UTF-8 bytes.
    ///
    /// ```no_run
    /// # fn f(issued: &jg_hmac::postgres::Issued) {
    /// assert_eq!(issued.secret_hex().len(), 64);
    /// # }
    /// ```
    pub fn secret_hex(&self) -> &str {
        &self.secret
    }

    /// The secret as the crate's [`Secret`], e.g. for a [`Signer`](crate::Signer).
    ///
    /// ```no_run
    /// # fn f(issued: &jg_hmac::postgres::Issued) -> Result<(), jg_hmac::Error> {
    /// let signer = jg_hmac::Signer::new(&issued.client_id, &issued.secret())?;
    /// # let _ = signer; Ok(()) }
    /// ```
    pub fn secret(&self) -> Secret {
        Secret::from(self.secret.as_str())
    }
}

impl fmt::Debug for Issued {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issued")
            .field("client_id", &self.client_id)
            .field("key_id", &self.key_id)
            .field("secret", &"[redacted]")
            .finish()
    }
}

/// A client as [listed](super::PgCredentialStore::list): everything but secrets. Times are UNIX
/// seconds.
///
/// ```no_run
/// # async fn run(store: jg_hmac::postgres::PgCredentialStore) -> Result<(), jg_hmac::postgres::PgError> {
/// for client in store.list(None).await? {
///     println!("{} {} {:?} keys={}", client.client_id, client.environment, client.scopes, client.keys.len());
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientInfo {
    /// The client id.
    pub client_id: String,
    /// `live` or `test`.
    pub environment: String,
    /// The scopes granted.
    pub scopes: Vec<String>,
    /// Whether the client was revoked as a whole.
    pub disabled: bool,
    /// When the client was created.
    pub created_at: u64,
    /// Its keys, oldest first, revoked ones included.
    pub keys: Vec<KeyInfo>,
}

/// A key as [listed](super::PgCredentialStore::list): its id and validity, never its secret.
///
/// ```
/// # fn f(key: &jg_hmac::postgres::KeyInfo) -> &'static str {
/// key.status(1_800_000_000)
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyInfo {
    /// The key id.
    pub key_id: String,
    /// The id of the KEK its secret is sealed with.
    pub kek_id: String,
    /// When it was issued.
    pub created_at: u64,
    /// Start of validity, if any.
    pub not_before: Option<u64>,
    /// End of validity, if any.
    pub not_after: Option<u64>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<u64>,
}

impl KeyInfo {
    /// `revoked`, `scheduled` (before `not_before`), `expired` (after `not_after`) or
    /// `active`, at `now` (UNIX seconds).
    ///
    /// ```
    /// use jg_hmac::{Clock, SystemClock};
    /// # fn f(key: &jg_hmac::postgres::KeyInfo) -> bool {
    /// key.status(SystemClock.now()) == "active"
    /// # }
    /// ```
    pub fn status(&self, now: u64) -> &'static str {
        if self.revoked_at.is_some() {
            "revoked"
        } else if self.not_before.is_some_and(|nb| now < nb) {
            "scheduled"
        } else if self.not_after.is_some_and(|na| now > na) {
            "expired"
        } else {
            "active"
        }
    }
}

/// What a [re-key](super::PgCredentialStore::rekey) did.
///
/// ```no_run
/// # fn f(r: jg_hmac::postgres::RekeyReport) {
/// println!("re-encrypted {}, already under the new KEK {}", r.rekeyed, r.already);
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RekeyReport {
    /// Secrets re-encrypted under the new KEK.
    pub rekeyed: usize,
    /// Secrets that were under the new KEK already (a re-key run twice).
    pub already: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_status_at_now() {
        let key = |not_before, not_after, revoked_at| KeyInfo {
            key_id: "k_a".to_owned(),
            kek_id: "local:0".to_owned(),
            created_at: 100,
            not_before,
            not_after,
            revoked_at,
        };
        assert_eq!(key(None, None, None).status(150), "active");
        assert_eq!(key(Some(200), None, None).status(150), "scheduled");
        assert_eq!(key(None, Some(120), None).status(150), "expired");
        assert_eq!(key(None, Some(150), None).status(150), "active");
        assert_eq!(key(None, None, Some(140)).status(150), "revoked");
    }
}
