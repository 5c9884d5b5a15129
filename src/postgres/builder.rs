//! Settings of a [`PgCredentialStore`], and the builders that start them.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};

use crate::{Clock, SystemClock};

use super::error::PgError;
use super::kek::Kek;
use super::store::{Parts, PgCredentialStore, ReplicaSettings};
use super::tls::{self, Tls, TlsPlan};

/// Default bound on a replica's refresh (pool wait, connect, statements): 2 s.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
/// Default time between a replica's reads of the event log: 1 s.
const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Default longest time a replica serves without confirming it is current: 5 min.
const DEFAULT_MAX_STALENESS: Duration = Duration::from_secs(300);
/// Default bound on an operator's call (create, rotate, revoke, list, rekey): 30 s.
const DEFAULT_ADMIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Default pool size.
const DEFAULT_MAX_CONNECTIONS: usize = 16;

impl PgCredentialStore {
    /// A builder for the database at `url`: a `postgres://` URL or a
    /// `key=value` connection string.
    ///
    /// TLS is set in the URL as libpq spells it: `sslmode=disable|prefer|require|verify-ca|verify-full`
    /// (default `prefer`) and `sslrootcert=<file of CA certificates, PEM>`, which
    /// `verify-ca` and `verify-full` need (with `prefer` or `require` it makes the
    /// certificate checked as with `verify-ca`). `verify-ca` checks the server's chain,
    /// `verify-full` the chain and the host name. TLS runs on rustls (ring). A server whose
    /// certificate fails the check is refused when connecting: lookups fail with a
    /// [`StoreError`](crate::tower::StoreError) (the layer answers 503) and the
    /// operator's calls with [`PgError::Pool`].
    ///
    /// # Errors
    /// [`PgError::InvalidInput`] when `url` does not parse (the message does not repeat
    /// it: it may hold a password), for an unknown or unsupported `sslmode` (`allow`),
    /// `verify-ca`/`verify-full` without `sslrootcert`, and an `sslrootcert` that cannot
    /// be read or holds no certificate.
    ///
    /// ```
    /// let builder = jg_hmac::postgres::PgCredentialStore::builder("postgres://jg@127.0.0.1:5432/jg");
    /// assert!(builder.is_ok());
    /// ```
    pub fn builder(url: &str) -> Result<PgStoreBuilder, PgError> {
        let (config, tls) = tls::parse(url)?;
        Ok(PgStoreBuilder::new(config, tls))
    }

    /// A builder from a `tokio_postgres::Config`. Its `ssl_mode` sets TLS: none for
    /// `Disable`; for `Prefer` (the default) and `Require`, TLS (rustls) that encrypts
    /// without checking the server's certificate. Certificate checks are set in the URL
    /// given to [`builder`](Self::builder).
    ///
    /// ```
    /// let mut config = tokio_postgres::Config::new();
    /// config.host("127.0.0.1").user("jg").dbname("jg");
    /// let builder = jg_hmac::postgres::PgCredentialStore::builder_from_config(config);
    /// # let _ = builder;
    /// ```
    pub fn builder_from_config(config: tokio_postgres::Config) -> PgStoreBuilder {
        let tls = TlsPlan::for_config(&config);
        PgStoreBuilder::new(config, tls)
    }
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
    tls: TlsPlan,
    keks: Vec<Arc<dyn Kek>>,
    timeout: Duration,
    admin_timeout: Duration,
    max_connections: usize,
    listen_url: Option<String>,
    poll_interval: Duration,
    max_staleness: Duration,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for PgStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgStoreBuilder")
            .field(
                "keks",
                &self.keks.iter().map(|k| k.id()).collect::<Vec<_>>(),
            )
            .field("tls", &matches!(self.tls, TlsPlan::Rustls { .. }))
            .field("timeout", &self.timeout)
            .field("admin_timeout", &self.admin_timeout)
            .field("max_connections", &self.max_connections)
            .field("listen", &self.listen_url.is_some())
            .field("poll_interval", &self.poll_interval)
            .field("max_staleness", &self.max_staleness)
            .finish_non_exhaustive()
    }
}

impl PgStoreBuilder {
    fn new(config: tokio_postgres::Config, tls: TlsPlan) -> Self {
        Self {
            config,
            tls,
            keks: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            admin_timeout: DEFAULT_ADMIN_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            listen_url: None,
            poll_interval: DEFAULT_POLL_INTERVAL,
            max_staleness: DEFAULT_MAX_STALENESS,
            clock: Arc::new(SystemClock),
        }
    }

    /// The key-encryption key that seals new secrets (and opens rows sealed with it).
    /// Calling it again replaces the sealing key. A store without one can still revoke,
    /// list and migrate, but neither issue keys nor open any (every key is refused).
    ///
    /// A KEK already shared is given as its `Arc` (an `Arc` of a [`Kek`] is one).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use jg_hmac::postgres::{Kek, LocalKek, PgStoreBuilder};
    /// # fn f(b: PgStoreBuilder) -> PgStoreBuilder {
    /// let b = b.kek(LocalKek::from_bytes(&[7; 32]));
    /// let shared: Arc<dyn Kek> = Arc::new(LocalKek::from_bytes(&[8; 32]));
    /// b.kek(Arc::clone(&shared))
    /// # }
    /// ```
    #[must_use]
    pub fn kek(mut self, kek: impl Kek) -> Self {
        let kek: Arc<dyn Kek> = Arc::new(kek);
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

    /// Bound on a [`Replica`](super::Replica)'s refresh after its first load (pool wait,
    /// connect, statements), and on connecting. Defaults to 2 s. Bounds are kept on the
    /// client's side, so no startup `options` reach the server (PgBouncer refuses them).
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

    /// Bound on an operator's call (create, rotate, revoke, list, rekey, migrate), and on
    /// a replica's full load. Defaults to 30 s.
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

    /// A direct connection to the database (not through PgBouncer or another pooler),
    /// on which a [`Replica`](super::Replica) `LISTEN`s, so a change reaches it at once
    /// (the example server reads it from `JG_DATABASE_LISTEN_URL`). Spelled as the URL
    /// of [`builder`](PgCredentialStore::builder), TLS included. Without it, replicas
    /// poll (see [`poll_interval`](Self::poll_interval)), and say so at start.
    ///
    /// ```
    /// # fn f(b: jg_hmac::postgres::PgStoreBuilder) -> jg_hmac::postgres::PgStoreBuilder {
    /// b.listen_url("postgres://jg@10.0.0.5:5432/jg") // behind PgBouncer: the server itself
    /// # }
    /// ```
    #[must_use]
    pub fn listen_url(mut self, url: &str) -> Self {
        self.listen_url = Some(url.to_owned());
        self
    }

    /// How often a [`Replica`](super::Replica) reads the event log when nothing wakes
    /// it: the bound on a change's delay without a [`listen_url`](Self::listen_url), or
    /// when a `NOTIFY` is lost. Defaults to 1 s (one indexed query per second per
    /// verifier).
    ///
    /// ```
    /// # fn f(b: jg_hmac::postgres::PgStoreBuilder) -> jg_hmac::postgres::PgStoreBuilder {
    /// b.poll_interval(std::time::Duration::from_secs(5))
    /// # }
    /// ```
    #[must_use]
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval.max(Duration::from_millis(10));
        self
    }

    /// How long a [`Replica`](super::Replica) that cannot reach the database keeps
    /// serving its last state, counted from the last time it confirmed it was current;
    /// past it, lookups fail (`503 credential_store_unavailable`). Defaults to 5 min,
    /// which rides through a restart or a failover. The trade-off: a revocation made
    /// while a verifier is cut off from the database (a partition) is not seen by that
    /// verifier for up to this long.
    ///
    /// ```
    /// # fn f(b: jg_hmac::postgres::PgStoreBuilder) -> jg_hmac::postgres::PgStoreBuilder {
    /// b.max_staleness(std::time::Duration::from_secs(60))
    /// # }
    /// ```
    #[must_use]
    pub fn max_staleness(mut self, max: Duration) -> Self {
        self.max_staleness = max;
        self
    }

    /// The clock a [`Replica`](super::Replica) measures its staleness by. Defaults to
    /// [`SystemClock`](crate::SystemClock).
    ///
    /// ```
    /// # fn f(b: jg_hmac::postgres::PgStoreBuilder) -> jg_hmac::postgres::PgStoreBuilder {
    /// b.clock(|| 1_767_225_600u64)
    /// # }
    /// ```
    #[must_use]
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The store. Connects lazily: the first lookup opens the first connection.
    ///
    /// # Errors
    /// [`PgError::Pool`] when the pool or the TLS client cannot be built.
    ///
    /// ```no_run
    /// let store = jg_hmac::postgres::PgCredentialStore::builder("host=127.0.0.1 user=jg")?
    ///     .kek(jg_hmac::postgres::LocalKek::from_file("/run/secrets/jg-kek")?)
    ///     .build()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn build(self) -> Result<PgCredentialStore, PgError> {
        let mut config = self.config;
        tune(&mut config, self.timeout);
        let tls = self.tls.connector()?;
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = match &tls {
            Tls::Off => Manager::from_config(config.clone(), tokio_postgres::NoTls, manager_config),
            Tls::Rustls(connector) => {
                Manager::from_config(config.clone(), connector.clone(), manager_config)
            }
        };
        let pool = Pool::builder(manager)
            .max_size(self.max_connections)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(self.timeout))
            .create_timeout(Some(self.timeout))
            .recycle_timeout(Some(self.timeout))
            .build()
            .map_err(|e| PgError::Pool(e.to_string()))?;
        let listen = match &self.listen_url {
            Some(url) => {
                let (mut config, plan) = tls::parse(url)?;
                tune(&mut config, self.timeout);
                Some((config, plan.connector()?))
            }
            None => None,
        };
        Ok(PgCredentialStore::from_parts(Parts {
            pool,
            config,
            keks: self.keks,
            timeout: self.timeout,
            admin_timeout: self.admin_timeout,
            replica: ReplicaSettings {
                listen,
                poll_interval: self.poll_interval,
                max_staleness: self.max_staleness,
                clock: self.clock,
            },
        }))
    }
}

/// The connection settings every connection gets: a connect timeout, TCP keepalives, and
/// the application name `jg-hmac` unless one is set. No startup `options`.
fn tune(config: &mut tokio_postgres::Config, timeout: Duration) {
    config
        .connect_timeout(timeout)
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(30));
    if config.get_application_name().is_none() {
        config.application_name("jg-hmac");
    }
}
