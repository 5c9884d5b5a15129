//! What the integration tests share, one definition each: a test clock the test moves
//! by hand, serving a router or service on 127.0.0.1, signing a request with the crate,
//! and the [`Reply`] every client here returns. The clients themselves: [`raw`] (HTTP/1.1
//! on a socket, can send its body late) and [`client`] (hyper's client); [`audit`]
//! captures what `tracing` writes. Each test file uses part of it.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod audit;
pub mod client;
pub mod pki;
pub mod raw;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use http::{HeaderMap, HeaderName, HeaderValue, Request};
use jg_hmac::{Secret, Signer};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::Notify;

// ---------------------------------------------------------------- who signs, and when

/// The tests' "now": 2024-12-30T09:16:00Z.
pub const T0: u64 = 1_735_550_160;
/// The partner most tests sign as, and its secret.
pub const CLIENT: &str = "jk_live_example";
pub const SECRET: &str = "s3cr3t_test_key_justgold";
/// A second partner, with a secret of its own.
pub const OTHER: &str = "jk_live_other";
pub const OTHER_SECRET: &str = "other_partner_secret";
/// The body of a buy order.
pub const BUY: &[u8] = br#"{"amount":"5000","transactionId":"12345"}"#;

/// Bound on any one exchange, so that a broken server fails the test instead of hanging
/// it. Never reached by a passing test; nothing is asserted about time.
pub const HANG_GUARD: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------- clock and server

/// A clock the test moves by hand, which tells the test each time the server reads it.
#[derive(Clone)]
pub struct TestClock {
    now: Arc<AtomicU64>,
    reads: Arc<AtomicUsize>,
    read: Arc<Notify>,
}

impl TestClock {
    pub fn new(now: u64) -> Self {
        Self {
            now: Arc::new(AtomicU64::new(now)),
            reads: Arc::new(AtomicUsize::new(0)),
            read: Arc::new(Notify::new()),
        }
    }

    pub fn set(&self, now: u64) {
        self.now.store(now, Ordering::SeqCst);
    }

    pub fn reads(&self) -> usize {
        self.reads.load(Ordering::SeqCst)
    }

    /// Waits until the server has read the clock more than `seen` times in all.
    pub async fn read_after(&self, seen: usize) {
        loop {
            let notified = self.read.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.reads() > seen {
                return;
            }
            tokio::time::timeout(HANG_GUARD, notified)
                .await
                .expect("the server never read the clock");
        }
    }

    pub fn as_clock(&self) -> impl Fn() -> u64 + Send + Sync + 'static {
        let (now, reads, read) = (self.now.clone(), self.reads.clone(), self.read.clone());
        move || {
            let value = now.load(Ordering::SeqCst);
            reads.fetch_add(1, Ordering::SeqCst);
            read.notify_waiters();
            value
        }
    }
}

/// A free TCP port on 127.0.0.1, for a server the test starts (Redis, PostgreSQL).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub async fn serve(app: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// Serves any service that wraps a router (middleware outside it).
pub async fn serve_service<S>(service: S) -> SocketAddr
where
    S: tower_service::Service<
            http::Request<axum::body::Body>,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let make = axum::ServiceExt::<http::Request<axum::body::Body>>::into_make_service(service);
    tokio::spawn(async move { axum::serve(listener, make).await.unwrap() });
    addr
}

// ---------------------------------------------------------------- signing

/// `request` signed by `client` with `secret` at `ts`, over its method, target and body.
pub fn sign<B: AsRef<[u8]>>(
    mut request: Request<B>,
    (client, secret): (&str, &str),
    ts: u64,
) -> Request<B> {
    Signer::new(client, &Secret::from(secret))
        .unwrap()
        .sign_request(&mut request, ts);
    request
}

// ---------------------------------------------------------------- the reply

/// What a server answered, whichever client asked.
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    /// A whole HTTP/1.1 response as read from the socket (no chunked bodies).
    pub fn parse(bytes: &[u8]) -> Self {
        let split = bytes
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no response head in {:?}", String::from_utf8_lossy(bytes)));
        let head = String::from_utf8_lossy(&bytes[..split]);
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let mut headers = HeaderMap::new();
        for line in lines {
            let (name, value) = line.split_once(':').unwrap();
            headers.append(
                HeaderName::from_bytes(name.trim().as_bytes()).unwrap(),
                HeaderValue::from_str(value.trim()).unwrap(),
            );
        }
        Self {
            status,
            headers,
            body: bytes[split + 4..].to_vec(),
        }
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; `null` when it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// A header's value, when present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// The wire code of a refusal (`error` in the JSON body).
    pub fn code(&self) -> String {
        let json: Value = serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("not a JSON error body: {self:?}"));
        json["error"].as_str().unwrap().to_owned()
    }

    #[track_caller]
    pub fn assert_refused(&self, status: u16, code: &str) {
        assert_eq!(
            (self.status, self.code().as_str()),
            (status, code),
            "{self:?}"
        );
    }

    #[track_caller]
    pub fn assert_ok(&self) {
        assert_eq!(self.status, 200, "{self:?} {}", self.text());
    }
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reply")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .field("body", &self.text())
            .finish()
    }
}
