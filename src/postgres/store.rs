//! The PostgreSQL credential store: its handle, and the read path the verifying layer
//! takes (a lookup that opens each key's secret).

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;

use crate::Environment;
use crate::client_id::{self, is_well_formed};
use crate::credential::{Credential, SigningKey};
use crate::tower::{CredentialStore, StoreError};

use super::error::{PgError, describe};
use super::kek::{Kek, Sealed};
use super::tls::{self, Tls};

/// Target of this module's tracing events (defined with the KEK, the first layer).
pub(crate) use super::kek::LOG_TARGET;

const SELECT_CREDENTIAL: &str = "\
    SELECT c.environment, c.scopes, c.disabled, k.key_id, k.kek_id, k.nonce, k.ciphertext, \
           ceil(extract(epoch FROM k.not_before))::bigint, floor(extract(epoch FROM k.not_after))::bigint \
    FROM jg_hmac.clients c \
    LEFT JOIN jg_hmac.keys k ON k.client_id = c.client_id AND k.revoked_at IS NULL \
    WHERE c.client_id = $1 \
    ORDER BY k.created_at, k.key_id";

/// The associated data a secret is sealed with: it binds the ciphertext to its row.
pub(super) fn aad(client_id: &str, key_id: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + client_id.len() + key_id.len());
    out.extend_from_slice(b"jg-hmac/v1\0");
    out.extend_from_slice(client_id.as_bytes());
    out.push(0);
    out.extend_from_slice(key_id.as_bytes());
    out
}

/// A time read from the database (`extract(epoch …)::bigint`) as the crate's UNIX
/// seconds: a time before 1970 (which this store never writes) reads as 0.
pub(super) fn epoch_secs(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// A [`CredentialStore`] in PostgreSQL, and the operator's calls on it.
///
/// Lookups read `jg_hmac.clients` and the client's keys that are not revoked, open each
/// secret with the [`Kek`] named by its row, and build a [`Credential`] with the client's
/// scopes, its [`Environment`] as an extension, and each key's validity period. A key
/// whose ciphertext does not open is left out, with a `warn` event (target
/// `jg_hmac::postgres`) naming the client, the key and why; the client's other keys keep
/// working, and a client left with no usable key is refused (`client_id`).
///
/// The lookup is [`CredentialStore::get`], what the layer calls. Every lookup is bounded
/// by [`timeout`](super::PgStoreBuilder::timeout) (default 2 s) as a whole, and each of
/// its parts too: waiting for a pooled connection, connecting, and each statement
/// (`statement_timeout`). A database that is down or slow therefore gives a
/// [`StoreError`] (its [source](std::error::Error::source) a [`PgError`]) in bounded
/// time, never a hang. Client ids that break the crate's client-id rule (1 to 128 bytes
/// of visible ASCII, SPEC.md §1) are answered "unknown" without a query. Every query is
/// parameterised.
///
/// Put a [`CachedStore`](crate::tower::CachedStore) in front of it, and a
/// [listener](Self::listen) behind the cache. Clones share the pool.
///
/// Connections use no TLS: run the database on the same host or a private network, or
/// put a TLS proxy in front.
///
/// ```no_run
/// use std::io::Write;
/// use jg_hmac::postgres::{LocalKek, NewClient, PgCredentialStore};
/// use jg_hmac::tower::CredentialStore;
/// use jg_hmac::Environment;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let store = PgCredentialStore::builder("postgres://jg@127.0.0.1/jg")?
///     .kek(LocalKek::from_file("/run/secrets/jg-kek")?)
///     .build()?;
/// store.migrate().await?;
/// let new = NewClient::new(Environment::Test).scope("transactions:write");
/// let issued = store
///     .create_client(new, "alice", |issued| {
///         // Shown once, and written out before the key is committed.
///         writeln!(std::io::stdout(), "{} {}", issued.client_id, issued.secret_hex())
///     })
///     .await?;
/// let credential = store.get(&issued.client_id).await?; // what the layer calls
/// assert!(credential.is_some());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PgCredentialStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    config: tokio_postgres::Config,
    /// The connector of the listeners' connections (the pool holds its own).
    tls: Tls,
    /// The first seals; all open rows that name them.
    keks: Vec<Arc<dyn Kek>>,
    timeout: Duration,
    admin_timeout: Duration,
}

impl PgCredentialStore {
    /// The store around a built pool; [`build`](super::PgStoreBuilder::build) is its
    /// one caller.
    pub(super) fn from_parts(
        pool: Pool,
        config: tokio_postgres::Config,
        tls: Tls,
        keks: Vec<Arc<dyn Kek>>,
        timeout: Duration,
        admin_timeout: Duration,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                pool,
                config,
                tls,
                keks,
                timeout,
                admin_timeout,
            }),
        }
    }

    /// The connection settings (timeouts applied), e.g. for a listener's own connection.
    ///
    /// ```no_run
    /// # fn f(store: &jg_hmac::postgres::PgCredentialStore) {
    /// println!("{:?}", store.config().get_hosts());
    /// # }
    /// ```
    pub fn config(&self) -> &tokio_postgres::Config {
        &self.inner.config
    }

    /// How connections are made (TLS or not), for a listener's own connection.
    pub(super) fn tls(&self) -> &Tls {
        &self.inner.tls
    }

    /// The bound on a lookup.
    ///
    /// ```no_run
    /// # fn f(store: &jg_hmac::postgres::PgCredentialStore) {
    /// assert!(store.timeout().as_secs() <= 2);
    /// # }
    /// ```
    pub fn timeout(&self) -> Duration {
        self.inner.timeout
    }

    pub(super) fn sealing_kek(&self) -> Result<&Arc<dyn Kek>, PgError> {
        self.inner.keks.first().ok_or_else(|| {
            PgError::InvalidInput(
                "no key-encryption key given (JG_KEK_FILE): it is needed to issue keys".to_owned(),
            )
        })
    }

    pub(super) fn kek_by_id(&self, id: &str) -> Option<&Arc<dyn Kek>> {
        self.inner.keks.iter().find(|k| k.id() == id)
    }

    /// Runs an operator's call within the admin timeout.
    pub(super) async fn admin<T>(
        &self,
        work: impl Future<Output = Result<T, PgError>>,
    ) -> Result<T, PgError> {
        tokio::time::timeout(self.inner.admin_timeout, work)
            .await
            .map_err(|_| PgError::Timeout(self.inner.admin_timeout))?
    }

    pub(super) async fn connection(&self) -> Result<deadpool_postgres::Object, PgError> {
        self.inner
            .pool
            .get()
            .await
            .map_err(|e| PgError::Pool(tls::explain(describe(&e))))
    }

    async fn lookup(&self, client_id: &str) -> Result<Option<Arc<Credential>>, PgError> {
        let conn = self.connection().await?;
        let statement = conn.prepare_cached(SELECT_CREDENTIAL).await?;
        let rows = conn.query(&statement, &[&client_id]).await?;
        drop(conn);
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        if first.try_get::<_, bool>(2)? {
            return Ok(None); // the client was revoked
        }
        let environment: String = first.try_get(0)?;
        let scopes: Vec<String> = first.try_get(1)?;
        let mut credential = Credential::new(client_id);
        for scope in scopes {
            credential = credential.with_scope(scope);
        }
        if let Some(env) = Environment::of(client_id)
            && env.to_string() == environment
        {
            credential = credential.with_extension(env);
        }
        for row in &rows {
            let Some(key_id) = row.try_get::<_, Option<String>>(3)? else {
                continue; // the client has no key that is not revoked
            };
            let kek_id: String = row.try_get(4)?;
            let sealed = Sealed {
                nonce: row.try_get(5)?,
                ciphertext: row.try_get(6)?,
            };
            let not_before = row.try_get::<_, Option<i64>>(7)?.map(epoch_secs);
            let not_after = row.try_get::<_, Option<i64>>(8)?.map(epoch_secs);
            let Some(kek) = self.kek_by_id(&kek_id) else {
                tracing::warn!(
                    target: LOG_TARGET,
                    client_id,
                    key_id,
                    kek_id,
                    "key refused: its secret is sealed under a key-encryption key this \
                     instance does not hold"
                );
                continue;
            };
            match kek.open(&sealed, &aad(client_id, &key_id)).await {
                Ok(secret) => {
                    credential.add_key(
                        SigningKey::new(key_id, &secret).with_validity(not_before, not_after),
                    );
                }
                Err(error) => {
                    tracing::warn!(
                        target: LOG_TARGET,
                        client_id,
                        key_id,
                        kek_id,
                        error = %error,
                        "key refused: its secret does not decrypt"
                    );
                }
            }
        }
        Ok(Some(Arc::new(credential)))
    }
}

impl fmt::Debug for PgCredentialStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgCredentialStore")
            .field(
                "keks",
                &self.inner.keks.iter().map(|k| k.id()).collect::<Vec<_>>(),
            )
            .field("timeout", &self.inner.timeout)
            .field("pool", &self.inner.pool.status())
            .finish_non_exhaustive()
    }
}

/// The lookup: `None` for an unknown or revoked client, and at once, without a query,
/// for an id that breaks the crate's client-id rule; a [`StoreError`] whose source is
/// the [`PgError`] when the database cannot answer within the
/// [`timeout`](super::PgStoreBuilder::timeout) (default 2 s).
impl CredentialStore for PgCredentialStore {
    async fn get(&self, client_id: &str) -> Result<Option<Arc<Credential>>, StoreError> {
        if !is_well_formed(client_id.as_bytes(), client_id::MAX_LEN) {
            return Ok(None);
        }
        let timeout = self.inner.timeout;
        match tokio::time::timeout(timeout, self.lookup(client_id)).await {
            Ok(Ok(found)) => Ok(found),
            Ok(Err(e)) => Err(StoreError::new(e)),
            Err(_) => Err(StoreError::new(PgError::Timeout(timeout))),
        }
    }
}
