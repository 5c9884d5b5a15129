//! Credentials in PostgreSQL (feature `postgres`): issue, rotate and revoke partner keys
//! in a database, with secrets encrypted at rest, and revocation pushed to every verifier.
//!
//! - [`PgCredentialStore`]: a [`CredentialStore`](crate::tower::CredentialStore) on a
//!   `deadpool-postgres` pool, plus the operator's calls: [`create_client`], [`rotate`],
//!   [`revoke_key`], [`revoke_client`], [`list`], [`rekey`]. Every lookup is bounded in
//!   time (default 2 s): a database that is down or slow gives a
//!   [`StoreError`](crate::tower::StoreError), which the layer answers with
//!   `503 credential_store_unavailable`.
//! - Secrets are sealed with AES-256-GCM under a key-encryption key ([`Kek`];
//!   [`LocalKek`] reads one from the file `JG_KEK_FILE` names), with the client id and key
//!   id as associated data. The database holds only ciphertexts.
//! - [`migrate`]: the schema, as versioned SQL migrations (`migrations/*.sql`, embedded),
//!   in the PostgreSQL schema `jg_hmac`. Applying them twice is harmless.
//! - [`PgCredentialStore::listen`]: every change sends `NOTIFY jg_hmac_credentials` in
//!   its transaction; a listener on each verifier instance drops the client from its
//!   [`CachedStore`](crate::tower::CachedStore) at once.
//!
//! The `jg-hmac` command-line tool (features `cli` and `postgres`) drives the same calls:
//! `jg-hmac db migrate`, `jg-hmac keys create|rotate|revoke|list|rekey`. The operator's
//! walk-through is docs/postgres.md.
//!
//! ```no_run
//! use std::sync::Arc;
//! use jg_hmac::postgres::{LocalKek, PgCredentialStore};
//! use jg_hmac::tower::{CachedStore, VerifyLayer};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let store = PgCredentialStore::builder(&std::env::var("JG_DATABASE_URL")?)?
//!     .kek(LocalKek::from_file(std::env::var("JG_KEK_FILE")?)?)
//!     .build()?;
//! store.migrate().await?;
//! let cache = CachedStore::new(store.clone());
//! let _listener = store.listen(cache.clone()); // revocations reach this instance at once
//! let layer = VerifyLayer::new(cache);
//! # let _ = layer;
//! # Ok(()) }
//! ```
//!
//! [`create_client`]: PgCredentialStore::create_client
//! [`rotate`]: PgCredentialStore::rotate
//! [`revoke_key`]: PgCredentialStore::revoke_key
//! [`revoke_client`]: PgCredentialStore::revoke_client
//! [`list`]: PgCredentialStore::list
//! [`rekey`]: PgCredentialStore::rekey

mod ids;
mod kek;
mod listen;
mod migrate;
mod store;

use std::time::Duration;

pub use ids::{is_valid_client_id, new_client_id};
pub use kek::{Kek, KekError, KekFuture, LocalKek, Sealed, generate_key_hex};
pub use listen::{Invalidate, Listener};
pub use migrate::{MIGRATIONS, Migration, migrate};
pub use store::{
    ClientInfo, Issued, KeyInfo, NewClient, PgCredentialStore, PgStoreBuilder, RekeyReport,
};

/// The channel every change is announced on, with the client id as payload (`*` for
/// "every client").
///
/// ```
/// assert_eq!(jg_hmac::postgres::NOTIFY_CHANNEL, "jg_hmac_credentials");
/// ```
pub const NOTIFY_CHANNEL: &str = "jg_hmac_credentials";

/// Default bound on a credential lookup (pool wait, connect, statement): 2 s.
///
/// ```
/// assert_eq!(jg_hmac::postgres::DEFAULT_TIMEOUT.as_secs(), 2);
/// ```
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// What went wrong in a call of the PostgreSQL store.
///
/// [`is_input_error`](Self::is_input_error) sets apart the operator's mistakes (unknown
/// client, duplicate id, bad environment: the CLI exits 2) from failures of the database
/// or the key-encryption key (exit 1). No message contains a secret.
///
/// ```
/// use jg_hmac::postgres::PgError;
/// let err = PgError::UnknownClient("jk_live_x".into());
/// assert!(err.is_input_error());
/// assert_eq!(err.to_string(), "unknown client id \"jk_live_x\"");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgError {
    /// An argument is not acceptable (a malformed client id, scope, environment).
    #[error("{0}")]
    InvalidInput(String),
    /// No client has this id.
    #[error("unknown client id {0:?}")]
    UnknownClient(String),
    /// A client with this id exists already.
    #[error("client id {0:?} already exists")]
    DuplicateClient(String),
    /// The client was revoked: it gets no new key.
    #[error("client {0:?} is revoked")]
    ClientRevoked(String),
    /// The client has no key with this id.
    #[error("client {client_id:?} has no key {key_id:?}")]
    UnknownKey {
        /// The client id.
        client_id: String,
        /// The key id that was not found.
        key_id: String,
    },
    /// The database answered with an error, or the connection failed.
    #[error("database: {}", describe(.0))]
    Database(#[from] tokio_postgres::Error),
    /// No connection could be had from the pool in time.
    #[error("database connection pool: {0}")]
    Pool(String),
    /// The database did not answer in time.
    #[error("database did not answer within {0:?}")]
    Timeout(Duration),
    /// The key-encryption key failed.
    #[error(transparent)]
    Kek(#[from] KekError),
    /// The operating system's random generator failed.
    #[error("random generator unavailable: {0}")]
    Random(String),
    /// The database's schema is not what this version expects.
    #[error("schema: {0}")]
    Schema(String),
    /// Re-encryption under a new KEK stopped; nothing was changed.
    #[error("rekey: {0}")]
    Rekey(String),
}

/// An error and its sources, `: `-separated (tokio-postgres's own `Display` says only
/// "db error").
pub(crate) fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

impl PgError {
    /// Whether the error is the caller's input (exit code 2 in the CLI) rather than a
    /// failure of the database or the KEK (exit code 1).
    ///
    /// ```
    /// use jg_hmac::postgres::PgError;
    /// assert!(!PgError::Pool("timed out".into()).is_input_error());
    /// ```
    pub fn is_input_error(&self) -> bool {
        matches!(
            self,
            Self::InvalidInput(_)
                | Self::UnknownClient(_)
                | Self::DuplicateClient(_)
                | Self::ClientRevoked(_)
                | Self::UnknownKey { .. }
        )
    }
}
