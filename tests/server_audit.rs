//! The layer's audit events, in a process of their own: `tracing` routes events through
//! a process-wide subscriber, which the other server tests must not share.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::routing::{get, post};
use http::{HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use jg_hmac::tower::{
    Authenticated, CredentialStore, InMemoryCredentialStore, StoreError, VerifyLayer,
};
use jg_hmac::{Credential, InMemoryReplayGuard, Secret, Signer, SigningKey};

const T0: u64 = 1_735_550_160;
const SECRET: &str = "s3cr3t_test_key_justgold";
const OTHER_SECRET: &str = "other_partner_secret";
const BUY: &[u8] = br#"{"amount":"5000","transactionId":"12345"}"#;

/// Collects everything the subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct Broken;

impl CredentialStore for Broken {
    async fn get(&self, _: &str) -> Result<Option<Arc<Credential>>, StoreError> {
        Err(StoreError::new("db://admin:hunter2@10.0.0.7 refused"))
    }
}

fn routes() -> Router<()> {
    Router::new()
        .route(
            "/v1/health/secure",
            get(|who: Authenticated| async move { who.client_id().to_owned() }),
        )
        .route(
            "/v1/transactions/buy",
            post(|who: Authenticated, body: Bytes| async move {
                format!("{} {}", who.client_id(), body.len())
            }),
        )
}

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn signed(
    base: &str,
    method: Method,
    target: &str,
    body: &[u8],
    who: (&str, &str),
    ts: u64,
) -> Request<Vec<u8>> {
    let mut request = Request::builder()
        .method(method)
        .uri(format!("{base}{target}"))
        .body(body.to_vec())
        .unwrap();
    Signer::new(who.0, &Secret::from(who.1))
        .unwrap()
        .sign_request(&mut request, ts);
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_events_name_the_client_and_never_a_secret_or_signature() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing::subscriber::set_global_default(
        tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_max_level(tracing::Level::INFO)
            .finish(),
    )
    .unwrap();

    let store = InMemoryCredentialStore::from_credentials([
        Credential::new("jk_live_example")
            .with_key(jg_hmac::SigningKey::new("2025", &Secret::from(SECRET))),
        Credential::new("jk_live_other")
            .with_key(SigningKey::new("0", &Secret::from(OTHER_SECRET))),
    ]);
    let verified = serve(
        routes().layer(
            VerifyLayer::builder(store)
                .clock(move || T0)
                .replay_guard(InMemoryReplayGuard::new(100))
                .sandbox_diagnostics(true)
                .build(),
        ),
    )
    .await;
    let broken =
        serve(routes().layer(VerifyLayer::builder(Broken).clock(move || T0).build())).await;
    // Mounted under a prefix: the audit event names the path as sent.
    let nested = serve(
        Router::new().nest(
            "/api",
            routes().layer(
                VerifyLayer::builder(InMemoryCredentialStore::from_credentials([
                    Credential::new("jk_live_example")
                        .with_key(SigningKey::new("0", &Secret::from(SECRET))),
                ]))
                .clock(move || T0)
                .build(),
            ),
        ),
    )
    .await;
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let send = |request: Request<Vec<u8>>| {
        let client = client.clone();
        async move {
            let response = client
                .request(request.map(|b| Full::new(Bytes::from(b))))
                .await
                .unwrap();
            let status = response.status();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            (status, String::from_utf8(body.to_vec()).unwrap())
        }
    };
    let me = ("jk_live_example", SECRET);

    let ok = signed(
        &verified,
        Method::POST,
        "/v1/transactions/buy?secret_query=1",
        BUY,
        me,
        T0,
    );
    let ok_sig = ok.headers()["x-signature"].to_str().unwrap().to_owned();
    assert_eq!(send(ok).await.0, StatusCode::OK);

    let mut bad = signed(&verified, Method::GET, "/v1/health/secure", b"", me, T0);
    let bad_sig = "ab".repeat(32);
    bad.headers_mut()
        .insert("x-signature", HeaderValue::from_str(&bad_sig).unwrap());
    let (status, body) = send(bad).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        body.contains("stringToSign"),
        "diagnostics go to the partner, not the log"
    );

    let late = signed(
        &verified,
        Method::GET,
        "/v1/health/secure",
        b"",
        ("jk_live_other", OTHER_SECRET),
        T0 - 999,
    );
    assert_eq!(send(late).await.0, StatusCode::UNAUTHORIZED);

    let (status, body) = send(signed(
        &broken,
        Method::GET,
        "/v1/health/secure",
        b"",
        me,
        T0,
    ))
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(!body.contains("hunter2"));

    let nested_ok = signed(&nested, Method::GET, "/api/v1/health/secure", b"", me, T0);
    assert_eq!(send(nested_ok).await.0, StatusCode::OK);
    let nested_bad = signed(&nested, Method::GET, "/v1/health/secure", b"", me, T0);
    let nested_bad = {
        // Signed over the path the inner router sees, sent under the prefix.
        let (mut parts, body) = nested_bad.into_parts();
        parts.uri = format!("{nested}/api/v1/health/secure").parse().unwrap();
        Request::from_parts(parts, body)
    };
    assert_eq!(send(nested_bad).await.0, StatusCode::UNAUTHORIZED);

    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let events: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("jg_hmac::audit"))
        .collect();
    assert_eq!(events.len(), 6, "{log}");

    let accepted = events[0];
    for field in [
        " INFO ",
        "outcome=\"accepted\"",
        "status=200",
        "client_id=\"jk_live_example\"",
        "method=\"POST\"",
        "path=\"/v1/transactions/buy\"",
        "key_id=\"2025\"",
        "latency_us=",
        "request_id=\"",
    ] {
        assert!(accepted.contains(field), "{field} in {accepted}");
    }
    assert!(
        accepted.contains(&format!("sig=\"{}\"", &ok_sig[..8])),
        "{accepted}"
    );

    let refused = events[1];
    for field in [
        " WARN ",
        "outcome=\"invalid_signature\"",
        "status=401",
        "sig=\"abababab\"",
    ] {
        assert!(refused.contains(field), "{field} in {refused}");
    }
    let late = events[2];
    for field in [
        "outcome=\"timestamp_out_of_range\"",
        "client_id=\"jk_live_other\"",
    ] {
        assert!(late.contains(field), "{field} in {late}");
    }
    let store_down = events[3];
    for field in [
        "outcome=\"credential_store_unavailable\"",
        "status=503",
        "hunter2",
    ] {
        assert!(
            store_down.contains(field),
            "{field} in {store_down}: the operator sees the cause"
        );
    }

    for (event, outcome) in [(events[4], "accepted"), (events[5], "invalid_signature")] {
        for field in [
            format!("outcome=\"{outcome}\""),
            "path=\"/api/v1/health/secure\"".to_owned(),
        ] {
            assert!(
                event.contains(&field),
                "{field} in {event}: the path as sent"
            );
        }
    }

    // Never a secret, a full (or 9-digit) signature, a body, a query or a string-to-sign.
    for leak in [
        SECRET,
        OTHER_SECRET,
        &ok_sig[..9],
        &bad_sig[..9],
        "amount",
        "secret_query",
        "JG-HMAC-SHA256",
    ] {
        assert!(!log.contains(leak), "{leak} leaked into {log}");
    }
}
