//! What a request refused on its head costs now that the layer attributes it
//! (docs/metrics.md, "Whose series a request counts in"), against an accepted request in
//! the same run.
//!
//! ```text
//! cargo bench --bench refused_head --features axum,metrics   # attribution on
//! cargo bench --bench refused_head --features axum           # off: no observer
//! ```
//!
//! The router of the example (one signed route, an in-memory store) is called directly on
//! one thread, one request at a time; the requests are built in batches outside the timed
//! part, and the figure is the CPU time of the calling thread per request
//! (`CLOCK_THREAD_CPUTIME_ID`), the median over rounds, with its ratio to an accepted
//! request's. The cases: accepted; out of the window and signed by the partner (attributed
//! to it); out of the window and forged with the partner's id (checked, `unknown`); out of
//! the window with an unknown id (a lookup, no body read); in the window and forged
//! (`invalid_signature`: the work an impostor could already cause); each with a 41-byte
//! body, and the last two with a 64 KiB one too. Bounded: a few seconds. Not part of CI.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::routing::post;
use http::Request;
use http_body_util::BodyExt;
use jg_hmac::tower::{InMemoryCredentialStore, VerifyLayer};
use jg_hmac::{Credential, Secret, Signer, SigningKey};
use tower_service::Service;

const T0: u64 = 1_735_550_160;
const CLIENT: &str = "jk_live_example";
const SECRET: &str = "s3cr3t_test_key_justgold";
const ROUNDS: usize = 7;
const N: usize = 4_000;
const BATCH: usize = 200;
const SMALL: &[u8] = br#"{"amount":"5000","transactionId":"12345"}"#;

struct Case {
    name: &'static str,
    client: &'static str,
    secret: &'static str,
    skew: i64,
    body: Vec<u8>,
    status: u16,
}

fn cases() -> Vec<Case> {
    let large = vec![b'7'; 64 * 1024];
    let case = |name, client, secret, skew, body: &[u8], status| Case {
        name,
        client,
        secret,
        skew,
        body: body.to_vec(),
        status,
    };
    vec![
        case("accepted", CLIENT, SECRET, 0, SMALL, 200),
        case("late, the partner's", CLIENT, SECRET, 400, SMALL, 401),
        case("late, forged", CLIENT, "guess", 400, SMALL, 401),
        case("late, unknown id", "jk_live_nobody", "x", 400, SMALL, 401),
        case("on time, forged", CLIENT, "guess", 0, SMALL, 401),
        case("late, forged, 64 KiB", CLIENT, "guess", 400, &large, 401),
        case("on time, forged, 64 KiB", CLIENT, "guess", 0, &large, 401),
    ]
}

fn app() -> Router {
    let store = InMemoryCredentialStore::from_credentials([
        Credential::new(CLIENT).with_key(SigningKey::new("0", &Secret::from(SECRET)))
    ]);
    Router::new()
        .route(
            "/v1/transactions/buy",
            post(|body: Bytes| async move { body.len().to_string() }),
        )
        .layer(VerifyLayer::builder(store).clock(|| T0).build())
}

/// The case's request, the `i`th: each has its own query, so no two are alike.
fn request(case: &Case, i: usize) -> Request<Body> {
    let target = format!("/v1/transactions/buy?n={i}");
    let ts = T0.checked_add_signed(-case.skew).unwrap();
    let signed = Signer::new(case.client, &Secret::from(case.secret))
        .unwrap()
        .sign("POST", &target, &case.body, ts);
    Request::post(target)
        .header("x-client-id", signed.client_id())
        .header("x-timestamp", signed.timestamp())
        .header("x-signature", signed.signature().to_hex())
        .body(Body::from(case.body.clone()))
        .unwrap()
}

/// One request's future, polled once: in process, nothing waits.
fn ready<F: Future>(future: F) -> F::Output {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => unreachable!("an in-process request never waits"),
    }
}

fn thread_cpu_ns() -> u64 {
    let elapsed = cpu_time::ThreadTime::try_now().unwrap().as_duration();
    u64::try_from(elapsed.as_nanos()).unwrap()
}

/// CPU µs per request of `case`.
fn measure(router: &mut Router, case: &Case) -> f64 {
    let mut cpu_ns = 0;
    let mut batch = Vec::with_capacity(BATCH);
    for start in (0..N).step_by(BATCH) {
        batch.extend((start..start + BATCH).map(|i| request(case, i)));
        let started = thread_cpu_ns();
        for request in batch.drain(..) {
            let response = ready(router.call(request)).unwrap();
            assert_eq!(response.status(), case.status, "{}", case.name);
            ready(response.into_body().collect()).unwrap();
        }
        cpu_ns += thread_cpu_ns() - started;
    }
    cpu_ns as f64 / 1e3 / N as f64
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    // The layer's request deadline is a Tokio timer: poll inside the runtime's context.
    let _context = runtime.enter();
    let cases = cases();
    let mut router = app();
    let mut figures: Vec<Vec<f64>> = vec![Vec::new(); cases.len()];
    for _ in 0..ROUNDS {
        for (case, figure) in cases.iter().zip(&mut figures) {
            figure.push(measure(&mut router, case));
        }
    }
    println!(
        "attribution {} (feature metrics: {})",
        if cfg!(feature = "metrics") {
            "on"
        } else {
            "off"
        },
        cfg!(feature = "metrics")
    );
    let median = |f: &mut Vec<f64>| {
        f.sort_by(f64::total_cmp);
        f[f.len() / 2]
    };
    let accepted = median(&mut figures[0].clone());
    for (case, figure) in cases.iter().zip(&mut figures) {
        let us = median(figure);
        println!(
            "{:<26} {:>7.2} µs CPU/request  {:>5.2}× accepted",
            case.name,
            us,
            us / accepted
        );
    }
}
