//! What the verifying layer costs per request, against the same axum service without it.
//!
//! ```text
//! cargo bench --bench layer_overhead --features axum,metrics
//! cargo bench --bench layer_overhead --features axum,metrics,postgres   # with layer+replica
//! ```
//!
//! The same pre-signed `POST /v1/transactions/buy` requests go to services that differ
//! only in their layer: `baseline` (no layer), `layer` (`VerifyLayer`), `layer+metrics`
//! (the same, its metrics recorded by a real Prometheus recorder), `layer+replay` (with an
//! `InMemoryReplayGuard`), `layer+cache` (over a `CachedStore`), `layer+limit` (a rate
//! limit checked by the in-process `InMemoryRateLimiter` for every request, with its
//! `RateLimit` headers) and, with feature
//! `postgres` and PostgreSQL's server binaries installed, `layer+replica` (over the
//! PostgreSQL credential replica of a throwaway local cluster, loaded before the run: its
//! lookups read memory only). **Every service has the
//! same handler** (it returns the body's length), so the difference to the baseline is the
//! layer alone: none of the handlers reads the `Authenticated` the layer inserts.
//!
//! Two measurements:
//! 1. **in process**: the router called directly, one request at a time, response body
//!    collected: the CPU time of the calling thread (`CLOCK_THREAD_CPUTIME_ID`, so other
//!    load on the machine does not count) and the wall time. The requests are built in
//!    batches of [`BATCH`] *outside* the timed part, so the baseline's figure is the bare
//!    router's work (the cost of building one request is printed apart);
//! 2. **loopback**: a real server on 127.0.0.1 and a hyper client with 4 concurrent
//!    connections: median and p99 latency per request, and throughput.
//!
//! **Metrics.** A global recorder is per process, so with feature `metrics` the bench
//! installs one for the whole process: a Prometheus recorder (`build_recorder()`, with the
//! buckets of `jg_hmac::metrics`) behind a switch. The layer registers its handles on its
//! first requests and keeps them, so the switch is on only while `layer+metrics` runs
//! (its layer gets real Prometheus handles); every other layer gets the no-op handles of
//! a process without a recorder. So `layer`, `layer+replay` and `layer+cache` are the
//! metrics code with nothing recording (the clock reads and handle lookups are still
//! made: build without `metrics` for a layer without that code, and `layer+metrics` is
//! then skipped). The recorder's upkeep (what a scrape does) runs between measurements,
//! outside the timed part; the bench checks that the scrape counts every request of
//! `layer+metrics`.
//!
//! Configurations are interleaved over several rounds; each figure is the median over
//! rounds, and every ratio is to the baseline of the same run. Bounded: about 15 s on 2
//! cores. Not part of CI.
//!
//! **Where the time goes.** `layer_overhead probe <service> <n>` (the bench binary, run
//! directly) sends `n` pre-built requests to one service in the function `probe_loop`,
//! polled once each with a no-op waker (no runtime), for `valgrind --tool=callgrind
//! --toggle-collect='*probe_loop*'`; the difference between two services' instruction
//! counts is the layer's:
//!
//! ```text
//! CARGO_PROFILE_BENCH_DEBUG=line-tables-only cargo bench --bench layer_overhead \
//!     --features axum,metrics --no-run   # prints the binary's path
//! valgrind --tool=callgrind --toggle-collect='*probe_loop*' <binary> probe layer+metrics 20000
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::OnceLock;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::routing::{get, post};
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use jg_hmac::tower::{CachedStore, CredentialStore, InMemoryCredentialStore, VerifyLayer};
use jg_hmac::{
    Clock, Credential, InMemoryReplayGuard, RateLimit, Secret, Signer, SigningKey, SystemClock,
};
use tower_service::Service;

const ROUNDS: usize = 7;
const IN_PROCESS_N: usize = 40_000;
const WARM_UP: usize = 1_000;
/// Requests built ahead of each timed batch (small enough to stay in cache).
const BATCH: usize = 250;
const LOOPBACK_N: usize = 4_200;
const CONNECTIONS: usize = 4;
const BODY: &[u8] = br#"{"amount":"5000","transactionId":"12345"}"#;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Config {
    Baseline,
    Layer,
    LayerMetrics,
    LayerReplay,
    LayerCache,
    LayerLimit,
    LayerReplica,
}

impl Config {
    /// The configurations of this build (`layer+metrics` needs feature `metrics`).
    fn all() -> Vec<Config> {
        [
            Config::Baseline,
            Config::Layer,
            Config::LayerMetrics,
            Config::LayerReplay,
            Config::LayerCache,
            Config::LayerLimit,
            Config::LayerReplica,
        ]
        .into_iter()
        .filter(|c| *c != Config::LayerMetrics || cfg!(feature = "metrics"))
        .filter(|c| *c != Config::LayerReplica || replica_case::replica().is_some())
        .collect()
    }

    fn name(self) -> &'static str {
        match self {
            Config::Baseline => "baseline",
            Config::Layer => "layer",
            Config::LayerMetrics => "layer+metrics",
            Config::LayerReplay => "layer+replay",
            Config::LayerCache => "layer+cache",
            Config::LayerLimit => "layer+limit",
            Config::LayerReplica => "layer+replica",
        }
    }
}

/// The one handler of every configuration: the same work with or without the layer.
async fn handler(body: Bytes) -> String {
    body.len().to_string()
}

/// The example's signed route, with or without verification.
fn app(config: Config) -> Router {
    let store = InMemoryCredentialStore::from_credentials([
        Credential::new("jk_live_example").with_key(SigningKey::new("0", &secret()))
    ]);
    let router = Router::new()
        .route("/v1/transactions/buy", post(handler))
        .route("/v1/health", get(|| async { "ok" }));
    match config {
        Config::Baseline => router,
        Config::Layer | Config::LayerMetrics => router.layer(VerifyLayer::new(store)),
        Config::LayerReplay => router.layer(
            VerifyLayer::builder(store)
                .replay_guard(InMemoryReplayGuard::new(100_000))
                .build(),
        ),
        // What a database-backed store (PostgreSQL) looks like once warm: every lookup
        // is a hit of the cache in front of it, which never calls the store behind.
        Config::LayerCache => router.layer(VerifyLayer::new(CachedStore::new(store))),
        // A rate limit every request is checked against (the in-process GCRA, the
        // `RateLimit` headers on every response), high enough that none is refused.
        Config::LayerLimit => router.layer(
            VerifyLayer::builder(store)
                .rate_limit(RateLimit::per_second(1_000_000_000, 1_000_000).unwrap())
                .build(),
        ),
        #[cfg(feature = "postgres")]
        Config::LayerReplica => router.layer(replica_case::layer()),
        #[cfg(not(feature = "postgres"))]
        Config::LayerReplica => unreachable!("layer+replica needs feature postgres"),
    }
}

/// The secret every configuration's client signs with: the one the database issued when
/// `layer+replica` runs.
static SECRET: OnceLock<String> = OnceLock::new();

fn secret() -> Secret {
    Secret::from(
        SECRET
            .get()
            .map_or("s3cr3t_test_key_justgold", String::as_str),
    )
}

#[cfg(feature = "postgres")]
#[path = "common/pg.rs"]
mod pg;

/// `layer+replica` (feature `postgres`): a replica of a throwaway cluster holding the one
/// client, loaded before the run.
#[cfg(feature = "postgres")]
mod replica_case {
    use std::sync::OnceLock;
    use std::time::Duration;

    use jg_hmac::Environment;
    use jg_hmac::postgres::{LocalKek, NewClient, PgCredentialStore, Replica};
    use jg_hmac::tower::VerifyLayer;

    use super::pg;

    static REPLICA: OnceLock<Replica> = OnceLock::new();

    pub fn replica() -> Option<&'static Replica> {
        REPLICA.get()
    }

    pub fn layer() -> VerifyLayer<Replica> {
        VerifyLayer::new(REPLICA.get().unwrap().clone())
    }

    /// Starts the cluster, issues the client, loads the replica; the cluster lives as
    /// long as what is returned. `None` without PostgreSQL.
    pub async fn start() -> Option<impl Drop> {
        let cluster = pg::BenchCluster::start()?;
        let store = PgCredentialStore::builder(&cluster.url())
            .unwrap()
            .kek(LocalKek::from_bytes(&[7; 32]))
            .build()
            .unwrap();
        store.migrate().await.unwrap();
        let issued = store
            .create_client(
                NewClient::new(Environment::Live).client_id("jk_live_example"),
                "bench",
                |_| Ok(()),
            )
            .await
            .unwrap();
        super::SECRET.set(issued.secret_hex().to_owned()).unwrap();
        let replica = store.replica();
        assert!(replica.wait_current(Duration::from_secs(30)).await);
        REPLICA.set(replica).unwrap();
        Some(cluster)
    }
}

#[cfg(not(feature = "postgres"))]
mod replica_case {
    pub fn replica() -> Option<()> {
        None
    }
}

/// The process's metrics recorder (feature `metrics`): a Prometheus recorder that hands
/// out real handles only while switched on, and no-op handles otherwise.
#[cfg(feature = "metrics")]
mod recording {
    use std::sync::atomic::{AtomicBool, Ordering};

    use jg_hmac::metrics::{
        CLOCK_SKEW_BUCKETS, CLOCK_SKEW_SECONDS, LATENCY_BUCKETS, STORE_LOOKUP_SECONDS,
        VERIFY_SECONDS,
    };
    use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString};
    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

    static ON: AtomicBool = AtomicBool::new(false);

    struct Switched(metrics_exporter_prometheus::PrometheusRecorder);

    impl Recorder for Switched {
        fn describe_counter(&self, key: KeyName, unit: Option<metrics::Unit>, d: SharedString) {
            self.0.describe_counter(key, unit, d);
        }
        fn describe_gauge(&self, key: KeyName, unit: Option<metrics::Unit>, d: SharedString) {
            self.0.describe_gauge(key, unit, d);
        }
        fn describe_histogram(&self, key: KeyName, unit: Option<metrics::Unit>, d: SharedString) {
            self.0.describe_histogram(key, unit, d);
        }
        fn register_counter(&self, key: &Key, metadata: &Metadata<'_>) -> Counter {
            if ON.load(Ordering::SeqCst) {
                self.0.register_counter(key, metadata)
            } else {
                Counter::noop()
            }
        }
        fn register_gauge(&self, key: &Key, metadata: &Metadata<'_>) -> Gauge {
            if ON.load(Ordering::SeqCst) {
                self.0.register_gauge(key, metadata)
            } else {
                Gauge::noop()
            }
        }
        fn register_histogram(&self, key: &Key, metadata: &Metadata<'_>) -> Histogram {
            if ON.load(Ordering::SeqCst) {
                self.0.register_histogram(key, metadata)
            } else {
                Histogram::noop()
            }
        }
    }

    /// Installs the recorder for the process, switched off, with the buckets the example
    /// server uses.
    pub fn install() -> PrometheusHandle {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(CLOCK_SKEW_SECONDS.into()), CLOCK_SKEW_BUCKETS)
            .unwrap()
            .set_buckets_for_metric(Matcher::Full(VERIFY_SECONDS.into()), LATENCY_BUCKETS)
            .unwrap()
            .set_buckets_for_metric(Matcher::Full(STORE_LOOKUP_SECONDS.into()), LATENCY_BUCKETS)
            .unwrap()
            .build_recorder();
        let handle = recorder.handle();
        metrics::set_global_recorder(Switched(recorder)).unwrap();
        jg_hmac::metrics::describe();
        handle
    }

    /// Whether handles registered from now on record.
    pub fn switch(on: bool) {
        ON.store(on, Ordering::SeqCst);
    }
}

/// Pre-signed request heads (each unique, so a replay guard accepts all of them).
struct Signed {
    targets: Vec<(String, String, String)>,
}

impl Signed {
    fn new(tag: &str, n: usize) -> Self {
        let signer = Signer::new("jk_live_example", &secret()).unwrap();
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
fn thread_cpu_ns() -> u64 {
    let elapsed = cpu_time::ThreadTime::try_now()
        .expect("CLOCK_THREAD_CPUTIME_ID")
        .as_duration();
    u64::try_from(elapsed.as_nanos()).unwrap()
}

/// Per request, calling the router directly on this thread: (wall µs, CPU µs, CPU µs to
/// build the request). Only `call` and collecting the response body are timed.
async fn in_process(config: Config, round: usize) -> (f64, f64, f64) {
    let mut router = app(config);
    let signed = Signed::new(&format!("p{round}{config:?}"), IN_PROCESS_N);
    for i in 0..WARM_UP {
        let response = router.call(signed.request::<Body>(i, "")).await.unwrap();
        assert_eq!(response.status(), 200);
        response.into_body().collect().await.unwrap();
    }
    let (mut wall_ns, mut cpu_ns, mut build_ns) = (0u128, 0u64, 0u64);
    let mut batch: Vec<Request<Body>> = Vec::with_capacity(BATCH);
    for start in (WARM_UP..IN_PROCESS_N).step_by(BATCH) {
        let built = thread_cpu_ns();
        batch.extend((start..(start + BATCH).min(IN_PROCESS_N)).map(|i| signed.request(i, "")));
        let cpu_start = thread_cpu_ns();
        let wall_start = Instant::now();
        for request in batch.drain(..) {
            let response = router.call(request).await.unwrap();
            debug_assert_eq!(response.status(), 200);
            response.into_body().collect().await.unwrap();
        }
        wall_ns += wall_start.elapsed().as_nanos();
        let cpu_end = thread_cpu_ns();
        cpu_ns += cpu_end - cpu_start;
        build_ns += cpu_start - built;
    }
    let n = (IN_PROCESS_N - WARM_UP) as f64;
    (
        wall_ns as f64 / 1e3 / n,
        cpu_ns as f64 / 1e3 / n,
        build_ns as f64 / 1e3 / n,
    )
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
                    assert_eq!(
                        response.status(),
                        200,
                        "{config:?}: {:?}",
                        response.headers()
                    );
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

/// One request's future, polled once: the in-process services never wait.
fn ready<F: Future>(future: F) -> F::Output {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => unreachable!("an in-process request never waits"),
    }
}

/// `requests` through `router`, each answered and its body collected, on this thread.
fn run(router: &mut Router, requests: Vec<Request<Body>>) -> usize {
    let mut answered = 0;
    for request in requests {
        let response = ready(router.call(request)).unwrap();
        assert_eq!(response.status(), 200);
        answered += ready(response.into_body().collect())
            .unwrap()
            .to_bytes()
            .len();
    }
    answered
}

/// The loop callgrind counts (`--toggle-collect='*probe_loop*'`).
#[inline(never)]
fn probe_loop(router: &mut Router, requests: Vec<Request<Body>>) -> usize {
    run(router, requests)
}

/// `layer_overhead probe <service> <n>`: `n` requests to one service (after a warm-up
/// outside `probe_loop`), for callgrind.
fn probe(name: &str, n: usize) {
    let config = Config::all().into_iter().find(|c| c.name() == name).expect(
        "a service name: baseline, layer, layer+metrics, layer+replay, layer+cache, layer+limit, layer+replica",
    );
    #[cfg(feature = "metrics")]
    let _prometheus = recording::install();
    #[cfg(feature = "metrics")]
    recording::switch(config == Config::LayerMetrics);
    // The layer's request deadline is a Tokio timer: poll inside a runtime's context
    // (nothing waits on it; every request completes in its first poll).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let _context = runtime.enter();
    let mut router = app(config);
    let signed = Signed::new("probe", WARM_UP + n);
    let warm_up = (0..WARM_UP).map(|i| signed.request(i, "")).collect();
    run(&mut router, warm_up);
    let requests = (WARM_UP..WARM_UP + n)
        .map(|i| signed.request(i, ""))
        .collect();
    let answered = std::hint::black_box(probe_loop(&mut router, requests));
    println!("{name}: {n} requests, {answered} bytes answered");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let [_, mode, name, n] = args.as_slice()
        && mode == "probe"
    {
        probe(name, n.parse().expect("a number of requests"));
        return;
    }
    // `cargo bench` passes `--bench`; `cargo test --benches` would pass other flags: run
    // only when benchmarking.
    if !std::env::args().any(|a| a == "--bench") {
        println!(
            "layer_overhead: run with `cargo bench --bench layer_overhead --features axum,metrics`"
        );
        return;
    }
    #[cfg(feature = "metrics")]
    let prometheus = recording::install();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    #[cfg(feature = "postgres")]
    let _cluster = runtime.block_on(replica_case::start());
    let configs = Config::all();
    let started = Instant::now();
    runtime.block_on(async {
        let k_max = configs.len();
        let mut wall = vec![Vec::new(); k_max];
        let mut cpu = vec![Vec::new(); k_max];
        let mut build = Vec::new();
        let mut p50 = vec![Vec::new(); k_max];
        let mut p99 = vec![Vec::new(); k_max];
        let mut rps = vec![Vec::new(); k_max];
        for round in 0..ROUNDS {
            for (k, &config) in configs.iter().enumerate() {
                #[cfg(feature = "metrics")]
                recording::switch(config == Config::LayerMetrics);
                let (w, c, b) = in_process(config, round).await;
                wall[k].push(w);
                cpu[k].push(c);
                build.push(b);
                let l = loopback(config, round).await;
                p50[k].push(l.p50_us);
                p99[k].push(l.p99_us);
                rps[k].push(l.rps);
                #[cfg(feature = "metrics")]
                {
                    recording::switch(false);
                    prometheus.run_upkeep();
                }
            }
        }
        println!(
            "jg-hmac layer overhead: POST /v1/transactions/buy, {}-byte JSON body, same \
             handler everywhere, {ROUNDS} rounds, medians over rounds, ratios to the \
             baseline of this run",
            BODY.len(),
        );
        println!(
            "metrics: {}",
            if cfg!(feature = "metrics") {
                "recorded by a Prometheus recorder for layer+metrics only; the other layers \
                 have no-op handles"
            } else {
                "feature off (layer+metrics skipped)"
            }
        );
        println!(
            "{:<14} {:>17} {:>17} {:>17} {:>17} {:>15}",
            "service", "in-process CPU", "in-process wall", "loopback p50", "loopback p99", "req/s"
        );
        let row = |k: usize| {
            [
                median(cpu[k].clone()),
                median(wall[k].clone()),
                median(p50[k].clone()),
                median(p99[k].clone()),
                median(rps[k].clone()),
            ]
        };
        let base = row(0);
        for (k, &config) in configs.iter().enumerate() {
            let row = row(k);
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
        println!(
            "building one request (not timed above): {:.2} µs CPU, median over every \
             configuration and round",
            median(build)
        );
        cached_lookup().await;
    });
    #[cfg(feature = "metrics")]
    {
        // The layer+metrics layers recorded every request they answered, for real.
        let scrape = prometheus.render();
        let accepted: f64 = scrape
            .lines()
            .filter(|l| l.starts_with("jg_hmac_requests_total{outcome=\"accepted\"}"))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
            .sum();
        let expected = ROUNDS * (IN_PROCESS_N + LOOPBACK_N);
        assert_eq!(accepted as usize, expected, "{scrape}");
        println!(
            "scrape: jg_hmac_requests_total{{outcome=\"accepted\"}} {accepted} (every layer+metrics request)"
        );
    }
    println!("total time: {:.1} s", started.elapsed().as_secs_f64());
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
        rounds.push((thread_cpu_ns() - cpu_start) as f64 / f64::from(N));
    }
    println!(
        "cached lookup (CachedStore hit): {:.0} ns CPU per lookup, median of {ROUNDS} rounds",
        median(rounds)
    );
}
