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

use std::convert::Infallible;
use std::future::{Ready, poll_fn, ready};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use jg_hmac::redis::{FailMode, RedisReplayGuard};
use jg_hmac::tower::{
    AsyncReplayGuard, CachedStore, CredentialStore, InMemoryCredentialStore, VerifiedBody, Verify,
    VerifyLayer,
};
use jg_hmac::{Credential, Error, Secret, Signature, SigningKey};
use tower_layer::Layer;
use tower_service::Service;

mod support;
use support::audit::Captured;
use support::{CLIENT, SECRET, T0, free_port, sign};

/// "No hang": every call under test must return well within this.
const NO_HANG: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------- redis-server

/// A `redis-server` of this test's own on 127.0.0.1, killed on drop.
struct RedisServer {
    child: Option<Child>,
    port: u16,
}

impl RedisServer {
    /// A fresh server on a free port; `None` (after printing why) when `redis-server` is
    /// not installed and `CI` is unset.
    fn start() -> Option<Self> {
        let installed = Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !installed {
            assert!(
                std::env::var_os("CI").is_none(),
                "redis-server is not on PATH but CI is set: .ci/run must install it \
                 (apt-get install -y redis-server)"
            );
            eprintln!(
                "SKIPPED: redis-server is not on PATH (apt-get install redis-server to run \
                 the Redis tests)"
            );
            return None;
        }
        // A port can be taken between choosing and binding it: try a few.
        for _ in 0..5 {
            if let Some(server) = Self::start_on(free_port()) {
                return Some(server);
            }
        }
        panic!("redis-server did not start on any of 5 free ports");
    }

    /// A server on `port`, or `None` if it exits or does not answer within 10 s.
    fn start_on(port: u16) -> Option<Self> {
        let mut child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .args(["--loglevel", "warning"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if !matches!(child.try_wait(), Ok(None)) {
                return None; // exited: the port was taken
            }
            if answers_ping(port) {
                return Some(Self {
                    child: Some(child),
                    port,
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Kills the server (SIGKILL: no goodbye to its clients) and waits for it to go.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn answers_ping(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut reply = [0u8; 5];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && &reply == b"+PONG"
}

/// Starts a server, or skips the test (see [`RedisServer::start`]).
macro_rules! redis_or_skip {
    () => {
        match RedisServer::start() {
            Some(server) => server,
            None => return,
        }
    };
}

/// A guard on `server` with a timeout generous enough that a loaded CI machine does not
/// turn a slow answer into a failure (the 50 ms default is tested on a silent server).
fn guard(server: &RedisServer) -> RedisReplayGuard {
    RedisReplayGuard::new(&server.url())
        .unwrap()
        .with_timeout(Duration::from_secs(1))
}

/// A plain connection, to look at what the guard stored.
async fn inspector(server: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

// ---------------------------------------------------------------- instances

/// The inner service: 200, empty body.
#[derive(Clone)]
struct Ok200;

impl Service<Request<VerifiedBody>> for Ok200 {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<VerifiedBody>) -> Self::Future {
        ready(Ok(Response::new(Full::new(Bytes::new()))))
    }
}

fn store() -> InMemoryCredentialStore {
    InMemoryCredentialStore::from_credentials([
        Credential::new(CLIENT).with_key(SigningKey::new("0", &Secret::from(SECRET)))
    ])
}

/// One verifier instance: its own store, its own Redis connection, the shared Redis.
fn instance<S: CredentialStore>(
    store: S,
    guard: RedisReplayGuard,
    now: u64,
) -> Verify<Ok200, S, RedisReplayGuard> {
    VerifyLayer::builder(store)
        .clock(move || now)
        .replay_guard(guard)
        .build()
        .layer(Ok200)
}

/// The same bytes every time for the same `ts`: a captured request, replayable.
fn buy(ts: u64) -> Request<Vec<u8>> {
    let request = Request::post("/v1/transactions/buy")
        .header("content-type", "application/json")
        .body(br#"{"grams":"10.000","price":"1234.56"}"#.to_vec())
        .unwrap();
    sign(request, (CLIENT, SECRET), ts)
}

fn signature_of(request: &Request<Vec<u8>>) -> Signature {
    Signature::from_hex(request.headers()["x-signature"].to_str().unwrap()).unwrap()
}

/// Sends `request` through `service`: the status and the error code (`""` when none).
async fn send<S, R>(service: &Verify<Ok200, S, R>, request: Request<Vec<u8>>) -> (u16, String)
where
    S: CredentialStore,
    R: AsyncReplayGuard,
{
    let mut service = service.clone();
    let response = tokio::time::timeout(NO_HANG, async move {
        poll_fn(|cx| Service::<Request<Full<Bytes>>>::poll_ready(&mut service, cx))
            .await
            .unwrap();
        service
            .call(request.map(|b| Full::new(Bytes::from(b))))
            .await
            .unwrap()
    })
    .await
    .expect("the request hung");
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let code = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_owned))
        .unwrap_or_default();
    (status, code)
}

fn replayed() -> (u16, String) {
    (401, "replayed_request".to_owned())
}

fn accepted() -> (u16, String) {
    (200, String::new())
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
        assert!(key.starts_with("jg:replay:15:jk_live_example:"), "{key}");
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
    let unavailable = (503, "replay_guard_unavailable".to_owned());
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
