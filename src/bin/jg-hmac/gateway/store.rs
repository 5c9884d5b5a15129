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
    /// PostgreSQL behind a cache that its NOTIFY listener empties on every change.
    #[cfg(feature = "postgres")]
    Postgres(jg_hmac::tower::CachedStore<jg_hmac::postgres::PgCredentialStore>),
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

/// Opens the store of `config` (must run within the Tokio runtime). For PostgreSQL, the
/// listener is returned too: it must live as long as the store.
pub fn open_store(
    config: &Config,
) -> Result<(Store, Option<Box<dyn std::any::Any + Send>>), String> {
    match &config.credentials {
        Credentials::File(path) => {
            let credentials = super::credentials::load(path)?;
            Ok((
                Store::File(InMemoryCredentialStore::from_credentials(credentials)),
                None,
            ))
        }
        #[cfg(feature = "postgres")]
        Credentials::Postgres { url, kek_file } => {
            use jg_hmac::postgres::{LocalKek, PgCredentialStore};
            let kek = LocalKek::from_file(kek_file).map_err(|e| e.to_string())?;
            let store = PgCredentialStore::builder(url)
                .map_err(|e| e.to_string())?
                .kek(kek)
                .build()
                .map_err(|e| e.to_string())?;
            let cache = jg_hmac::tower::CachedStore::new(store.clone());
            let listener = store.listen(cache.clone());
            Ok((Store::Postgres(cache), Some(Box::new(listener))))
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
