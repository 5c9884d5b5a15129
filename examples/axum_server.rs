//! An axum service that verifies JG-HMAC-SHA256 with one `.layer(...)`.
//!
//! ```text
//! cargo run --example axum_server --features axum
//! JG_ADDR=127.0.0.1:9000 cargo run --example axum_server --features axum
//! ```
//!
//! Routes: `GET /v1/health` (unsigned), `GET /v1/health/secure` and
//! `POST /v1/transactions/buy` (signed; the latter echoes the authenticated client id and
//! the JSON it received). Demo credential: `jk_live_example` / `s3cr3t_test_key_justgold`
//! (the seed spec's). Audit events are printed to stderr. Set `JG_SANDBOX=1` to get the
//! server's string-to-sign in `invalid_signature` answers.
//!
//! With the `metrics` feature, `GET /metrics` answers a Prometheus scrape, outside the
//! verifying layer (in production, serve it on an internal port instead):
//!
//! ```text
//! cargo run --example axum_server --features axum,metrics
//! curl -s http://127.0.0.1:8080/metrics
//! ```

use std::net::SocketAddr;

use axum::Router;
use axum::body::Bytes;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use jg_hmac::tower::{Authenticated, InMemoryCredentialStore, VerifyLayer};
use jg_hmac::{Credential, InMemoryReplayGuard, Secret};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();

    let addr: SocketAddr = std::env::var("JG_ADDR")
        .unwrap_or_else(|_| "127.0.0.1:8080".to_owned())
        .parse()?;

    // In production the store is filled from a database or vault, and refreshed with
    // `store.replace_all(...)`, or replaced by your own `CredentialStore`.
    let store = InMemoryCredentialStore::from_credentials([Credential::new("jk_live_example")
        .with_secret(&Secret::from("s3cr3t_test_key_justgold"))
        .with_scope("transactions:write")]);

    // Before the layer serves its first request: it keeps the handles it registers.
    #[cfg(feature = "metrics")]
    let scrape = prometheus()?;

    let verify = VerifyLayer::builder(store)
        .replay_guard(InMemoryReplayGuard::new(100_000))
        .sandbox_diagnostics(std::env::var_os("JG_SANDBOX").is_some())
        .build();

    let app = Router::new()
        .route("/v1/health/secure", get(secure_health))
        .route("/v1/transactions/buy", post(buy))
        .layer(verify) // every route above is verified
        .route("/v1/health", get(|| async { "ok" }));
    #[cfg(feature = "metrics")]
    let app = app.route("/metrics", get(scrape)); // outside the layer

    let listener = tokio::net::TcpListener::bind(addr).await?;
    eprintln!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}

/// Installs the Prometheus recorder (with the crate's histogram buckets) and returns the
/// handler of `GET /metrics`.
#[cfg(feature = "metrics")]
fn prometheus()
-> Result<impl Fn() -> std::future::Ready<String> + Clone, Box<dyn std::error::Error>> {
    use jg_hmac::metrics::{
        CLOCK_SKEW_BUCKETS, CLOCK_SKEW_SECONDS, LATENCY_BUCKETS, STORE_LOOKUP_SECONDS,
        VERIFY_SECONDS,
    };
    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(CLOCK_SKEW_SECONDS.into()), CLOCK_SKEW_BUCKETS)?
        .set_buckets_for_metric(Matcher::Full(VERIFY_SECONDS.into()), LATENCY_BUCKETS)?
        .set_buckets_for_metric(Matcher::Full(STORE_LOOKUP_SECONDS.into()), LATENCY_BUCKETS)?
        .install_recorder()?;
    jg_hmac::metrics::describe();
    Ok(move || std::future::ready(handle.render()))
}

async fn secure_health(who: Authenticated) -> impl IntoResponse {
    json_reply(
        StatusCode::OK,
        json!({ "status": "ok", "clientId": who.client_id(), "keyId": who.key_id() }),
    )
}

async fn buy(who: Authenticated, body: Bytes) -> impl IntoResponse {
    if !who.credential().has_scope("transactions:write") {
        return json_reply(StatusCode::FORBIDDEN, json!({ "error": "forbidden" }));
    }
    match serde_json::from_slice::<Value>(&body) {
        Ok(received) => json_reply(
            StatusCode::OK,
            json!({ "clientId": who.client_id(), "received": received }),
        ),
        Err(_) => json_reply(
            StatusCode::BAD_REQUEST,
            json!({ "error": "invalid_json", "clientId": who.client_id() }),
        ),
    }
}

fn json_reply(status: StatusCode, value: Value) -> impl IntoResponse {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
}
