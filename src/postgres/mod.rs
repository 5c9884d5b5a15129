//! Credentials in PostgreSQL (feature `postgres`): issue, rotate and revoke partner keys
//! in a database, with secrets encrypted at rest; every verifier serves from a replica in
//! memory.
//!
//! - [`PgCredentialStore`]: the database on a `deadpool-postgres` pool ([`PgStoreBuilder`]
//!   sets it up), with the operator's calls (their arguments and results: [`NewClient`],
//!   [`Issued`], [`ClientInfo`], [`KeyInfo`], [`RekeyReport`]): [`create_client`],
//!   [`rotate`], [`revoke_key`], [`revoke_client`], [`list`], [`rekey`].
//! - [`Replica`]: the read path, the [`CredentialStore`](crate::tower::CredentialStore)
//!   each verifier gives its layer. Every credential is in memory, loaded at start and
//!   kept current from the event log `jg_hmac.key_events` by position (woken by `NOTIFY
//!   jg_hmac_credentials` on a direct connection, [`PgStoreBuilder::listen_url`], else
//!   polling): no request waits for the database, and made-up client ids cost nothing.
//!   Through a database outage it serves its last state up to
//!   [`max_staleness`](PgStoreBuilder::max_staleness), then answers 503.
//! - Secrets are sealed with AES-256-GCM under a key-encryption key ([`Kek`];
//!   [`LocalKek`] reads one from the file `JG_KEK_FILE` names), with the client id and key
//!   id as associated data. The database holds only ciphertexts.
//! - [`migrate`]: the schema, as versioned SQL migrations (`migrations/*.sql`, embedded),
//!   in the PostgreSQL schema `jg_hmac`. Applying them twice is harmless.
//!
//! The `jg-hmac` command-line tool (features `cli` and `postgres`) drives the same calls:
//! `jg-hmac db migrate`, `jg-hmac keys create|rotate|revoke|list|rekey`. The operator's
//! walk-through is docs/postgres.md.
//!
//! ```no_run
//! use std::time::Duration;
//! use jg_hmac::postgres::{LocalKek, PgCredentialStore};
//! use jg_hmac::tower::VerifyLayer;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let mut builder = PgCredentialStore::builder(&std::env::var("JG_DATABASE_URL")?)?
//!     .kek(LocalKek::from_file(std::env::var("JG_KEK_FILE")?)?);
//! if let Ok(direct) = std::env::var("JG_DATABASE_LISTEN_URL") {
//!     builder = builder.listen_url(&direct); // changes reach this instance at once
//! }
//! let store = builder.build()?;
//! store.migrate().await?;
//! let replica = store.replica();
//! replica.wait_current(Duration::from_secs(10)).await;
//! let layer = VerifyLayer::new(replica);
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
// `events`, `ids`, `migrate`, `model`, `tls` → `store` (the handle) → `load` (rows to
// credentials) → `replica` ⇄ `follow` (the read path: state, and the tasks that keep it
// current) → `builder`, `admin` (the operator's calls).
mod admin;
mod builder;
mod error;
mod events;
mod follow;
mod ids;
mod kek;
mod load;
mod migrate;
mod model;
mod replica;
mod store;
mod tls;

pub use builder::PgStoreBuilder;
pub use error::PgError;
pub use kek::{Kek, KekError, LocalKek, Sealed};
pub use model::{ClientInfo, Issued, KeyInfo, NewClient, RekeyReport};
pub use replica::Replica;
pub use store::PgCredentialStore;
