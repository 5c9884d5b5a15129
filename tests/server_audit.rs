//! The layer's audit events, in a process of their own: `tracing` routes events through
//! a process-wide subscriber, which the other server tests must not share.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::routing::{get, post};
use http::{HeaderValue, Method, Request};
use jg_hmac::tower::{
    Authenticated, CredentialStore, InMemoryCredentialStore, StoreError, VerifyLayer,
};
use jg_hmac::{Credential, InMemoryReplayGuard, Secret, SigningKey};

mod support;
use support::audit::Captured;
use support::client::TestClient;
use support::{BUY, OTHER_SECRET, SECRET, T0, serve};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_events_name_the_client_and_never_a_secret_or_signature() {
    let captured = Captured::default();
    tracing::subscriber::set_global_default(captured.subscriber()).unwrap();

    let store = InMemoryCredentialStore::from_credentials([
        Credential::new("jk_live_example")
            .with_key(jg_hmac::SigningKey::new("2025", &Secret::from(SECRET))),
        Credential::new("jk_live_other")
            .with_key(SigningKey::new("0", &Secret::from(OTHER_SECRET))),
    ]);
    let verified = TestClient::new(
        serve(
            routes().layer(
                VerifyLayer::builder(store)
                    .clock(move || T0)
                    .replay_guard(InMemoryReplayGuard::new(100))
                    .sandbox_diagnostics(true)
                    .build(),
            ),
        )
        .await,
    );
    let broken = TestClient::new(
        serve(routes().layer(VerifyLayer::builder(Broken).clock(move || T0).build())).await,
    );
    // Mounted under a prefix: the audit event names the path as sent.
    let nested = TestClient::new(
        serve(
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
        .await,
    );
    let me = ("jk_live_example", SECRET);

    let ok = verified.signed(
        Method::POST,
        "/v1/transactions/buy?secret_query=1",
        BUY,
        me,
        T0,
    );
    let ok_sig = ok.headers()["x-signature"].to_str().unwrap().to_owned();
    assert_eq!(verified.send(ok).await.status, 200);

    let mut bad = verified.signed(Method::GET, "/v1/health/secure", b"", me, T0);
    let bad_sig = "ab".repeat(32);
    bad.headers_mut()
        .insert("x-signature", HeaderValue::from_str(&bad_sig).unwrap());
    let reply = verified.send(bad).await;
    assert_eq!(reply.status, 401);
    assert!(
        reply.text().contains("stringToSign"),
        "diagnostics go to the partner, not the log"
    );

    let late = verified.signed(
        Method::GET,
        "/v1/health/secure",
        b"",
        ("jk_live_other", OTHER_SECRET),
        T0 - 999,
    );
    assert_eq!(verified.send(late).await.status, 401);

    let reply = broken
        .send(broken.signed(Method::GET, "/v1/health/secure", b"", me, T0))
        .await;
    assert_eq!(reply.status, 503);
    assert!(!reply.text().contains("hunter2"));

    let nested_ok = nested.signed(Method::GET, "/api/v1/health/secure", b"", me, T0);
    assert_eq!(nested.send(nested_ok).await.status, 200);
    let nested_bad = nested.signed(Method::GET, "/v1/health/secure", b"", me, T0);
    let nested_bad = {
        // Signed over the path the inner router sees, sent under the prefix.
        let (mut parts, body) = nested_bad.into_parts();
        parts.uri = nested.uri("/api/v1/health/secure").parse().unwrap();
        Request::from_parts(parts, body)
    };
    assert_eq!(nested.send(nested_bad).await.status, 401);

    let log = captured.text();
    let events = captured.lines_with("jg_hmac::audit");
    assert_eq!(events.len(), 6, "{log}");

    let accepted = &events[0];
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

    let refused = &events[1];
    for field in [
        " WARN ",
        "outcome=\"invalid_signature\"",
        "status=401",
        "sig=\"abababab\"",
    ] {
        assert!(refused.contains(field), "{field} in {refused}");
    }
    // The claimed id is logged, verified or not; the key only when the signature verified.
    assert!(
        refused.contains("client_id=\"jk_live_example\"") && !refused.contains("key_id"),
        "{refused}"
    );
    let late = &events[2];
    for field in [
        "outcome=\"timestamp_out_of_range\"",
        "client_id=\"jk_live_other\"",
        // Out of the window, but signed with the partner's key: its own request.
        "key_id=\"0\"",
    ] {
        assert!(late.contains(field), "{field} in {late}");
    }
    let store_down = &events[3];
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

    for (event, outcome) in [(&events[4], "accepted"), (&events[5], "invalid_signature")] {
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
