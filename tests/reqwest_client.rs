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
    /// script is used up), with a `Retry-After` when one is given, and every other request
    /// with 401 and the error code. Its verifier's clock is `now`.
    fn start(script: Vec<(u16, Option<String>)>, now: u64) -> Self {
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
                let (status, retry_after, text) = match verdict {
                    Ok(()) => {
                        let (status, retry_after) = script.next().unwrap_or((200, None));
                        (status, retry_after, "ok")
                    }
                    Err(e) => (401, None, e.code()),
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
                let retry_after = retry_after
                    .map(|v| format!("Retry-After: {v}\r\n"))
                    .unwrap_or_default();
                let response = format!(
                    "HTTP/1.1 {status} X\r\n{retry_after}Content-Length: {}\r\nConnection: close\r\n\r\n{text}",
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
    let server = Server::start(vec![(503, None)], 1735550120);
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
    let server = Server::start(vec![(503, None)], 1735550120);
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

    // Through the middleware, retrying or not: never sent, let alone retried.
    let once = SigningMiddleware::new(signer.clone());
    let retrying = once.clone().with_retries(3, Duration::from_secs(30));
    for middleware in [once, retrying] {
        let middleware_client = ClientBuilder::new(client.clone())
            .with(middleware.with_clock(clock))
            .build();
        let err = middleware_client
            .put(server.url("/v1/upload"))
            .body(reqwest::Body::wrap(String::from("streamed")))
            .send()
            .await
            .unwrap_err();
        assert!(err.to_string().contains("stream"), "{err}");
        assert!(server.seen().is_empty(), "nothing was sent");
    }

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

// ---------------------------------------------------------------- retrying 429 and 503
// On Tokio's paused clock: a wait advances it at once, and the signing clock follows it,
// so nothing here reads or asserts wall time.

/// The server's clock in the retry tests.
const NOW: u64 = 1735550160;

/// A signing clock on Tokio's clock: `start` plus the whole seconds since it was made.
fn tokio_clock(start: u64) -> impl Fn() -> u64 + Send + Sync + 'static {
    let origin = tokio::time::Instant::now();
    move || start + origin.elapsed().as_secs()
}

fn retrying(middleware: SigningMiddleware) -> reqwest_middleware::ClientWithMiddleware {
    ClientBuilder::new(reqwest::Client::new())
        .with(middleware.with_clock(tokio_clock(NOW)))
        .build()
}

fn answers(statuses: &[(u16, Option<&str>)]) -> Vec<(u16, Option<String>)> {
    statuses
        .iter()
        .map(|(status, after)| (*status, after.map(str::to_owned)))
        .collect()
}

/// Sends `request`: its status, the time it took on Tokio's clock, and every attempt the
/// server saw, each checked to have verified and to be signed later than the one before.
async fn send(
    server: &Server,
    request: reqwest_middleware::RequestBuilder,
) -> (reqwest::Response, Duration, Vec<Seen>) {
    let started = tokio::time::Instant::now();
    let response = request.send().await.unwrap();
    let seen = server.seen();
    assert_signed_afresh(&seen);
    (response, started.elapsed(), seen)
}

fn retries(attempts: u32) -> SigningMiddleware {
    SigningMiddleware::new(signer()).with_retries(attempts, Duration::from_secs(30))
}

/// Every attempt verified, each signed later than the one before.
#[track_caller]
fn assert_signed_afresh(seen: &[Seen]) {
    assert!(seen.iter().all(|s| s.verdict == "ok"), "{seen:?}");
    let timestamps: Vec<u64> = seen.iter().map(|s| s.timestamp.parse().unwrap()).collect();
    assert!(timestamps.windows(2).all(|w| w[0] < w[1]), "{timestamps:?}");
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_waited_for_and_each_attempt_signed_afresh() {
    // In seconds, and as an HTTP-date: 2 s after the signing clock's reading at the 503.
    for (status, after, secs) in [(429, "1", 1), (503, "Mon, 30 Dec 2024 09:16:02 GMT", 2)] {
        let server = Server::start(answers(&[(status, Some(after))]), NOW);
        let request = retrying(retries(3)).get(server.url("/v1/health/secure?version=1"));
        let (response, waited, seen) = send(&server, request).await;
        assert_eq!(response.status(), 200);
        let wait = Duration::from_secs(secs);
        assert!(waited >= wait && waited < wait * 2, "{after}: {waited:?}");
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert_eq!(seen[0].timestamp, NOW.to_string());
        assert_eq!(seen[1].timestamp, (NOW + secs).to_string());
        assert_ne!(seen[0].signature, seen[1].signature);
    }

    // `Retry-After: 0`, or an HTTP-date already past: the clock has not moved, and the
    // retry is signed one second later all the same, so the replay guard (which recorded
    // the first attempt) does not refuse it.
    let past = "Mon, 30 Dec 2024 09:00:00 GMT";
    let server = Server::start(answers(&[(503, Some("0")), (429, Some(past))]), NOW);
    let request = retrying(retries(3)).delete(server.url("/v1/orders/7"));
    let (response, waited, seen) = send(&server, request).await;
    assert_eq!(response.status(), 200);
    assert_eq!((waited, seen.len()), (Duration::ZERO, 3), "{seen:?}");
}

#[tokio::test(start_paused = true)]
async fn a_503_without_retry_after_backs_off_exponentially() {
    let server = Server::start(answers(&[(503, None), (503, None), (503, None)]), NOW);
    let middleware = SigningMiddleware::new(signer())
        .with_retries(4, Duration::from_secs(60))
        .with_backoff(Duration::from_secs(1), Duration::from_secs(4));
    let request = retrying(middleware)
        .put(server.url("/v1/orders/7"))
        .body(SEED_POST_BODY);
    let (response, waited, seen) = send(&server, request).await;
    assert_eq!(response.status(), 200);
    // Full jitter: each wait is somewhere from zero to its ceiling, 1 s, 2 s, then 4 s.
    assert!(waited <= Duration::from_secs(1 + 2 + 4), "{waited:?}");
    assert_eq!(seen.len(), 4, "{seen:?}");
    assert!(seen.iter().all(|s| s.body == SEED_POST_BODY.as_bytes()));
}

#[tokio::test(start_paused = true)]
async fn only_methods_marked_retryable_are_retried() {
    let buy = |client: reqwest_middleware::ClientWithMiddleware, server: &Server| {
        client
            .post(server.url("/v1/transactions/buy"))
            .header("Idempotency-Key", "order-12345")
            .body(SEED_POST_BODY)
    };
    // POST is not retried by default, whatever the answer says.
    let server = Server::start(answers(&[(429, Some("1"))]), NOW);
    let (response, _, seen) = send(&server, buy(retrying(retries(3)), &server)).await;
    assert_eq!((response.status().as_u16(), seen.len()), (429, 1));

    // Marked retryable by the caller (whose endpoint deduplicates on the key it sends).
    let server = Server::start(answers(&[(429, Some("1"))]), NOW);
    let client = retrying(retries(3).with_retry_methods([http::Method::POST]));
    let (response, _, seen) = send(&server, buy(client, &server)).await;
    assert_eq!((response.status().as_u16(), seen.len()), (200, 2));

    // Without `with_retries`, nothing is retried, not even a GET.
    let server = Server::start(answers(&[(503, Some("1"))]), NOW);
    let request = retrying(SigningMiddleware::new(signer())).get(server.url("/v1/ping"));
    let (response, _, seen) = send(&server, request).await;
    assert_eq!((response.status().as_u16(), seen.len()), (503, 1));
}

#[tokio::test(start_paused = true)]
async fn the_deadline_and_the_attempts_are_respected() {
    // A Retry-After past the deadline: the 429 comes back at once, with its header.
    let server = Server::start(answers(&[(429, Some("10"))]), NOW);
    let middleware = SigningMiddleware::new(signer()).with_retries(5, Duration::from_secs(5));
    let request = retrying(middleware).get(server.url("/v1/ping"));
    let (response, waited, seen) = send(&server, request).await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "10");
    assert_eq!((waited, seen.len()), (Duration::ZERO, 1));

    // Backing off: no wait ends past the deadline. Each wait is at most 2 s, so there is
    // a second attempt, and at most 3 s of waiting in all.
    let server = Server::start(vec![(503, None); 20], NOW);
    let middleware = SigningMiddleware::new(signer())
        .with_retries(10, Duration::from_secs(3))
        .with_backoff(Duration::from_secs(2), Duration::from_secs(2));
    let request = retrying(middleware).get(server.url("/v1/ping"));
    let (response, waited, seen) = send(&server, request).await;
    assert_eq!(response.status(), 503);
    assert!(waited <= Duration::from_secs(3), "{waited:?}");
    assert!(seen.len() >= 2, "{seen:?}");

    // The attempts: as many as asked for, and never more than 10.
    for (asked, made) in [(3, 3), (50, 10)] {
        let server = Server::start(vec![(503, Some("1".to_owned())); 20], NOW);
        let middleware =
            SigningMiddleware::new(signer()).with_retries(asked, Duration::from_secs(600));
        let request = retrying(middleware).get(server.url("/v1/ping"));
        let (response, _, seen) = send(&server, request).await;
        assert_eq!((response.status().as_u16(), seen.len()), (503, made));
    }
}

/// The deployed shape: the crate's own `VerifyLayer` with a replay guard on a real axum
/// server, in front of a handler that first answers `429` then `503` (as a rate limit or
/// an overloaded upstream would, after verification): every attempt verifies, none is
/// taken for a replay, and the third is served.
#[cfg(feature = "tower")]
#[tokio::test(start_paused = true)]
async fn the_verify_layer_accepts_every_retry_until_one_is_served() {
    use axum::http::StatusCode;
    use jg_hmac::tower::{Authenticated, InMemoryCredentialStore, VerifyLayer};

    let store =
        InMemoryCredentialStore::from_credentials([Credential::new(CLIENT_ID)
            .with_key(jg_hmac::SigningKey::new("0", &Secret::from(SECRET)))]);
    let layer = VerifyLayer::builder(store)
        .clock(tokio_clock(NOW))
        .replay_guard(InMemoryReplayGuard::new(100))
        .build();
    let served = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&served);
    let handler = move |who: Authenticated| async move {
        let answer = match counter.fetch_add(1, Ordering::SeqCst) {
            0 => (StatusCode::TOO_MANY_REQUESTS, "1"),
            1 => (StatusCode::SERVICE_UNAVAILABLE, "0"),
            _ => (StatusCode::OK, ""),
        };
        (
            answer.0,
            [("retry-after", answer.1)],
            who.timestamp().to_string(),
        )
    };
    let app = axum::Router::new()
        .route("/v1/orders/7", axum::routing::put(handler))
        .layer(layer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let started = tokio::time::Instant::now();
    let response = retrying(retries(3))
        .put(format!("http://{addr}/v1/orders/7"))
        .body(SEED_POST_BODY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(served.load(Ordering::SeqCst), 3, "three verified attempts");
    // Signed at NOW, after the 1 s wait, then one second later without a wait.
    assert_eq!(response.text().await.unwrap(), (NOW + 2).to_string());
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(1) && waited < Duration::from_secs(2),
        "{waited:?}"
    );
}
