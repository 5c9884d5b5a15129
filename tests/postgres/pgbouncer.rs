//! Behind PgBouncer with its default settings (no `ignore_startup_parameters`, no
//! prepared statements in transaction pooling before 1.21), in transaction and session
//! pooling: replicas load and follow through it, the CLI changes keys through it, and
//! `LISTEN` goes to the database directly.
//!
//! Without a `pgbouncer` binary the test prints `SKIPPED` and passes, unless `CI` is set,
//! where it fails: CI must install it (apt-get install -y pgbouncer).

use super::*;

use std::process::Child;

/// A PgBouncer of this test's own in front of a cluster, stopped on drop.
struct Bouncer {
    child: Child,
    port: u16,
}

impl Drop for Bouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pgbouncer_bin() -> Option<PathBuf> {
    let out = Command::new("sh")
        .args(["-c", "command -v pgbouncer || ls /usr/sbin/pgbouncer"])
        .output()
        .ok()?;
    let path = String::from_utf8(out.stdout).ok()?;
    let path = PathBuf::from(path.lines().next()?.trim());
    path.exists().then_some(path)
}

impl Bouncer {
    /// A PgBouncer in `pool_mode` with its defaults otherwise; `None` (after printing
    /// SKIPPED) when it is not installed and `CI` is unset.
    fn start(cluster: &Cluster, pool_mode: &str) -> Option<Self> {
        let Some(bin) = pgbouncer_bin() else {
            assert!(
                std::env::var_os("CI").is_none(),
                "pgbouncer not found but CI is set: .ci/run must install it (apt-get install \
                 -y pgbouncer)"
            );
            eprintln!("SKIPPED: pgbouncer not found (apt-get install pgbouncer to run this test)");
            return None;
        };
        let port = free_port();
        let dir = &cluster.dir;
        let users = dir.join(format!("userlist-{port}.txt"));
        std::fs::write(&users, "\"postgres\" \"\"\n").unwrap();
        let ini = dir.join(format!("pgbouncer-{port}.ini"));
        std::fs::write(
            &ini,
            format!(
                "[databases]\npostgres = host=127.0.0.1 port={} dbname=postgres\n\
                 [pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\n\
                 unix_socket_dir =\nauth_type = trust\nauth_file = {}\n\
                 pool_mode = {pool_mode}\nlogfile = {}\n",
                cluster.port,
                users.display(),
                dir.join(format!("pgbouncer-{port}.log")).display()
            ),
        )
        .unwrap();
        let mut command = if cluster.as_postgres_user {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&bin);
            c
        } else {
            Command::new(&bin)
        };
        let child = command
            .arg(&ini)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let bouncer = Self { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "pgbouncer did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(bouncer)
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

/// A store through `bouncer`, `LISTEN`ing directly on the cluster when `listen`.
fn store_through(bouncer: &Bouncer, cluster: &Cluster, listen: bool) -> PgCredentialStore {
    let mut builder = PgCredentialStore::builder(&bouncer.url())
        .unwrap()
        .kek(LocalKek::from_hex(KEK_HEX).unwrap());
    if listen {
        builder = builder.listen_url(&cluster.url());
    }
    builder.build().unwrap()
}

/// The CLI through `bouncer`.
fn cli_through(bouncer: &Bouncer, cluster: &Cluster, args: &[&str]) -> Output {
    let kek = cluster.kek_file("kek.hex", KEK_HEX);
    cluster
        .cli_command(&kek, args)
        .env("JG_DATABASE_URL", bouncer.url())
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn works_behind_pgbouncer() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    assert!(cluster.cli(&["db", "migrate"]).status.success());
    for mode in ["transaction", "session"] {
        let Some(bouncer) = Bouncer::start(&cluster, mode) else {
            return;
        };
        let polling = replica(&store_through(&bouncer, &cluster, false)).await;
        let listening = replica(&store_through(&bouncer, &cluster, true)).await;
        // The listening one first: its delay is measured before the poll's.
        let servers = [
            ("listening", serve(app(listening.clone())).await),
            ("polling", serve(app(polling.clone())).await),
        ];
        for round in 0..3 {
            let created = json(&cli_through(
                &bouncer,
                &cluster,
                &["keys", "create", "--env", "live", "--json"],
            ));
            let id = created["client_id"].as_str().unwrap();
            let secret = created["secret"].as_str().unwrap();
            sync(&polling).await;
            sync(&listening).await;
            for (name, addr) in servers {
                let (status, body) = signed_get(addr, id, secret).await;
                assert_eq!(status, 200, "{mode}, {name}: {body}");
            }
            let started = Instant::now();
            let out = cli_through(&bouncer, &cluster, &["keys", "revoke", "--client-id", id]);
            assert!(out.status.success(), "{mode}: {}", text(&out));
            for (name, addr) in servers {
                let deadline = Instant::now() + Duration::from_secs(10);
                while signed_get(addr, id, secret).await.0 != 401 {
                    assert!(Instant::now() < deadline, "{mode}, {name}: still accepted");
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                eprintln!(
                    "PgBouncer {mode} pooling, round {round}: revocation refused by the {name} \
                     replica {:?} after the command started",
                    started.elapsed()
                );
            }
        }
    }
}
