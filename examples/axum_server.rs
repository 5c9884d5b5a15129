//! An axum service that verifies JG-HMAC-SHA256 with one `.layer(...)`.
//!
//! ```text
//! cargo run --example axum_server --features axum
//! JG_ADDR=127.0.0.1:9000 cargo run --example axum_server --features axum
//!
//! # Credentials from PostgreSQL (docs/postgres.md): cached, revoked at once by NOTIFY
//! JG_DATABASE_URL=postgres://jg@127.0.0.1/jg JG_KEK_FILE=/run/secrets/jg-kek \
//!   cargo run --example axum_server --features axum,postgres
//! ```
//!
//! With feature `postgres` and both `JG_DATABASE_URL` and `JG_KEK_FILE` set, credentials
//! come from the database (`jg-hmac keys create ...`), behind a 30 s cache that a
//! LISTEN/NOTIFY listener invalidates as soon as a key changes; `JG_OLD_KEK_FILE` adds a
//! decrypt-only KEK during a re-key. Otherwise the in-memory demo credential below.
//!
//! Routes: `GET /v1/health` (unsigned), `GET /v1/health/secure` and
//! `POST /v1/transactions/buy` (signed; the latter echoes the authenticated client id and
//! the JSON it received; it needs scope `transactions:write`). Demo credential: `jk_live_example` / `s3cr3t_test_key_justgold`
//! (the seed spec's). Audit events are printed to stderr. Set `JG_SANDBOX=1` to get the
//! server's string-to-sign in `invalid_signature` answers.
//!
//! With feature `redis` and `JG_REDIS_URL` set, the replay guard is the Redis one, shared
//! by every instance on that Redis (docs/redis.md): `redis://host:6379/`,
//! `rediss://host:6380/` (TLS; `JG_REDIS_CA_FILE` names the CA's PEM file, else the system's
//! roots), `redis+sentinel://s1:26379,s2:26379/mymaster` or
//! `redis+cluster://n1:6379,n2:6379`. The server does not start without Redis (a `PING`,
//! which also makes the connection); later it fails closed (503) while Redis is unreachable.
//! Otherwise an in-memory guard of 100,000 entries (one instance only).
//!
//! ```text
//! JG_REDIS_URL=rediss://redis.internal:6380/ JG_REDIS_CA_FILE=/etc/jg/redis-ca.pem \
//!   cargo run --example axum_server --features axum,redis
//! ```
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
use jg_hmac::tower::{
    AsyncReplayGuard, Authenticated, CredentialStore, InMemoryCredentialStore, RequireScopeLayer,
    VerifyLayer,
};
use jg_hmac::{Credential, InMemoryReplayGuard, Secret, SigningKey};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();

    let addr: SocketAddr = std::env::var("JG_ADDR")
        .unwrap_or_else(|_| "127.0.0.1:8080".to_owned())
        .parse()?;

    #[cfg(feature = "postgres")]
    if let (Some(url), Some(kek)) = (
        std::env::var_os("JG_DATABASE_URL"),
        std::env::var_os("JG_KEK_FILE"),
    ) {
        use jg_hmac::postgres::{LocalKek, PgCredentialStore};
        use jg_hmac::tower::CachedStore;

        let url = url
            .into_string()
            .map_err(|_| "JG_DATABASE_URL is not UTF-8")?;
        let mut builder = PgCredentialStore::builder(&url)?.kek(LocalKek::from_file(kek)?);
        if let Some(old) = std::env::var_os("JG_OLD_KEK_FILE") {
            builder = builder.previous_kek(LocalKek::from_file(old)?);
        }
        let store = builder.build()?;
        let cache = CachedStore::new(store.clone());
        let _listener = store.listen(cache.clone()); // revocations reach this instance at once
        eprintln!("credentials: PostgreSQL (cached 30 s, invalidated by NOTIFY)");
        return serve(addr, with_replay_guard(cache).await?).await;
    }

    // In production the store is filled from a database or vault, and refreshed with
    // `store.replace_all(...)`, or replaced by your own `CredentialStore`.
    let store = InMemoryCredentialStore::from_credentials([Credential::new("jk_live_example")
        .with_key(SigningKey::new(
            "0",
            &Secret::from("s3cr3t_test_key_justgold"),
        ))
        .with_scope("transactions:write")]);
    eprintln!("credentials: the in-memory demo credential jk_live_example");
    serve(addr, with_replay_guard(store).await?).await
}

/// The router with the Redis replay guard when `JG_REDIS_URL` is set (feature `redis`),
/// else with an in-memory one.
async fn with_replay_guard<S: CredentialStore>(
    store: S,
) -> Result<Router, Box<dyn std::error::Error>> {
    #[cfg(feature = "redis")]
    if let Some(url) = std::env::var_os("JG_REDIS_URL") {
        let url = url.into_string().map_err(|_| "JG_REDIS_URL is not UTF-8")?;
        let mut guard = jg_hmac::redis::RedisReplayGuard::new(&url)?;
        if let Some(ca) = std::env::var_os("JG_REDIS_CA_FILE") {
            guard = guard.with_ca_file(ca)?;
        }
        // Connect now (TLS handshake included), allowing more than a request's 50 ms.
        let startup = guard
            .clone()
            .with_timeout(std::time::Duration::from_secs(5));
        startup.ping().await?;
        eprintln!("replay guard: Redis (fail closed)");
        return Ok(router(store, guard));
    }
    Ok(router(store, InMemoryReplayGuard::new(100_000)))
}

fn router<S: CredentialStore, R: AsyncReplayGuard>(store: S, guard: R) -> Router {
    let verify = VerifyLayer::builder(store)
        .replay_guard(guard)
        .sandbox_diagnostics(std::env::var_os("JG_SANDBOX").is_some())
        .build();

    Router::new()
        .route("/v1/transactions/buy", post(buy))
        .route_layer(RequireScopeLayer::new("transactions:write")) // 403 insufficient_scope
        .route("/v1/health/secure", get(secure_health))
        .layer(verify) // every route above is verified
        .route("/v1/health", get(|| async { "ok" }))
}

async fn serve(addr: SocketAddr, app: Router) -> Result<(), Box<dyn std::error::Error>> {
    // Installed before the layer serves its first request: it keeps the handles it
    // registers. The route is outside the verifying layer.
    #[cfg(feature = "metrics")]
    let app = app.route("/metrics", get(prometheus()?));
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
