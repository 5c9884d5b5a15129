//! Cluster: three `redis-server --cluster-enabled yes` on loopback, joined by
//! `redis-cli --cluster create`; the guard on `redis+cluster://`, and on
//! `rediss+cluster://` to a cluster that speaks TLS only (clients and cluster bus).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use http::Request;
use jg_hmac::redis::RedisReplayGuard;
use jg_hmac::tower::InMemoryCredentialStore;
use jg_hmac::{Credential, Secret, SigningKey};

use crate::redis_support::{
    NO_HANG, RedisServer, accepted, answers_ping, cli_with, eventually, exactly_one_accepted,
    installed, instance, listens, order, plain_args, replayed, scratch_dir, send, signature_of,
    store, unavailable,
};
use crate::support::{T0, free_port, sign};
use crate::tls::{tls_args, tls_cli_options, write_pki};

/// Three primaries sharing the 16384 slots, no replicas, the cluster state `ok` on each.
struct Cluster {
    nodes: Vec<RedisServer>,
    /// With TLS: the directory of the certificates (`ca.pem`, `other-ca.pem`, ...).
    pki: Option<PathBuf>,
}

impl Cluster {
    /// A cluster, with TLS only when `tls` (certificates for `localhost` and 127.0.0.1).
    /// `None` when a program is not installed.
    async fn start(tls: bool) -> Option<Self> {
        if !installed(&["redis-server", "redis-cli"]) {
            return None;
        }
        let pki = tls.then(|| {
            let dir = scratch_dir();
            write_pki(&dir, &["localhost", "127.0.0.1"]);
            dir
        });
        let nodes = (0..3)
            .map(|_| RedisServer::retry(|port| node(port, pki.as_ref())))
            .collect();
        let cluster = Self { nodes, pki };
        let mut create = vec!["--cluster", "create"];
        let addresses: Vec<String> = cluster.ports().map(|p| format!("127.0.0.1:{p}")).collect();
        create.extend(addresses.iter().map(String::as_str));
        create.extend(["--cluster-replicas", "0", "--cluster-yes"]);
        let mut created = Command::new("redis-cli")
            .args(cluster.cli_options())
            .args(&create)
            .stdout(Stdio::null())
            .spawn()
            .expect("run redis-cli --cluster create");
        let deadline = Instant::now() + NO_HANG * 6;
        let status = loop {
            if let Some(status) = created.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = created.kill();
                panic!("redis-cli --cluster create did not finish within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(status.success(), "redis-cli --cluster create: {status}");
        for port in cluster.ports() {
            eventually(NO_HANG * 4, "cluster_state:ok", || {
                cluster
                    .cli(port, &["CLUSTER", "INFO"])
                    .contains("cluster_state:ok")
            })
            .await;
        }
        Some(cluster)
    }

    fn ports(&self) -> impl Iterator<Item = u16> + '_ {
        self.nodes.iter().map(|n| n.port)
    }

    fn cli_options(&self) -> Vec<String> {
        self.pki.as_deref().map(tls_cli_options).unwrap_or_default()
    }

    fn cli(&self, port: u16, args: &[&str]) -> String {
        let options = self.cli_options();
        let options: Vec<&str> = options.iter().map(String::as_str).collect();
        cli_with(&options, port, args)
    }

    /// A guard on `nodes` (`host:port,...`), verifying TLS against the test's CA.
    fn guard(&self, nodes: &str) -> RedisReplayGuard {
        let scheme = if self.pki.is_some() {
            "rediss"
        } else {
            "redis"
        };
        let guard = RedisReplayGuard::new(&format!("{scheme}+cluster://{nodes}"))
            .unwrap()
            .with_timeout(Duration::from_secs(1));
        match &self.pki {
            Some(dir) => guard.with_ca_file(dir.join("ca.pem")).unwrap(),
            None => guard,
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(dir) = &self.pki {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// One cluster node on `port`, TLS only (clients and bus) with the certificates in `pki`.
fn node(port: u16, pki: Option<&PathBuf>) -> Option<RedisServer> {
    let dir = scratch_dir();
    let mut args = plain_args(port);
    let mut set = |flag: &str, value: String| args.extend([flag.to_owned(), value]);
    set("--cluster-enabled", "yes".to_owned());
    set(
        "--cluster-config-file",
        dir.join("nodes.conf").display().to_string(),
    );
    set("--cluster-port", free_port().to_string());
    let Some(pki) = pki else {
        return RedisServer::spawn("redis-server", &args, port, dir, answers_ping);
    };
    args.extend(tls_args(port, pki, false));
    args.extend(["--tls-cluster".to_owned(), "yes".to_owned()]);
    RedisServer::spawn("redis-server", &args, port, dir, listens)
}

/// How many partners the cluster tests sign as: their keys spread over the slots.
const PARTNERS: usize = 30;

/// Partner `i`: its client id and secret.
fn partner(i: usize) -> (String, String) {
    (
        format!("jk_live_partner_{i}"),
        format!("partner_{i}_secret"),
    )
}

/// A store that knows the [`PARTNERS`] partners.
fn partners() -> InMemoryCredentialStore {
    InMemoryCredentialStore::from_credentials((0..PARTNERS).map(|i| {
        let (id, secret) = partner(i);
        Credential::new(id).with_key(SigningKey::new("0", &Secret::from(secret)))
    }))
}

/// An order of partner `i`, signed at T0.
fn order_of(i: usize) -> Request<Vec<u8>> {
    let (id, secret) = partner(i);
    let mut request = order(0);
    for name in ["x-client-id", "x-timestamp", "x-signature"] {
        request.headers_mut().remove(name);
    }
    sign(request, (&id, &secret), T0)
}

/// An order of each of 30 partners through two instances (one given a single seed node,
/// one all three): each accepted once, replays refused. A partner's keys share a hash
/// tag (one slot), so the partners' keys spread over the slots and every node.
async fn accepted_once_on_every_node(cluster: &Cluster, host: &str) {
    let ports: Vec<u16> = cluster.ports().collect();
    let one = cluster.guard(&format!("{host}:{}", ports[0]));
    let all = ports
        .iter()
        .map(|p| format!("{host}:{p}"))
        .collect::<Vec<_>>()
        .join(",");
    let other = cluster.guard(&all);
    // Connected first (a debug build's TLS handshakes with three nodes take a while).
    for guard in [&one, &other] {
        guard.clone().with_timeout(NO_HANG).ping().await.unwrap();
    }
    let a = instance(partners(), one.clone(), T0);
    let b = instance(partners(), other, T0);

    let mut slots = std::collections::BTreeSet::new();
    for i in 0..PARTNERS {
        assert_eq!(send(&a, order_of(i)).await, accepted(), "partner {i}");
        assert_eq!(send(&b, order_of(i)).await, replayed(), "partner {i} at b");
        assert_eq!(send(&a, order_of(i)).await, replayed(), "partner {i} at a");
        let key = one.key(&partner(i).0, &signature_of(&order_of(i)));
        let slot = cluster.cli(ports[0], &["CLUSTER", "KEYSLOT", &key]);
        slots.insert(slot.trim().to_owned());
    }
    // Every node holds some of the keys, and together exactly the orders'.
    let held: Vec<usize> = ports
        .iter()
        .map(|p| cluster.cli(*p, &["DBSIZE"]).trim().parse().unwrap())
        .collect();
    eprintln!(
        "{PARTNERS} keys on {} slots, per node {held:?}",
        slots.len()
    );
    assert!(slots.len() > 1);
    assert!(held.iter().all(|&h| h > 0), "{held:?}");
    assert_eq!(held.iter().sum::<usize>(), PARTNERS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_request_is_accepted_once_whichever_node_holds_its_key() {
    let Some(cluster) = Cluster::start(false).await else {
        return;
    };
    accepted_once_on_every_node(&cluster, "127.0.0.1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_cluster_with_the_ca_and_refused_without_it() {
    let Some(cluster) = Cluster::start(true).await else {
        return;
    };
    accepted_once_on_every_node(&cluster, "localhost").await;

    let port = cluster.nodes[0].port;
    let pki = cluster.pki.as_ref().unwrap();
    let stranger = RedisReplayGuard::new(&format!("rediss+cluster://localhost:{port}"))
        .unwrap()
        .with_timeout(Duration::from_millis(500))
        .with_ca_file(pki.join("other-ca.pem"))
        .unwrap();
    let error = stranger.ping().await.unwrap_err().to_string();
    eprintln!("TLS cluster, another CA: {error}");
    let service = instance(store(), stranger, T0);
    assert_eq!(send(&service, order(1)).await, unavailable());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_concurrent_identical_requests_on_a_cluster_exactly_one_is_accepted() {
    let Some(cluster) = Cluster::start(false).await else {
        return;
    };
    let seed = format!("127.0.0.1:{}", cluster.nodes[1].port);
    let instances: Vec<_> = (0..4)
        .map(|_| instance(store(), cluster.guard(&seed), T0))
        .collect();
    // Connect every instance first, so that the race is on the SET, not on connecting.
    for (i, instance) in instances.iter().enumerate() {
        assert_eq!(send(instance, order(100 + i as u64)).await, accepted());
    }
    exactly_one_accepted(&instances, order(1)).await;
}
