//! `jg-hmac gateway` (feature `gateway`): a reverse proxy that verifies every request with
//! the crate's `VerifyLayer` and forwards exactly what it verified, with the client's
//! identity, to one upstream. docs/gateway.md is the operator's guide.
//!
//! - `config`: the flags and `--config FILE`;
//! - `credentials`: the credentials file;
//! - `routes`: `--public` and `--scope` rules;
//! - `store`: the credential store and replay guard behind the layer;
//! - `forward`: forwarding, hop-by-hop headers, 502/504;
//! - `identity`: the identity headers and `X-JG-Identity`;
//! - `serve`: listeners, probes, metrics, signals.
//!
//! - `authz`: `--ext-authz-grpc`, Envoy's ext_authz service (src/bin/jg-hmac/ext_authz/)
//!   on the same layer.

mod authz;
mod config;
mod credentials;
mod forward;
mod identity;
mod routes;
mod serve;
mod store;

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};

pub use config::GatewayArgs;

/// The `tracing` target of the gateway's own events (audit events keep `jg_hmac::audit`).
const LOG_TARGET: &str = "jg_hmac::gateway";

/// Runs the gateway until SIGTERM. Exit codes: 0 after a graceful shutdown, 2 on a usage
/// or configuration error, 1 when serving fails.
pub fn gateway(args: GatewayArgs) -> ExitCode {
    // $JG_HMAC_LOG: the level of what goes to stderr (`warn` keeps refusals and failures,
    // drops the event of each accepted request); `info` by default.
    let level = std::env::var("JG_HMAC_LOG")
        .ok()
        .and_then(|l| l.parse::<tracing::Level>().ok())
        .unwrap_or(tracing::Level::INFO);
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_max_level(level)
        .init();
    let config = match args.resolve() {
        Ok(config) => config,
        Err(message) => {
            eprintln!("jg-hmac: {message}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("jg-hmac: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(serve::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("jg-hmac: {message}");
            ExitCode::from(2)
        }
    }
}

/// Now, in UNIX seconds.
fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A request id for a request the layer did not see (a public route): 16 hex digits,
/// unique in this process.
fn fresh_request_id() -> String {
    use std::hash::{BuildHasher, RandomState};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    thread_local! { static SEED: RandomState = RandomState::new(); }
    let hash = SEED.with(|s| s.hash_one(n));
    format!("{hash:016x}")
}
