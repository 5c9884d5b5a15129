//! The schema, as versioned SQL migrations embedded in the crate.

use super::PgError;

/// One schema migration: a version, a name, and the SQL that applies it.
///
/// ```
/// let first = &jg_hmac::postgres::MIGRATIONS[0];
/// assert_eq!((first.version, first.name), (1, "init"));
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Migration {
    /// The version, counting from 1; applied in this order.
    pub version: i32,
    /// A short name.
    pub name: &'static str,
    /// The SQL, run in the migration's transaction.
    pub sql: &'static str,
}

/// Every migration this version knows, in order (`migrations/*.sql`).
///
/// ```
/// assert!(jg_hmac::postgres::MIGRATIONS.windows(2).all(|w| w[0].version < w[1].version));
/// ```
pub const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "init",
    sql: include_str!("../../migrations/0001_init.sql"),
}];

/// An arbitrary constant: the advisory lock that serialises concurrent migrations.
const MIGRATION_LOCK: i64 = 0x6a67_686d_6163_0001;

/// Applies the migrations the database does not have yet, in one transaction, and
/// returns the versions applied (empty when the schema was up to date).
///
/// Creates the PostgreSQL schema `jg_hmac` and its table `schema_migrations` first if
/// needed. Concurrent callers wait for each other (an advisory lock), so two instances
/// starting at once apply each migration once.
///
/// # Errors
/// [`PgError::Database`] when a statement fails (nothing is applied then);
/// [`PgError::Schema`] when the database has a version newer than this crate knows.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let (mut client, connection) =
///     tokio_postgres::connect("host=127.0.0.1 user=postgres", tokio_postgres::NoTls).await?;
/// tokio::spawn(connection);
/// let applied = jg_hmac::postgres::migrate(&mut client).await?;
/// println!("applied {applied:?}");
/// # Ok(()) }
/// ```
pub async fn migrate(client: &mut tokio_postgres::Client) -> Result<Vec<i32>, PgError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute(
        "CREATE SCHEMA IF NOT EXISTS jg_hmac;
         CREATE TABLE IF NOT EXISTS jg_hmac.schema_migrations (
             version    integer     PRIMARY KEY,
             name       text        NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now()
         );",
    )
    .await?;
    let applied: Vec<i32> = tx
        .query("SELECT version FROM jg_hmac.schema_migrations", &[])
        .await?
        .iter()
        .map(|row| row.try_get::<_, i32>(0))
        .collect::<Result<_, _>>()?;
    let known = MIGRATIONS.last().map_or(0, |m| m.version);
    if let Some(newer) = applied.iter().copied().find(|v| *v > known) {
        return Err(PgError::Schema(format!(
            "the database has schema version {newer}, newer than this jg-hmac knows ({known}): \
             upgrade jg-hmac"
        )));
    }
    let mut done = Vec::new();
    for migration in MIGRATIONS {
        if applied.contains(&migration.version) {
            continue;
        }
        tx.batch_execute(migration.sql).await?;
        tx.execute(
            "INSERT INTO jg_hmac.schema_migrations (version, name) VALUES ($1, $2)",
            &[&migration.version, &migration.name],
        )
        .await?;
        done.push(migration.version);
    }
    tx.commit().await?;
    Ok(done)
}
