//! A throwaway PostgreSQL cluster for the benches that measure the credential replica
//! (initdb + pg_ctl in a temp dir, on a free 127.0.0.1 port, as the `postgres` OS user
//! when run as root), removed on drop. `None` when PostgreSQL is not installed.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

pub struct BenchCluster {
    bin: PathBuf,
    dir: PathBuf,
    pub port: u16,
    as_postgres_user: bool,
}

fn server_bin_dir() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

impl BenchCluster {
    pub fn start() -> Option<Self> {
        let bin = server_bin_dir()?;
        let dir = std::env::temp_dir().join(format!("jg-hmac-bench-pg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).ok()?;
        let as_postgres_user = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
        if as_postgres_user {
            Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status()
                .ok()?;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let cluster = Self {
            bin,
            dir,
            port,
            as_postgres_user,
        };
        let data = cluster.dir.join("data");
        let data = data.to_str()?;
        let out = cluster.run(
            "initdb",
            &["-D", data, "-A", "trust", "-U", "postgres", "--no-sync"],
        );
        assert!(out.status.success(), "initdb: {out:?}");
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            cluster.dir.display()
        );
        let log = cluster.dir.join("log");
        let out = cluster.run(
            "pg_ctl",
            &[
                "-D",
                data,
                "-l",
                log.to_str()?,
                "-w",
                "-o",
                &options,
                "start",
            ],
        );
        assert!(out.status.success(), "pg_ctl start: {out:?}");
        Some(cluster)
    }

    fn run(&self, program: &str, args: &[&str]) -> Output {
        let path = self.bin.join(program);
        let mut command = if self.as_postgres_user {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        };
        command
            .args(args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for BenchCluster {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let _ = self.run(
            "pg_ctl",
            &["-D", data.to_str().unwrap_or(""), "-m", "immediate", "stop"],
        );
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
