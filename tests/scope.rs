//! `RequireScope` on a real axum server on loopback: a verified client without the
//! route's scope gets `403 insufficient_scope`; a guarded route outside the verifying
//! layer answers `500 authentication_not_configured`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::SocketAddr;

use axum::Router;
use axum::routing::{get, post};
use jg_hmac::tower::{Authenticated, InMemoryCredentialStore, RequireScopeLayer, VerifyLayer};
use jg_hmac::{Clock, Credential, Secret, SigningKey, SystemClock};

mod support;
use support::raw::{signed, unsigned};
use support::{Reply, SECRET, serve};

const WRITER: &str = "jk_live_writer";
const READER: &str = "jk_live_reader";

/// Sends a request, signed now for `client` when given.
async fn send(addr: SocketAddr, method: &'static str, path: &str, client: Option<&str>) -> Reply {
    match client {
        Some(client) => signed(method, path, path, b"", SystemClock.now(), (client, SECRET)),
        None => unsigned(method, path, b""),
    }
    .send(addr)
    .await
}

fn app() -> Router {
    let store = InMemoryCredentialStore::from_credentials([
        Credential::new(WRITER)
            .with_key(SigningKey::new("0", &Secret::from(SECRET)))
            .with_scope("transactions:write"),
        Credential::new(READER)
            .with_key(SigningKey::new("0", &Secret::from(SECRET)))
            .with_scope("transactions:read"),
    ]);
    Router::new()
        .route(
            "/v1/transactions/buy",
            post(|who: Authenticated| async move { format!("bought for {}", who.client_id()) }),
        )
        .route_layer(RequireScopeLayer::new("transactions:write"))
        .route("/v1/prices", get(|| async { "prices" }))
        .layer(VerifyLayer::new(store))
        // Misconfigured on purpose: guarded, but outside the verifying layer.
        .route(
            "/v1/unverified",
            get(|| async { "must not run" }).route_layer(RequireScopeLayer::new("admin")),
        )
}

#[tokio::test]
async fn scope_guard_on_a_real_server() {
    let addr = serve(app()).await;

    let reply = send(addr, "POST", "/v1/transactions/buy", Some(WRITER)).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert!(reply.text().ends_with("bought for jk_live_writer"));

    let reply = send(addr, "POST", "/v1/transactions/buy", Some(READER)).await;
    assert_eq!(reply.status, 403, "{reply:?}");
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let json = reply.json();
    assert_eq!(json["status"], 403);
    assert_eq!(json["error"], "insufficient_scope");
    assert!(json["message"].is_string() && json["timestamp"].is_u64());
    let request_id = json["requestId"].as_str().unwrap();
    assert_eq!(reply.header("x-request-id"), Some(request_id), "{reply:?}");

    // Unguarded routes under the same layer: any verified client.
    assert_eq!(
        send(addr, "GET", "/v1/prices", Some(READER)).await.status,
        200
    );
    // Unsigned: the verifying layer refuses first (401), the guard never runs.
    assert_eq!(
        send(addr, "POST", "/v1/transactions/buy", None)
            .await
            .status,
        401
    );

    // Guarded but not verified: 500, the handler does not run.
    let reply = send(addr, "GET", "/v1/unverified", None).await;
    assert_eq!(reply.status, 500, "{reply:?}");
    assert_eq!(reply.json()["error"], "authentication_not_configured");
    assert!(!reply.text().contains("must not run"));
}
