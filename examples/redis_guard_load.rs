//! The per-request cost of the Redis replay guard: a bounded load run of
//! `check_and_record` calls from concurrent tasks against a Redis, with per-call
//! latencies (median, p99), beside two baselines from the same run: a bare `PING` round
//! trip on the same connection, and the in-process `InMemoryReplayGuard`. And the fleet's
//! per-request step when the guard is also the rate limiter: the replay check and the
//! GCRA in one Lua script (`RateLimiter::check_and_acquire`), against the same `PING`.
//!
//! ```text
//! redis-server --port 6390 --save '' --appendonly no &
//! cargo run --release --features redis --example redis_guard_load -- redis://127.0.0.1:6390/
//! ```
//!
//! Optional arguments after the URL: number of calls (default 20000), tasks (default 8).
//! Keys are written under a prefix of their own and expire after 10 s.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jg_hmac::redis::RedisReplayGuard;
use jg_hmac::tower::{AsyncReplayGuard, RateLimiter};
use jg_hmac::{InMemoryReplayGuard, RateLimit, Signature};

/// A limit no load run reaches: every request is checked and allowed.
fn unlimited() -> RateLimit {
    RateLimit::per_second(1_000_000_000, 1_000_000).unwrap()
}

#[derive(Clone, Copy)]
enum Op {
    Ping,
    Redis,
    InMemory,
    /// The replay check and the rate limit in one script.
    Limited,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let url = args
        .first()
        .cloned()
        .or_else(|| std::env::var("JG_REDIS_URL").ok())
        .unwrap_or_else(|| "redis://127.0.0.1:6379/".to_owned());
    let calls: usize = args.get(1).map_or(20_000, |n| n.parse().unwrap());
    let tasks: usize = args.get(2).map_or(8, |n| n.parse().unwrap());
    let run = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let guard = RedisReplayGuard::new(&url)
        .unwrap()
        .with_key_prefix(format!("jg:load:{run}:"))
        .with_clock_skew(0)
        .with_timeout(Duration::from_secs(1));
    guard.ping().await.expect("redis answers PING");
    // One client sends every call: its share is the whole guard.
    let memory = Arc::new(InMemoryReplayGuard::new(calls + 1).with_client_limit(calls + 1));
    println!("{calls} calls from {tasks} concurrent tasks, {url}");
    println!(
        "{:<28} {:>10} {:>10} {:>10} {:>12} {:>8}",
        "operation", "median µs", "p99 µs", "max µs", "calls/s", ">50 ms"
    );

    let mut medians = Vec::new();
    // Warm up the connection and the allocator, then measure each in turn.
    let _ = measure(Op::Redis, &guard, &memory, 2_000, tasks, 1).await;
    for (name, op, salt) in [
        ("PING (round-trip floor)", Op::Ping, 2),
        ("RedisReplayGuard SET NX EX", Op::Redis, 3),
        ("InMemoryReplayGuard", Op::InMemory, 4),
        ("guard + limit (one script)", Op::Limited, 5),
    ] {
        let (mut lat, wall) = measure(op, &guard, &memory, calls, tasks, salt).await;
        lat.sort_unstable();
        let q = |p: f64| lat[((lat.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1e6;
        let rate = calls as f64 / wall.as_secs_f64();
        // Calls the default timeout (50 ms) would have cut off.
        let slow = lat
            .iter()
            .filter(|d| **d > Duration::from_millis(50))
            .count();
        println!(
            "{name:<28} {:>10.1} {:>10.1} {:>10.1} {:>12.0} {slow:>8}",
            q(0.5),
            q(0.99),
            q(1.0),
            rate
        );
        medians.push((q(0.5), q(0.99)));
    }
    let (ping, set, limited) = (medians[0], medians[1], medians[3]);
    println!(
        "guard / PING: median {:.2}x, p99 {:.2}x",
        set.0 / ping.0,
        set.1 / ping.1
    );
    println!(
        "guard + limit / PING: median {:.2}x, p99 {:.2}x",
        limited.0 / ping.0,
        limited.1 / ping.1
    );
}

/// `calls` operations from `tasks` tasks: each call's latency, and the wall time.
async fn measure(
    op: Op,
    guard: &RedisReplayGuard,
    memory: &Arc<InMemoryReplayGuard>,
    calls: usize,
    tasks: usize,
    salt: u8,
) -> (Vec<Duration>, Duration) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let started = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let guard = guard.clone();
            let memory = Arc::clone(memory);
            let share = calls / tasks + usize::from(t < calls % tasks);
            tokio::spawn(async move {
                let mut lat = Vec::with_capacity(share);
                for i in 0..share {
                    // A distinct signature per call: every call is a new request.
                    let mut bytes = [salt; 32];
                    bytes[..8].copy_from_slice(&(t as u64).to_be_bytes());
                    bytes[8..16].copy_from_slice(&(i as u64).to_be_bytes());
                    let sig = Signature::from_bytes(bytes);
                    let begin = Instant::now();
                    match op {
                        Op::Ping => guard.ping().await.unwrap(),
                        Op::Redis => guard
                            .check_and_record("jk_live_load", &sig, now + 10, now)
                            .await
                            .unwrap(),
                        Op::Limited => {
                            let decision = guard
                                .check_and_acquire(
                                    &guard,
                                    "jk_live_load",
                                    &sig,
                                    now + 10,
                                    now,
                                    Some(unlimited()),
                                )
                                .await
                                .unwrap()
                                .unwrap();
                            assert!(decision.is_allowed());
                        }
                        Op::InMemory => AsyncReplayGuard::check_and_record(
                            &memory,
                            "jk_live_load",
                            &sig,
                            now + 10,
                            now,
                        )
                        .await
                        .unwrap(),
                    }
                    lat.push(begin.elapsed());
                }
                lat
            })
        })
        .collect();
    let mut all = Vec::with_capacity(calls);
    for handle in handles {
        all.extend(handle.await.unwrap());
    }
    (all, started.elapsed())
}
