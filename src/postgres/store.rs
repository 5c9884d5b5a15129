//! The PostgreSQL credential store and the operator's calls on it.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;
use zeroize::Zeroizing;

use crate::Environment;
use crate::credential::{Credential, SigningKey};
use crate::error::push_json_string;
use crate::secret::Secret;
use crate::tower::{CredentialStore, StoreError};

use super::ids::{
    check_client_id, check_key_id, check_new_client_id, check_scope, is_valid_client_id,
    new_client_id, new_key_id, new_secret_hex,
};
use super::kek::{Kek, Sealed};
use super::{DEFAULT_TIMEOUT, NOTIFY_CHANNEL, PgError};

/// Target of this module's tracing events.
pub(crate) const LOG_TARGET: &str = "jg_hmac::postgres";

/// Default bound on an operator's call (create, rotate, revoke, list, rekey): 30 s.
const DEFAULT_ADMIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Default pool size.
const DEFAULT_MAX_CONNECTIONS: usize = 16;

const SELECT_CREDENTIAL: &str = "\
    SELECT c.environment, c.scopes, c.disabled, k.key_id, k.kek_id, k.nonce, k.ciphertext, \
           ceil(extract(epoch FROM k.not_before))::bigint, floor(extract(epoch FROM k.not_after))::bigint \
    FROM jg_hmac.clients c \
    LEFT JOIN jg_hmac.keys k ON k.client_id = c.client_id AND k.revoked_at IS NULL \
    WHERE c.client_id = $1 \
    ORDER BY k.created_at, k.key_id";

/// The associated data a secret is sealed with: it binds the ciphertext to its row.
fn aad(client_id: &str, key_id: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + client_id.len() + key_id.len());
    out.extend_from_slice(b"jg-hmac/v1\0");
    out.extend_from_slice(client_id.as_bytes());
    out.push(0);
    out.extend_from_slice(key_id.as_bytes());
    out
}

fn epoch(value: Option<i64>) -> Option<u64> {
    value.map(|v| u64::try_from(v).unwrap_or(0))
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
/// Every lookup is bounded by [`timeout`](PgStoreBuilder::timeout) (default 2 s) as a
/// whole, and each of its parts too: waiting for a pooled connection, connecting, and
/// each statement (`statement_timeout`). A database that is down or slow therefore gives
/// a [`StoreError`] in bounded time, never a hang. Client ids that are not
/// [valid](super::is_valid_client_id) are answered "unknown" without a query. Every query
/// is parameterised.
///
/// Put a [`CachedStore`](crate::tower::CachedStore) in front of it, and a
/// [listener](Self::listen) behind the cache. Clones share the pool.
///
/// Connections use no TLS: run the database on the same host or a private network, or
/// put a TLS proxy in front.
///
/// ```no_run
/// use jg_hmac::postgres::{LocalKek, NewClient, PgCredentialStore};
/// use jg_hmac::Environment;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let store = PgCredentialStore::builder("postgres://jg@127.0.0.1/jg")?
///     .kek(LocalKek::from_file("/run/secrets/jg-kek")?)
///     .build()?;
/// store.migrate().await?;
/// let issued = store
///     .create_client(NewClient::new(Environment::Test).scope("transactions:write"), "alice")
///     .await?;
/// println!("{} {}", issued.client_id, issued.secret_hex()); // shown once
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PgCredentialStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    config: tokio_postgres::Config,
    /// The first seals; all open rows that name them.
    keks: Vec<Arc<dyn Kek>>,
    timeout: Duration,
    admin_timeout: Duration,
}

/// Settings of a [`PgCredentialStore`]; each method documents its default.
///
/// ```no_run
/// use std::time::Duration;
/// use jg_hmac::postgres::{LocalKek, PgCredentialStore};
/// let store = PgCredentialStore::builder("host=127.0.0.1 user=jg dbname=jg")?
///     .kek(LocalKek::from_file("/run/secrets/jg-kek-2026")?)
///     .previous_kek(LocalKek::from_file("/run/secrets/jg-kek-2025")?)
///     .timeout(Duration::from_millis(500))
///     .max_connections(8)
///     .build()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct PgStoreBuilder {
    config: tokio_postgres::Config,
    keks: Vec<Arc<dyn Kek>>,
    timeout: Duration,
    admin_timeout: Duration,
    max_connections: usize,
}

impl fmt::Debug for PgStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgStoreBuilder")
            .field(
                "keks",
                &self.keks.iter().map(|k| k.id()).collect::<Vec<_>>(),
            )
            .field("timeout", &self.timeout)
            .field("admin_timeout", &self.admin_timeout)
            .field("max_connections", &self.max_connections)
            .finish_non_exhaustive()
    }
}

impl PgStoreBuilder {
    /// The key-encryption key that seals new secrets (and opens rows sealed with it).
    /// Calling it again replaces the sealing key. A store without one can still revoke,
    /// list and migrate, but neither issue keys nor open any (every key is refused).
    ///
    /// ```
    /// # fn f(b: jg_hmac::postgres::PgStoreBuilder) -> jg_hmac::postgres::PgStoreBuilder {
    /// b.kek(jg_hmac::postgres::LocalKek::from_bytes(&[7; 32]))
    /// # }
    /// ```
    #[must_use]
    pub fn kek(self, kek: impl Kek) -> Self {
        self.kek_arc(Arc::new(kek))
    }

    /// [`kek`](Self::kek) for a KEK already shared.
    ///
    /// ```
    /// # fn f(b: jg_hmac::postgres::PgStoreBuilder) -> jg_hmac::postgres::PgStoreBuilder {
    /// let kek: std::sync::Arc<dyn jg_hmac::postgres::Kek> =
    ///     std::sync::Arc::new(jg_hmac::postgres::LocalKek::from_bytes(&[7; 32]));
    /// b.kek_arc(kek)
    /// # }
    /// ```
    #[must_use]
    pub fn kek_arc(mut self, kek: Arc<dyn Kek>) -> Self {
        self.keks.retain(|k| k.id() != kek.id());
        self.keks.insert(0, kek);
        self
    }

    /// A KEK that only opens rows (those it sealed), for the time of a
    /// [re-key](PgCredentialStore::rekey): verifiers hold both keys while rows move from
    /// the old to the new. Repeatable.
    ///
    /// ```
    /// # fn f(b: jg_hmac::postgres::PgStoreBuilder) -> jg_hmac::postgres::PgStoreBuilder {
    /// b.previous_kek(jg_hmac::postgres::LocalKek::from_bytes(&[6; 32]))
    /// # }
    /// ```
    #[must_use]
    pub fn previous_kek(mut self, kek: impl Kek) -> Self {
        if !self.keks.iter().any(|k| k.id() == kek.id()) {
            self.keks.push(Arc::new(kek));
        }
        self
    }

    /// Bound on a credential lookup as a whole and on each of its parts (pool wait,
    /// connect, `statement_timeout`). Defaults to 2 s.
    ///
    /// ```
    /// # fn f(b: jg_hmac::postgres::PgStoreBuilder) -> jg_hmac::postgres::PgStoreBuilder {
    /// b.timeout(std::time::Duration::from_millis(300))
    /// # }
    /// ```
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Bound on an operator's call (create, rotate, revoke, list, rekey, migrate).
    /// Defaults to 30 s.
    ///
    /// ```
    /// # fn f(b: jg_hmac::postgres::PgStoreBuilder) -> jg_hmac::postgres::PgStoreBuilder {
    /// b.admin_timeout(std::time::Duration::from_secs(120))
    /// # }
    /// ```
    #[must_use]
    pub fn admin_timeout(mut self, timeout: Duration) -> Self {
        self.admin_timeout = timeout;
        self
    }

    /// Most connections in the pool. Defaults to 16.
    ///
    /// ```
    /// # fn f(b: jg_hmac::postgres::PgStoreBuilder) -> jg_hmac::postgres::PgStoreBuilder {
    /// b.max_connections(4)
    /// # }
    /// ```
    #[must_use]
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// The store. Connects lazily: the first lookup opens the first connection.
    ///
    /// # Errors
    /// [`PgError::Pool`] when the pool cannot be built.
    ///
    /// ```no_run
    /// let store = jg_hmac::postgres::PgCredentialStore::builder("host=127.0.0.1 user=jg")?
    ///     .kek(jg_hmac::postgres::LocalKek::from_file("/run/secrets/jg-kek")?)
    ///     .build()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn build(self) -> Result<PgCredentialStore, PgError> {
        let mut config = self.config;
        let millis = self.timeout.as_millis().max(1);
        let options = match config.get_options() {
            Some(existing) if !existing.is_empty() => {
                format!("{existing} -c statement_timeout={millis}")
            }
            _ => format!("-c statement_timeout={millis}"),
        };
        config
            .options(&options)
            .connect_timeout(self.timeout)
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(30));
        if config.get_application_name().is_none() {
            config.application_name("jg-hmac");
        }
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(self.max_connections)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(self.timeout))
            .create_timeout(Some(self.timeout))
            .recycle_timeout(Some(self.timeout))
            .build()
            .map_err(|e| PgError::Pool(e.to_string()))?;
        Ok(PgCredentialStore {
            inner: Arc::new(Inner {
                pool,
                config,
                keks: self.keks,
                timeout: self.timeout,
                admin_timeout: self.admin_timeout,
            }),
        })
    }
}

/// A new client to [create](PgCredentialStore::create_client).
///
/// ```
/// use jg_hmac::postgres::NewClient;
/// use jg_hmac::Environment;
/// let client = NewClient::new(Environment::Live)
///     .client_id("jk_live_acme")
///     .scope("transactions:write");
/// # let _ = client;
/// ```
#[derive(Clone, Debug)]
pub struct NewClient {
    environment: Environment,
    client_id: Option<String>,
    scopes: Vec<String>,
}

impl NewClient {
    /// A client of `environment` with a generated id and no scopes.
    ///
    /// ```
    /// let c = jg_hmac::postgres::NewClient::new(jg_hmac::Environment::Test);
    /// # let _ = c;
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
    /// # let _ = c;
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
    /// # let _ = c;
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
/// # async fn run(store: jg_hmac::postgres::PgCredentialStore) -> Result<(), jg_hmac::postgres::PgError> {
/// let issued = store.rotate("jk_live_acme", std::time::Duration::from_secs(86_400), "ops").await?;
/// println!("{}", issued.to_json().as_str()); // {"client_id":…,"key_id":…,"secret":…}
/// # Ok(()) }
/// ```
pub struct Issued {
    /// The client id.
    pub client_id: String,
    /// The new key's id.
    pub key_id: String,
    secret: Zeroizing<String>,
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

    /// `{"client_id":…,"key_id":…,"secret":…}`, in a string wiped on drop.
    ///
    /// ```no_run
    /// # fn f(issued: &jg_hmac::postgres::Issued) {
    /// assert!(issued.to_json().starts_with("{\"client_id\":"));
    /// # }
    /// ```
    pub fn to_json(&self) -> Zeroizing<String> {
        let mut out = Zeroizing::new(String::with_capacity(160));
        out.push_str("{\"client_id\":");
        push_json_string(&mut out, &self.client_id);
        out.push_str(",\"key_id\":");
        push_json_string(&mut out, &self.key_id);
        out.push_str(",\"secret\":");
        push_json_string(&mut out, &self.secret);
        out.push('}');
        out
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

/// A client as [listed](PgCredentialStore::list): everything but secrets. Times are UNIX
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
    pub created_at: i64,
    /// Its keys, oldest first, revoked ones included.
    pub keys: Vec<KeyInfo>,
}

/// A key as [listed](PgCredentialStore::list): its id and validity, never its secret.
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
    pub created_at: i64,
    /// Start of validity, if any.
    pub not_before: Option<i64>,
    /// End of validity, if any.
    pub not_after: Option<i64>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<i64>,
}

impl KeyInfo {
    /// `revoked`, `scheduled` (before `not_before`), `expired` (after `not_after`) or
    /// `active`, at `now` (UNIX seconds).
    ///
    /// ```
    /// # fn f(key: &jg_hmac::postgres::KeyInfo) -> bool {
    /// key.status(1_800_000_000) == "active"
    /// # }
    /// ```
    pub fn status(&self, now: i64) -> &'static str {
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

impl ClientInfo {
    /// One JSON object: `client_id`, `environment`, `scopes`, `disabled`, `created_at`
    /// and `keys` (each: `key_id`, `kek_id`, `created_at`, `not_before`, `not_after`,
    /// `revoked_at`, `status` at `now`). No secret.
    ///
    /// ```no_run
    /// # fn f(c: &jg_hmac::postgres::ClientInfo) {
    /// println!("{}", c.to_json(1_800_000_000));
    /// # }
    /// ```
    pub fn to_json(&self, now: i64) -> String {
        fn opt(out: &mut String, v: Option<i64>) {
            match v {
                Some(v) => out.push_str(&v.to_string()),
                None => out.push_str("null"),
            }
        }
        let mut out = String::with_capacity(256);
        out.push_str("{\"client_id\":");
        push_json_string(&mut out, &self.client_id);
        out.push_str(",\"environment\":");
        push_json_string(&mut out, &self.environment);
        out.push_str(",\"scopes\":[");
        for (i, s) in self.scopes.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_json_string(&mut out, s);
        }
        out.push_str("],\"disabled\":");
        out.push_str(if self.disabled { "true" } else { "false" });
        out.push_str(",\"created_at\":");
        out.push_str(&self.created_at.to_string());
        out.push_str(",\"keys\":[");
        for (i, k) in self.keys.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str("{\"key_id\":");
            push_json_string(&mut out, &k.key_id);
            out.push_str(",\"kek_id\":");
            push_json_string(&mut out, &k.kek_id);
            out.push_str(",\"created_at\":");
            out.push_str(&k.created_at.to_string());
            out.push_str(",\"not_before\":");
            opt(&mut out, k.not_before);
            out.push_str(",\"not_after\":");
            opt(&mut out, k.not_after);
            out.push_str(",\"revoked_at\":");
            opt(&mut out, k.revoked_at);
            out.push_str(",\"status\":");
            push_json_string(&mut out, k.status(now));
            out.push('}');
        }
        out.push_str("]}");
        out
    }
}

/// What a [re-key](PgCredentialStore::rekey) did.
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

impl PgCredentialStore {
    /// A builder for the database at `url`: a `postgres://` URL or a
    /// `key=value` connection string.
    ///
    /// # Errors
    /// [`PgError::InvalidInput`] when `url` does not parse (the message does not repeat
    /// it: it may hold a password).
    ///
    /// ```
    /// let builder = jg_hmac::postgres::PgCredentialStore::builder("postgres://jg@127.0.0.1:5432/jg");
    /// assert!(builder.is_ok());
    /// ```
    pub fn builder(url: &str) -> Result<PgStoreBuilder, PgError> {
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| PgError::InvalidInput(format!("the database URL does not parse: {e}")))?;
        Ok(Self::builder_from_config(config))
    }

    /// A builder from a `tokio_postgres::Config`.
    ///
    /// ```
    /// let mut config = tokio_postgres::Config::new();
    /// config.host("127.0.0.1").user("jg").dbname("jg");
    /// let builder = jg_hmac::postgres::PgCredentialStore::builder_from_config(config);
    /// # let _ = builder;
    /// ```
    pub fn builder_from_config(config: tokio_postgres::Config) -> PgStoreBuilder {
        PgStoreBuilder {
            config,
            keks: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            admin_timeout: DEFAULT_ADMIN_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
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

    fn sealing_kek(&self) -> Result<&Arc<dyn Kek>, PgError> {
        self.inner.keks.first().ok_or_else(|| {
            PgError::InvalidInput(
                "no key-encryption key given (JG_KEK_FILE): it is needed to issue keys".to_owned(),
            )
        })
    }

    fn kek_by_id(&self, id: &str) -> Option<&Arc<dyn Kek>> {
        self.inner.keks.iter().find(|k| k.id() == id)
    }

    async fn admin<T>(&self, work: impl Future<Output = Result<T, PgError>>) -> Result<T, PgError> {
        tokio::time::timeout(self.inner.admin_timeout, work)
            .await
            .map_err(|_| PgError::Timeout(self.inner.admin_timeout))?
    }

    async fn connection(&self) -> Result<deadpool_postgres::Object, PgError> {
        self.inner
            .pool
            .get()
            .await
            .map_err(|e| PgError::Pool(super::describe(&e)))
    }

    /// Applies the schema migrations (see [`migrate`](super::migrate())).
    ///
    /// # Errors
    /// As [`migrate`](super::migrate()); [`PgError::Pool`] when no connection can be had.
    ///
    /// ```no_run
    /// # async fn run(store: jg_hmac::postgres::PgCredentialStore) -> Result<(), jg_hmac::postgres::PgError> {
    /// store.migrate().await?;
    /// # Ok(()) }
    /// ```
    pub async fn migrate(&self) -> Result<Vec<i32>, PgError> {
        self.admin(async {
            let mut conn = self.connection().await?;
            let client: &mut tokio_postgres::Client = &mut conn;
            super::migrate(client).await
        })
        .await
    }

    /// The credential of `client_id`, `None` if unknown or revoked (what the layer
    /// calls through [`CredentialStore::get`]).
    ///
    /// # Errors
    /// [`PgError`] when the database cannot answer in time.
    ///
    /// ```no_run
    /// # async fn run(store: jg_hmac::postgres::PgCredentialStore) -> Result<(), jg_hmac::postgres::PgError> {
    /// if let Some(credential) = store.load("jk_live_acme").await? {
    ///     println!("{} keys", credential.keys().len());
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn load(&self, client_id: &str) -> Result<Option<Arc<Credential>>, PgError> {
        if !is_valid_client_id(client_id) {
            return Ok(None);
        }
        tokio::time::timeout(self.inner.timeout, self.load_unbounded(client_id))
            .await
            .map_err(|_| PgError::Timeout(self.inner.timeout))?
    }

    async fn load_unbounded(&self, client_id: &str) -> Result<Option<Arc<Credential>>, PgError> {
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
            let not_before = epoch(row.try_get(7)?);
            let not_after = epoch(row.try_get(8)?);
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

    /// Creates a client with one key, and returns the key (its secret shown this once).
    /// Records `client_created` and `key_created` events by `actor`.
    ///
    /// # Errors
    /// [`PgError::InvalidInput`] for a bad client id (not of the environment's prefix)
    /// or scope; [`PgError::DuplicateClient`] when the id exists; database errors.
    ///
    /// ```no_run
    /// use jg_hmac::postgres::NewClient;
    /// # async fn run(store: jg_hmac::postgres::PgCredentialStore) -> Result<(), jg_hmac::postgres::PgError> {
    /// let issued = store
    ///     .create_client(NewClient::new(jg_hmac::Environment::Live), "alice")
    ///     .await?;
    /// # let _ = issued; Ok(()) }
    /// ```
    pub async fn create_client(&self, new: NewClient, actor: &str) -> Result<Issued, PgError> {
        check_actor(actor)?;
        let client_id = match new.client_id {
            Some(id) => {
                check_new_client_id(&id, new.environment)?;
                id
            }
            None => new_client_id(new.environment)?,
        };
        for scope in &new.scopes {
            check_scope(scope)?;
        }
        let environment = new.environment.to_string();
        self.admin(async {
            let mut conn = self.connection().await?;
            let tx = conn.transaction().await?;
            let inserted = tx
                .execute(
                    "INSERT INTO jg_hmac.clients (client_id, environment, scopes) \
                     VALUES ($1, $2, $3) ON CONFLICT (client_id) DO NOTHING",
                    &[&client_id, &environment, &new.scopes],
                )
                .await?;
            if inserted == 0 {
                return Err(PgError::DuplicateClient(client_id.clone()));
            }
            let detail = format!("environment={environment} scopes={}", new.scopes.join(","));
            event(
                &tx,
                "client_created",
                &client_id,
                None,
                actor,
                Some(&detail),
            )
            .await?;
            let issued = self.insert_key(&tx, &client_id, actor).await?;
            notify(&tx, &client_id).await?;
            tx.commit().await?;
            Ok(issued)
        })
        .await
    }

    async fn insert_key(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        client_id: &str,
        actor: &str,
    ) -> Result<Issued, PgError> {
        let key_id = new_key_id()?;
        let secret = new_secret_hex()?;
        let kek = self.sealing_kek()?;
        let sealed = kek
            .seal(secret.as_bytes(), &aad(client_id, &key_id))
            .await?;
        tx.execute(
            "INSERT INTO jg_hmac.keys (client_id, key_id, kek_id, nonce, ciphertext) \
             VALUES ($1, $2, $3, $4, $5)",
            &[
                &client_id,
                &key_id,
                &kek.id(),
                &sealed.nonce,
                &sealed.ciphertext,
            ],
        )
        .await?;
        event(tx, "key_created", client_id, Some(&key_id), actor, None).await?;
        Ok(Issued {
            client_id: client_id.to_owned(),
            key_id,
            secret,
        })
    }

    /// Issues a new key for a client, and ends every older active key `overlap` from now
    /// (`not_after = now + overlap`, or earlier if it already ended sooner): during the
    /// overlap both verify, so the partner can switch. Records `key_created` and
    /// `key_expiry_set` events.
    ///
    /// # Errors
    /// [`PgError::UnknownClient`], [`PgError::ClientRevoked`]; database errors.
    ///
    /// ```no_run
    /// # async fn run(store: jg_hmac::postgres::PgCredentialStore) -> Result<(), jg_hmac::postgres::PgError> {
    /// let issued = store.rotate("jk_live_acme", std::time::Duration::from_secs(86_400), "ops").await?;
    /// # let _ = issued; Ok(()) }
    /// ```
    pub async fn rotate(
        &self,
        client_id: &str,
        overlap: Duration,
        actor: &str,
    ) -> Result<Issued, PgError> {
        check_actor(actor)?;
        check_client_id(client_id)?;
        let overlap_secs = i64::try_from(overlap.as_secs()).unwrap_or(i64::MAX);
        self.admin(async {
            let mut conn = self.connection().await?;
            let tx = conn.transaction().await?;
            lock_client(&tx, client_id, true).await?;
            let ended = tx
                .query(
                    "UPDATE jg_hmac.keys \
                     SET not_after = LEAST(COALESCE(not_after, 'infinity'::timestamptz), \
                                           now() + $2::bigint * interval '1 second') \
                     WHERE client_id = $1 AND revoked_at IS NULL \
                       AND (not_after IS NULL OR not_after >= now()) \
                     RETURNING key_id, floor(extract(epoch FROM not_after))::bigint",
                    &[&client_id, &overlap_secs],
                )
                .await?;
            for row in &ended {
                let key_id: String = row.try_get(0)?;
                let until: i64 = row.try_get(1)?;
                let detail = format!("not_after={until} (rotation overlap {overlap_secs} s)");
                event(
                    &tx,
                    "key_expiry_set",
                    client_id,
                    Some(&key_id),
                    actor,
                    Some(&detail),
                )
                .await?;
            }
            let issued = self.insert_key(&tx, client_id, actor).await?;
            notify(&tx, client_id).await?;
            tx.commit().await?;
            Ok(issued)
        })
        .await
    }

    /// Revokes one key at once: every verifier refuses it from its next lookup (at once
    /// with a [listener](Self::listen)). Returns `false` when it was revoked already.
    ///
    /// # Errors
    /// [`PgError::UnknownClient`], [`PgError::UnknownKey`]; database errors.
    ///
    /// ```no_run
    /// # async fn run(store: jg_hmac::postgres::PgCredentialStore) -> Result<(), jg_hmac::postgres::PgError> {
    /// store.revoke_key("jk_live_acme", "k_abcdefghijklmnop", "ops").await?;
    /// # Ok(()) }
    /// ```
    pub async fn revoke_key(
        &self,
        client_id: &str,
        key_id: &str,
        actor: &str,
    ) -> Result<bool, PgError> {
        check_actor(actor)?;
        check_client_id(client_id)?;
        check_key_id(key_id)?;
        self.admin(async {
            let mut conn = self.connection().await?;
            let tx = conn.transaction().await?;
            lock_client(&tx, client_id, false).await?;
            let exists = tx
                .query_opt(
                    "SELECT revoked_at IS NOT NULL FROM jg_hmac.keys \
                     WHERE client_id = $1 AND key_id = $2 FOR UPDATE",
                    &[&client_id, &key_id],
                )
                .await?;
            let Some(row) = exists else {
                return Err(PgError::UnknownKey {
                    client_id: client_id.to_owned(),
                    key_id: key_id.to_owned(),
                });
            };
            if row.try_get::<_, bool>(0)? {
                return Ok(false);
            }
            tx.execute(
                "UPDATE jg_hmac.keys SET revoked_at = now() WHERE client_id = $1 AND key_id = $2",
                &[&client_id, &key_id],
            )
            .await?;
            event(&tx, "key_revoked", client_id, Some(key_id), actor, None).await?;
            notify(&tx, client_id).await?;
            tx.commit().await?;
            Ok(true)
        })
        .await
    }

    /// Revokes a whole client at once: it is disabled and every key revoked. Returns
    /// `false` when it was revoked already.
    ///
    /// # Errors
    /// [`PgError::UnknownClient`]; database errors.
    ///
    /// ```no_run
    /// # async fn run(store: jg_hmac::postgres::PgCredentialStore) -> Result<(), jg_hmac::postgres::PgError> {
    /// store.revoke_client("jk_live_acme", "ops").await?;
    /// # Ok(()) }
    /// ```
    pub async fn revoke_client(&self, client_id: &str, actor: &str) -> Result<bool, PgError> {
        check_actor(actor)?;
        check_client_id(client_id)?;
        self.admin(async {
            let mut conn = self.connection().await?;
            let tx = conn.transaction().await?;
            let disabled = lock_client(&tx, client_id, false).await?;
            if disabled {
                return Ok(false);
            }
            tx.execute(
                "UPDATE jg_hmac.clients SET disabled = true WHERE client_id = $1",
                &[&client_id],
            )
            .await?;
            tx.execute(
                "UPDATE jg_hmac.keys SET revoked_at = now() \
                 WHERE client_id = $1 AND revoked_at IS NULL",
                &[&client_id],
            )
            .await?;
            event(&tx, "client_revoked", client_id, None, actor, None).await?;
            notify(&tx, client_id).await?;
            tx.commit().await?;
            Ok(true)
        })
        .await
    }

    /// Every client (or one), with its keys: ids, environment, scopes, validity,
    /// revocation. Never a secret.
    ///
    /// # Errors
    /// [`PgError::UnknownClient`] when `client_id` is given and unknown; database errors.
    ///
    /// ```no_run
    /// # async fn run(store: jg_hmac::postgres::PgCredentialStore) -> Result<(), jg_hmac::postgres::PgError> {
    /// let one = store.list(Some("jk_live_acme")).await?;
    /// # let _ = one; Ok(()) }
    /// ```
    pub async fn list(&self, client_id: Option<&str>) -> Result<Vec<ClientInfo>, PgError> {
        if let Some(id) = client_id {
            check_client_id(id)?;
        }
        self.admin(async {
            let conn = self.connection().await?;
            let clients = conn
                .query(
                    "SELECT client_id, environment, scopes, disabled, \
                            floor(extract(epoch FROM created_at))::bigint \
                     FROM jg_hmac.clients WHERE $1::text IS NULL OR client_id = $1 \
                     ORDER BY created_at, client_id",
                    &[&client_id],
                )
                .await?;
            let keys = conn
                .query(
                    "SELECT client_id, key_id, kek_id, floor(extract(epoch FROM created_at))::bigint, \
                            ceil(extract(epoch FROM not_before))::bigint, \
                            floor(extract(epoch FROM not_after))::bigint, \
                            floor(extract(epoch FROM revoked_at))::bigint \
                     FROM jg_hmac.keys WHERE $1::text IS NULL OR client_id = $1 \
                     ORDER BY created_at, key_id",
                    &[&client_id],
                )
                .await?;
            let mut out = Vec::with_capacity(clients.len());
            for row in &clients {
                out.push(ClientInfo {
                    client_id: row.try_get(0)?,
                    environment: row.try_get(1)?,
                    scopes: row.try_get(2)?,
                    disabled: row.try_get(3)?,
                    created_at: row.try_get(4)?,
                    keys: Vec::new(),
                });
            }
            for row in &keys {
                let owner: String = row.try_get(0)?;
                if let Some(client) = out.iter_mut().find(|c| c.client_id == owner) {
                    client.keys.push(KeyInfo {
                        key_id: row.try_get(1)?,
                        kek_id: row.try_get(2)?,
                        created_at: row.try_get(3)?,
                        not_before: row.try_get(4)?,
                        not_after: row.try_get(5)?,
                        revoked_at: row.try_get(6)?,
                    });
                }
            }
            if let (Some(id), true) = (client_id, out.is_empty()) {
                return Err(PgError::UnknownClient(id.to_owned()));
            }
            Ok(out)
        })
        .await
    }

    /// Re-encrypts every stored secret under `new_kek`, in one transaction: each row is
    /// opened with the KEK it names (one this store holds) and sealed again with a fresh
    /// nonce. Rows already under `new_kek` are left as they are, so running it twice is
    /// harmless. If any row does not open, nothing is changed. Records a `key_rekeyed`
    /// event per row.
    ///
    /// Verifiers must be able to open both forms while it runs: give them the new KEK as
    /// [`kek`](PgStoreBuilder::kek) and the old one as
    /// [`previous_kek`](PgStoreBuilder::previous_kek) first (docs/postgres.md).
    ///
    /// # Errors
    /// [`PgError::Rekey`] naming the first row that does not open; database and KEK
    /// errors.
    ///
    /// ```no_run
    /// use jg_hmac::postgres::LocalKek;
    /// # async fn run(store: jg_hmac::postgres::PgCredentialStore) -> Result<(), Box<dyn std::error::Error>> {
    /// let report = store.rekey(&LocalKek::from_file("/run/secrets/jg-kek-2027")?, "ops").await?;
    /// println!("{} secrets re-encrypted", report.rekeyed);
    /// # Ok(()) }
    /// ```
    pub async fn rekey(&self, new_kek: &dyn Kek, actor: &str) -> Result<RekeyReport, PgError> {
        check_actor(actor)?;
        self.admin(async {
            let mut conn = self.connection().await?;
            let tx = conn.transaction().await?;
            let rows = tx
                .query(
                    "SELECT client_id, key_id, kek_id, nonce, ciphertext FROM jg_hmac.keys \
                     ORDER BY client_id, key_id FOR UPDATE",
                    &[],
                )
                .await?;
            let mut report = RekeyReport {
                rekeyed: 0,
                already: 0,
            };
            for row in &rows {
                let client_id: String = row.try_get(0)?;
                let key_id: String = row.try_get(1)?;
                let kek_id: String = row.try_get(2)?;
                if kek_id == new_kek.id() {
                    report.already += 1;
                    continue;
                }
                let Some(old) = self.kek_by_id(&kek_id) else {
                    return Err(PgError::Rekey(format!(
                        "key {key_id} of {client_id} is sealed under KEK {kek_id}, which was not \
                         given; nothing was changed"
                    )));
                };
                let sealed = Sealed {
                    nonce: row.try_get(3)?,
                    ciphertext: row.try_get(4)?,
                };
                let row_aad = aad(&client_id, &key_id);
                let secret = old.open(&sealed, &row_aad).await.map_err(|e| {
                    PgError::Rekey(format!(
                        "key {key_id} of {client_id} does not open under KEK {kek_id} ({e}); \
                         nothing was changed"
                    ))
                })?;
                let resealed = new_kek.seal(secret.expose_secret(), &row_aad).await?;
                drop(secret);
                tx.execute(
                    "UPDATE jg_hmac.keys SET kek_id = $3, nonce = $4, ciphertext = $5 \
                     WHERE client_id = $1 AND key_id = $2",
                    &[
                        &client_id,
                        &key_id,
                        &new_kek.id(),
                        &resealed.nonce,
                        &resealed.ciphertext,
                    ],
                )
                .await?;
                let detail = format!("from {kek_id} to {}", new_kek.id());
                event(
                    &tx,
                    "key_rekeyed",
                    &client_id,
                    Some(&key_id),
                    actor,
                    Some(&detail),
                )
                .await?;
                report.rekeyed += 1;
            }
            tx.commit().await?;
            Ok(report)
        })
        .await
    }
}

/// Locks the client's row; returns whether it is disabled. With `must_be_enabled`, a
/// disabled client is an error.
async fn lock_client(
    tx: &tokio_postgres::Transaction<'_>,
    client_id: &str,
    must_be_enabled: bool,
) -> Result<bool, PgError> {
    let row = tx
        .query_opt(
            "SELECT disabled FROM jg_hmac.clients WHERE client_id = $1 FOR UPDATE",
            &[&client_id],
        )
        .await?
        .ok_or_else(|| PgError::UnknownClient(client_id.to_owned()))?;
    let disabled: bool = row.try_get(0)?;
    if disabled && must_be_enabled {
        return Err(PgError::ClientRevoked(client_id.to_owned()));
    }
    Ok(disabled)
}

async fn event(
    tx: &tokio_postgres::Transaction<'_>,
    what: &str,
    client_id: &str,
    key_id: Option<&str>,
    actor: &str,
    detail: Option<&str>,
) -> Result<(), PgError> {
    tx.execute(
        "INSERT INTO jg_hmac.key_events (event, client_id, key_id, actor, detail) \
         VALUES ($1, $2, $3, $4, $5)",
        &[&what, &client_id, &key_id, &actor, &detail],
    )
    .await?;
    Ok(())
}

/// Announces a change of `client_id`; delivered when the transaction commits.
async fn notify(tx: &tokio_postgres::Transaction<'_>, client_id: &str) -> Result<(), PgError> {
    tx.execute("SELECT pg_notify($1, $2)", &[&NOTIFY_CHANNEL, &client_id])
        .await?;
    Ok(())
}

fn check_actor(actor: &str) -> Result<(), PgError> {
    if actor.trim().is_empty() || actor.len() > 200 || actor.chars().any(char::is_control) {
        return Err(PgError::InvalidInput(
            "actor must be 1 to 200 characters, without control characters".to_owned(),
        ));
    }
    Ok(())
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

impl CredentialStore for PgCredentialStore {
    async fn get(&self, client_id: &str) -> Result<Option<Arc<Credential>>, StoreError> {
        self.load(client_id).await.map_err(StoreError::new)
    }
}
