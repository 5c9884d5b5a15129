//! Per-partner rate limits in the deployed shape: real servers on 127.0.0.1, raw-socket
//! clients, exact counts of 200 and 429 per partner.
//!
//! In one process the limiter's clock is injected (nanoseconds, stopped unless a test
//! moves it), so every count is exact. Across a fleet, two layer instances share one
//! real `redis-server` (started by the test; `SKIPPED` without one unless `CI` is set);
//! their limits are in requests per hour, so Redis's own clock adds no budget while the
//! test runs and the counts are exact too.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::routing::post;
use jg_hmac::redis::{FailMode, RedisReplayGuard};
use jg_hmac::tower::{
    AsyncReplayGuard, InMemoryCredentialStore, InMemoryRateLimiter, RateLimiter, VerifyLayer,
};
use jg_hmac::{Credential, InMemoryReplayGuard, RateLimit, Secret, SigningKey};

#[macro_use]
#[path = "support/redis.rs"]
mod redis_support;
mod support;

use redis_support::{RedisServer, cli};
use support::raw::signed;
use support::{BUY, CLIENT, OTHER, OTHER_SECRET, Reply, SECRET, T0, serve};

/// A partner whose credential has no limit of its own: the layer's default applies.
const THIRD: &str = "jk_live_third";
const THIRD_SECRET: &str = "third_partner_secret";

fn limit(text: &str) -> RateLimit {
    text.parse().unwrap()
}

/// CLIENT at 1/min with bursts of 5, OTHER at 1/min with bursts of 50, THIRD without a
/// limit of its own.
fn store() -> InMemoryCredentialStore {
    let key = |secret: &str| SigningKey::new("0", &Secret::from(secret));
    InMemoryCredentialStore::from_credentials([
        Credential::new(CLIENT)
            .with_key(key(SECRET))
            .with_rate_limit(limit("1/min:5")),
        Credential::new(OTHER)
            .with_key(key(OTHER_SECRET))
            .with_rate_limit(limit("1/min:50")),
        Credential::new(THIRD).with_key(key(THIRD_SECRET)),
    ])
}

/// The example's route behind `layer`, served on 127.0.0.1.
async fn server<R: AsyncReplayGuard, L: RateLimiter>(
    layer: VerifyLayer<InMemoryCredentialStore, R, L>,
) -> SocketAddr {
    serve(
        Router::new()
            .route("/v1/transactions/buy", post(|| async { "ok" }))
            .layer(layer),
    )
    .await
}

/// A stopped nanosecond clock for the limiter, moved by hand.
fn limiter_clock() -> (
    Arc<AtomicU64>,
    impl Fn() -> Duration + Send + Sync + 'static,
) {
    let now = Arc::new(AtomicU64::new(0));
    let clock = {
        let now = now.clone();
        move || Duration::from_nanos(now.load(Ordering::SeqCst))
    };
    (now, clock)
}

/// One instance: the replay guard and the limiter in process, the limiter's clock
/// stopped at 0 (moved through the returned handle), the layer's at T0.
async fn one_instance(default: Option<RateLimit>) -> (Arc<AtomicU64>, SocketAddr) {
    let (now, clock) = limiter_clock();
    let mut builder = VerifyLayer::builder(store())
        .clock(|| T0)
        .replay_guard(InMemoryReplayGuard::new(10_000))
        .rate_limiter(InMemoryRateLimiter::new(100).with_clock(clock));
    if let Some(limit) = default {
        builder = builder.rate_limit(limit);
    }
    (now, server(builder.build()).await)
}

/// Request `n` of `who`: a distinct signature each (the query differs), signed at T0.
async fn buy(addr: SocketAddr, who: (&str, &str), n: usize) -> Reply {
    let target = format!("/v1/transactions/buy?n={n}");
    signed("POST", &target, &target, BUY, T0, who)
        .send(addr)
        .await
}

/// (accepted, rate limited) of `replies`; any other answer fails the test.
fn counts(replies: &[Reply]) -> (usize, usize) {
    let mut counted = (0, 0);
    for reply in replies {
        match reply.status {
            200 => counted.0 += 1,
            429 => {
                reply.assert_refused(429, "rate_limited");
                counted.1 += 1;
            }
            _ => panic!("neither 200 nor 429: {reply:?}"),
        }
    }
    counted
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_partner_gets_exactly_its_limit_with_the_drafts_headers() {
    let (now, addr) = one_instance(Some(limit("1/min:3"))).await;

    // CLIENT: its own limit, a burst of 5.
    let first = buy(addr, (CLIENT, SECRET), 0).await;
    first.assert_ok();
    assert_eq!(
        first.header("ratelimit-policy"),
        Some("\"partner\";q=1;w=60;jg-burst=5")
    );
    assert_eq!(first.header("ratelimit"), Some("\"partner\";r=4;t=60"));
    assert_eq!(first.header("retry-after"), None);
    let mut replies = Vec::new();
    for n in 1..8 {
        replies.push(buy(addr, (CLIENT, SECRET), n).await);
    }
    assert_eq!(counts(&replies), (4, 3));
    let remaining: Vec<_> = replies
        .iter()
        .map(|r| r.header("ratelimit").unwrap())
        .collect();
    assert_eq!(
        remaining[..5],
        [
            "\"partner\";r=3;t=60",
            "\"partner\";r=2;t=60",
            "\"partner\";r=1;t=60",
            "\"partner\";r=0;t=60",
            "\"partner\";r=0;t=60",
        ]
    );
    let refused = &replies[4];
    assert_eq!(refused.header("retry-after"), Some("60"));
    assert_eq!(
        refused.header("ratelimit-policy"),
        Some("\"partner\";q=1;w=60;jg-burst=5")
    );
    assert_eq!(refused.json()["status"], 429);
    assert!(refused.json()["requestId"].is_string());

    // THIRD: no limit of its own, the layer's default (bursts of 3).
    let mut replies = Vec::new();
    for n in 0..5 {
        replies.push(buy(addr, (THIRD, THIRD_SECRET), n).await);
    }
    assert_eq!(counts(&replies), (3, 2));
    assert_eq!(
        replies[0].header("ratelimit-policy"),
        Some("\"partner\";q=1;w=60;jg-burst=3")
    );

    // 30 s later CLIENT still waits 30 s; 60 s later one more request is allowed.
    now.store(30_000_000_000, Ordering::SeqCst);
    let early = buy(addr, (CLIENT, SECRET), 100).await;
    early.assert_refused(429, "rate_limited");
    assert_eq!(early.header("retry-after"), Some("30"));
    now.store(60_000_000_000, Ordering::SeqCst);
    let replies = [
        buy(addr, (CLIENT, SECRET), 101).await,
        buy(addr, (CLIENT, SECRET), 102).await,
    ];
    assert_eq!(counts(&replies), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_default_and_no_limit_of_its_own_means_no_limit_and_no_headers() {
    let addr = server(VerifyLayer::builder(store()).clock(|| T0).build()).await;
    let mut replies = Vec::new();
    for n in 0..20 {
        replies.push(buy(addr, (THIRD, THIRD_SECRET), n).await);
    }
    assert_eq!(counts(&replies), (20, 0));
    assert!(replies.iter().all(|r| r.header("ratelimit").is_none()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impostors_and_replays_spend_nothing_of_a_partners_budget() {
    let (_, addr) = one_instance(None).await;
    // 100 forged requests carrying CLIENT's id: refused, no rate headers, nothing spent.
    for n in 0..100 {
        let forged = buy(addr, (CLIENT, "not-the-partners-secret"), n).await;
        forged.assert_refused(401, "invalid_signature");
        assert_eq!(forged.header("ratelimit"), None);
    }
    // A genuine request, then 20 replays of it: refused as replays, nothing spent.
    let target = "/v1/transactions/buy?n=1000";
    let captured = signed("POST", target, target, BUY, T0, (CLIENT, SECRET));
    let first = captured.send(addr).await;
    first.assert_ok();
    assert_eq!(first.header("ratelimit"), Some("\"partner\";r=4;t=60"));
    for _ in 0..20 {
        captured
            .send(addr)
            .await
            .assert_refused(401, "replayed_request");
    }
    // The partner still has the rest of its burst: exactly 4 more.
    let mut replies = Vec::new();
    for n in 0..6 {
        replies.push(buy(addr, (CLIENT, SECRET), n).await);
    }
    assert_eq!(counts(&replies), (4, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_partner_flooding_neither_refuses_nor_spends_another() {
    let (_, addr) = one_instance(None).await;
    // CLIENT floods from 8 concurrent connections while OTHER sends its 50.
    let flood: Vec<_> = (0..8)
        .map(|t| {
            tokio::spawn(async move {
                let mut replies = Vec::new();
                for k in 0..40 {
                    replies.push(buy(addr, (CLIENT, SECRET), t * 1000 + k).await);
                }
                replies
            })
        })
        .collect();
    let mut other = Vec::new();
    for n in 0..52 {
        other.push(buy(addr, (OTHER, OTHER_SECRET), n).await);
    }
    let mut flooded = Vec::new();
    for task in flood {
        flooded.extend(task.await.unwrap());
    }
    assert_eq!(counts(&flooded), (5, 315), "CLIENT gets its burst, no more");
    assert_eq!(counts(&other), (50, 2), "OTHER gets all of its own");
    assert!(other[..50].iter().all(|r| r.status == 200));
}

// ---------------------------------------------------------------- a fleet on Redis

/// One instance of the fleet: its own store, its own connection to the shared Redis,
/// the guard as replay guard and as limiter (one script per request).
async fn fleet_instance(redis: &RedisServer, fail_mode: FailMode) -> SocketAddr {
    let guard = RedisReplayGuard::new(&redis.url())
        .unwrap()
        .with_timeout(Duration::from_secs(1))
        .with_fail_mode(fail_mode);
    server(
        VerifyLayer::builder(store())
            .clock(|| T0)
            .replay_guard(guard.clone())
            .rate_limiter(guard)
            .rate_limit(limit("1/h:100"))
            .build(),
    )
    .await
}

/// Successful `cmdstat_<name>` calls from Redis's `INFO commandstats` (calls, less
/// those that failed or were rejected, such as an `EVALSHA` answered `NOSCRIPT`).
fn calls(port: u16, name: &str) -> u64 {
    let stats = cli(port, &["INFO", "commandstats"]);
    let Some(line) = stats
        .lines()
        .find_map(|l| l.strip_prefix(&format!("cmdstat_{name}:")))
    else {
        return 0;
    };
    let field = |key: &str| -> u64 {
        line.split(',')
            .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
            .map_or(0, |v| v.trim().parse().unwrap())
    };
    field("calls") - field("failed_calls") - field("rejected_calls")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_redis_enforce_one_budget_per_partner() {
    let redis = redis_or_skip!();
    let a = fleet_instance(&redis, FailMode::Closed).await;
    let b = fleet_instance(&redis, FailMode::Closed).await;

    // CLIENT (bursts of 5) and OTHER (bursts of 50) and THIRD (the default: 100), each
    // sending 3 times its budget, alternately to the two instances, concurrently.
    // (id, secret, budget, Retry-After once it is spent: the interval, 60 s or 1 h).
    let partners = [
        (CLIENT, SECRET, 5usize, "60"),
        (OTHER, OTHER_SECRET, 50, "60"),
        (THIRD, THIRD_SECRET, 100, "3600"),
    ];
    let tasks: Vec<_> = partners
        .iter()
        .flat_map(|&(id, secret, budget, _)| {
            (0..4).map(move |t| {
                tokio::spawn(async move {
                    let mut replies = Vec::new();
                    for k in 0..(3 * budget).div_ceil(4) {
                        let n = t * 10_000 + k;
                        let to = if n % 2 == 0 { a } else { b };
                        replies.push(buy(to, (id, secret), n).await);
                    }
                    (id, replies)
                })
            })
        })
        .collect();
    let mut by_partner: Vec<(&str, Vec<Reply>)> =
        partners.iter().map(|p| (p.0, Vec::new())).collect();
    for task in tasks {
        let (id, replies) = task.await.unwrap();
        by_partner
            .iter_mut()
            .find(|p| p.0 == id)
            .unwrap()
            .1
            .extend(replies);
    }
    for ((id, replies), (_, _, budget, retry)) in by_partner.iter().zip(partners) {
        let (ok, limited) = counts(replies);
        eprintln!(
            "{id}: {ok} accepted, {limited} refused of {} (budget {budget})",
            replies.len()
        );
        // The bound is 5% of the budget; with a limit per hour the count is exact.
        assert!(
            ok.abs_diff(budget) * 20 <= budget,
            "{id}: {ok} accepted, budget {budget}"
        );
        assert_eq!(ok, budget, "{id}");
        let refused = replies.iter().find(|r| r.status == 429).unwrap();
        assert_eq!(refused.header("retry-after"), Some(retry), "{id}");
        assert!(
            refused
                .header("ratelimit")
                .unwrap()
                .starts_with("\"partner\";r=0;t="),
            "{refused:?}"
        );
    }

    // One script per verified request: one round trip for the replay check and the
    // limit (the first calls of each instance may be answered `NOSCRIPT` and retried
    // once the script is loaded; those are not counted).
    let verified: u64 = by_partner.iter().map(|p| p.1.len() as u64).sum();
    assert_eq!(calls(redis.port, "evalsha"), verified);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_fails_as_the_operator_chose() {
    let mut redis = redis_or_skip!();
    let guard = |mode| {
        RedisReplayGuard::new(&redis.url())
            .unwrap()
            .with_timeout(Duration::from_millis(200))
            .with_fail_mode(mode)
    };
    // The limiter alone on Redis (the replay guard in process), and both on Redis.
    let limiter_only = server(
        VerifyLayer::builder(store())
            .clock(|| T0)
            .replay_guard(InMemoryReplayGuard::new(1_000))
            .rate_limiter(guard(FailMode::Closed))
            .build(),
    )
    .await;
    let combined = fleet_instance(&redis, FailMode::Closed).await;
    let open = fleet_instance(&redis, FailMode::Open).await;
    for (n, addr) in [limiter_only, combined, open].into_iter().enumerate() {
        let reply = buy(addr, (CLIENT, SECRET), n).await;
        reply.assert_ok();
        assert!(reply.header("ratelimit").is_some(), "{reply:?}");
    }

    redis.stop();
    buy(limiter_only, (CLIENT, SECRET), 10)
        .await
        .assert_refused(503, "rate_limiter_unavailable");
    buy(combined, (CLIENT, SECRET), 11)
        .await
        .assert_refused(503, "replay_guard_unavailable");
    // Fail open: accepted, without a limit and so without RateLimit headers.
    let reply = buy(open, (CLIENT, SECRET), 12).await;
    reply.assert_ok();
    assert_eq!(reply.header("ratelimit"), None);
}

// ---------------------------------------------------------------- the example server

/// A running `examples/axum_server` (killed on drop) and the address it listens on.
struct ExampleServer {
    child: std::process::Child,
    addr: SocketAddr,
}

impl ExampleServer {
    /// The example built by `cargo test` (next to this test's binary), started with `env`;
    /// `None` (SKIPPED) when it was not built with feature `redis` and `CI` is unset.
    fn start(env: &[(&str, &str)]) -> Option<Self> {
        use std::io::BufRead;
        let exe = std::env::current_exe().unwrap();
        let binary = exe
            .parent()
            .unwrap()
            .parent()
            .unwrap()
            .join("examples/axum_server");
        let child = std::process::Command::new(&binary)
            .env("JG_ADDR", "127.0.0.1:0")
            .envs(env.iter().copied())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e} (cargo test builds it)", binary.display()));
        // Killed and waited for on drop, whatever happens next.
        let mut server = Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        let stderr = server.child.stderr.take().unwrap();
        let mut lines = std::io::BufReader::new(stderr).lines();
        let mut on_redis = false;
        for line in lines.by_ref() {
            let line = line.unwrap();
            on_redis |= line.contains("rate limiter: Redis");
            if let Some(addr) = line.strip_prefix("listening on http://") {
                server.addr = addr.trim().parse().unwrap();
                // Keep draining its stderr (audit events) so that it never blocks.
                std::thread::spawn(move || lines.for_each(drop));
                if !on_redis {
                    assert!(
                        std::env::var_os("CI").is_none(),
                        "the example was built without feature redis"
                    );
                    eprintln!("SKIPPED: examples/axum_server was built without feature redis");
                    return None;
                }
                return Some(server);
            }
        }
        panic!("the example server exited before listening");
    }
}

impl Drop for ExampleServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_example_servers_on_one_redis_share_the_default_limit() {
    let redis = redis_or_skip!();
    let url = redis.url();
    let env = [("JG_RATE_LIMIT", "1/h:20"), ("JG_REDIS_URL", url.as_str())];
    let Some(a) = ExampleServer::start(&env) else {
        return;
    };
    let b = ExampleServer::start(&env).unwrap();
    // The demo credential has no limit of its own: JG_RATE_LIMIT applies, across both.
    let now = jg_hmac::Clock::now(&jg_hmac::SystemClock);
    let mut replies = Vec::new();
    for n in 0..60 {
        let to = if n % 2 == 0 { a.addr } else { b.addr };
        let target = format!("/v1/transactions/buy?n={n}");
        let request = signed("POST", &target, &target, BUY, now, (CLIENT, SECRET));
        replies.push(request.send(to).await);
    }
    let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        20,
        "{statuses:?}"
    );
    assert_eq!(counts(&replies), (20, 40));
    assert_eq!(
        replies[19].header("ratelimit"),
        Some("\"partner\";r=0;t=3600")
    );
    assert_eq!(replies[20].header("retry-after"), Some("3600"));
    assert_eq!(
        replies[20].header("ratelimit-policy"),
        Some("\"partner\";q=1;w=3600;jg-burst=20")
    );
}
