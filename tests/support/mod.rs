//! What the tests that run a real server share: a test clock the test moves by hand,
//! serving a router or service on 127.0.0.1, and a raw HTTP/1.1 client that signs with
//! the crate and can send its body late. Each test file uses part of it.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use jg_hmac::{Secret, Signer};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

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

// ---------------------------------------------------------------- raw HTTP/1.1 client

/// A request signed by `client` over `signed_target`, sent to `sent_target`.
pub struct Signed {
    pub method: &'static str,
    pub sent_target: String,
    pub headers: String,
    pub body: Vec<u8>,
}

pub fn signed(
    method: &'static str,
    signed_target: &str,
    sent_target: &str,
    body: &[u8],
    ts: u64,
    (client, secret): (&str, &str),
) -> Signed {
    let signer = Signer::new(client, &Secret::from(secret)).unwrap();
    let s = signer.sign(method, signed_target, body, ts);
    Signed {
        method,
        sent_target: sent_target.to_owned(),
        headers: format!(
            "X-Client-Id: {}\r\nX-Timestamp: {}\r\nX-Signature: {}\r\n",
            s.client_id(),
            s.timestamp(),
            s.signature().to_hex()
        ),
        body: body.to_vec(),
    }
}

impl Signed {
    /// The head, with `Content-Length` and `Connection: close`.
    pub fn head(&self) -> Vec<u8> {
        format!(
            "{} {} HTTP/1.1\r\nHost: api.test\r\n{}Content-Length: {}\r\nConnection: close\r\n\r\n",
            self.method,
            self.sent_target,
            self.headers,
            self.body.len()
        )
        .into_bytes()
    }

    pub async fn send(&self, addr: SocketAddr) -> Reply {
        let mut raw = Raw::connect(addr).await;
        raw.write(&self.head()).await;
        raw.write(&self.body).await;
        raw.reply().await
    }
}

pub struct Raw(pub TcpStream);

impl Raw {
    pub async fn connect(addr: SocketAddr) -> Self {
        Self(TcpStream::connect(addr).await.unwrap())
    }

    pub async fn write(&mut self, bytes: &[u8]) {
        self.0.write_all(bytes).await.unwrap();
        self.0.flush().await.unwrap();
    }

    /// Reads until the server closes the connection (every request says `close`).
    pub async fn reply(mut self) -> Reply {
        let mut bytes = Vec::new();
        tokio::time::timeout(HANG_GUARD, self.0.read_to_end(&mut bytes))
            .await
            .expect("no reply")
            .unwrap();
        Reply::parse(&bytes)
    }
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn parse(bytes: &[u8]) -> Self {
        let split = bytes
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no response head in {:?}", String::from_utf8_lossy(bytes)));
        let head = String::from_utf8_lossy(&bytes[..split]).into_owned();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        Self {
            status,
            head,
            body: bytes[split + 4..].to_vec(),
        }
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
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
