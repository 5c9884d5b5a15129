//! The metrics a real server exposes (feature `metrics`), checked exactly: a server on
//! 127.0.0.1 with the verifying layer, an in-memory replay guard and a Prometheus
//! recorder, driven by accepted, tampered, stale, future-dated, replayed, unknown and
//! malformed requests; then the scrape is parsed and every counter and histogram compared
//! with what was sent. Also the clock-skew early warning header, past its threshold and
//! not before.
//!
//! The recorder is global to the process, so this file holds one test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;

use axum::Router;
use axum::routing::post;
use jg_hmac::metrics::{
    CLOCK_SKEW_BUCKETS, CLOCK_SKEW_SECONDS, LATENCY_BUCKETS, STORE_LOOKUP_SECONDS, VERIFY_SECONDS,
};
use jg_hmac::tower::{Authenticated, InMemoryCredentialStore, VerifyLayer};
use jg_hmac::{Credential, InMemoryReplayGuard, Secret, SigningKey};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};

mod support;
use support::raw::signed;
use support::{CLIENT, OTHER, OTHER_SECRET, Reply, T0, TestClock, serve};

const OLD_SECRET: &str = "old_secret_of_example";
const NEW_SECRET: &str = "new_secret_of_example";
const BODY: &[u8] = br#"{"amount":"5000"}"#;

/// The scrape, as `name{labels}` → value; labels in the order the exporter wrote them.
fn scrape(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap();
            (series.to_owned(), value.parse().unwrap())
        })
        .collect()
}

#[track_caller]
fn assert_series(scrape: &BTreeMap<String, f64>, series: &str, expected: f64) {
    assert_eq!(
        scrape.get(series),
        Some(&expected),
        "{series} in {scrape:#?}"
    );
}

/// The cumulative count of a skew histogram bucket, whatever the exporter's float format.
fn skew_bucket(scrape: &BTreeMap<String, f64>, client: &str, le: f64) -> f64 {
    let prefix = format!("{CLOCK_SKEW_SECONDS}_bucket{{client_id=\"{client}\",le=\"");
    scrape
        .iter()
        .find(|(series, _)| {
            series.strip_prefix(&prefix).is_some_and(|rest| {
                let bound = rest.trim_end_matches("\"}");
                bound.parse::<f64>().ok() == Some(le) || (bound == "+Inf" && le.is_infinite())
            })
        })
        .map(|(_, v)| *v)
        .unwrap_or_else(|| panic!("no bucket le={le} for {client} in {scrape:#?}"))
}

fn skew_header(reply: &Reply) -> Option<String> {
    reply.header("x-jg-clock-skew").map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_server_counts_every_outcome_per_client_exactly() {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(CLOCK_SKEW_SECONDS.into()), CLOCK_SKEW_BUCKETS)
        .unwrap()
        .set_buckets_for_metric(Matcher::Full(VERIFY_SECONDS.into()), LATENCY_BUCKETS)
        .unwrap()
        .set_buckets_for_metric(Matcher::Full(STORE_LOOKUP_SECONDS.into()), LATENCY_BUCKETS)
        .unwrap()
        .install_recorder()
        .unwrap();
    jg_hmac::metrics::describe();

    // The client is half-way through a rotation: the old key still verifies.
    let store = InMemoryCredentialStore::from_credentials([
        Credential::new(CLIENT)
            .with_key(SigningKey::new("old", &Secret::from(OLD_SECRET)))
            .with_key(SigningKey::new("new", &Secret::from(NEW_SECRET))),
        Credential::new(OTHER).with_key(SigningKey::new("0", &Secret::from(OTHER_SECRET))),
    ]);
    let clock = TestClock::new(T0);
    let layer = VerifyLayer::builder(store)
        .clock(clock.as_clock())
        .replay_guard(InMemoryReplayGuard::new(100))
        .build();
    let app = Router::new()
        .route(
            "/v1/orders",
            post(|who: Authenticated| async move { who.key_id().to_owned() }),
        )
        .layer(layer);
    let addr = serve(app).await;
    let new = (CLIENT, NEW_SECRET);
    let post = |ts: u64, key: (&str, &str)| {
        signed("POST", "/v1/orders?a=1", "/v1/orders?a=1", BODY, ts, key)
    };

    // Accepted: on time with the new key; 90 s late with the old one (past the 60 s
    // warning); 30 s early (within it).
    let on_time = post(T0, new);
    let reply = on_time.send(addr).await;
    reply.assert_ok();
    assert_eq!(skew_header(&reply), None);
    let reply = post(T0 - 90, (CLIENT, OLD_SECRET)).send(addr).await;
    reply.assert_ok();
    assert_eq!(skew_header(&reply).as_deref(), Some("90"), "{reply:?}");
    let reply = post(T0 + 30, new).send(addr).await;
    reply.assert_ok();
    assert_eq!(skew_header(&reply), None);
    // Exactly at the threshold: no warning; one second past it: a warning.
    let reply = post(T0 - 60, new).send(addr).await;
    reply.assert_ok();
    assert_eq!(skew_header(&reply), None);
    let reply = post(T0 + 61, new).send(addr).await;
    reply.assert_ok();
    assert_eq!(skew_header(&reply).as_deref(), Some("-61"));

    // Tampered body; stale; future-dated; replayed.
    let mut tampered = post(T0, new);
    tampered.body = br#"{"amount":"9000"}"#.to_vec();
    tampered
        .send(addr)
        .await
        .assert_refused(401, "invalid_signature");
    let stale = post(T0 - 400, new).send(addr).await;
    stale.assert_refused(401, "timestamp_out_of_range");
    assert_eq!(skew_header(&stale), None);
    post(T0 + 400, new)
        .send(addr)
        .await
        .assert_refused(401, "timestamp_out_of_range");
    on_time
        .send(addr)
        .await
        .assert_refused(401, "replayed_request");

    // A known partner whose first request is stale is `unknown`: a request refused on its
    // head alone never reaches the store. Once the store has vouched for it, it is named.
    post(T0 - 350, (OTHER, OTHER_SECRET))
        .send(addr)
        .await
        .assert_refused(401, "timestamp_out_of_range");
    post(T0, (OTHER, OTHER_SECRET)).send(addr).await.assert_ok();
    post(T0 + 320, (OTHER, OTHER_SECRET))
        .send(addr)
        .await
        .assert_refused(401, "timestamp_out_of_range");
    // Made-up ids, well formed or not, are all `unknown`.
    post(T0, ("jk_live_nobody", "whatever"))
        .send(addr)
        .await
        .assert_refused(401, "client_id");
    let mut unsigned = post(T0, ("jk_live_made_up_2", "x"));
    unsigned.headers = format!("X-Client-Id: jk_live_made_up_2\r\nX-Timestamp: {T0}\r\n");
    unsigned
        .send(addr)
        .await
        .assert_refused(401, "missing_header");

    let text = handle.render();
    let m = scrape(&text);
    for (outcome, n) in [
        ("accepted", 6.0),
        ("invalid_signature", 1.0),
        ("timestamp_out_of_range", 4.0),
        ("replayed_request", 1.0),
        ("client_id", 1.0),
        ("missing_header", 1.0),
    ] {
        assert_series(
            &m,
            &format!("jg_hmac_requests_total{{outcome=\"{outcome}\"}}"),
            n,
        );
    }
    for (client, outcome, n) in [
        (CLIENT, "accepted", 5.0),
        (CLIENT, "invalid_signature", 1.0),
        (CLIENT, "timestamp_out_of_range", 2.0),
        (CLIENT, "replayed_request", 1.0),
        (OTHER, "accepted", 1.0),
        (OTHER, "timestamp_out_of_range", 1.0),
        ("unknown", "timestamp_out_of_range", 1.0),
        ("unknown", "client_id", 1.0),
        ("unknown", "missing_header", 1.0),
    ] {
        assert_series(
            &m,
            &format!(
                "jg_hmac_client_requests_total{{client_id=\"{client}\",outcome=\"{outcome}\"}}"
            ),
            n,
        );
    }
    assert_eq!(
        m.keys()
            .filter(|k| k.starts_with("jg_hmac_client_requests_total"))
            .count(),
        9,
        "no other client series: {text}"
    );
    assert_series(
        &m,
        "jg_hmac_key_used_total{client_id=\"jk_live_example\",key_id=\"new\"}",
        4.0,
    );
    assert_series(
        &m,
        "jg_hmac_key_used_total{client_id=\"jk_live_example\",key_id=\"old\"}",
        1.0,
    );
    assert_series(
        &m,
        "jg_hmac_key_used_total{client_id=\"jk_live_other\",key_id=\"0\"}",
        1.0,
    );

    // Skew of the example client's requests: 0, 90, -30, 60, -61 (accepted), 0 (tampered),
    // 400, -400 (out of the window), 0 (replayed).
    let count = |client: &str| m[&format!("{CLOCK_SKEW_SECONDS}_count{{client_id=\"{client}\"}}")];
    let sum = |client: &str| m[&format!("{CLOCK_SKEW_SECONDS}_sum{{client_id=\"{client}\"}}")];
    assert_eq!((count(CLIENT), sum(CLIENT)), (9.0, 59.0));
    for (le, n) in [
        (-300.0, 1.0),
        (-60.0, 2.0),
        (-30.0, 3.0),
        (0.0, 6.0),
        (60.0, 7.0),
        (120.0, 8.0),
        (300.0, 8.0),
        (f64::INFINITY, 9.0),
    ] {
        assert_eq!(skew_bucket(&m, CLIENT, le), n, "le={le}");
    }
    assert_eq!((count(OTHER), sum(OTHER)), (2.0, -320.0));
    // Every unknown request carried a parseable timestamp.
    assert_eq!((count("unknown"), sum("unknown")), (3.0, 350.0));

    // One layer time per request; one lookup per request that reached the store; the
    // guard holds the six accepted requests.
    assert_series(&m, "jg_hmac_verify_seconds_count", 14.0);
    assert_series(&m, "jg_hmac_store_lookup_seconds_count", 9.0);
    assert!(
        !m.keys()
            .any(|k| k.starts_with("jg_hmac_store_errors_total"))
    );
    assert_series(&m, "jg_hmac_replay_guard_entries", 6.0);
    assert_series(&m, "jg_hmac_replay_guard_capacity", 100.0);
    assert!(text.contains("# HELP jg_hmac_clock_skew_seconds"), "{text}");

    // Nothing secret or request-specific beyond ids.
    for secret in [
        OLD_SECRET,
        NEW_SECRET,
        OTHER_SECRET,
        "a=1",
        "amount",
        "/v1/orders",
    ] {
        assert!(!text.contains(secret), "{secret} in the scrape");
    }
    // No signature prefix in any label value (sample values are numbers, which could
    // contain an all-digit prefix by chance).
    let sig = on_time.headers.split("X-Signature: ").nth(1).unwrap();
    let labels: String = text
        .lines()
        .filter_map(|l| Some(&l[l.find('{')?..=l.rfind('}')?]))
        .collect();
    assert!(
        !labels.contains(&sig[..8]),
        "a signature prefix in the scrape"
    );
}
