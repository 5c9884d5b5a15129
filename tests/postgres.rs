//! The PostgreSQL credential store against a real PostgreSQL: each test starts its own
//! throwaway cluster (initdb + pg_ctl in a temp dir, on a free 127.0.0.1 port, as the
//! `postgres` OS user when run as root) and removes it when done, so the tests are
//! self-contained, ignore any cluster the distribution started, and can stop the database
//! under a running verifier.
//!
//! Without PostgreSQL's server binaries (/usr/lib/postgresql/*/bin, or initdb on PATH) the
//! tests print `SKIPPED` and pass, unless `CI` is set, where they fail: CI must install it
//! (apt-get install -y postgresql).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "postgres/pgbouncer.rs"]
mod pgbouncer;
#[path = "postgres/replica.rs"]
mod replica;
mod support;
#[path = "postgres/tls.rs"]
mod tls;

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use jg_hmac::Credential;
use jg_hmac::Environment;
use jg_hmac::postgres::{Issued, Kek, LocalKek, NewClient, PgCredentialStore, PgError, Replica};
use jg_hmac::tower::{Authenticated, CredentialStore, VerifyLayer};
use jg_hmac::{Clock, SystemClock};
use support::audit::Captured;
use support::raw::signed;
use support::{free_port, serve};

const KEK_HEX: &str = "5f0e1d2c3b4a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";
const OTHER_KEK_HEX: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

// ---------------------------------------------------------------- the cluster

/// A PostgreSQL cluster of this test's own, stopped and deleted on drop.
struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    as_postgres_user: bool,
}

static CLUSTERS: AtomicUsize = AtomicUsize::new(0);

fn server_bin_dir() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            (bin.join("initdb").exists() && bin.join("pg_ctl").exists()).then_some((version, bin))
        })
        .collect();
    found.sort();
    if let Some((_, bin)) = found.pop() {
        return Some(bin);
    }
    // Elsewhere (a developer's machine): initdb on PATH.
    let out = Command::new("sh")
        .args(["-c", "command -v initdb"])
        .output()
        .ok()?;
    let path = String::from_utf8(out.stdout).ok()?;
    let path = Path::new(path.trim());
    path.parent()
        .filter(|p| p.join("pg_ctl").exists())
        .map(Path::to_path_buf)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

impl Cluster {
    /// A fresh cluster; `None` (after printing SKIPPED) when PostgreSQL is not installed
    /// and `CI` is unset.
    fn start() -> Option<Self> {
        let Some(bin) = server_bin_dir() else {
            assert!(
                std::env::var_os("CI").is_none(),
                "PostgreSQL server binaries not found but CI is set: .ci/run must install \
                 them (apt-get install -y postgresql)"
            );
            eprintln!(
                "SKIPPED: PostgreSQL server binaries not found (apt-get install postgresql to \
                 run the PostgreSQL tests)"
            );
            return None;
        };
        let n = CLUSTERS.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("jg-hmac-pg-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let as_postgres_user = is_root();
        let mut cluster = Self {
            bin,
            dir,
            port: 0,
            as_postgres_user,
        };
        if as_postgres_user {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&cluster.dir)
                .status()
                .unwrap()
                .success();
            assert!(ok, "chown of the cluster directory to postgres failed");
        }
        let data = cluster.dir.join("data");
        let out = cluster.run(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        assert!(out.status.success(), "initdb failed: {}", text(&out));
        for _ in 0..5 {
            cluster.port = free_port();
            if cluster.pg_ctl_start() {
                return Some(cluster);
            }
        }
        panic!("PostgreSQL did not start on any of 5 free ports");
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_postgres_user {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    fn run(&self, program: &str, args: &[&str]) -> Output {
        self.command(program)
            .args(args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn pg_ctl_start(&self) -> bool {
        let data = self.dir.join("data");
        let log = self.dir.join("log");
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off \
             -c full_page_writes=off",
            self.port,
            self.dir.display()
        );
        let out = self.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-w",
                "-t",
                "30",
                "-o",
                &options,
                "start",
            ],
        );
        out.status.success()
    }

    /// Stops the server at once (no goodbye to its clients beyond the socket closing).
    fn stop(&self) {
        let data = self.dir.join("data");
        let _ = self.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
    }

    /// Starts it again on the same port.
    fn restart(&self) {
        assert!(self.pg_ctl_start(), "PostgreSQL did not start again");
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// A store on this cluster with the test KEK.
    fn store(&self) -> PgCredentialStore {
        PgCredentialStore::builder(&self.url())
            .unwrap()
            .kek(LocalKek::from_hex(KEK_HEX).unwrap())
            .timeout(Duration::from_millis(800))
            .build()
            .unwrap()
    }

    /// A migrated store holding one new client of `env` (actor `t`).
    async fn store_with_client(&self, env: Environment) -> (PgCredentialStore, Issued) {
        let store = self.store();
        store.migrate().await.unwrap();
        let issued = store
            .create_client(NewClient::new(env), "t", |_| Ok(()))
            .await
            .unwrap();
        (store, issued)
    }

    /// A KEK file in the cluster's directory, mode 0600.
    fn kek_file(&self, name: &str, hex: &str) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, format!("{hex}\n")).unwrap();
        set_mode(&path, 0o600);
        path
    }

    /// The `jg-hmac` binary with this database and the KEK file `kek`.
    fn cli_command(&self, kek: &Path, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_jg-hmac"));
        command
            .args(args)
            .env("JG_DATABASE_URL", self.url())
            .env("JG_KEK_FILE", kek)
            .env("USER", "test-operator")
            .stdin(Stdio::null());
        command
    }

    /// Runs the `jg-hmac` binary with this database and KEK.
    fn cli(&self, args: &[&str]) -> Output {
        let kek = self.kek_file("kek.hex", KEK_HEX);
        self.cli_command(&kek, args).output().unwrap()
    }

    /// Migrates with the CLI and creates a live client with it; returns its id.
    fn migrated_with_client(&self) -> String {
        assert!(self.cli(&["db", "migrate"]).status.success());
        let created = json(&self.cli(&["keys", "create", "--env", "live", "--json"]));
        created["client_id"].as_str().unwrap().to_owned()
    }

    /// Every row of the store's tables, as text: what an operator's mistake must leave
    /// as it was.
    async fn snapshot(&self) -> String {
        let sql = self.sql().await;
        let mut out = String::new();
        for table in ["clients", "keys", "key_events", "current_kek"] {
            let query = format!("SELECT t::text FROM jg_hmac.{table} t ORDER BY 1");
            for row in sql.query(&query, &[]).await.unwrap() {
                out.push_str(&format!("{table}: {}\n", row.get::<_, String>(0)));
            }
        }
        out
    }

    async fn sql(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(&self.url(), tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        client
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn json(out: &Output) -> serde_json::Value {
    assert!(out.status.success(), "{}", text(out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(out)))
}

// ---------------------------------------------------------------- servers

fn app<S: CredentialStore + Clone>(store: S) -> Router {
    Router::new()
        .route(
            "/v1/secure",
            get(|who: Authenticated| async move {
                format!(
                    "{} {} {}",
                    who.client_id(),
                    who.key_id(),
                    who.credential().scopes().join(",")
                )
            }),
        )
        .layer(VerifyLayer::new(store))
}

/// Sends a signed `GET /v1/secure`, signed now; returns the status and body.
async fn signed_get(addr: SocketAddr, client_id: &str, secret: &str) -> (u16, String) {
    let reply = signed(
        "GET",
        "/v1/secure",
        "/v1/secure",
        b"",
        SystemClock.now(),
        (client_id, secret),
    )
    .send(addr)
    .await;
    let body = reply.text();
    (reply.status, body)
}

/// A replica of `store` that has loaded.
async fn replica(store: &PgCredentialStore) -> Replica {
    let replica = store.replica();
    assert!(
        replica.wait_current(Duration::from_secs(10)).await,
        "the replica did not load"
    );
    replica
}

/// Waits until `replica` has read everything committed before this call.
async fn sync(replica: &Replica) {
    assert!(
        replica.wait_current(Duration::from_secs(10)).await,
        "the replica is not current"
    );
}

/// The credential of `client_id` as a new replica of `store` reads it.
async fn read(store: &PgCredentialStore, client_id: &str) -> Option<Arc<Credential>> {
    replica(store).await.get(client_id).await.unwrap()
}

/// Why a replica of `store` (which cannot load) refuses: the message of its error once
/// it has tried at least once; the error is a `PgError::NotCurrent`.
async fn refusal(store: &PgCredentialStore) -> String {
    let replica = store.replica();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let err = replica.get("jk_live_any").await.unwrap_err();
        let source = std::error::Error::source(&err).and_then(|e| e.downcast_ref::<PgError>());
        assert!(matches!(source, Some(PgError::NotCurrent(_))), "{err:?}");
        let message = source.unwrap().to_string();
        if message.contains("last attempt") {
            return message;
        }
        assert!(Instant::now() < deadline, "no attempt in 15 s: {message}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------- tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_apply_once_and_events_are_append_only() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let store = cluster.store();
    assert_eq!(store.migrate().await.unwrap(), vec![1, 2]);
    assert!(store.migrate().await.unwrap().is_empty());
    let out = cluster.cli(&["db", "migrate"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "schema up to date\n");

    store
        .create_client(
            NewClient::new(Environment::Test).client_id("jk_test_events"),
            "alice",
            |_| Ok(()),
        )
        .await
        .unwrap();
    let sql = cluster.sql().await;
    let events = sql
        .query(
            "SELECT event, actor FROM jg_hmac.key_events WHERE client_id = 'jk_test_events' \
             ORDER BY event_id",
            &[],
        )
        .await
        .unwrap();
    let events: Vec<(String, String)> = events.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        events,
        [
            ("client_created".to_owned(), "alice".to_owned()),
            ("key_created".to_owned(), "alice".to_owned())
        ]
    );
    // A database from before migration 2 (keys, no record of the current KEK): the
    // migration records the KEK of its newest key.
    sql.batch_execute(
        "DROP TABLE jg_hmac.current_kek; \
         DELETE FROM jg_hmac.schema_migrations WHERE version = 2",
    )
    .await
    .unwrap();
    assert_eq!(store.migrate().await.unwrap(), vec![2]);
    let current: String = sql
        .query_one("SELECT kek_id FROM jg_hmac.current_kek", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(current, LocalKek::from_hex(KEK_HEX).unwrap().id());
    // The migration itself is safe to run again.
    sql.batch_execute(include_str!("../migrations/0002_current_kek.sql"))
        .await
        .unwrap();
    let rows = sql
        .query("SELECT kek_id FROM jg_hmac.current_kek", &[])
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    for statement in [
        "UPDATE jg_hmac.key_events SET actor = 'mallory'",
        "DELETE FROM jg_hmac.key_events",
        "TRUNCATE jg_hmac.key_events",
    ] {
        let err = sql.batch_execute(statement).await.unwrap_err();
        assert!(
            format!("{err:?}").contains("append-only"),
            "{statement}: {err:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_issues_rotates_revokes_and_lists_without_secrets() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    assert!(cluster.cli(&["db", "migrate"]).status.success());
    let replica = replica(&cluster.store()).await;
    let addr = serve(app(replica.clone())).await;

    // create: a generated id of the environment, a 256-bit hex secret, shown once.
    let created = json(&cluster.cli(&[
        "keys",
        "create",
        "--env",
        "live",
        "--scope",
        "transactions:write",
        "--scope",
        "orders:read",
        "--json",
    ]));
    let client_id = created["client_id"].as_str().unwrap().to_owned();
    let first_key = created["key_id"].as_str().unwrap().to_owned();
    let first_secret = created["secret"].as_str().unwrap().to_owned();
    assert!(
        client_id.starts_with("jk_live_") && client_id.len() >= 8 + 22,
        "{client_id}"
    );
    assert_eq!(first_secret.len(), 64);
    assert!(first_secret.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(created.as_object().unwrap().len(), 3);
    sync(&replica).await;
    let (status, body) = signed_get(addr, &client_id, &first_secret).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        format!("{client_id} {first_key} transactions:write,orders:read")
    );
    let credential = replica.get(&client_id).await.unwrap().unwrap();
    assert_eq!(
        credential.extensions().get::<Environment>(),
        Some(&Environment::Live)
    );

    // rotate: a new key; the old one keeps verifying during the overlap.
    let rotated = json(&cluster.cli(&[
        "keys",
        "rotate",
        "--client-id",
        &client_id,
        "--overlap",
        "3600",
        "--json",
    ]));
    let second_secret = rotated["secret"].as_str().unwrap().to_owned();
    let second_key = rotated["key_id"].as_str().unwrap().to_owned();
    assert_ne!(second_secret, first_secret);
    assert_eq!(rotated["client_id"], client_id.as_str());
    sync(&replica).await;
    assert_eq!(signed_get(addr, &client_id, &first_secret).await.0, 200);
    let (status, body) = signed_get(addr, &client_id, &second_secret).await;
    assert_eq!(
        (status, body.split(' ').nth(1)),
        (200, Some(second_key.as_str()))
    );
    let listed = json(&cluster.cli(&["keys", "list", "--client-id", &client_id, "--json"]));
    let keys = listed[0]["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    let now = i64::try_from(SystemClock.now()).unwrap();
    let old_until = keys[0]["not_after"].as_i64().unwrap();
    assert!(
        (now + 3590..=now + 3610).contains(&old_until),
        "{old_until} vs {now}"
    );
    assert!(keys[1]["not_after"].is_null());

    // rotate with no overlap: the first key is already expired (not_after = now).
    let third = json(&cluster.cli(&[
        "keys",
        "rotate",
        "--client-id",
        &client_id,
        "--overlap",
        "0",
        "--json",
    ]));
    let third_secret = third["secret"].as_str().unwrap().to_owned();
    sync(&replica).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, body) = signed_get(addr, &client_id, &first_secret).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(signed_get(addr, &client_id, &third_secret).await.0, 200);

    // revoke one key, then the client.
    let out = cluster.cli(&[
        "keys",
        "revoke",
        "--client-id",
        &client_id,
        "--key-id",
        &second_key,
    ]);
    assert!(out.status.success(), "{}", text(&out));
    sync(&replica).await;
    assert_eq!(signed_get(addr, &client_id, &second_secret).await.0, 401);
    assert_eq!(signed_get(addr, &client_id, &third_secret).await.0, 200);
    let out = cluster.cli(&["keys", "revoke", "--client-id", &client_id]);
    assert!(out.status.success(), "{}", text(&out));
    sync(&replica).await;
    assert_eq!(signed_get(addr, &client_id, &third_secret).await.0, 401);
    let out = cluster.cli(&["keys", "revoke", "--client-id", &client_id]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("already revoked"));

    // list: everything but secrets, in JSON and text.
    let all = cluster.cli(&["keys", "list", "--json"]);
    let plain = cluster.cli(&["keys", "list"]);
    for out in [&all, &plain] {
        assert!(out.status.success(), "{}", text(out));
        let shown = String::from_utf8_lossy(&out.stdout);
        for secret in [&first_secret, &second_secret, &third_secret] {
            assert!(!shown.contains(secret.as_str()), "list shows a secret");
        }
    }
    let listed = json(&all);
    assert_eq!(listed[0]["disabled"], true);
    assert!(
        listed[0]["keys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["status"] == "revoked")
    );

    // the given id of the right environment; a test key is refused by a live-only layer
    // and verifies on a test service.
    let given = json(&cluster.cli(&[
        "keys",
        "create",
        "--env",
        "test",
        "--client-id",
        "jk_test_acme",
        "--json",
    ]));
    assert_eq!(given["client_id"], "jk_test_acme");
    let audit = cluster
        .sql()
        .await
        .query("SELECT DISTINCT actor FROM jg_hmac.key_events", &[])
        .await
        .unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].get::<_, String>(0), "test-operator");
    let out = cluster.cli(&[
        "keys",
        "create",
        "--env",
        "test",
        "--client-id",
        "jk_test_x",
        "--actor",
        "bob",
    ]);
    assert!(out.status.success());
    let plain = String::from_utf8_lossy(&out.stdout);
    assert!(plain.contains("client_id jk_test_x") && plain.contains("secret    "));

    // exit code 2: the operator's mistakes, with a clear message.
    for (args, says) in [
        (
            vec![
                "keys",
                "create",
                "--env",
                "test",
                "--client-id",
                "jk_test_acme",
            ],
            "already exists",
        ),
        (
            vec!["keys", "create", "--env", "prod"],
            "not one of: live, test",
        ),
        (
            vec![
                "keys",
                "create",
                "--env",
                "live",
                "--client-id",
                "jk_test_wrongenv",
            ],
            "does not start with",
        ),
        (
            vec![
                "keys",
                "create",
                "--env",
                "live",
                "--client-id",
                "jk_live_a'b",
            ],
            "is not valid",
        ),
        (
            vec!["keys", "rotate", "--client-id", "jk_live_nobody"],
            "unknown client id",
        ),
        (
            vec!["keys", "revoke", "--client-id", "jk_live_nobody"],
            "unknown client id",
        ),
        (
            vec![
                "keys",
                "revoke",
                "--client-id",
                "jk_test_acme",
                "--key-id",
                "k_nope",
            ],
            "has no key",
        ),
        (
            vec!["keys", "list", "--client-id", "jk_live_nobody"],
            "unknown client id",
        ),
        (
            vec!["keys", "rotate", "--client-id", &client_id],
            "is revoked",
        ),
        (
            vec!["keys", "create", "--env", "live", "--scope", "a b"],
            "scope",
        ),
    ] {
        let out = cluster.cli(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(says),
            "{args:?}: {}",
            text(&out)
        );
    }
    // a bad KEK file: refused with a clear message, not echoed.
    let bad = cluster.kek_file("bad.hex", &format!("{}zz", &KEK_HEX[..62]));
    let out = Command::new(env!("CARGO_BIN_EXE_jg-hmac"))
        .args(["keys", "create", "--env", "test"])
        .env("JG_DATABASE_URL", cluster.url())
        .env("JG_KEK_FILE", &bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("64 hex digits") && !err.contains(&KEK_HEX[..62]),
        "{err}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_jg-hmac"))
        .args(["keys", "list"])
        .env_remove("JG_DATABASE_URL")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));

    // exit code 1: the database is down (a closed port), within a bounded time.
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_jg-hmac"))
        .args(["keys", "list"])
        .env(
            "JG_DATABASE_URL",
            format!("postgres://postgres@127.0.0.1:{}/x", free_port()),
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// A stored secret is bound to its row; a row that does not decrypt refuses that key
/// only, with a warn event that names it and shows no secret.
#[test]
fn a_copied_ciphertext_does_not_decrypt() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let logs = Captured::default();
    let _guard = tracing::subscriber::set_default(logs.subscriber());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = cluster.store();
        store.migrate().await.unwrap();
        let a = store
            .create_client(
                NewClient::new(Environment::Live).client_id("jk_live_a"),
                "t",
                |_| Ok(()),
            )
            .await
            .unwrap();
        let b = store
            .create_client(
                NewClient::new(Environment::Live).client_id("jk_live_b"),
                "t",
                |_| Ok(()),
            )
            .await
            .unwrap();
        let sql = cluster.sql().await;
        sql.execute(
            "UPDATE jg_hmac.keys SET nonce = a.nonce, ciphertext = a.ciphertext \
             FROM jg_hmac.keys a WHERE a.client_id = 'jk_live_a' \
             AND jg_hmac.keys.client_id = 'jk_live_b'",
            &[],
        )
        .await
        .unwrap();
        let credential_b = read(&store, "jk_live_b").await.unwrap();
        assert!(
            credential_b.keys().is_empty(),
            "a copied ciphertext must not open"
        );
        let credential_a = read(&store, "jk_live_a").await.unwrap();
        assert_eq!(credential_a.keys().len(), 1);

        // A store with another KEK opens nothing, and says so.
        let other = PgCredentialStore::builder(&cluster.url())
            .unwrap()
            .kek(LocalKek::from_hex(OTHER_KEK_HEX).unwrap())
            .build()
            .unwrap();
        assert!(read(&other, "jk_live_a").await.unwrap().keys().is_empty());

        let logged = logs.text();
        assert!(logged.contains("WARN"), "{logged}");
        assert!(
            logged.contains("jk_live_b") && logged.contains(&b.key_id),
            "{logged}"
        );
        assert!(logged.contains("does not decrypt"), "{logged}");
        assert!(logged.contains("does not hold"), "{logged}");
        for secret in [a.secret_hex(), b.secret_hex()] {
            assert!(!logged.contains(secret));
        }
        assert!(!format!("{a:?} {credential_a:?}").contains(a.secret_hex()));
    });
}

/// Neither a dump of the database nor a SELECT of every column holds a secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_holds_no_secret() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let store = cluster.store();
    store.migrate().await.unwrap();
    let mut secrets = Vec::new();
    for env in [Environment::Live, Environment::Test] {
        let issued = store
            .create_client(NewClient::new(env), "t", |_| Ok(()))
            .await
            .unwrap();
        secrets.push(issued.secret_hex().to_owned());
        let rotated = store
            .rotate(&issued.client_id, Duration::from_secs(60), "t", |_| Ok(()))
            .await
            .unwrap();
        secrets.push(rotated.secret_hex().to_owned());
    }
    let dump = cluster.command("pg_dump");
    let out = {
        let mut dump = dump;
        dump.args([
            "-h",
            "127.0.0.1",
            "-p",
            &cluster.port.to_string(),
            "-U",
            "postgres",
        ])
        .args(["--inserts", "postgres"])
        .output()
        .unwrap()
    };
    assert!(out.status.success(), "{}", text(&out));
    let dump = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(dump.contains("jg_hmac.keys"), "the dump has the keys table");
    let rows = cluster
        .sql()
        .await
        .query(
            "SELECT k::text, encode(k.nonce, 'hex') || encode(k.ciphertext, 'hex') \
             FROM jg_hmac.keys k",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 4);
    let selected: String = rows
        .iter()
        .map(|r| format!("{} {}\n", r.get::<_, String>(0), r.get::<_, String>(1)))
        .collect();
    for secret in &secrets {
        // The secret as text, and the hex of its bytes (as bytea would show them).
        let as_bytea_hex = hex_of(secret.as_bytes());
        for haystack in [&dump, &selected] {
            assert!(!haystack.contains(secret.as_str()));
            assert!(!haystack.contains(&as_bytea_hex));
        }
    }
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Rekey moves every secret to a new KEK; keys keep verifying; a second run changes
/// nothing; a store holding only the old KEK cannot open them any more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rekey_moves_every_secret_to_the_new_kek() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    assert!(cluster.cli(&["db", "migrate"]).status.success());
    let created = json(&cluster.cli(&["keys", "create", "--env", "test", "--json"]));
    let id = created["client_id"].as_str().unwrap().to_owned();
    let secret = created["secret"].as_str().unwrap().to_owned();
    let new_kek = cluster.kek_file("new.hex", OTHER_KEK_HEX);
    let out = cluster.cli(&["keys", "rekey", "--new-kek-file", new_kek.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("re-encrypted 1 secret"));

    let old_only = cluster.store();
    assert!(read(&old_only, &id).await.unwrap().keys().is_empty());
    // The new KEK shared (an `Arc<dyn Kek>` is a `Kek`), the old one to open.
    let shared: Arc<dyn Kek> = Arc::new(LocalKek::from_hex(OTHER_KEK_HEX).unwrap());
    let both = PgCredentialStore::builder(&cluster.url())
        .unwrap()
        .kek(Arc::clone(&shared))
        .previous_kek(LocalKek::from_hex(KEK_HEX).unwrap())
        .build()
        .unwrap();
    let addr = serve(app(replica(&both).await)).await;
    assert_eq!(signed_get(addr, &id, &secret).await.0, 200);
    // Run again with the new KEK as current: nothing to do.
    let again = both
        .rekey(&LocalKek::from_hex(OTHER_KEK_HEX).unwrap(), "t")
        .await
        .unwrap();
    assert_eq!((again.rekeyed, again.already), (0, 1));
    // A KEK that opens nothing: refused, nothing changed.
    let err = old_only
        .rekey(&LocalKek::from_bytes(&[3; 32]), "t")
        .await
        .unwrap_err();
    assert!(matches!(err, PgError::Rekey(_)), "{err}");
    assert_eq!(signed_get(addr, &id, &secret).await.0, 200);
}

// ---------------------------------------------------------------- operator mistakes

/// `keys create`/`rotate` with a valid KEK other than the database's current one: exit 2,
/// nothing changed (before, rotate exited 0 and sealed the new key under a KEK the
/// servers lack). `rekey` moves the record, and then the old KEK is the one refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_kek_is_refused_until_rekey() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let id = cluster.migrated_with_client();
    let current = LocalKek::from_hex(KEK_HEX).unwrap().id().to_owned();
    let other_id = LocalKek::from_hex(OTHER_KEK_HEX).unwrap().id().to_owned();
    let other = cluster.kek_file("other.hex", OTHER_KEK_HEX);
    let before = cluster.snapshot().await;
    assert!(
        before.contains(&format!("current_kek: (t,{current},")),
        "{before}"
    );
    for args in [
        vec!["keys", "rotate", "--client-id", id.as_str()],
        vec!["keys", "create", "--env", "live"],
    ] {
        let out = cluster.cli_command(&other, &args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        let err = stderr(&out);
        assert!(
            err.contains(&format!(
                "the key-encryption key given ({other_id}) is not the database's current one \
                 ({current})"
            )) && err.contains("nothing was changed"),
            "{err}"
        );
        assert!(out.stdout.is_empty(), "{}", text(&out));
        assert_eq!(cluster.snapshot().await, before, "{args:?}");
    }
    let rotated = cluster
        .store()
        .rotate(&id, Duration::ZERO, "t", |_| Ok(()))
        .await;
    assert!(
        rotated.is_ok(),
        "the current KEK still rotates: {rotated:?}"
    );

    // rekey records the new KEK as current: the old one is refused from then on.
    let out = cluster.cli(&["keys", "rekey", "--new-kek-file", other.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let after_rekey = cluster.snapshot().await;
    assert!(after_rekey.contains(&format!("current_kek: (t,{other_id},")));
    let out = cluster.cli(&["keys", "rotate", "--client-id", &id]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert_eq!(cluster.snapshot().await, after_rekey);
    let err = cluster
        .store()
        .create_client(NewClient::new(Environment::Test), "t", |_| Ok(()))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, PgError::KekMismatch { current: c, given: g } if *c == other_id && *g == current)
            && err.is_input_error(),
        "{err:?}"
    );
    let out = cluster
        .cli_command(&other, &["keys", "rotate", "--client-id", &id, "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
}

/// A new secret that cannot be written out (stdout on /dev/full) is not committed: exit
/// 1, and the database is as before, for create and for rotate (before, the key was
/// committed and its secret lost).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_that_cannot_be_written_is_not_committed() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let id = cluster.migrated_with_client();
    let kek = cluster.kek_file("kek.hex", KEK_HEX);
    let before = cluster.snapshot().await;
    for args in [
        vec![
            "keys",
            "create",
            "--env",
            "live",
            "--client-id",
            "jk_live_lost",
        ],
        vec!["keys", "create", "--env", "live", "--json"],
        vec![
            "keys",
            "rotate",
            "--client-id",
            id.as_str(),
            "--overlap",
            "0",
        ],
    ] {
        let full = std::fs::File::options()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let out = cluster
            .cli_command(&kek, &args)
            .stdout(Stdio::from(full))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", text(&out));
        let err = stderr(&out);
        assert!(
            err.contains("the new secret could not be delivered, so nothing was committed")
                && err.contains("No space left on device"),
            "{err}"
        );
        assert_eq!(cluster.snapshot().await, before, "{args:?}");
    }
    let listed = json(&cluster.cli(&["keys", "list", "--json"]));
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["keys"].as_array().unwrap().len(), 1, "{listed}");
    assert!(listed[0]["keys"][0]["not_after"].is_null(), "{listed}");
}

/// A KEK file that group or others can read is used but reported: a warning on stderr
/// and a `warn` event, naming the file and its mode, never the key.
#[test]
fn a_kek_file_open_to_others_is_reported() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    assert!(cluster.cli(&["db", "migrate"]).status.success());
    let path = cluster.kek_file("shared.hex", KEK_HEX);
    let create = |path: &Path| {
        cluster
            .cli_command(path, &["keys", "create", "--env", "test", "--json"])
            .output()
            .unwrap()
    };
    let quiet = create(&path);
    assert!(quiet.status.success(), "{}", text(&quiet));
    assert!(!stderr(&quiet).contains("warning"), "{}", text(&quiet));

    set_mode(&path, 0o644);
    let out = create(&path);
    assert!(out.status.success(), "{}", text(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "jg-hmac: warning: KEK file {path:?} is readable or writable by group or others \
             (mode 0644); chmod 600 it"
        )),
        "{err}"
    );
    assert!(
        !err.contains(KEK_HEX) && !err.contains(&KEK_HEX[..16]),
        "{err}"
    );
    let listed = json(&cluster.cli(&["keys", "list", "--json"]));
    assert_eq!(listed.as_array().unwrap().len(), 2, "used all the same");

    let logs = Captured::default();
    {
        let _guard = tracing::subscriber::set_default(logs.subscriber());
        set_mode(&path, 0o640);
        assert!(LocalKek::from_file(&path).is_ok());
        set_mode(&path, 0o600);
        assert!(LocalKek::from_file(&path).is_ok());
    }
    let warned = logs.lines_with("jg_hmac::postgres");
    assert_eq!(warned.len(), 1, "{warned:?}");
    let line = &warned[0];
    assert!(
        line.contains("WARN")
            && line.contains(&format!("{path:?}"))
            && line.contains("mode=0640")
            && line.contains("group or others"),
        "{line}"
    );
    assert!(!logs.text().contains(&KEK_HEX[..16]));
}

/// `--overlap` beyond the documented maximum (3650 days) is an input error, refused
/// before the database is asked (before, u64::MAX exited 1 as "interval out of range").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overlap_out_of_range_is_an_input_error() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let id = cluster.migrated_with_client();
    let before = cluster.snapshot().await;
    for overlap in ["18446744073709551615", "315360001"] {
        let out = cluster.cli(&["keys", "rotate", "--client-id", &id, "--overlap", overlap]);
        assert_eq!(out.status.code(), Some(2), "{overlap}: {}", text(&out));
        let err = stderr(&out);
        assert!(
            err.contains("'--overlap <SECONDS>'") && err.contains("0..=315360000"),
            "{err}"
        );
        assert_eq!(cluster.snapshot().await, before, "{overlap}");
    }
    let err = cluster
        .store()
        .rotate(&id, Duration::MAX, "t", |_| Ok(()))
        .await
        .unwrap_err();
    assert!(matches!(err, PgError::InvalidInput(_)), "{err:?}");
    assert!(err.to_string().contains("maximum, 315360000 s"), "{err}");
    assert_eq!(cluster.snapshot().await, before);
    let out = cluster.cli(&[
        "keys",
        "rotate",
        "--client-id",
        &id,
        "--overlap",
        "315360000",
    ]);
    assert!(out.status.success(), "the maximum itself: {}", text(&out));
}

/// A scope outside the documented set (1 to 128 of `[A-Za-z0-9:._/-]`) is refused with
/// exit 2, named escaped (before, `a,b` was stored and listed like two scopes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scope_outside_the_set_is_refused() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    assert!(cluster.cli(&["db", "migrate"]).status.success());
    let before = cluster.snapshot().await;
    for (scope, named) in [
        ("a,b", r#""a,b""#),
        ("orders:read ", r#""orders:read ""#),
        ("a\tb", r#""a\tb""#),
        ("x\u{1b}[31m", r#""x\u{1b}[31m""#),
        ("caf\u{e9}", "\"caf\u{e9}\""),
        ("", r#""""#),
    ] {
        let out = cluster.cli(&[
            "keys",
            "create",
            "--env",
            "live",
            "--scope",
            "transactions:write",
            "--scope",
            scope,
        ]);
        assert_eq!(out.status.code(), Some(2), "{scope:?}: {}", text(&out));
        let err = stderr(&out);
        assert!(
            err.contains(&format!("scope {named} is not valid"))
                && err.contains("ASCII letters, digits and ':', '.', '_', '/', '-'"),
            "{err}"
        );
        assert!(!err.contains('\u{1b}'), "{err:?}");
        assert_eq!(cluster.snapshot().await, before, "{scope:?}");
    }
    let out = cluster.cli(&[
        "keys",
        "create",
        "--env",
        "live",
        "--scope",
        "orders/v2:read-all_x.y",
    ]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn gen_kek_writes_a_usable_private_file() {
    let dir = std::env::temp_dir().join(format!("jg-hmac-genkek-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("kek.hex");
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_jg-hmac"))
            .args(["keys", "gen-kek", "--out"])
            .arg(&path)
            .output()
            .unwrap()
    };
    let out = run();
    assert!(out.status.success(), "{}", text(&out));
    assert!(LocalKek::from_file(&path).is_ok());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let contents = std::fs::read_to_string(&path).unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains(contents.trim()));
    assert_eq!(
        run().status.code(),
        Some(2),
        "an existing file is not overwritten"
    );
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::io::stderr().flush();
}

/// `jg-hmac gateway` with `$JG_DATABASE_URL` and `$JG_KEK_FILE` instead of a credentials
/// file: ready once its replica has loaded, then a key the CLI created verifies through it
/// and the upstream gets the client's identity.
#[cfg(feature = "gateway")]
#[tokio::test(flavor = "multi_thread")]
async fn the_gateway_serves_credentials_from_postgresql() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    assert!(cluster.cli(&["db", "migrate"]).status.success());
    let created = json(&cluster.cli(&["keys", "create", "--env", "live", "--json"]));
    let client_id = created["client_id"].as_str().unwrap().to_owned();
    let secret = created["secret"].as_str().unwrap().to_owned();
    let upstream = serve(Router::new().route(
        "/v1/secure",
        get(|headers: http::HeaderMap| async move {
            let id = headers.get("x-jg-client-id").and_then(|v| v.to_str().ok());
            format!("upstream saw {}", id.unwrap_or("-"))
        }),
    ))
    .await;
    let listen = format!("127.0.0.1:{}", free_port());
    let kek = cluster.kek_file("kek.hex", KEK_HEX);
    let mut gateway = cluster
        .cli_command(
            &kek,
            &[
                "gateway",
                "--listen",
                &listen,
                "--upstream",
                &format!("http://{upstream}"),
            ],
        )
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr: SocketAddr = listen.parse().unwrap();
    let mut ready = false;
    for _ in 0..200 {
        let reply = support::raw::unsigned("GET", "/readyz", b"");
        if tokio::net::TcpStream::connect(addr).await.is_ok()
            && reply.send(addr).await.status == 200
        {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, body) = signed_get(addr, &client_id, &secret).await;
    let _ = gateway.kill();
    let _ = gateway.wait();
    assert!(ready, "the gateway never became ready");
    assert_eq!(
        (status, body.as_str()),
        (200, format!("upstream saw {client_id}").as_str())
    );
}
