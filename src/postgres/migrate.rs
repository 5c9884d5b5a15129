//! The schema, as versioned SQL migrations embedded in the crate.

use super::error::PgError;

/// One schema migration: a version, a name, and the SQL that applies it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Migration {
    /// The version, counting from 1; applied in this order.
    pub version: i32,
    /// A short name.
    pub name: &'static str,
    /// The SQL, run in the migration's transaction.
    pub sql: &'static str,
}

/// Every migration this version knows, in order (`migrations/*.sql`).
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sql: include_str!("../../migrations/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "current_kek",
        sql: include_str!("../../migrations/0002_current_kek.sql"),
    },
];

/// An arbitrary constant: the advisory lock that serialises concurrent migrations.
const MIGRATION_LOCK: i64 = 0x6a67_686d_6163_0001;

/// Applies the migrations the database does not have yet, in one transaction, and
/// returns the versions applied; documented on
/// [`PgCredentialStore::migrate`](super::PgCredentialStore::migrate), its one caller.
pub(crate) async fn apply(client: &mut tokio_postgres::Client) -> Result<Vec<i32>, PgError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_count_up_from_one() {
        assert_eq!(
            MIGRATIONS.first().map(|m| (m.version, m.name)),
            Some((1, "init"))
        );
        assert!(
            MIGRATIONS
                .iter()
                .zip(MIGRATIONS.iter().skip(1))
                .all(|(a, b)| a.version < b.version)
        );
    }
}
