//! Credentials in PostgreSQL (feature `postgres`): issue, rotate and revoke partner keys
//! in a database, with secrets encrypted at rest, and revocation pushed to every verifier.
//!
//! - [`PgCredentialStore`]: a [`CredentialStore`](crate::tower::CredentialStore) on a
//!   `deadpool-postgres` pool ([`PgStoreBuilder`] sets it up), plus the operator's calls
//!   (their arguments and results: [`NewClient`], [`Issued`], [`ClientInfo`], [`KeyInfo`],
//!   [`RekeyReport`]): [`create_client`], [`rotate`],
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
//! [`migrate`]: PgCredentialStore::migrate

// Layering (each file imports only from files of earlier steps): `kek` → `error` →
// `events`, `ids`, `migrate`, `model`, `tls` → `store` (the read path) → `builder`, `listen`,
// `admin` (the operator's calls).
mod admin;
mod builder;
mod error;
mod events;
mod ids;
mod kek;
mod listen;
mod migrate;
mod model;
mod store;
mod tls;

pub use builder::PgStoreBuilder;
pub use error::PgError;
pub use kek::{Kek, KekError, LocalKek, Sealed};
pub use listen::{Invalidate, Listener};
pub use model::{ClientInfo, Issued, KeyInfo, NewClient, RekeyReport};
pub use store::PgCredentialStore;
