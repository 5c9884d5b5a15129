//! What goes wrong in a call of the PostgreSQL store.

use std::time::Duration;

use super::kek::KekError;

/// What went wrong in a call of the PostgreSQL store.
///
/// [`is_input_error`](Self::is_input_error) sets apart the operator's mistakes (unknown
/// client, duplicate id, bad environment, another KEK than the database's: the CLI exits 2) from failures of the database
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
    /// The store's KEK is not the one the database records as current (set by its first
    /// sealed key and by every [`rekey`](super::PgCredentialStore::rekey)): a key sealed
    /// under it would not open on the verifiers. Nothing was changed.
    #[error(
        "the key-encryption key given ({given}) is not the database's current one \
         ({current}): a key sealed under it would not open on the verifiers; nothing was \
         changed (use the current KEK, or move the database to this one with rekey)"
    )]
    KekMismatch {
        /// The id of the database's current KEK.
        current: String,
        /// The id of the KEK the store would have sealed with.
        given: String,
    },
    /// A new secret could not be handed over (the `deliver` callback of
    /// [`create_client`](super::PgCredentialStore::create_client) or
    /// [`rotate`](super::PgCredentialStore::rotate) failed), so nothing was committed.
    #[error("the new secret could not be delivered, so nothing was committed: {0}")]
    Delivery(#[source] std::io::Error),
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
    /// A [`Replica`](super::Replica) cannot answer: it has not loaded yet, or it has not
    /// confirmed it is current for longer than its `max_staleness`.
    #[error("{0}")]
    NotCurrent(String),
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
                | Self::KekMismatch { .. }
                | Self::UnknownClient(_)
                | Self::DuplicateClient(_)
                | Self::ClientRevoked(_)
                | Self::UnknownKey { .. }
        )
    }
}
