//! Metrics for operators (feature `metrics`): what the verifying layer, the replay guards
//! and the credential stores record, through the [`metrics`](https://docs.rs/metrics)
//! facade, so any exporter works.
//!
//! | name | kind | labels | what |
//! |---|---|---|---|
//! | [`REQUESTS_TOTAL`] | counter | `outcome` | every request the layer answered: `accepted` or the wire error code |
//! | [`CLIENT_REQUESTS_TOTAL`] | counter | `client_id`, `outcome` | the same per client id, named only when the request's signature verified under that client's key (accepted or refused all the same: replayed, or out of the window and checked anyway); every other request, `invalid_signature` included, counts as `client_id="unknown"` |
//! | [`CLOCK_SKEW_SECONDS`] | histogram | `client_id` | server time minus `X-Timestamp`, for every request whose timestamp parsed (named as above); positive: the partner's clock is behind |
//! | [`KEY_USED_TOTAL`] | counter | `client_id`, `key_id` | which key each verified signature was made with: a rotation's progress |
//! | [`VERIFY_SECONDS`] | histogram | | the layer's own time per request, from its head to the decision (the body's arrival included, the inner service's time not) |
//! | [`REPLAY_GUARD_ENTRIES`], [`REPLAY_GUARD_CAPACITY`] | gauges | | an `InMemoryReplayGuard`'s fill |
//! | [`REPLAY_GUARD_ERRORS_TOTAL`] | counter | | the Redis guard could not answer (error or timeout) |
//! | [`STORE_LOOKUP_SECONDS`] | histogram | | time a request spent in credential store lookups (one sample per request that reached the store: the lookup on arrival and the one at completion, added; or the one made to attribute a request refused on its head) |
//! | [`STORE_ERRORS_TOTAL`] | counter | | credential store lookups that failed |
//! | [`CREDENTIALS_STALENESS_SECONDS`] | gauge | | seconds since the PostgreSQL credential replica last confirmed it was current (feature `postgres`) |
//!
//! No metric carries a secret, a signature, a query string or a body; the only values
//! taken from requests are client ids a signature verified under, and key ids. A client
//! id is public, so an impostor who sends a partner's id moves none of its series; the
//! audit log keeps the id each request claimed (see `docs/metrics.md`).
//!
//! **Install the recorder before the first request.** The layer keeps the handles it
//! registers (one set per known client), so a recorder installed later sees nothing.
//!
//! Histogram buckets are the exporter's business; [`CLOCK_SKEW_BUCKETS`] and
//! [`LATENCY_BUCKETS`] are the ones the alert rules in `docs/alerts/` assume:
//!
//! ```
//! use jg_hmac::metrics::{CLOCK_SKEW_BUCKETS, CLOCK_SKEW_SECONDS};
//! // e.g. with metrics-exporter-prometheus:
//! // PrometheusBuilder::new()
//! //     .set_buckets_for_metric(Matcher::Full(CLOCK_SKEW_SECONDS.into()), CLOCK_SKEW_BUCKETS)?
//! assert!(CLOCK_SKEW_BUCKETS.contains(&-300.0) && CLOCK_SKEW_BUCKETS.contains(&5.0));
//! ```

use std::sync::OnceLock;

use metrics::{Gauge, Unit};

/// Counter of answered requests, by `outcome` (`accepted` or the wire error code).
///
/// ```
/// assert_eq!(jg_hmac::metrics::REQUESTS_TOTAL, "jg_hmac_requests_total");
/// ```
pub const REQUESTS_TOTAL: &str = "jg_hmac_requests_total";

/// Counter of answered requests, by `client_id` and `outcome`.
///
/// ```
/// assert_eq!(jg_hmac::metrics::CLIENT_REQUESTS_TOTAL, "jg_hmac_client_requests_total");
/// ```
pub const CLIENT_REQUESTS_TOTAL: &str = "jg_hmac_client_requests_total";

/// Histogram of server time minus `X-Timestamp`, in seconds, by `client_id`.
///
/// ```
/// assert_eq!(jg_hmac::metrics::CLOCK_SKEW_SECONDS, "jg_hmac_clock_skew_seconds");
/// ```
pub const CLOCK_SKEW_SECONDS: &str = "jg_hmac_clock_skew_seconds";

/// Counter of verified signatures (accepted or refused all the same) by `client_id` and
/// the `key_id` that matched.
///
/// ```
/// assert_eq!(jg_hmac::metrics::KEY_USED_TOTAL, "jg_hmac_key_used_total");
/// ```
pub const KEY_USED_TOTAL: &str = "jg_hmac_key_used_total";

/// Histogram of the layer's own time per request, in seconds.
///
/// ```
/// assert_eq!(jg_hmac::metrics::VERIFY_SECONDS, "jg_hmac_verify_seconds");
/// ```
pub const VERIFY_SECONDS: &str = "jg_hmac_verify_seconds";

/// Gauge: entries an `InMemoryReplayGuard` holds.
///
/// ```
/// assert_eq!(jg_hmac::metrics::REPLAY_GUARD_ENTRIES, "jg_hmac_replay_guard_entries");
/// ```
pub const REPLAY_GUARD_ENTRIES: &str = "jg_hmac_replay_guard_entries";

/// Gauge: the capacity of an `InMemoryReplayGuard`.
///
/// ```
/// assert_eq!(jg_hmac::metrics::REPLAY_GUARD_CAPACITY, "jg_hmac_replay_guard_capacity");
/// ```
pub const REPLAY_GUARD_CAPACITY: &str = "jg_hmac_replay_guard_capacity";

/// Counter of checks the Redis replay guard could not answer.
///
/// ```
/// assert_eq!(jg_hmac::metrics::REPLAY_GUARD_ERRORS_TOTAL, "jg_hmac_replay_guard_errors_total");
/// ```
pub const REPLAY_GUARD_ERRORS_TOTAL: &str = "jg_hmac_replay_guard_errors_total";

/// Histogram of the time each request spent in credential store lookups, in seconds.
///
/// ```
/// assert_eq!(jg_hmac::metrics::STORE_LOOKUP_SECONDS, "jg_hmac_store_lookup_seconds");
/// ```
pub const STORE_LOOKUP_SECONDS: &str = "jg_hmac_store_lookup_seconds";

/// Counter of failed credential store lookups.
///
/// ```
/// assert_eq!(jg_hmac::metrics::STORE_ERRORS_TOTAL, "jg_hmac_store_errors_total");
/// ```
pub const STORE_ERRORS_TOTAL: &str = "jg_hmac_store_errors_total";

/// Gauge: seconds since a PostgreSQL credential replica last confirmed it was current
/// (grows while the database cannot be reached; past the replica's `max_staleness` its
/// lookups fail with 503).
///
/// ```
/// assert_eq!(
///     jg_hmac::metrics::CREDENTIALS_STALENESS_SECONDS,
///     "jg_hmac_credentials_staleness_seconds"
/// );
/// ```
pub const CREDENTIALS_STALENESS_SECONDS: &str = "jg_hmac_credentials_staleness_seconds";

/// The `client_id` label of every request whose signature did not verify under the key
/// of the client it names (made-up, unknown, malformed or forged ids), so that made-up ids
/// cannot grow the label set and no one but a partner writes to its series.
pub(crate) const UNKNOWN_CLIENT: &str = "unknown";

/// Buckets for [`CLOCK_SKEW_SECONDS`]: fine around 0 (±1, ±2, ±5 s) and dense on the
/// approach to the ±300 s window's edges.
///
/// ```
/// let b = jg_hmac::metrics::CLOCK_SKEW_BUCKETS;
/// assert!(b.windows(2).all(|w| w[0] < w[1]));
/// ```
pub const CLOCK_SKEW_BUCKETS: &[f64] = &[
    -300.0, -290.0, -270.0, -240.0, -180.0, -120.0, -60.0, -30.0, -10.0, -5.0, -2.0, -1.0, 0.0,
    1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 180.0, 240.0, 270.0, 290.0, 300.0,
];

/// Buckets for [`VERIFY_SECONDS`] and [`STORE_LOOKUP_SECONDS`]: 5 µs to 2.5 s.
///
/// ```
/// let b = jg_hmac::metrics::LATENCY_BUCKETS;
/// assert!(b.windows(2).all(|w| w[0] < w[1]));
/// ```
pub const LATENCY_BUCKETS: &[f64] = &[
    0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005,
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Registers the description and unit of every metric with the installed recorder (for
/// the `# HELP` lines of a Prometheus scrape). Optional; call it after installing the
/// recorder.
///
/// ```
/// jg_hmac::metrics::describe(); // without a recorder, does nothing
/// ```
pub fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        REQUESTS_TOTAL,
        Unit::Count,
        "Requests answered by the JG-HMAC layer, by outcome (accepted or the wire error code)"
    );
    describe_counter!(
        CLIENT_REQUESTS_TOTAL,
        Unit::Count,
        "Requests answered by the JG-HMAC layer, by client id (\"unknown\" unless signed with that client's key) and outcome"
    );
    describe_histogram!(
        CLOCK_SKEW_SECONDS,
        Unit::Seconds,
        "Server time minus X-Timestamp; positive when the partner's clock is behind"
    );
    describe_counter!(
        KEY_USED_TOTAL,
        Unit::Count,
        "Verified signatures (accepted or refused all the same) by client id and the key that matched"
    );
    describe_histogram!(
        VERIFY_SECONDS,
        Unit::Seconds,
        "Time the JG-HMAC layer spent on a request, from its head to the decision"
    );
    describe_gauge!(
        REPLAY_GUARD_ENTRIES,
        Unit::Count,
        "Entries held by the in-memory replay guard"
    );
    describe_gauge!(
        REPLAY_GUARD_CAPACITY,
        Unit::Count,
        "Capacity of the in-memory replay guard"
    );
    describe_counter!(
        REPLAY_GUARD_ERRORS_TOTAL,
        Unit::Count,
        "Replay checks the Redis guard could not answer"
    );
    describe_histogram!(
        STORE_LOOKUP_SECONDS,
        Unit::Seconds,
        "Credential store lookups made by the JG-HMAC layer"
    );
    describe_counter!(
        STORE_ERRORS_TOTAL,
        Unit::Count,
        "Credential store lookups that failed"
    );
    describe_gauge!(
        CREDENTIALS_STALENESS_SECONDS,
        Unit::Seconds,
        "Seconds since the PostgreSQL credential replica last confirmed it was current"
    );
}

/// The staleness gauge of a PostgreSQL credential replica.
#[cfg(feature = "postgres")]
pub(crate) fn credentials_staleness() -> Gauge {
    metrics::gauge!(CREDENTIALS_STALENESS_SECONDS)
}

/// The gauges of one in-memory replay guard, registered on first use (when the capacity
/// gauge is set, once: it never changes).
#[derive(Debug, Default)]
pub(crate) struct GuardGauges(OnceLock<Gauge>);

impl GuardGauges {
    pub(crate) fn set(&self, entries: usize, capacity: usize) {
        self.0
            .get_or_init(|| {
                metrics::gauge!(REPLAY_GUARD_CAPACITY).set(capacity as f64);
                metrics::gauge!(REPLAY_GUARD_ENTRIES)
            })
            .set(entries as f64);
    }
}

/// One failed replay check of the Redis guard.
#[cfg(feature = "redis")]
pub(crate) fn replay_guard_error() {
    metrics::counter!(REPLAY_GUARD_ERRORS_TOTAL).increment(1);
}
