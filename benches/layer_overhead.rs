//! What the verifying layer costs per request, against the same axum service without it.
//!
//! ```text
//! cargo bench --bench layer_overhead --features axum
//! ```
//!
//! Two measurements, each with the same pre-signed requests sent to three services that
//! differ only in their layer: `baseline` (no layer), `layer` (`VerifyLayer`, no replay
//! guard) and `layer+replay` (with an `InMemoryReplayGuard`):
//! 1. **in process**: the router called directly, one request at a time, body collected:
//!    the cost of the layer with no network in the way, as CPU time of the calling thread
//!    (`CLOCK_THREAD_CPUTIME_ID`, so other load on the machine does not count) and as wall
//!    time;
//! 2. **loopback**: a real server on 127.0.0.1 and a hyper client with 4 concurrent
//!    connections: median and p99 latency per request, and throughput.
//!
//! Configurations are interleaved over several rounds; each figure is the median over
//! rounds, and the overhead is quoted against the baseline of the same run. Bounded:
//! about 10 s on 2 cores. Not part of CI.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::routing::{get, post};
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use jg_hmac::tower::{
    Authenticated, CachedStore, CredentialStore, InMemoryCredentialStore, VerifyLayer,
};
use jg_hmac::{Clock, Credential, InMemoryReplayGuard, Secret, Signer, SigningKey, SystemClock};
use tower_service::Service;

const ROUNDS: usize = 5;
const IN_PROCESS_N: usize = 20_000;
const LOOPBACK_N: usize = 4_000;
const CONNECTIONS: usize = 4;
const BODY: &[u8] = br#"{"amount":"5000","transactionId":"12345"}"#;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Config {
    Baseline,
    Layer,
    LayerReplay,
    LayerCache,
}

impl Config {
    const ALL: [Config; 4] = [
        Config::Baseline,
        Config::Layer,
        Config::LayerReplay,
        Config::LayerCache,
    ];

    fn name(self) -> &'static str {
        match self {
            Config::Baseline => "baseline",
            Config::Layer => "layer",
            Config::LayerReplay => "layer+replay",
            Config::LayerCache => "layer+cache",
        }
    }
}

/// The example's signed route, with or without verification. The baseline handler does
/// the same work minus the identity.
fn app(config: Config) -> Router {
    let store =
        InMemoryCredentialStore::from_credentials([Credential::new("jk_live_example").with_key(
            SigningKey::new("0", &Secret::from("s3cr3t_test_key_justgold")),
        )]);
    match config {
        Config::Baseline => Router::new().route(
            "/v1/transactions/buy",
            post(|body: Bytes| async move { body.len().to_string() }),
        ),
        Config::Layer => Router::new()
            .route(
                "/v1/transactions/buy",
                post(|who: Authenticated, body: Bytes| async move {
                    format!("{} {}", who.client_id(), body.len())
                }),
            )
            .layer(VerifyLayer::new(store)),
        Config::LayerReplay => Router::new()
            .route(
                "/v1/transactions/buy",
                post(|who: Authenticated, body: Bytes| async move {
                    format!("{} {}", who.client_id(), body.len())
                }),
            )
            .layer(
                VerifyLayer::builder(store)
                    .replay_guard(InMemoryReplayGuard::new(100_000))
                    .build(),
            ),
        // What a database-backed store (PostgreSQL) looks like once warm: every lookup
        // is a hit of the cache in front of it, which never calls the store behind.
        Config::LayerCache => Router::new()
            .route(
                "/v1/transactions/buy",
                post(|who: Authenticated, body: Bytes| async move {
                    format!("{} {}", who.client_id(), body.len())
                }),
            )
            .layer(VerifyLayer::new(CachedStore::new(store))),
    }
    .route("/v1/health", get(|| async { "ok" }))
}

/// Pre-signed request heads (each unique, so a replay guard accepts all of them).
struct Signed {
    targets: Vec<(String, String, String)>,
}

impl Signed {
    fn new(tag: &str, n: usize) -> Self {
        let signer =
            Signer::new("jk_live_example", &Secret::from("s3cr3t_test_key_justgold")).unwrap();
        let ts = SystemClock.now();
        let targets = (0..n)
            .map(|i| {
                let target = format!("/v1/transactions/buy?run={tag}&n={i}");
                let signed = signer.sign("POST", &target, BODY, ts);
                (
                    target,
                    signed.timestamp().to_owned(),
                    signed.signature().to_hex(),
                )
            })
            .collect();
        Self { targets }
    }

    fn request<B: From<Bytes>>(&self, i: usize, authority: &str) -> Request<B> {
        let (target, ts, sig) = &self.targets[i];
        Request::post(format!("{authority}{target}"))
            .header("content-type", "application/json")
            .header("x-client-id", "jk_live_example")
            .header("x-timestamp", ts)
            .header("x-signature", sig)
            .body(B::from(Bytes::from_static(BODY)))
            .unwrap()
    }
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// CPU time this thread has run, in ns (`CLOCK_THREAD_CPUTIME_ID`): unlike wall time, it
/// does not count the time other processes on a busy machine take from us. (Linux's
/// `/proc/thread-self/schedstat` is only updated at scheduler ticks on some kernels, which
/// quantised the per-request figure to about 0.2 µs.)
fn thread_cpu_ns() -> Option<u64> {
    let elapsed = cpu_time::ThreadTime::try_now().ok()?.as_duration();
    u64::try_from(elapsed.as_nanos()).ok()
}

/// Time per request calling the router directly on this thread: (wall µs, CPU µs).
async fn in_process(config: Config, round: usize) -> (f64, f64) {
    let mut router = app(config);
    let signed = Signed::new(&format!("p{round}{config:?}"), IN_PROCESS_N);
    // Warm-up.
    for i in 0..1_000 {
        let response = router.call(signed.request::<Body>(i, "")).await.unwrap();
        assert_eq!(response.status(), 200);
        response.into_body().collect().await.unwrap();
    }
    let n = (IN_PROCESS_N - 1_000) as f64;
    let cpu_start = thread_cpu_ns();
    let start = Instant::now();
    for i in 1_000..IN_PROCESS_N {
        let response = router.call(signed.request::<Body>(i, "")).await.unwrap();
        debug_assert_eq!(response.status(), 200);
        response.into_body().collect().await.unwrap();
    }
    let wall = start.elapsed().as_secs_f64() * 1e6 / n;
    let cpu = match (cpu_start, thread_cpu_ns()) {
        (Some(a), Some(b)) => (b - a) as f64 / 1e3 / n,
        _ => wall,
    };
    (wall, cpu)
}

async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

struct Loopback {
    p50_us: f64,
    p99_us: f64,
    rps: f64,
}

/// Latencies and throughput over loopback with `CONNECTIONS` concurrent clients.
async fn loopback(config: Config, round: usize) -> Loopback {
    let addr = serve(app(config)).await;
    let authority = format!("http://{addr}");
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let signed = std::sync::Arc::new(Signed::new(&format!("l{round}{config:?}"), LOOPBACK_N));
    // Warm-up: open the connections.
    for i in 0..200 {
        let response = client.request(signed.request(i, &authority)).await.unwrap();
        assert_eq!(response.status(), 200);
        response.into_body().collect().await.unwrap();
    }
    let per_task = (LOOPBACK_N - 200) / CONNECTIONS;
    let start = Instant::now();
    let tasks: Vec<_> = (0..CONNECTIONS)
        .map(|t| {
            let client = client.clone();
            let signed = std::sync::Arc::clone(&signed);
            let authority = authority.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(per_task);
                for k in 0..per_task {
                    let i = 200 + t * per_task + k;
                    let request = signed.request(i, &authority);
                    let sent = Instant::now();
                    let response = client.request(request).await.unwrap();
                    assert_eq!(response.status(), 200);
                    response.into_body().collect().await.unwrap();
                    latencies.push(sent.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    let wall = start.elapsed();
    all.sort();
    Loopback {
        p50_us: percentile(&all, 0.50).as_secs_f64() * 1e6,
        p99_us: percentile(&all, 0.99).as_secs_f64() * 1e6,
        rps: all.len() as f64 / wall.as_secs_f64(),
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` would pass other flags: run
    // only when benchmarking.
    if !std::env::args().any(|a| a == "--bench") {
        println!("layer_overhead: run with `cargo bench --bench layer_overhead --features axum`");
        return;
    }
    // With the `metrics` feature, the layer records into a real Prometheus recorder, as
    // a service would (its cost is then part of the layer's overhead).
    #[cfg(feature = "metrics")]
    let _metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut wall: [Vec<f64>; 4] = Default::default();
        let mut cpu: [Vec<f64>; 4] = Default::default();
        let mut p50: [Vec<f64>; 4] = Default::default();
        let mut p99: [Vec<f64>; 4] = Default::default();
        let mut rps: [Vec<f64>; 4] = Default::default();
        for round in 0..ROUNDS {
            for (k, config) in Config::ALL.into_iter().enumerate() {
                let (w, c) = in_process(config, round).await;
                wall[k].push(w);
                cpu[k].push(c);
                let l = loopback(config, round).await;
                p50[k].push(l.p50_us);
                p99[k].push(l.p99_us);
                rps[k].push(l.rps);
            }
        }
        println!(
            "jg-hmac layer overhead: POST /v1/transactions/buy, {}-byte JSON body, \
             {ROUNDS} rounds, medians over rounds, metrics {}",
            BODY.len(),
            if cfg!(feature = "metrics") {
                "recorded (Prometheus recorder installed)"
            } else {
                "off"
            }
        );
        println!(
            "{:<14} {:>16} {:>16} {:>17} {:>17} {:>15}",
            "service", "in-process CPU", "in-process wall", "loopback p50", "loopback p99", "req/s"
        );
        let base = [
            median(cpu[0].clone()),
            median(wall[0].clone()),
            median(p50[0].clone()),
            median(p99[0].clone()),
            median(rps[0].clone()),
        ];
        for (k, config) in Config::ALL.into_iter().enumerate() {
            let row = [
                median(cpu[k].clone()),
                median(wall[k].clone()),
                median(p50[k].clone()),
                median(p99[k].clone()),
                median(rps[k].clone()),
            ];
            println!(
                "{:<14} {:>6.2} µs ({:>4.2}x) {:>6.2} µs ({:>4.2}x) {:>7.1} µs ({:>4.2}x) {:>7.0} µs ({:>4.2}x) {:>7.0} ({:>4.2}x)",
                config.name(),
                row[0],
                row[0] / base[0],
                row[1],
                row[1] / base[1],
                row[2],
                row[2] / base[2],
                row[3],
                row[3] / base[3],
                row[4],
                row[4] / base[4],
            );
            if config != Config::Baseline {
                println!(
                    "{:<14} {:+.2} µs CPU per request in process, {:+.1} µs p50 over loopback",
                    "",
                    row[0] - base[0],
                    row[2] - base[2],
                );
            }
        }
        cached_lookup().await;
    });
}

/// One cached credential lookup (a hit), CPU time per lookup: what a `CachedStore` in
/// front of a database store costs per request once warm.
async fn cached_lookup() {
    const N: u32 = 1_000_000;
    let store =
        InMemoryCredentialStore::from_credentials([Credential::new("jk_live_example").with_key(
            SigningKey::new("0", &Secret::from("s3cr3t_test_key_justgold")),
        )]);
    let cache = CachedStore::new(store);
    let mut rounds = Vec::new();
    for _ in 0..ROUNDS {
        assert!(cache.get("jk_live_example").await.unwrap().is_some());
        let cpu_start = thread_cpu_ns();
        for _ in 0..N {
            std::hint::black_box(
                cache
                    .get(std::hint::black_box("jk_live_example"))
                    .await
                    .ok(),
            );
        }
        if let (Some(start), Some(end)) = (cpu_start, thread_cpu_ns()) {
            rounds.push((end - start) as f64 / f64::from(N));
        }
    }
    println!(
        "cached lookup (CachedStore hit): {:.0} ns CPU per lookup, median of {ROUNDS} rounds",
        median(rounds)
    );
}
