//! Where credentials come from (the credentials file, or PostgreSQL) and which replay
//! guard remembers signatures (in memory, or Redis): one type each for the layer.

use std::sync::Arc;

use jg_hmac::tower::{AsyncReplayGuard, CredentialStore, InMemoryCredentialStore, StoreError};
use jg_hmac::{Credential, Error, InMemoryReplayGuard, Signature};

use super::config::{Config, Credentials};

/// The credential store the layer asks.
pub enum Store {
    /// The credentials file, swapped whole on SIGHUP.
    File(InMemoryCredentialStore),
    /// PostgreSQL, served from the replica in memory that follows its event log.
    #[cfg(feature = "postgres")]
    Postgres(jg_hmac::postgres::Replica),
}

impl CredentialStore for Store {
    async fn get(&self, client_id: &str) -> Result<Option<Arc<Credential>>, StoreError> {
        match self {
            Self::File(store) => store.get(client_id).await,
            #[cfg(feature = "postgres")]
            Self::Postgres(store) => store.get(client_id).await,
        }
    }
}

/// The replay guard the layer records signatures in.
pub enum Guard {
    Memory(InMemoryReplayGuard),
    #[cfg(feature = "redis")]
    Redis(jg_hmac::redis::RedisReplayGuard),
}

impl AsyncReplayGuard for Guard {
    async fn check_and_record(
        &self,
        client_id: &str,
        signature: &Signature,
        expires_at: u64,
        now: u64,
    ) -> Result<(), Error> {
        match self {
            Self::Memory(guard) => {
                AsyncReplayGuard::check_and_record(guard, client_id, signature, expires_at, now)
                    .await
            }
            #[cfg(feature = "redis")]
            Self::Redis(guard) => {
                guard
                    .check_and_record(client_id, signature, expires_at, now)
                    .await
            }
        }
    }
}

/// Opens the store of `config` (must run within the Tokio runtime).
pub fn open_store(config: &Config) -> Result<Store, String> {
    match &config.credentials {
        Credentials::File(path) => {
            let credentials = super::credentials::load(path)?;
            Ok(Store::File(InMemoryCredentialStore::from_credentials(
                credentials,
            )))
        }
        #[cfg(feature = "postgres")]
        Credentials::Postgres { url, kek_file } => {
            use jg_hmac::postgres::{LocalKek, PgCredentialStore};
            let kek = LocalKek::from_file(kek_file).map_err(|e| e.to_string())?;
            let mut builder = PgCredentialStore::builder(url)
                .map_err(|e| e.to_string())?
                .kek(kek);
            // As docs/postgres.md: a direct connection for NOTIFY when a pooler is in between.
            if let Ok(direct) = std::env::var("JG_DATABASE_LISTEN_URL") {
                builder = builder.listen_url(&direct);
            }
            let store = builder.build().map_err(|e| e.to_string())?;
            Ok(Store::Postgres(store.replica()))
        }
        #[cfg(not(feature = "postgres"))]
        Credentials::Postgres { .. } => Err(
            "$JG_DATABASE_URL needs a jg-hmac built with feature postgres; use --credentials FILE"
                .into(),
        ),
    }
}

/// The replay guard of `config`: Redis with `--redis`, else in memory.
pub fn open_guard(config: &Config) -> Result<Guard, String> {
    match &config.redis {
        #[cfg(feature = "redis")]
        Some(url) => jg_hmac::redis::RedisReplayGuard::new(url)
            .map(Guard::Redis)
            .map_err(|e| format!("--redis: {e}")),
        #[cfg(not(feature = "redis"))]
        Some(_) => Err("--redis needs a jg-hmac built with feature redis".into()),
        None => Ok(Guard::Memory(InMemoryReplayGuard::new(
            config.replay_capacity,
        ))),
    }
}
