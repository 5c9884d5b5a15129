//! Sentinel: a primary, a replica and a Sentinel on loopback; the guard on
//! `redis+sentinel://` through a failover, asked for (`SENTINEL FAILOVER`) or forced (the
//! primary killed).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jg_hmac::redis::RedisReplayGuard;
use jg_hmac::tower::{InMemoryCredentialStore, Verify};

use crate::redis_support::{
    NO_HANG, Ok200, RedisServer, accepted, answers_ping, buy, cli_with, eventually, installed,
    instance, listens, order, plain_args, replayed, scratch_dir, send, signature_of, store,
    unavailable,
};
use crate::support::{CLIENT, T0, free_port};
use crate::tls::{tls_args, tls_cli_options, write_pki};

/// The longest a failover may take here before the test fails (it takes seconds).
const FAILOVER_LIMIT: Duration = Duration::from_secs(30);

struct SentinelSet {
    primary: RedisServer,
    replica: RedisServer,
    sentinel: RedisServer,
    /// With TLS (everything TLS-only): the directory of the certificates.
    pki: Option<PathBuf>,
}

/// A primary, its replica (in sync) and one Sentinel that monitors `mymaster` (quorum 1,
/// down after 1 s) and knows the replica; TLS-only when `tls` (certificates for localhost
/// and 127.0.0.1). `None` when a program is not installed.
///
/// The primary takes writes only while its replica is connected
/// (`min-replicas-to-write 1`), as docs/redis.md advises: once the replica is promoted, the
/// old primary refuses instead of accepting writes the new one never sees.
async fn sentinel_set(tls: bool) -> Option<SentinelSet> {
    if !installed(&["redis-server", "redis-sentinel", "redis-cli"]) {
        return None;
    }
    let pki = tls.then(|| {
        let dir = scratch_dir();
        write_pki(&dir, &["localhost", "127.0.0.1"]);
        dir
    });
    // `program` with `args`, then TLS-only (replication included) when `pki` is set.
    let spawn = |program: &str, mut args: Vec<String>, port: u16, dir: PathBuf| {
        let Some(pki) = &pki else {
            return RedisServer::spawn(program, &args, port, dir, answers_ping);
        };
        args.extend(tls_args(port, pki, false));
        args.extend(["--tls-replication".to_owned(), "yes".to_owned()]);
        RedisServer::spawn(program, &args, port, dir, listens)
    };
    let primary = RedisServer::retry(|port| {
        let mut args = plain_args(port);
        for arg in ["--min-replicas-to-write", "1"] {
            args.push(arg.to_owned());
        }
        spawn("redis-server", args, port, scratch_dir())
    });
    let replica = RedisServer::retry(|port| {
        let mut args = plain_args(port);
        args.extend(["--replicaof".to_owned(), "127.0.0.1".to_owned()]);
        args.push(primary.port.to_string());
        spawn("redis-server", args, port, scratch_dir())
    });
    let cli = |port: u16, args: &[&str]| cli_in(pki.as_deref(), port, args);
    eventually(NO_HANG * 2, "the replica in sync", || {
        cli(replica.port, &["INFO", "replication"]).contains("master_link_status:up")
    })
    .await;
    let sentinel = RedisServer::retry(|port| {
        let dir = scratch_dir();
        let conf = dir.join("sentinel.conf");
        std::fs::write(
            &conf,
            format!(
                "port {port}\nbind 127.0.0.1\ndaemonize no\nloglevel notice\nlogfile sentinel.log\n\
                 sentinel monitor mymaster 127.0.0.1 {} 1\n\
                 sentinel down-after-milliseconds mymaster 1000\n\
                 sentinel failover-timeout mymaster 10000\n",
                primary.port
            ),
        )
        .unwrap();
        spawn(
            "redis-sentinel",
            vec![conf.display().to_string()],
            port,
            dir,
        )
    });
    let replica_port = replica.port.to_string();
    eventually(NO_HANG * 4, "the Sentinel knows the replica", || {
        let replicas = cli(sentinel.port, &["SENTINEL", "REPLICAS", "mymaster"]);
        replicas.contains(&replica_port) && !replicas.contains("disconnected")
    })
    .await;
    Some(SentinelSet {
        primary,
        replica,
        sentinel,
        pki,
    })
}

/// `redis-cli` to `port`, over TLS with the CA in `pki` when given.
fn cli_in(pki: Option<&Path>, port: u16, args: &[&str]) -> String {
    let options = pki.map(tls_cli_options).unwrap_or_default();
    let options: Vec<&str> = options.iter().map(String::as_str).collect();
    cli_with(&options, port, args)
}

impl SentinelSet {
    fn cli(&self, port: u16, args: &[&str]) -> String {
        cli_in(self.pki.as_deref(), port, args)
    }

    /// What the Sentinel logged (`loglevel notice`): its view of a failover that failed.
    fn sentinel_log(&self) -> String {
        std::fs::read_to_string(self.sentinel.dir.join("sentinel.log")).unwrap_or_default()
    }

    /// A guard with a 250 ms timeout on a URL that names a Sentinel that is not there
    /// first, then the real one; over TLS with the test's CA when the set is TLS-only.
    /// Connected (a `PING` allowed 5 s: the Sentinel lookup and TLS handshakes of a debug
    /// build take longer than a request's 250 ms).
    async fn guard(&self) -> RedisReplayGuard {
        let scheme = if self.pki.is_some() {
            "rediss"
        } else {
            "redis"
        };
        let url = format!(
            "{scheme}+sentinel://127.0.0.1:{},127.0.0.1:{}/mymaster",
            free_port(),
            self.sentinel.port
        );
        let guard = RedisReplayGuard::new(&url)
            .unwrap()
            .with_timeout(Duration::from_millis(250));
        let guard = match &self.pki {
            Some(pki) => guard.with_ca_file(pki.join("ca.pem")).unwrap(),
            None => guard,
        };
        let startup = guard.clone().with_timeout(NO_HANG);
        startup.ping().await.unwrap();
        guard
    }

    /// The port the Sentinel names primary.
    fn primary_port(&self) -> u16 {
        let reply = self.cli(
            self.sentinel.port,
            &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster"],
        );
        reply.lines().nth(1).unwrap().trim().parse().unwrap()
    }
}

impl Drop for SentinelSet {
    fn drop(&mut self) {
        if let Some(pki) = &self.pki {
            let _ = std::fs::remove_dir_all(pki);
        }
    }
}

type Service = Verify<Ok200, InMemoryCredentialStore, RedisReplayGuard>;

/// What a client sending a new order every 20 ms saw: when, the outcome, how long it took.
type Log = Arc<Mutex<Vec<(Instant, (u16, String), Duration)>>>;

/// Sends new orders through `service` every 20 ms until `stop` is set.
fn keep_sending(service: Service, stop: Arc<Mutex<bool>>) -> (Log, tokio::task::JoinHandle<()>) {
    let log: Log = Arc::default();
    let task = tokio::spawn({
        let log = log.clone();
        async move {
            for n in 1.. {
                if *stop.lock().unwrap() {
                    break;
                }
                let started = Instant::now();
                let outcome = send(&service, order(n)).await;
                log.lock()
                    .unwrap()
                    .push((started, outcome, started.elapsed()));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    });
    (log, task)
}

/// Runs `failover` while orders keep coming, until the Sentinel names the replica primary
/// and an order is accepted there; checks every order got 200 or 503 and prints how long
/// the guard refused. Returns the number of refusals.
async fn through_failover(set: &mut SentinelSet, failover: impl FnOnce(&mut SentinelSet)) -> usize {
    let guard = set.guard().await;
    let service = instance(store(), guard.clone(), T0);
    // A request recorded before the failover, and replicated.
    assert_eq!(send(&service, buy(T0)).await, accepted());
    let key = guard.key(CLIENT, &signature_of(&buy(T0)));
    let replica_port = set.replica.port;
    eventually(NO_HANG, "the key on the replica", || {
        set.cli(replica_port, &["EXISTS", &key]).trim() == "1"
    })
    .await;

    let stop = Arc::new(Mutex::new(false));
    let (log, task) = keep_sending(service.clone(), stop.clone());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    failover(set);
    let deadline = Instant::now() + FAILOVER_LIMIT;
    while set.primary_port() != replica_port {
        assert!(
            Instant::now() < deadline,
            "the Sentinel did not name the replica within {FAILOVER_LIMIT:?}; its log:\n{}",
            set.sentinel_log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let switched = started.elapsed();
    // Until an order is accepted and recorded on the new primary.
    let deadline = Instant::now() + FAILOVER_LIMIT;
    let recovered = loop {
        let last = {
            let log = log.lock().unwrap();
            log.last().cloned().map(|entry| (log.len(), entry))
        };
        if let Some((n, (at, outcome, _))) = last
            && outcome == accepted()
            && at > started + switched
        {
            let key = guard.key(CLIENT, &signature_of(&order(n as u64)));
            if set.cli(replica_port, &["EXISTS", &key]).trim() == "1" {
                break at - started;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no order recorded on the new primary; the Sentinel's log:\n{}",
            set.sentinel_log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    *stop.lock().unwrap() = true;
    task.await.unwrap();

    let log = log.lock().unwrap().clone();
    for (_, outcome, _) in &log {
        assert!(
            *outcome == accepted() || *outcome == unavailable(),
            "{outcome:?}"
        );
    }
    let refused: Vec<_> = log.iter().filter(|(_, o, _)| *o == unavailable()).collect();
    // Orders accepted (by the old primary, during the switch) that the new one lacks.
    let lost: Vec<u64> = (1..)
        .zip(&log)
        .filter(|(n, (_, outcome, _))| {
            *outcome == accepted()
                && set
                    .cli(
                        replica_port,
                        &["EXISTS", &guard.key(CLIENT, &signature_of(&order(*n)))],
                    )
                    .trim()
                    == "0"
        })
        .map(|(n, _)| n)
        .collect();
    let slowest = log.iter().map(|(_, _, took)| *took).max().unwrap();
    let window = match (refused.first(), refused.last()) {
        (Some((first, ..)), Some((last, _, took))) => (*last + *took) - *first,
        _ => Duration::ZERO,
    };
    eprintln!(
        "failover: {} orders, {} refused (503) over {window:?}; Sentinel switched after \
         {switched:?}, first order recorded on the new primary {recovered:?} after \
         the failover began; slowest answer {slowest:?} (timeout 250 ms); {} accepted but not on the new \
         primary: {lost:?}",
        log.len(),
        refused.len(),
        lost.len()
    );
    // In order: `a` accepted, `r` refused.
    let outcomes: String = log
        .iter()
        .map(|(_, o, _)| if *o == accepted() { 'a' } else { 'r' })
        .collect();
    eprintln!("outcomes: {outcomes}");
    // Accepted, refused during the switch, accepted after it: no flapping.
    let after_switch = outcomes.trim_start_matches('a').trim_start_matches('r');
    assert!(!after_switch.contains('r'), "{outcomes}");

    // One order at a time is in flight: only one can race the promotion.
    assert!(
        lost.len() <= 1,
        "accepted, then lost in the failover: {lost:?}"
    );
    assert!(set.cli(replica_port, &["ROLE"]).starts_with("master"));
    let n = log.len() as u64;
    assert_eq!(send(&service, order(n)).await, replayed());
    assert_eq!(
        send(&service, buy(T0)).await,
        replayed(),
        "replay across the failover"
    );
    // A fresh instance finds the new primary through the Sentinel.
    let fresh = instance(store(), set.guard().await, T0);
    assert_eq!(send(&fresh, buy(T0)).await, replayed());
    refused.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_asked_of_sentinel_is_followed_to_the_new_primary() {
    let Some(mut set) = sentinel_set(false).await else {
        return;
    };
    through_failover(&mut set, |set| {
        assert_eq!(
            set.cli(set.sentinel.port, &["SENTINEL", "FAILOVER", "mymaster"])
                .trim(),
            "OK"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_primary_killed_the_guard_refuses_until_the_replica_is_promoted() {
    let Some(mut set) = sentinel_set(false).await else {
        return;
    };
    let refused = through_failover(&mut set, |set| set.primary.stop()).await;
    // No primary for at least the 1 s the Sentinel waits: orders meanwhile were refused.
    assert!(refused > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_the_primary_killed_the_guard_follows_the_promotion() {
    let Some(mut set) = sentinel_set(true).await else {
        return;
    };
    let refused = through_failover(&mut set, |set| set.primary.stop()).await;
    assert!(refused > 0);
}
