//! What every change writes in its transaction: a row of `jg_hmac.key_events` (who did
//! what, never a secret), and a `NOTIFY` on the channel the listeners follow.

use super::error::PgError;

/// The channel every change is announced on, with the client id as payload (`*` for
/// "every client"): `jg_hmac_credentials`.
pub(crate) const NOTIFY_CHANNEL: &str = "jg_hmac_credentials";

/// A change's transaction. It first takes a transaction-scoped lock that every change
/// takes, so changes commit one at a time, in the order of their event ids: a
/// [`Replica`](super::Replica) that has read the events up to one id has then missed
/// none before it (the event log is its position). Changes are an operator's calls, rare.
pub(super) async fn begin(
    conn: &mut deadpool_postgres::Object,
) -> Result<deadpool_postgres::Transaction<'_>, PgError> {
    let tx = conn.transaction().await?;
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext('jg_hmac.key_events'))",
        &[],
    )
    .await?;
    Ok(tx)
}

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

/// Checks, first thing in a transaction that seals a secret, that `kek_id` is the
/// database's current KEK (`jg_hmac.current_kek`), and records it as current when the
/// database has none yet (a new database's first sealed key). The record stays locked
/// until the transaction ends, so a concurrent [`rekey`](super::PgCredentialStore::rekey)
/// and this call wait for each other instead of sealing under a KEK that was just
/// replaced.
pub(super) async fn check_current_kek(
    tx: &tokio_postgres::Transaction<'_>,
    kek_id: &str,
) -> Result<(), PgError> {
    let current = async {
        tx.execute(
            "INSERT INTO jg_hmac.current_kek (kek_id) VALUES ($1) \
             ON CONFLICT (singleton) DO NOTHING",
            &[&kek_id],
        )
        .await?;
        tx.query_one("SELECT kek_id FROM jg_hmac.current_kek FOR SHARE", &[])
            .await?
            .try_get::<_, String>(0)
    }
    .await
    .map_err(|e| {
        if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) {
            PgError::Schema(
                "the database has no record of its current KEK: apply the migrations first \
                 (jg-hmac db migrate)"
                    .to_owned(),
            )
        } else {
            PgError::Database(e)
        }
    })?;
    if current == kek_id {
        Ok(())
    } else {
        Err(PgError::KekMismatch {
            current,
            given: kek_id.to_owned(),
        })
    }
}

/// Records `kek_id` as the database's current KEK (what a re-key ends with), locking the
/// record until the transaction ends.
pub(super) async fn set_current_kek(
    tx: &tokio_postgres::Transaction<'_>,
    kek_id: &str,
) -> Result<(), PgError> {
    tx.execute(
        "INSERT INTO jg_hmac.current_kek (kek_id) VALUES ($1) \
         ON CONFLICT (singleton) DO UPDATE SET kek_id = EXCLUDED.kek_id, set_at = now()",
        &[&kek_id],
    )
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
