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
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use jg_hmac::tower::{Authenticated, InMemoryCredentialStore, RequireScopeLayer, VerifyLayer};
use jg_hmac::{Clock, Credential, Secret, Signer, SigningKey, SystemClock};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const WRITER: &str = "jk_live_writer";
const READER: &str = "jk_live_reader";
const SECRET: &str = "s3cr3t_test_key_justgold";

async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// Sends a request, signed for `client` when given; returns status, headers and body.
async fn send(addr: SocketAddr, method: &str, path: &str, client: Option<&str>) -> (u16, String) {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
    if let Some(client) = client {
        let signer = Signer::new(client, &Secret::from(SECRET)).unwrap();
        let signed = signer.sign(method, path, b"", SystemClock.now());
        head.push_str(&format!(
            "X-Client-Id: {}\r\nX-Timestamp: {}\r\nX-Signature: {}\r\n",
            signed.client_id(),
            signed.timestamp(),
            signed.signature().to_hex()
        ));
    }
    head.push_str("Content-Length: 0\r\n\r\n");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut reply = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut reply))
        .await
        .unwrap()
        .unwrap();
    let reply = String::from_utf8(reply).unwrap();
    (reply[9..12].parse().unwrap(), reply)
}

fn body(reply: &str) -> serde_json::Value {
    serde_json::from_str(reply.split_once("\r\n\r\n").unwrap().1).unwrap()
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

    let (status, reply) = send(addr, "POST", "/v1/transactions/buy", Some(WRITER)).await;
    assert_eq!(status, 200, "{reply}");
    assert!(reply.ends_with("bought for jk_live_writer"));

    let (status, reply) = send(addr, "POST", "/v1/transactions/buy", Some(READER)).await;
    assert_eq!(status, 403, "{reply}");
    assert!(
        reply
            .to_ascii_lowercase()
            .contains("content-type: application/json")
    );
    let json = body(&reply);
    assert_eq!(json["status"], 403);
    assert_eq!(json["error"], "insufficient_scope");
    assert!(json["message"].is_string() && json["timestamp"].is_u64());
    let request_id = json["requestId"].as_str().unwrap();
    assert!(
        reply.to_ascii_lowercase().contains(&format!(
            "x-request-id: {}",
            request_id.to_ascii_lowercase()
        )),
        "{reply}"
    );

    // Unguarded routes under the same layer: any verified client.
    assert_eq!(send(addr, "GET", "/v1/prices", Some(READER)).await.0, 200);
    // Unsigned: the verifying layer refuses first (401), the guard never runs.
    assert_eq!(
        send(addr, "POST", "/v1/transactions/buy", None).await.0,
        401
    );

    // Guarded but not verified: 500, the handler does not run.
    let (status, reply) = send(addr, "GET", "/v1/unverified", None).await;
    assert_eq!(status, 500, "{reply}");
    assert_eq!(body(&reply)["error"], "authentication_not_configured");
    assert!(!reply.contains("must not run"));
}
