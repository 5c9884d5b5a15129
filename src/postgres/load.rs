//! What the replica reads: clients with their keys that are not revoked, as
//! [`Credential`]s, and the event log's position.
//!
//! Every statement is sent with `query_typed` (an unnamed statement, one round trip), so
//! the read path works through PgBouncer in transaction pooling, where a named prepared
//! statement may land on another server connection. One `SELECT` and one row-to-credential
//! function: a new column of `clients` or `keys` is one change in each.

use std::collections::HashMap;
use std::sync::Arc;

use tokio_postgres::types::Type;
use tokio_postgres::{Client, Row};

use crate::Environment;
use crate::credential::{Credential, SigningKey};

use super::error::PgError;
use super::kek::{Kek, LOG_TARGET, Sealed};
use super::store::{aad, epoch_secs};

/// Every enabled client (or those of `$1`, when not null) with its keys that are not
/// revoked, a client's rows together and its keys in the order they were issued.
const SELECT_CLIENTS: &str = "\
    SELECT c.client_id, c.environment, c.scopes, k.key_id, k.kek_id, k.nonce, k.ciphertext, \
           ceil(extract(epoch FROM k.not_before))::bigint, floor(extract(epoch FROM k.not_after))::bigint \
    FROM jg_hmac.clients c \
    LEFT JOIN jg_hmac.keys k ON k.client_id = c.client_id AND k.revoked_at IS NULL \
    WHERE NOT c.disabled AND ($1::text[] IS NULL OR c.client_id = ANY($1)) \
    ORDER BY c.client_id, k.created_at, k.key_id";

/// The position of the event log: its last event id (0 when empty).
const SELECT_POSITION: &str = "SELECT COALESCE(max(event_id), 0)::bigint FROM jg_hmac.key_events";

/// The events after a position, in order (at most `$2`).
const SELECT_EVENTS: &str = "\
    SELECT event_id, client_id FROM jg_hmac.key_events \
    WHERE event_id > $1 ORDER BY event_id LIMIT $2";

/// Credentials by client id.
pub(super) type Credentials = HashMap<String, Arc<Credential>>;

/// The current position of the event log.
pub(super) async fn position(client: &Client) -> Result<i64, PgError> {
    let row = client.query_typed(SELECT_POSITION, &[]).await?;
    match row.first() {
        Some(row) => Ok(row.try_get(0)?),
        None => Ok(0),
    }
}

/// Up to `limit` events after `after`: their ids and client ids, in order.
pub(super) async fn events_since(
    client: &Client,
    after: i64,
    limit: i64,
) -> Result<Vec<(i64, String)>, PgError> {
    let rows = client
        .query_typed(SELECT_EVENTS, &[(&after, Type::INT8), (&limit, Type::INT8)])
        .await?;
    rows.iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect()
}

/// The credentials of every enabled client (`only: None`) or of the enabled ones among
/// `only`; a client that is absent from the result is unknown or revoked.
pub(super) async fn credentials(
    client: &Client,
    keks: &[Arc<dyn Kek>],
    only: Option<&[String]>,
) -> Result<Credentials, PgError> {
    let rows = client
        .query_typed(SELECT_CLIENTS, &[(&only, Type::TEXT_ARRAY)])
        .await?;
    let mut out = Credentials::new();
    let mut current: Option<Credential> = None;
    for row in &rows {
        let client_id: String = row.try_get(0)?;
        if current.as_ref().is_none_or(|c| c.client_id() != client_id) {
            if let Some(done) = current.take() {
                out.insert(done.client_id().to_owned(), Arc::new(done));
            }
            current = Some(unkeyed(&client_id, row)?);
        }
        if let (Some(credential), Some(key)) = (current.as_mut(), key(&client_id, row, keks).await?)
        {
            credential.add_key(key);
        }
    }
    if let Some(done) = current {
        out.insert(done.client_id().to_owned(), Arc::new(done));
    }
    Ok(out)
}

/// A client's credential without keys, from its first row: scopes, and its
/// [`Environment`] as an extension when the id's prefix agrees with the row.
fn unkeyed(client_id: &str, row: &Row) -> Result<Credential, PgError> {
    let environment: String = row.try_get(1)?;
    let scopes: Vec<String> = row.try_get(2)?;
    let mut credential = Credential::new(client_id);
    for scope in scopes {
        credential = credential.with_scope(scope);
    }
    if let Some(env) = Environment::of(client_id)
        && env.to_string() == environment
    {
        credential = credential.with_extension(env);
    }
    Ok(credential)
}

/// The key of a row, its secret opened; `None` for a client without keys, and for a key
/// whose secret does not open (a `warn` event names the client, the key and why; the
/// client's other keys keep working).
async fn key(
    client_id: &str,
    row: &Row,
    keks: &[Arc<dyn Kek>],
) -> Result<Option<SigningKey>, PgError> {
    let Some(key_id) = row.try_get::<_, Option<String>>(3)? else {
        return Ok(None);
    };
    let kek_id: String = row.try_get(4)?;
    let sealed = Sealed {
        nonce: row.try_get(5)?,
        ciphertext: row.try_get(6)?,
    };
    let not_before = row.try_get::<_, Option<i64>>(7)?.map(epoch_secs);
    let not_after = row.try_get::<_, Option<i64>>(8)?.map(epoch_secs);
    let Some(kek) = keks.iter().find(|k| k.id() == kek_id) else {
        tracing::warn!(
            target: LOG_TARGET,
            client_id,
            key_id,
            kek_id,
            "key refused: its secret is sealed under a key-encryption key this instance \
             does not hold"
        );
        return Ok(None);
    };
    match kek.open(&sealed, &aad(client_id, &key_id)).await {
        Ok(secret) => Ok(Some(
            SigningKey::new(key_id, &secret).with_validity(not_before, not_after),
        )),
        Err(error) => {
            tracing::warn!(
                target: LOG_TARGET,
                client_id,
                key_id,
                kek_id,
                error = %error,
                "key refused: its secret does not decrypt"
            );
            Ok(None)
        }
    }
}
