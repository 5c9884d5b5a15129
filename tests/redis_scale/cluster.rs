//! Cluster: three `redis-server --cluster-enabled yes` on loopback, joined by
//! `redis-cli --cluster create`; the guard on `redis+cluster://`.

use std::process::Command;
use std::time::Duration;

use jg_hmac::redis::RedisReplayGuard;

use crate::redis_support::{
    NO_HANG, RedisServer, accepted, answers_ping, cli, eventually, exactly_one_accepted, installed,
    instance, order, plain_args, replayed, scratch_dir, send, signature_of, store,
};
use crate::support::{CLIENT, T0, free_port};

/// Three primaries sharing the 16384 slots, no replicas, the cluster state `ok` on each.
/// `None` when a program is not installed.
async fn cluster() -> Option<Vec<RedisServer>> {
    if !installed(&["redis-server", "redis-cli"]) {
        return None;
    }
    let nodes: Vec<RedisServer> = (0..3)
        .map(|_| {
            RedisServer::retry(|port| {
                let dir = scratch_dir();
                let mut args = plain_args(port);
                for (flag, value) in [
                    ("--cluster-enabled", "yes".to_owned()),
                    (
                        "--cluster-config-file",
                        dir.join("nodes.conf").display().to_string(),
                    ),
                    ("--cluster-port", free_port().to_string()),
                ] {
                    args.extend([flag.to_owned(), value]);
                }
                RedisServer::spawn("redis-server", &args, port, dir, answers_ping)
            })
        })
        .collect();
    let created = Command::new("redis-cli")
        .args(["--cluster", "create"])
        .args(nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)))
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .output()
        .expect("run redis-cli --cluster create");
    assert!(
        created.status.success(),
        "redis-cli --cluster create: {}",
        String::from_utf8_lossy(&created.stdout)
    );
    for node in &nodes {
        eventually(NO_HANG * 4, "cluster_state:ok", || {
            cli(node.port, &["CLUSTER", "INFO"]).contains("cluster_state:ok")
        })
        .await;
    }
    Some(nodes)
}

fn guard(url: &str) -> RedisReplayGuard {
    RedisReplayGuard::new(url)
        .unwrap()
        .with_timeout(Duration::from_secs(1))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_request_is_accepted_once_whichever_node_holds_its_key() {
    let Some(nodes) = cluster().await else {
        return;
    };
    let ports: Vec<u16> = nodes.iter().map(|n| n.port).collect();
    // One seed node (the others are discovered), and all three.
    let one = guard(&format!("redis+cluster://127.0.0.1:{}", ports[0]));
    one.ping().await.unwrap();
    let all = ports
        .iter()
        .map(|p| format!("127.0.0.1:{p}"))
        .collect::<Vec<_>>()
        .join(",");
    let a = instance(store(), one.clone(), T0);
    let b = instance(store(), guard(&format!("redis+cluster://{all}")), T0);

    const ORDERS: u64 = 30;
    let mut slots = std::collections::BTreeSet::new();
    for n in 1..=ORDERS {
        assert_eq!(send(&a, order(n)).await, accepted(), "order {n}");
        assert_eq!(send(&b, order(n)).await, replayed(), "order {n} at b");
        assert_eq!(send(&a, order(n)).await, replayed(), "order {n} at a");
        let key = one.key(CLIENT, &signature_of(&order(n)));
        slots.insert(
            cli(ports[0], &["CLUSTER", "KEYSLOT", &key])
                .trim()
                .to_owned(),
        );
    }
    // The keys are on different slots, and every node holds some: exactly the orders'.
    let held: Vec<u64> = ports
        .iter()
        .map(|p| cli(*p, &["DBSIZE"]).trim().parse().unwrap())
        .collect();
    eprintln!("{ORDERS} keys on {} slots, per node {held:?}", slots.len());
    assert!(slots.len() > 1);
    assert!(held.iter().all(|&h| h > 0), "{held:?}");
    assert_eq!(held.iter().sum::<u64>(), ORDERS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_concurrent_identical_requests_on_a_cluster_exactly_one_is_accepted() {
    let Some(nodes) = cluster().await else {
        return;
    };
    let url = format!("redis+cluster://127.0.0.1:{}", nodes[1].port);
    let instances: Vec<_> = (0..4).map(|_| instance(store(), guard(&url), T0)).collect();
    // Connect every instance first, so that the race is on the SET, not on connecting.
    for (i, instance) in instances.iter().enumerate() {
        assert_eq!(send(instance, order(100 + i as u64)).await, accepted());
    }
    exactly_one_accepted(&instances, order(1)).await;
}
