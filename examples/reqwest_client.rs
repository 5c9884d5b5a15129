//! A partner's client: signs two requests with reqwest and sends them to
//! `examples/axum_server.rs`, retrying the GET when it is rate limited (`429`) or the
//! server is unavailable (`503`).
//!
//! ```text
//! cargo run --example axum_server --features axum        # terminal 1
//! cargo run --example reqwest_client --features reqwest  # terminal 2
//! ```
//!
//! Environment: `JG_ADDR` (default `127.0.0.1:8080`), `JG_CLIENT_ID` and `JG_SECRET`
//! (default: the demo credential `jk_live_example` / `s3cr3t_test_key_justgold` that the
//! example server accepts). Never hard-code a real secret.

use std::time::Duration;

use jg_hmac::reqwest::SigningMiddleware;
use jg_hmac::{Secret, Signer};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::var("JG_ADDR").unwrap_or_else(|_| "127.0.0.1:8080".into());
    let client_id = std::env::var("JG_CLIENT_ID").unwrap_or_else(|_| "jk_live_example".into());
    let secret = Secret::from(
        std::env::var("JG_SECRET").unwrap_or_else(|_| "s3cr3t_test_key_justgold".into()),
    );
    let base = format!("http://{addr}");

    let http = reqwest::Client::builder()
        // A redirect would resend the signed headers to a path they do not cover.
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let signer = Signer::new(client_id, &secret)?;
    let client = reqwest_middleware::ClientBuilder::new(http)
        // Retry middleware for other failures, if any, goes here, before the signer, so
        // that every attempt is signed afresh: .with(RetryTransientMiddleware::new_with_policy(policy))
        .with(
            SigningMiddleware::new(signer)
                // 429 and 503: after Retry-After, else a jittered backoff; 4 attempts in
                // all, no wait past 30 s. GET, HEAD, OPTIONS, PUT and DELETE only: the
                // POST below is sent once (add it with `.with_retry_methods(...)` for an
                // endpoint that deduplicates, e.g. on an Idempotency-Key).
                .with_retries(4, Duration::from_secs(30)),
        )
        .build();

    // A GET with a query: the signature covers the canonical (sorted) query.
    let response = client
        .get(format!(
            "{base}/v1/health/secure?z=two&z=three&version=1&a=hello"
        ))
        .send()
        .await?;
    println!("GET /v1/health/secure -> {}", response.status());
    println!("{}", response.text().await?);

    // The seed's POST: the body bytes sent are the bytes hashed.
    let response = client
        .post(format!("{base}/v1/transactions/buy"))
        .header("Content-Type", "application/json")
        .body(r#"{"amount":"5000","transactionId":"12345"}"#)
        .send()
        .await?;
    println!("POST /v1/transactions/buy -> {}", response.status());
    println!("{}", response.text().await?);
    Ok(())
}
