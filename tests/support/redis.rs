//! What the Redis test files share (tests/redis.rs, tests/redis_scale.rs): starting
//! `redis-server` / `redis-sentinel` processes of the test's own on free loopback ports
//! (killed on drop), skipping when they are not installed (failing under `CI`), and a
//! verifier instance to send signed requests through. Included with `#[path]` by the
//! files built with feature `redis` (not from support/mod.rs, which every test builds).
#![allow(dead_code)]

use std::convert::Infallible;
use std::future::{Ready, poll_fn, ready};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use jg_hmac::redis::RedisReplayGuard;
use jg_hmac::tower::{
    AsyncReplayGuard, CredentialStore, InMemoryCredentialStore, VerifiedBody, Verify, VerifyLayer,
};
use jg_hmac::{Credential, Secret, Signature, SigningKey};
use tower_layer::Layer;
use tower_service::Service;

use crate::support::{CLIENT, SECRET, free_port, sign};

/// "No hang": every call under test must return well within this.
pub const NO_HANG: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------- processes

/// Whether every program in `programs` runs (`--version`). When one does not: under `CI`
/// a panic (CI must install it), else `SKIPPED` on stderr and `false`.
pub fn installed(programs: &[&str]) -> bool {
    for program in programs {
        let runs = Command::new(program)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !runs {
            assert!(
                std::env::var_os("CI").is_none(),
                "{program} is not on PATH but CI is set: .ci/run must install it \
                 (apt-get install -y redis-server redis-sentinel redis-tools)"
            );
            eprintln!(
                "SKIPPED: {program} is not on PATH (apt-get install redis-server \
                 redis-sentinel redis-tools to run the Redis tests)"
            );
            return false;
        }
    }
    true
}

/// A fresh directory for one server's files, removed with the server.
pub fn scratch_dir() -> PathBuf {
    static DIRS: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "jg-hmac-redis-{}-{}",
        std::process::id(),
        DIRS.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A `redis-server` (or `redis-sentinel`) of this test's own on 127.0.0.1, killed on drop.
pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    /// Its working directory (config files, certificates), removed on drop.
    pub dir: PathBuf,
}

impl RedisServer {
    /// A plain server on a free port; `None` (after printing why) when `redis-server` is
    /// not installed and `CI` is unset.
    pub fn start() -> Option<Self> {
        if !installed(&["redis-server"]) {
            return None;
        }
        Some(Self::retry(Self::start_on))
    }

    /// Calls `start` on free ports until one works (a port can be taken between choosing
    /// and binding it).
    pub fn retry(start: impl Fn(u16) -> Option<Self>) -> Self {
        for _ in 0..5 {
            if let Some(server) = start(free_port()) {
                return server;
            }
        }
        panic!("the server did not start on any of 5 free ports");
    }

    /// A plain server on `port`, or `None` if it exits or does not answer within 10 s.
    pub fn start_on(port: u16) -> Option<Self> {
        Self::spawn(
            "redis-server",
            &plain_args(port),
            port,
            scratch_dir(),
            answers_ping,
        )
    }

    /// `program args...` in `dir`, once `ready(port)`; `None` if it exits first or is not
    /// ready within 10 s.
    pub fn spawn(
        program: &str,
        args: &[String],
        port: u16,
        dir: PathBuf,
        ready: fn(u16) -> bool,
    ) -> Option<Self> {
        let mut child = Command::new(program)
            .args(args)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn a redis process");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if !matches!(child.try_wait(), Ok(None)) {
                return None; // exited: the port was taken
            }
            if ready(port) {
                return Some(Self {
                    child: Some(child),
                    port,
                    dir,
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Kills the server (SIGKILL: no goodbye to its clients) and waits for it to go.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The arguments of a plain, non-persistent server on `port`.
pub fn plain_args(port: u16) -> Vec<String> {
    [
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--daemonize",
        "no",
        "--loglevel",
        "warning",
    ]
    .map(str::to_owned)
    .to_vec()
}

/// A raw `PING` on 127.0.0.1:`port` answers `+PONG`.
pub fn answers_ping(port: u16) -> bool {
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

/// Something listens on 127.0.0.1:`port` (a TLS port, which a raw `PING` cannot check).
pub fn listens(port: u16) -> bool {
    TcpStream::connect_timeout(
        &SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(200),
    )
    .is_ok()
}

/// Starts a plain server, or skips the test (see [`RedisServer::start`]).
macro_rules! redis_or_skip {
    () => {
        match RedisServer::start() {
            Some(server) => server,
            None => return,
        }
    };
}

// ---------------------------------------------------------------- instances

/// The inner service: 200, empty body.
#[derive(Clone)]
pub struct Ok200;

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

pub fn store() -> InMemoryCredentialStore {
    InMemoryCredentialStore::from_credentials([
        Credential::new(CLIENT).with_key(SigningKey::new("0", &Secret::from(SECRET)))
    ])
}

/// One verifier instance: its own store, its own Redis connection, the shared Redis.
pub fn instance<S: CredentialStore>(
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
pub fn buy(ts: u64) -> Request<Vec<u8>> {
    let request = Request::post("/v1/transactions/buy")
        .header("content-type", "application/json")
        .body(br#"{"grams":"10.000","price":"1234.56"}"#.to_vec())
        .unwrap();
    sign(request, (CLIENT, SECRET), ts)
}

pub fn signature_of(request: &Request<Vec<u8>>) -> Signature {
    Signature::from_hex(request.headers()["x-signature"].to_str().unwrap()).unwrap()
}

/// Sends `request` through `service`: the status and the error code (`""` when none).
pub async fn send<S, R>(service: &Verify<Ok200, S, R>, request: Request<Vec<u8>>) -> (u16, String)
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

pub fn replayed() -> (u16, String) {
    (401, "replayed_request".to_owned())
}

pub fn accepted() -> (u16, String) {
    (200, String::new())
}

pub fn unavailable() -> (u16, String) {
    (503, "replay_guard_unavailable".to_owned())
}

/// A plain connection to 127.0.0.1:`port`, to look at what the guard stored.
pub async fn inspector(port: u16) -> redis::aio::MultiplexedConnection {
    redis::Client::open(format!("redis://127.0.0.1:{port}/"))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// `redis-cli -p port args...`: its stdout (panics when it fails).
pub fn cli(port: u16, args: &[&str]) -> String {
    let output = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .expect("run redis-cli");
    assert!(
        output.status.success(),
        "redis-cli {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Polls `condition` every 50 ms until it holds; panics with `what` after `limit`.
pub async fn eventually(limit: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
