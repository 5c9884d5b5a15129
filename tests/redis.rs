//! The Redis replay guard against a real `redis-server`: each test starts its own server
//! on a free loopback port (and kills it when done, or mid-test), so the tests are
//! self-contained and can stop Redis under a running verifier.
//!
//! Without a `redis-server` on PATH the tests that need one print `SKIPPED` and pass,
//! unless `CI` is set, where they fail: CI must install it.
//!
//! Clocks are injected into the layers; the only waits are bounded polls for a server to
//! come up and for Redis to expire a 1-second key, and "no hang" bounds of 5 s.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::TcpListener;
use std::time::{Duration, Instant};

use jg_hmac::redis::{FailMode, RedisReplayGuard};
use jg_hmac::tower::{AsyncReplayGuard, CachedStore};
use jg_hmac::{Error, Signature};

mod support;
#[macro_use]
#[path = "support/redis.rs"]
mod redis_support;
use redis_support::{
    NO_HANG, RedisServer, accepted, buy, instance, replayed, send, signature_of, store,
};
use support::audit::Captured;
use support::{CLIENT, SECRET, T0, free_port};

/// A guard on `server` with a timeout generous enough that a loaded CI machine does not
/// turn a slow answer into a failure (the 50 ms default is tested on a silent server).
fn guard(server: &RedisServer) -> RedisReplayGuard {
    RedisReplayGuard::new(&server.url())
        .unwrap()
        .with_timeout(Duration::from_secs(1))
}

/// A plain connection, to look at what the guard stored.
async fn inspector(server: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis_support::inspector(server.port).await
}

// ---------------------------------------------------------------- tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_accepted_by_one_instance_is_a_replay_at_another() {
    let server = redis_or_skip!();
    let a = instance(store(), guard(&server), T0);
    // The other instance also caches its credentials: the guard does not care.
    let b = instance(CachedStore::new(store()), guard(&server), T0);

    assert_eq!(send(&a, buy(T0)).await, accepted());
    assert_eq!(
        send(&b, buy(T0)).await,
        replayed(),
        "replayed to instance b"
    );
    assert_eq!(
        send(&a, buy(T0)).await,
        replayed(),
        "replayed to instance a"
    );
    // A new request (new timestamp, new signature) is not a replay, on either.
    assert_eq!(send(&b, buy(T0 + 1)).await, accepted());
    assert_eq!(send(&a, buy(T0 + 1)).await, replayed());

    // Instances with another key prefix do not share the record.
    let elsewhere = instance(
        store(),
        guard(&server).with_key_prefix("other-service:"),
        T0,
    );
    assert_eq!(send(&elsewhere, buy(T0)).await, accepted());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_concurrent_identical_requests_exactly_one_is_accepted() {
    let server = redis_or_skip!();
    let instances: Vec<_> = (0..4)
        .map(|_| instance(store(), guard(&server), T0))
        .collect();
    // Connect every instance first, so that the race is on the SET, not on connecting.
    for (i, instance) in instances.iter().enumerate() {
        assert_eq!(send(instance, buy(T0 + 1 + i as u64)).await, accepted());
    }

    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let instance = instances[i % instances.len()].clone();
            tokio::spawn(async move { send(&instance, buy(T0)).await })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }
    let ok = outcomes.iter().filter(|o| **o == accepted()).count();
    let replays = outcomes.iter().filter(|o| **o == replayed()).count();
    assert_eq!((ok, replays), (1, 63), "{outcomes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_live_for_the_rest_of_the_window_plus_skew_and_hold_no_signature() {
    let server = redis_or_skip!();
    let guard = guard(&server).with_clock_skew(30);
    let service = instance(store(), guard.clone(), T0);
    let mut redis = inspector(&server).await;

    // A fresh request: 300 s of window left, plus 30 s of skew.
    let fresh = buy(T0);
    let fresh_key = guard.key(CLIENT, &signature_of(&fresh));
    let fresh_hex = signature_of(&fresh).to_hex();
    assert_eq!(send(&service, fresh).await, accepted());
    let pttl: i64 = redis::cmd("PTTL")
        .arg(&fresh_key)
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!(
        pttl > 300_000 && pttl <= 330_000,
        "PTTL {pttl} ms, expected within (300, 330] s"
    );

    // A request signed 200 s ago: 100 s of window left, plus 30 s.
    let old = buy(T0 - 200);
    let old_key = guard.key(CLIENT, &signature_of(&old));
    assert_eq!(send(&service, old).await, accepted());
    let pttl: i64 = redis::cmd("PTTL")
        .arg(&old_key)
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!(
        pttl > 100_000 && pttl <= 130_000,
        "PTTL {pttl} ms, expected within (100, 130] s"
    );

    // Exactly the two keys, length-prefixed client id, no signature in them.
    let mut keys: Vec<String> = redis::cmd("KEYS")
        .arg("jg:replay:*")
        .query_async(&mut redis)
        .await
        .unwrap();
    keys.sort();
    let mut expected = vec![fresh_key, old_key];
    expected.sort();
    assert_eq!(keys, expected);
    for key in &keys {
        assert!(key.starts_with("jg:replay:{15:jk_live_example}:"), "{key}");
        assert!(!key.contains(&fresh_hex[..16]), "{key}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_expire_and_the_signature_is_then_accepted_again() {
    let server = redis_or_skip!();
    // No skew, a request at the end of its window: a key that lives 1 s.
    let guard = guard(&server).with_clock_skew(0);
    let sig = Signature::from_bytes([7; 32]);
    assert_eq!(guard.check_and_record(CLIENT, &sig, T0, T0).await, Ok(()));
    assert_eq!(
        guard.check_and_record(CLIENT, &sig, T0, T0).await,
        Err(Error::ReplayedRequest)
    );
    let mut redis = inspector(&server).await;
    let key = guard.key(CLIENT, &sig);
    let pttl: i64 = redis::cmd("PTTL")
        .arg(&key)
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!(pttl > 0 && pttl <= 1_000, "PTTL {pttl}");

    // Redis expires it (bounded poll: it has 1 s to live).
    let deadline = Instant::now() + NO_HANG;
    loop {
        let exists: i64 = redis::cmd("EXISTS")
            .arg(&key)
            .query_async(&mut redis)
            .await
            .unwrap();
        if exists == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the key did not expire");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(guard.check_and_record(CLIENT, &sig, T0, T0).await, Ok(()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stopped_fail_closed_refuses_with_503_then_recovers() {
    let mut server = redis_or_skip!();
    let port = server.port;
    let service = instance(store(), guard(&server), T0);
    assert_eq!(send(&service, buy(T0)).await, accepted());

    server.stop();
    let unavailable = redis_support::unavailable();
    for ts in [T0 + 1, T0 + 2, T0 + 3] {
        let started = Instant::now();
        assert_eq!(send(&service, buy(ts)).await, unavailable);
        eprintln!("refused in {:?}", started.elapsed());
    }

    // Redis comes back on the same address: the guard reconnects by itself.
    let _server = RedisServer::start_on(port).expect("restart redis-server");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut ts = T0 + 10;
    loop {
        let outcome = send(&service, buy(ts)).await;
        if outcome == accepted() {
            break;
        }
        assert_eq!(outcome, unavailable);
        assert!(Instant::now() < deadline, "no reconnection within 10 s");
        ts += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // And protects again.
    assert_eq!(send(&service, buy(ts)).await, replayed());
}

// Current-thread runtime: everything runs on this thread, under this subscriber.
#[tokio::test]
async fn redis_stopped_fail_open_accepts_and_emits_an_audit_event() {
    let captured = Captured::default();
    let _guard = tracing::subscriber::set_default(captured.subscriber());

    let mut server = redis_or_skip!();
    let guard = guard(&server).with_fail_mode(FailMode::Open);
    let service = instance(store(), guard, T0);
    assert_eq!(send(&service, buy(T0)).await, accepted());
    assert_eq!(send(&service, buy(T0)).await, replayed());

    server.stop();
    let request = buy(T0 + 1);
    let sig = signature_of(&request).to_hex();
    assert_eq!(send(&service, request).await, accepted());
    // Fail open means no replay protection while Redis is away.
    assert_eq!(send(&service, buy(T0 + 1)).await, accepted());

    let log = captured.text();
    let skipped = captured.lines_with("replay_check_skipped");
    assert_eq!(skipped.len(), 2, "{log}");
    for line in skipped {
        assert!(line.contains("WARN"), "{line}");
        assert!(line.contains("jg_hmac::audit"), "{line}");
        assert!(line.contains(&format!("client_id=\"{CLIENT}\"")), "{line}");
        assert!(line.contains(&sig[..8]), "{line}");
        assert!(line.contains("cause="), "{line}");
    }
    assert!(!log.contains(&sig), "a full signature was logged");
    assert!(
        !log.contains(&sig[..9]),
        "more than 8 hex digits were logged"
    );
    assert!(!log.contains(SECRET));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_does_not_answer_times_out_in_both_modes() {
    // A listener that never accepts: connecting succeeds (the kernel's backlog), and no
    // byte ever comes back. No redis-server needed.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("redis://{}/", silent.local_addr().unwrap());
    let sig = Signature::from_bytes([9; 32]);

    let closed = RedisReplayGuard::new(&url)
        .unwrap()
        .with_timeout(Duration::from_millis(50));
    let started = Instant::now();
    let outcome = tokio::time::timeout(NO_HANG, closed.check_and_record(CLIENT, &sig, T0, T0))
        .await
        .expect("hung");
    assert_eq!(outcome, Err(Error::ReplayGuardUnavailable));
    eprintln!("timed out after {:?}", started.elapsed());
    assert!(
        tokio::time::timeout(NO_HANG, closed.ping())
            .await
            .expect("hung")
            .is_err()
    );

    let open = closed.with_fail_mode(FailMode::Open);
    let outcome = tokio::time::timeout(NO_HANG, open.check_and_record(CLIENT, &sig, T0, T0))
        .await
        .expect("hung");
    assert_eq!(outcome, Ok(()));

    // Nothing listening at all: refused at once, closed.
    let nowhere = format!("redis://127.0.0.1:{}/", free_port());
    let refused = RedisReplayGuard::new(&nowhere).unwrap();
    let outcome = tokio::time::timeout(NO_HANG, refused.check_and_record(CLIENT, &sig, T0, T0))
        .await
        .expect("hung");
    assert_eq!(outcome, Err(Error::ReplayGuardUnavailable));
    drop(silent);
}
