//! The PostgreSQL credential store: its handle and its settings.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;

use crate::Clock;

use super::error::{PgError, describe};
use super::kek::Kek;
use super::tls::{self, Tls};

/// Target of this module's tracing events (defined with the KEK, the first layer).
pub(crate) use super::kek::LOG_TARGET;

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

/// Credentials in PostgreSQL: the operator's calls, and the [`Replica`] each verifier
/// serves from.
///
/// The read path is [`replica`](Self::replica): every credential in memory, kept current
/// from `jg_hmac.key_events`, so no request waits for the database. The replica reads
/// `jg_hmac.clients` and each client's keys that are not revoked, opens each secret with
/// the [`Kek`] named by its row, and builds a [`Credential`](crate::Credential) with the
/// client's scopes, its [`Environment`](crate::Environment) as an extension, and each
/// key's validity period. A key whose ciphertext does not open is left out, with a `warn`
/// event (target `jg_hmac::postgres`) naming the client, the key and why; the client's
/// other keys keep working, and a client left with no usable key is refused
/// (`client_id`). Every query is parameterised, and bounded in time on the client's
/// side ([`timeout`](super::PgStoreBuilder::timeout),
/// [`admin_timeout`](super::PgStoreBuilder::admin_timeout)): no startup `options`, so
/// PgBouncer's defaults accept the connections.
///
/// Clones share the pool.
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
/// let replica = store.replica(); // what the layer is given
/// assert!(replica.wait_current(std::time::Duration::from_secs(5)).await);
/// assert!(replica.get(&issued.client_id).await?.is_some());
/// # Ok(()) }
/// ```
///
/// [`Replica`]: super::Replica
#[derive(Clone)]
pub struct PgCredentialStore {
    inner: Arc<Parts>,
}

/// How a [`Replica`](super::Replica) of the store follows the database.
pub(super) struct ReplicaSettings {
    /// A direct connection (not through a pooler) to `LISTEN` on, and how to make it.
    pub(super) listen: Option<(tokio_postgres::Config, Tls)>,
    pub(super) poll_interval: Duration,
    pub(super) max_staleness: Duration,
    pub(super) clock: Arc<dyn Clock>,
}

/// What [`build`](super::PgStoreBuilder::build) gives the store: its shared state.
pub(super) struct Parts {
    pub(super) pool: Pool,
    pub(super) config: tokio_postgres::Config,
    /// The first seals; all open rows that name them.
    pub(super) keks: Vec<Arc<dyn Kek>>,
    pub(super) timeout: Duration,
    pub(super) admin_timeout: Duration,
    pub(super) replica: ReplicaSettings,
}

impl PgCredentialStore {
    /// The store around a built pool; [`build`](super::PgStoreBuilder::build) is its
    /// one caller.
    pub(super) fn from_parts(parts: Parts) -> Self {
        Self {
            inner: Arc::new(parts),
        }
    }

    pub(super) fn replica_settings(&self) -> &ReplicaSettings {
        &self.inner.replica
    }

    pub(super) fn keks(&self) -> &[Arc<dyn Kek>] {
        &self.inner.keks
    }

    pub(super) fn admin_timeout(&self) -> Duration {
        self.inner.admin_timeout
    }

    /// The connection settings of the pool (connect timeout applied).
    ///
    /// ```no_run
    /// # fn f(store: &jg_hmac::postgres::PgCredentialStore) {
    /// println!("{:?}", store.config().get_hosts());
    /// # }
    /// ```
    pub fn config(&self) -> &tokio_postgres::Config {
        &self.inner.config
    }

    /// The bound on each refresh of a [`Replica`](super::Replica) after its first load.
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
