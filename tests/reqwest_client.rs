//! The reqwest signer against a real local server: a plain `std::net` server on
//! 127.0.0.1:0 that reads each request off the socket with `httparse`, verifies it with
//! `jg_hmac::Verifier` and a replay guard, and records what it saw.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use jg_hmac::reqwest::{SignError, SignExt, SigningMiddleware};
use jg_hmac::{
    ContentHash, Credential, InMemoryReplayGuard, ReplayGuard, Secret, SignedRequest, Signer,
    Target, Verifier,
};
use reqwest_middleware::ClientBuilder;
use reqwest_retry::RetryTransientMiddleware;
use reqwest_retry::policies::ExponentialBackoff;

const CLIENT_ID: &str = "jk_live_example";
const SECRET: &str = "s3cr3t_test_key_justgold";
const SEED_POST_BODY: &str = r#"{"amount":"5000","transactionId":"12345"}"#;

/// What the server saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    target: String,
    timestamp: String,
    signature: String,
    body: Vec<u8>,
    /// `ok` or the wire error code.
    verdict: String,
}

struct Server {
    addr: SocketAddr,
    seen: mpsc::Receiver<Seen>,
}

impl Server {
    /// Answers each request that verifies with the next status of `script` (200 once the
    /// script is used up), and every other request with 401 and the error code. Its
    /// verifier's clock is `now`.
    fn start(script: Vec<u16>, now: u64) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, seen) = mpsc::channel();
        std::thread::spawn(move || {
            let secret = Secret::from(SECRET);
            let credential = Arc::new(
                Credential::new(CLIENT_ID).with_key(jg_hmac::SigningKey::new("0", &secret)),
            );
            let lookup = move |id: &str| (id == CLIENT_ID).then(|| credential.clone());
            let verifier = Verifier::new();
            let guard = InMemoryReplayGuard::new(100);
            let mut script = script.into_iter();
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let Some(request) = read_request(&mut stream) else {
                    continue;
                };
                let header = |name: &str| {
                    request
                        .header(name)
                        .map(|v| String::from_utf8_lossy(v).into_owned())
                        .unwrap_or_default()
                };
                let signed = SignedRequest::new(
                    &request.method,
                    Target::parse(&request.target),
                    request.headers.iter().map(|(n, v)| (n, v.as_slice())),
                );
                let verdict = verifier
                    .verify(&lookup, &signed, &ContentHash::of(&request.body), now)
                    .and_then(|ok| {
                        guard.check_and_record(
                            ok.client_id(),
                            ok.signature(),
                            ok.timestamp() + verifier.replay_horizon(),
                            now,
                        )
                    });
                let (status, text) = match verdict {
                    Ok(()) => (script.next().unwrap_or(200), "ok"),
                    Err(e) => (401, e.code()),
                };
                let seen = Seen {
                    target: request.target.clone(),
                    timestamp: header("x-timestamp"),
                    signature: header("x-signature"),
                    body: request.body.clone(),
                    verdict: text.to_owned(),
                };
                // Recorded before answering, so the client sees it once it has the answer.
                if tx.send(seen).is_err() {
                    return;
                }
                let response = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                    text.len()
                );
                let _ = stream.write_all(response.as_bytes());
            }
        });
        Self { addr, seen }
    }

    fn url(&self, target: &str) -> String {
        format!("http://{}{target}", self.addr)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.try_iter().collect()
    }
}

/// One request as the server read it off the socket.
struct Received {
    method: String,
    /// The request-target as sent.
    target: String,
    /// Names in lowercase, in order, repeats included.
    headers: Vec<(String, Vec<u8>)>,
    /// Decoded, for a chunked body.
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }
}

/// Reads until the bytes parse as a whole request; `None` if the client hung up first.
fn read_request(stream: &mut TcpStream) -> Option<Received> {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(request) = parse_request(&bytes) {
            return Some(request);
        }
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        bytes.extend_from_slice(&chunk[..n]);
    }
}

/// `bytes` as one whole request, its body framed by Content-Length or chunked; `None`
/// while more bytes are needed.
fn parse_request(bytes: &[u8]) -> Option<Received> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut request = httparse::Request::new(&mut headers);
    let status = request
        .parse(bytes)
        .unwrap_or_else(|e| panic!("server got a malformed request: {e}"));
    let httparse::Status::Complete(head_len) = status else {
        return None;
    };
    let mut received = Received {
        method: request.method?.to_owned(),
        target: request.path?.to_owned(),
        headers: request
            .headers
            .iter()
            .map(|h| (h.name.to_ascii_lowercase(), h.value.to_vec()))
            .collect(),
        body: Vec::new(),
    };
    let rest = &bytes[head_len..];
    received.body = match received.header("transfer-encoding") {
        Some(coding) => {
            assert!(coding.eq_ignore_ascii_case(b"chunked"), "{coding:?}");
            decode_chunked(rest)?
        }
        None => {
            let length = received
                .header("content-length")
                .map_or(0, |v| std::str::from_utf8(v).unwrap().parse().unwrap());
            rest.get(..length)?.to_vec()
        }
    };
    Some(received)
}

/// A chunked body decoded; `None` until its last chunk and the empty line after it (no
/// trailer fields) have arrived.
fn decode_chunked(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let status = httparse::parse_chunk_size(rest).expect("a valid chunk size line");
        let httparse::Status::Complete((start, size)) = status else {
            return None;
        };
        let size = usize::try_from(size).unwrap();
        rest = &rest[start..];
        if size == 0 {
            return rest.starts_with(b"\r\n").then_some(body);
        }
        body.extend_from_slice(rest.get(..size)?);
        rest = rest.get(size + 2..)?;
    }
}

fn signer() -> Signer {
    Signer::new(CLIENT_ID, &Secret::from(SECRET)).unwrap()
}

#[tokio::test]
async fn request_builder_extension_signs_get_and_post() {
    let server = Server::start(vec![], 1735550160);
    let client = reqwest::Client::new();
    let signer = signer();
    let clock = move || 1735550100u64;

    let get = client
        .get(server.url("/v1/health/secure?z=two&z=three&version=1&a=hello"))
        .signed(&signer, &clock)
        .unwrap()
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 200);
    assert_eq!(get.text().await.unwrap(), "ok");

    let post = client
        .post(server.url("/v1/transactions/buy"))
        .header("Content-Type", "application/json")
        .body(SEED_POST_BODY)
        .signed(&signer, &clock)
        .unwrap()
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 200);

    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        seen[0].target,
        "/v1/health/secure?z=two&z=three&version=1&a=hello"
    );
    assert_eq!(seen[1].body, SEED_POST_BODY.as_bytes());
    assert_eq!(seen[1].timestamp, "1735550100");
    // The seed's corrected POST signature: the body sent is the body hashed.
    assert_eq!(
        seen[1].signature,
        "97b5a41c23cc09f798599e9475eb091c408e2fed941c54aef544c2a364ee76e7"
    );
    assert!(seen.iter().all(|s| s.verdict == "ok"), "{seen:?}");
}

#[tokio::test]
async fn middleware_signs_what_reqwest_sends() {
    let server = Server::start(vec![], 1735550160);
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(SigningMiddleware::new(signer()).with_clock(move || 1735550160u64))
        .build();
    // reqwest's URL parser rewrites this target (dot segments, a space, non-ASCII): the
    // signature must cover the target as sent, not as written.
    let response = client
        .get(server.url("/v1/./health/x/../secure?b=a b&a=é&c=%7e"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let response = client
        .put(server.url("/v1/upload"))
        .body(vec![0u8, 0xff, b'\r', b'\n'])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let seen = server.seen();
    assert_eq!(seen[0].target, "/v1/health/secure?b=a%20b&a=%C3%A9&c=%7e");
    assert_eq!(seen[1].body, [0u8, 0xff, b'\r', b'\n']);
    assert!(seen.iter().all(|s| s.verdict == "ok"), "{seen:?}");
    assert!(seen.iter().all(|s| s.timestamp == "1735550160"));
}

#[tokio::test]
async fn an_unsigned_or_wrongly_signed_request_is_refused() {
    // The server's check is real: without the signer, or with another secret, it says no.
    let server = Server::start(vec![], 1735550160);
    let client = reqwest::Client::new();
    let response = client
        .get(server.url("/v1/health/secure"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(response.text().await.unwrap(), "missing_header");
    let wrong = Signer::new(CLIENT_ID, &Secret::from("not the secret")).unwrap();
    let response = client
        .get(server.url("/v1/health/secure"))
        .signed(&wrong, &|| 1735550160u64)
        .unwrap()
        .send()
        .await
        .unwrap();
    assert_eq!(response.text().await.unwrap(), "invalid_signature");
}

/// A clock that moves 7 s each time it is read.
fn ticking_clock(start: u64) -> impl Fn() -> u64 + Send + Sync + 'static {
    let ticks = AtomicU64::new(start);
    move || ticks.fetch_add(7, Ordering::SeqCst)
}

fn retry_policy() -> ExponentialBackoff {
    ExponentialBackoff::builder()
        .retry_bounds(Duration::from_millis(1), Duration::from_millis(1))
        .build_with_max_retries(3)
}

#[tokio::test]
async fn signer_inside_retry_signs_each_attempt_afresh() {
    // The first attempt verifies and is recorded by the replay guard, then fails with 503.
    let server = Server::start(vec![503], 1735550120);
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(RetryTransientMiddleware::new_with_policy(retry_policy()))
        .with(SigningMiddleware::new(signer()).with_clock(ticking_clock(1735550100)))
        .build();
    let response = client
        .post(server.url("/v1/transactions/buy"))
        .body(SEED_POST_BODY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let seen = server.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(
        (seen[0].timestamp.as_str(), seen[1].timestamp.as_str()),
        ("1735550100", "1735550107")
    );
    assert_ne!(seen[0].signature, seen[1].signature);
    assert!(seen.iter().all(|s| s.verdict == "ok"), "{seen:?}");
    assert!(seen.iter().all(|s| s.body == SEED_POST_BODY.as_bytes()));
}

#[tokio::test]
async fn signer_outside_retry_resends_a_replayed_signature() {
    // The wrong order, to show why the order matters: the retry resends the first
    // attempt's headers, and the replay guard refuses them.
    let server = Server::start(vec![503], 1735550120);
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(SigningMiddleware::new(signer()).with_clock(ticking_clock(1735550100)))
        .with(RetryTransientMiddleware::new_with_policy(retry_policy()))
        .build();
    let response = client
        .post(server.url("/v1/transactions/buy"))
        .body(SEED_POST_BODY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let seen = server.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0].timestamp, seen[1].timestamp);
    assert_eq!(seen[0].signature, seen[1].signature);
    assert_eq!(
        (seen[0].verdict.as_str(), seen[1].verdict.as_str()),
        ("ok", "replayed_request")
    );
}

#[tokio::test]
async fn streamed_bodies_are_refused_or_signed_with_a_given_hash() {
    let server = Server::start(vec![], 1735550160);
    let signer = signer();
    let clock = move || 1735550160u64;
    let client = reqwest::Client::new();

    let err = client
        .post(server.url("/v1/upload"))
        .body(reqwest::Body::wrap(String::from("streamed")))
        .signed(&signer, &clock)
        .unwrap_err();
    assert!(matches!(err, SignError::StreamingBody), "{err}");

    let middleware_client = ClientBuilder::new(client.clone())
        .with(SigningMiddleware::new(signer.clone()).with_clock(clock))
        .build();
    let err = middleware_client
        .post(server.url("/v1/upload"))
        .body(reqwest::Body::wrap(String::from("streamed")))
        .send()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("stream"), "{err}");
    assert!(server.seen().is_empty(), "nothing was sent");

    // A stream whose bytes the caller hashed as it produced them.
    let response = client
        .post(server.url("/v1/upload"))
        .body(reqwest::Body::wrap(String::from("streamed")))
        .signed_with_hash(&signer, &ContentHash::of(b"streamed"), &clock)
        .unwrap()
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(server.seen()[0].verdict, "ok");

    // A builder error is reported, not signed over.
    let err = client.get("not a url").signed(&signer, &clock).unwrap_err();
    assert!(matches!(err, SignError::Build(_)), "{err}");
}
