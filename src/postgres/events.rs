//! What every change writes in its transaction: a row of `jg_hmac.key_events` (who did
//! what, never a secret), and a `NOTIFY` on the channel the listeners follow.

use super::error::PgError;

/// The channel every change is announced on, with the client id as payload (`*` for
/// "every client"): `jg_hmac_credentials`.
pub(crate) const NOTIFY_CHANNEL: &str = "jg_hmac_credentials";

/// Locks the client's row; returns whether it is disabled. With `must_be_enabled`, a
/// disabled client is an error.
pub(super) async fn lock_client(
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

/// Records a key event by `actor`.
pub(super) async fn event(
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
pub(super) async fn notify(
    tx: &tokio_postgres::Transaction<'_>,
    client_id: &str,
) -> Result<(), PgError> {
    tx.execute("SELECT pg_notify($1, $2)", &[&NOTIFY_CHANNEL, &client_id])
        .await?;
    Ok(())
}

/// Checks the name of who makes a change: 1 to 200 characters, no control character.
pub(super) fn check_actor(actor: &str) -> Result<(), PgError> {
    if actor.trim().is_empty() || actor.len() > 200 || actor.chars().any(char::is_control) {
        return Err(PgError::InvalidInput(
            "actor must be 1 to 200 characters, without control characters".to_owned(),
        ));
    }
    Ok(())
}
