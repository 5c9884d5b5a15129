//! An axum service that verifies JG-HMAC-SHA256 with one `.layer(...)`.
//!
//! ```text
//! cargo run --example axum_server --features axum
//! JG_ADDR=127.0.0.1:9000 cargo run --example axum_server --features axum
//!
//! # Credentials from PostgreSQL (docs/postgres.md): a replica in memory, kept current
//! JG_DATABASE_URL=postgres://jg@127.0.0.1/jg JG_KEK_FILE=/run/secrets/jg-kek \
//!   cargo run --example axum_server --features axum,postgres
//! ```
//!
//! With feature `postgres` and both `JG_DATABASE_URL` and `JG_KEK_FILE` set, credentials
//! come from the database (`jg-hmac keys create ...`): every verifier holds a replica in
//! memory, kept current from the event log. `JG_DATABASE_LISTEN_URL`, a direct connection
//! to the database (when `JG_DATABASE_URL` goes through PgBouncer, the server itself),
//! makes changes arrive at once by LISTEN/NOTIFY; without it the replica polls every
//! second. `JG_OLD_KEK_FILE` adds a decrypt-only KEK during a re-key. Otherwise the
//! in-memory demo credential below.
//!
//! Routes: `GET /v1/health` (unsigned), `GET /v1/health/secure` and
//! `POST /v1/transactions/buy` (signed; the latter echoes the authenticated client id and
//! the JSON it received; it needs scope `transactions:write`). Demo credential: `jk_live_example` / `s3cr3t_test_key_justgold`
//! (the seed spec's). Audit events are printed to stderr. Set `JG_SANDBOX=1` to get the
//! server's string-to-sign in `invalid_signature` answers.
//!
//! Rate limits (docs/rate-limits.md): a partner's own limit comes with its credential
//! (the store's); `JG_RATE_LIMIT` (e.g. `100/s:200`) sets the limit of partners without
//! one, and without it they are not limited. Over the limit: `429 rate_limited` with
//! `Retry-After`; every limited response carries `RateLimit`/`RateLimit-Policy`. With
//! feature `redis` and `JG_REDIS_URL` set, the replay guard and the limiter live in that
//! Redis (one script per request), shared by every instance pointed at it:
//!
//! ```text
//! JG_RATE_LIMIT=100/s:200 JG_REDIS_URL=redis://127.0.0.1:6379/ \
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
    AsyncReplayGuard, Authenticated, CredentialStore, InMemoryCredentialStore, RateLimiter,
    RequireScopeLayer, VerifyLayer,
};
use jg_hmac::{Credential, InMemoryReplayGuard, RateLimit, Secret, SigningKey};
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

        let url = url
            .into_string()
            .map_err(|_| "JG_DATABASE_URL is not UTF-8")?;
        let mut builder = PgCredentialStore::builder(&url)?.kek(LocalKek::from_file(kek)?);
        if let Some(old) = std::env::var_os("JG_OLD_KEK_FILE") {
            builder = builder.previous_kek(LocalKek::from_file(old)?);
        }
        if let Some(direct) = std::env::var_os("JG_DATABASE_LISTEN_URL") {
            let direct = direct
                .into_string()
                .map_err(|_| "JG_DATABASE_LISTEN_URL is not UTF-8")?;
            builder = builder.listen_url(&direct);
        }
        let replica = builder.build()?.replica();
        // Requests get 503 until the replica has loaded; it keeps trying.
        if !replica
            .wait_current(std::time::Duration::from_secs(10))
            .await
        {
            eprintln!("credentials: PostgreSQL not loaded yet (503 until it is)");
        }
        eprintln!(
            "credentials: PostgreSQL, {} clients in memory",
            replica.len()
        );
        return serve(addr, router(replica)?).await;
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
    serve(addr, router(store)?).await
}

/// The verifying layer over `store`, its replay guard and rate limits as the
/// environment says, around the routes.
fn router<S: CredentialStore>(store: S) -> Result<Router, Box<dyn std::error::Error>> {
    let mut builder =
        VerifyLayer::builder(store).sandbox_diagnostics(std::env::var_os("JG_SANDBOX").is_some());
    match std::env::var("JG_RATE_LIMIT") {
        Ok(text) => {
            let limit: RateLimit = text
                .parse()
                .map_err(|e| format!("JG_RATE_LIMIT={text:?}: {e}"))?;
            eprintln!("rate limit of partners without their own: {limit}");
            builder = builder.rate_limit(limit);
        }
        Err(_) => eprintln!("rate limits: only partners with their own (no JG_RATE_LIMIT)"),
    }
    #[cfg(feature = "redis")]
    if let Ok(url) = std::env::var("JG_REDIS_URL") {
        // One guard, both roles: the replay check and the limit in one round trip.
        let redis = jg_hmac::redis::RedisReplayGuard::new(&url)?;
        eprintln!("replay guard and rate limiter: Redis (JG_REDIS_URL)");
        return Ok(routes(
            builder
                .replay_guard(redis.clone())
                .rate_limiter(redis)
                .build(),
        ));
    }
    eprintln!("replay guard and rate limiter: in process");
    Ok(routes(
        builder
            .replay_guard(InMemoryReplayGuard::new(100_000))
            .build(),
    ))
}

fn routes<S, R, L>(verify: VerifyLayer<S, R, L>) -> Router
where
    S: CredentialStore,
    R: AsyncReplayGuard,
    L: RateLimiter,
{
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
