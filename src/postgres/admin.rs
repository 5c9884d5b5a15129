//! The operator's calls on the store: migrate the schema, create a client, rotate and
//! revoke keys, list, re-encrypt under a new KEK. Each runs in one transaction that
//! records its key events and announces the change.

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Transaction;

use super::error::PgError;
use super::events::{
    begin, check_actor, check_current_kek, event, lock_client, notify, set_current_kek,
};
use super::ids::{
    check_client_id, check_key_id, check_new_client_id, check_overlap, check_scope, new_client_id,
    new_key_id, new_secret_hex,
};
use super::kek::{Kek, Sealed};
use super::migrate;
use super::model::{ClientInfo, Issued, KeyInfo, NewClient, RekeyReport};
use super::store::{PgCredentialStore, aad, epoch_secs};

impl PgCredentialStore {
    /// Applies the schema migrations the database does not have yet (`migrations/*.sql`,
    /// embedded), in one transaction, and returns the versions applied (empty when the
    /// schema was up to date). Running it twice is harmless.
    ///
    /// Creates the PostgreSQL schema `jg_hmac` and its table `schema_migrations` first if
    /// needed. Concurrent callers wait for each other (an advisory lock), so two instances
    /// starting at once apply each migration once. Bounded by
    /// [`admin_timeout`](super::PgStoreBuilder::admin_timeout) (default 30 s); needs no
    /// KEK.
    ///
    /// # Errors
    /// [`PgError::Database`] when a statement fails (nothing is applied then);
    /// [`PgError::Schema`] when the database has a version newer than this crate knows;
    /// [`PgError::Pool`] when no connection can be had.
    ///
    /// ```no_run
    /// # async fn run(store: jg_hmac::postgres::PgCredentialStore) -> Result<(), jg_hmac::postgres::PgError> {
    /// let applied = store.migrate().await?;
    /// println!("applied {applied:?}");
    /// # Ok(()) }
    /// ```
    pub async fn migrate(&self) -> Result<Vec<i32>, PgError> {
        self.admin(async {
            let mut conn = self.connection().await?;
            let client: &mut tokio_postgres::Client = &mut conn;
            migrate::apply(client).await
        })
        .await
    }

    /// Creates a client with one key, and returns the key (its secret shown this once).
    /// Records `client_created` and `key_created` events by `actor`.
    ///
    /// `deliver` hands the new secret over (writes it out and flushes it) inside the
    /// transaction, before it commits: if it fails, nothing is committed and the call
    /// returns [`PgError::Delivery`], so a secret that never reached anyone never
    /// becomes a valid key. (If the commit itself fails after a successful delivery, an
    /// error is returned and the secret delivered is normally no key; a connection lost
    /// during the commit leaves that unknown: [`list`](Self::list) tells.) Pass
    /// `|_| Ok(())` to only get it back.
    ///
    /// The store's KEK must be the one the database records as current; a new database
    /// records the KEK of its first sealed key.
    ///
    /// # Errors
    /// [`PgError::InvalidInput`] for a bad client id (not of the environment's prefix)
    /// or scope; [`PgError::DuplicateClient`] when the id exists;
    /// [`PgError::KekMismatch`] when the store's KEK is not the database's current one;
    /// [`PgError::Delivery`] when `deliver` fails; database errors. Nothing is changed
    /// on any error.
    ///
    /// ```no_run
    /// use std::io::Write;
    /// use jg_hmac::postgres::NewClient;
    /// # async fn run(store: jg_hmac::postgres::PgCredentialStore) -> Result<(), jg_hmac::postgres::PgError> {
    /// let issued = store
    ///     .create_client(NewClient::new(jg_hmac::Environment::Live), "alice", |issued| {
    ///         let mut out = std::io::stdout().lock();
    ///         writeln!(out, "{} {}", issued.client_id, issued.secret_hex())?;
    ///         out.flush() // written and flushed, or nothing is committed
    ///     })
    ///     .await?;
    /// # let _ = issued; Ok(()) }
    /// ```
    pub async fn create_client(
        &self,
        new: NewClient,
        actor: &str,
        deliver: impl FnOnce(&Issued) -> std::io::Result<()>,
    ) -> Result<Issued, PgError> {
        check_actor(actor)?;
        let client_id = match new.client_id {
            Some(id) => {
                check_new_client_id(&id, new.environment)?;
                id
            }
            None => new_client_id(new.environment)?,
        };
        for scope in &new.scopes {
            check_scope(scope)?;
        }
        let environment = new.environment.to_string();
        let kek = self.sealing_kek()?;
        self.admin(async {
            let mut conn = self.connection().await?;
            let tx = begin(&mut conn).await?;
            check_current_kek(&tx, kek.id()).await?;
            let inserted = tx
                .execute(
                    "INSERT INTO jg_hmac.clients (client_id, environment, scopes) \
                     VALUES ($1, $2, $3) ON CONFLICT (client_id) DO NOTHING",
                    &[&client_id, &environment, &new.scopes],
                )
                .await?;
            if inserted == 0 {
                return Err(PgError::DuplicateClient(client_id.clone()));
            }
            let detail = format!("environment={environment} scopes={}", new.scopes.join(","));
            event(
                &tx,
                "client_created",
                &client_id,
                None,
                actor,
                Some(&detail),
            )
            .await?;
            let issued = insert_key(&tx, kek, &client_id, actor).await?;
            notify(&tx, &client_id).await?;
            deliver_and_commit(tx, issued, deliver).await
        })
        .await
    }

    /// Issues a new key for a client, and ends every older active key `overlap` from now
    /// (`not_after = now + overlap`, or earlier if it already ended sooner): during the
    /// overlap both verify, so the partner can switch. Records `key_created` and
    /// `key_expiry_set` events. `overlap` is at most 3650 days (whole seconds count).
    ///
    /// `deliver` and the KEK are as for [`create_client`](Self::create_client): the new
    /// secret is handed over before the commit, and nothing (not even the end of the
    /// older keys) is committed if that fails.
    ///
    /// # Errors
    /// [`PgError::UnknownClient`], [`PgError::ClientRevoked`],
    /// [`PgError::InvalidInput`] for an overlap over the maximum,
    /// [`PgError::KekMismatch`], [`PgError::Delivery`]; database errors. Nothing is
    /// changed on any error.
    ///
    /// ```no_run
    /// # async fn run(store: jg_hmac::postgres::PgCredentialStore) -> Result<(), jg_hmac::postgres::PgError> {
    /// let overlap = std::time::Duration::from_secs(86_400);
    /// let issued = store.rotate("jk_live_acme", overlap, "ops", |_| Ok(())).await?;
    /// # let _ = issued; Ok(()) }
    /// ```
    pub async fn rotate(
        &self,
        client_id: &str,
        overlap: Duration,
        actor: &str,
        deliver: impl FnOnce(&Issued) -> std::io::Result<()>,
    ) -> Result<Issued, PgError> {
        check_actor(actor)?;
        check_client_id(client_id)?;
        let overlap_secs = check_overlap(overlap)?;
        let kek = self.sealing_kek()?;
        self.admin(async {
            let mut conn = self.connection().await?;
            let tx = begin(&mut conn).await?;
            check_current_kek(&tx, kek.id()).await?;
            lock_client(&tx, client_id, true).await?;
            let ended = tx
                .query(
                    "UPDATE jg_hmac.keys \
                     SET not_after = LEAST(COALESCE(not_after, 'infinity'::timestamptz), \
                                           now() + $2::bigint * interval '1 second') \
                     WHERE client_id = $1 AND revoked_at IS NULL \
                       AND (not_after IS NULL OR not_after >= now()) \
                     RETURNING key_id, floor(extract(epoch FROM not_after))::bigint",
                    &[&client_id, &overlap_secs],
                )
                .await?;
            for row in &ended {
                let key_id: String = row.try_get(0)?;
                let until: i64 = row.try_get(1)?;
                let detail = format!("not_after={until} (rotation overlap {overlap_secs} s)");
                event(
                    &tx,
                    "key_expiry_set",
                    client_id,
                    Some(&key_id),
                    actor,
                    Some(&detail),
                )
                .await?;
            }
            let issued = insert_key(&tx, kek, client_id, actor).await?;
            notify(&tx, client_id).await?;
            deliver_and_commit(tx, issued, deliver).await
        })
        .await
    }

    /// Revokes one key: every verifier's [`Replica`](super::Replica) drops it as soon as
    /// it reads the change (at once with a
    /// [`listen_url`](super::PgStoreBuilder::listen_url), else within the poll interval),
    /// requests in flight included. Returns `false` when it was revoked already.
    ///
    /// # Errors
    /// [`PgError::UnknownClient`], [`PgError::UnknownKey`]; database errors.
    ///
    /// ```no_run
    /// # async fn run(store: jg_hmac::postgres::PgCredentialStore) -> Result<(), jg_hmac::postgres::PgError> {
    /// store.revoke_key("jk_live_acme", "k_abcdefghijklmnop", "ops").await?;
    /// # Ok(()) }
    /// ```
    pub async fn revoke_key(
        &self,
        client_id: &str,
        key_id: &str,
        actor: &str,
    ) -> Result<bool, PgError> {
        check_actor(actor)?;
        check_client_id(client_id)?;
        check_key_id(key_id)?;
        self.admin(async {
            let mut conn = self.connection().await?;
            let tx = begin(&mut conn).await?;
            lock_client(&tx, client_id, false).await?;
            let exists = tx
                .query_opt(
                    "SELECT revoked_at IS NOT NULL FROM jg_hmac.keys \
                     WHERE client_id = $1 AND key_id = $2 FOR UPDATE",
                    &[&client_id, &key_id],
                )
                .await?;
            let Some(row) = exists else {
                return Err(PgError::UnknownKey {
                    client_id: client_id.to_owned(),
                    key_id: key_id.to_owned(),
                });
            };
            if row.try_get::<_, bool>(0)? {
                return Ok(false);
            }
            tx.execute(
                "UPDATE jg_hmac.keys SET revoked_at = now() WHERE client_id = $1 AND key_id = $2",
                &[&client_id, &key_id],
            )
            .await?;
            event(&tx, "key_revoked", client_id, Some(key_id), actor, None).await?;
            notify(&tx, client_id).await?;
            tx.commit().await?;
            Ok(true)
        })
        .await
    }

    /// Revokes a whole client at once: it is disabled and every key revoked. Returns
    /// `false` when it was revoked already.
    ///
    /// # Errors
    /// [`PgError::UnknownClient`]; database errors.
    ///
    /// ```no_run
    /// # async fn run(store: jg_hmac::postgres::PgCredentialStore) -> Result<(), jg_hmac::postgres::PgError> {
    /// store.revoke_client("jk_live_acme", "ops").await?;
    /// # Ok(()) }
    /// ```
    pub async fn revoke_client(&self, client_id: &str, actor: &str) -> Result<bool, PgError> {
        check_actor(actor)?;
        check_client_id(client_id)?;
        self.admin(async {
            let mut conn = self.connection().await?;
            let tx = begin(&mut conn).await?;
            let disabled = lock_client(&tx, client_id, false).await?;
            if disabled {
                return Ok(false);
            }
            tx.execute(
                "UPDATE jg_hmac.clients SET disabled = true WHERE client_id = $1",
                &[&client_id],
            )
            .await?;
            tx.execute(
                "UPDATE jg_hmac.keys SET revoked_at = now() \
                 WHERE client_id = $1 AND revoked_at IS NULL",
                &[&client_id],
            )
            .await?;
            event(&tx, "client_revoked", client_id, None, actor, None).await?;
            notify(&tx, client_id).await?;
            tx.commit().await?;
            Ok(true)
        })
        .await
    }

    /// Every client (or one), with its keys: ids, environment, scopes, validity,
    /// revocation. Never a secret.
    ///
    /// # Errors
    /// [`PgError::UnknownClient`] when `client_id` is given and unknown; database errors.
    ///
    /// ```no_run
    /// # async fn run(store: jg_hmac::postgres::PgCredentialStore) -> Result<(), jg_hmac::postgres::PgError> {
    /// let one = store.list(Some("jk_live_acme")).await?;
    /// # let _ = one; Ok(()) }
    /// ```
    pub async fn list(&self, client_id: Option<&str>) -> Result<Vec<ClientInfo>, PgError> {
        if let Some(id) = client_id {
            check_client_id(id)?;
        }
        self.admin(async {
            let conn = self.connection().await?;
            let clients = conn
                .query(
                    "SELECT client_id, environment, scopes, disabled, \
                            floor(extract(epoch FROM created_at))::bigint \
                     FROM jg_hmac.clients WHERE $1::text IS NULL OR client_id = $1 \
                     ORDER BY created_at, client_id",
                    &[&client_id],
                )
                .await?;
            let keys = conn
                .query(
                    "SELECT client_id, key_id, kek_id, floor(extract(epoch FROM created_at))::bigint, \
                            ceil(extract(epoch FROM not_before))::bigint, \
                            floor(extract(epoch FROM not_after))::bigint, \
                            floor(extract(epoch FROM revoked_at))::bigint \
                     FROM jg_hmac.keys WHERE $1::text IS NULL OR client_id = $1 \
                     ORDER BY created_at, key_id",
                    &[&client_id],
                )
                .await?;
            let mut out = Vec::with_capacity(clients.len());
            for row in &clients {
                out.push(ClientInfo {
                    client_id: row.try_get(0)?,
                    environment: row.try_get(1)?,
                    scopes: row.try_get(2)?,
                    disabled: row.try_get(3)?,
                    created_at: epoch_secs(row.try_get(4)?),
                    keys: Vec::new(),
                });
            }
            for row in &keys {
                let owner: String = row.try_get(0)?;
                if let Some(client) = out.iter_mut().find(|c| c.client_id == owner) {
                    client.keys.push(KeyInfo {
                        key_id: row.try_get(1)?,
                        kek_id: row.try_get(2)?,
                        created_at: epoch_secs(row.try_get(3)?),
                        not_before: row.try_get::<_, Option<i64>>(4)?.map(epoch_secs),
                        not_after: row.try_get::<_, Option<i64>>(5)?.map(epoch_secs),
                        revoked_at: row.try_get::<_, Option<i64>>(6)?.map(epoch_secs),
                    });
                }
            }
            if let (Some(id), true) = (client_id, out.is_empty()) {
                return Err(PgError::UnknownClient(id.to_owned()));
            }
            Ok(out)
        })
        .await
    }

    /// Re-encrypts every stored secret under `new_kek`, in one transaction: each row is
    /// opened with the KEK it names (one this store holds) and sealed again with a fresh
    /// nonce. Rows already under `new_kek` are left as they are, so running it twice is
    /// harmless. If any row does not open, nothing is changed. Records a `key_rekeyed`
    /// event per row, and `new_kek` as the database's current KEK, the one
    /// [`create_client`](Self::create_client) and [`rotate`](Self::rotate) accept from
    /// then on.
    ///
    /// Verifiers must be able to open both forms while it runs: give them the new KEK as
    /// [`kek`](super::PgStoreBuilder::kek) and the old one as
    /// [`previous_kek`](super::PgStoreBuilder::previous_kek) first (docs/postgres.md).
    ///
    /// # Errors
    /// [`PgError::Rekey`] naming the first row that does not open; database and KEK
    /// errors.
    ///
    /// ```no_run
    /// use jg_hmac::postgres::LocalKek;
    /// # async fn run(store: jg_hmac::postgres::PgCredentialStore) -> Result<(), Box<dyn std::error::Error>> {
    /// let report = store.rekey(&LocalKek::from_file("/run/secrets/jg-kek-2027")?, "ops").await?;
    /// println!("{} secrets re-encrypted", report.rekeyed);
    /// # Ok(()) }
    /// ```
    pub async fn rekey(&self, new_kek: &dyn Kek, actor: &str) -> Result<RekeyReport, PgError> {
        check_actor(actor)?;
        self.admin(async {
            let mut conn = self.connection().await?;
            let tx = begin(&mut conn).await?;
            set_current_kek(&tx, new_kek.id()).await?;
            let rows = tx
                .query(
                    "SELECT client_id, key_id, kek_id, nonce, ciphertext FROM jg_hmac.keys \
                     ORDER BY client_id, key_id FOR UPDATE",
                    &[],
                )
                .await?;
            let mut report = RekeyReport {
                rekeyed: 0,
                already: 0,
            };
            for row in &rows {
                let client_id: String = row.try_get(0)?;
                let key_id: String = row.try_get(1)?;
                let kek_id: String = row.try_get(2)?;
                if kek_id == new_kek.id() {
                    report.already += 1;
                    continue;
                }
                let Some(old) = self.kek_by_id(&kek_id) else {
                    return Err(PgError::Rekey(format!(
                        "key {key_id} of {client_id} is sealed under KEK {kek_id}, which was not \
                         given; nothing was changed"
                    )));
                };
                let sealed = Sealed {
                    nonce: row.try_get(3)?,
                    ciphertext: row.try_get(4)?,
                };
                let row_aad = aad(&client_id, &key_id);
                let secret = old.open(&sealed, &row_aad).await.map_err(|e| {
                    PgError::Rekey(format!(
                        "key {key_id} of {client_id} does not open under KEK {kek_id} ({e}); \
                         nothing was changed"
                    ))
                })?;
                let resealed = new_kek.seal(secret.expose_secret(), &row_aad).await?;
                drop(secret);
                tx.execute(
                    "UPDATE jg_hmac.keys SET kek_id = $3, nonce = $4, ciphertext = $5 \
                     WHERE client_id = $1 AND key_id = $2",
                    &[
                        &client_id,
                        &key_id,
                        &new_kek.id(),
                        &resealed.nonce,
                        &resealed.ciphertext,
                    ],
                )
                .await?;
                let detail = format!("from {kek_id} to {}", new_kek.id());
                event(
                    &tx,
                    "key_rekeyed",
                    &client_id,
                    Some(&key_id),
                    actor,
                    Some(&detail),
                )
                .await?;
                report.rekeyed += 1;
            }
            tx.commit().await?;
            Ok(report)
        })
        .await
    }
}

/// Seals a new secret for `client_id` under `kek` and inserts it as a new key.
async fn insert_key(
    tx: &Transaction<'_>,
    kek: &Arc<dyn Kek>,
    client_id: &str,
    actor: &str,
) -> Result<Issued, PgError> {
    let key_id = new_key_id()?;
    let secret = new_secret_hex()?;
    let sealed = kek
        .seal(secret.as_bytes(), &aad(client_id, &key_id))
        .await?;
    tx.execute(
        "INSERT INTO jg_hmac.keys (client_id, key_id, kek_id, nonce, ciphertext) \
         VALUES ($1, $2, $3, $4, $5)",
        &[
            &client_id,
            &key_id,
            &kek.id(),
            &sealed.nonce,
            &sealed.ciphertext,
        ],
    )
    .await?;
    event(tx, "key_created", client_id, Some(&key_id), actor, None).await?;
    Ok(Issued {
        client_id: client_id.to_owned(),
        key_id,
        secret,
    })
}

/// Hands the new key over, then commits; if the hand-over fails, rolls back.
async fn deliver_and_commit(
    tx: Transaction<'_>,
    issued: Issued,
    deliver: impl FnOnce(&Issued) -> std::io::Result<()>,
) -> Result<Issued, PgError> {
    if let Err(e) = deliver(&issued) {
        // Dropping the transaction would roll it back too; this says so at once.
        let _ = tx.rollback().await;
        return Err(PgError::Delivery(e));
    }
    tx.commit().await?;
    Ok(issued)
}
