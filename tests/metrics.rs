//! The metrics a real server exposes (feature `metrics`), checked exactly: a server on
//! 127.0.0.1 with the verifying layer, an in-memory replay guard and a Prometheus
//! recorder, driven by accepted, tampered, stale, future-dated, replayed, unknown and
//! malformed requests; then the scrape is parsed and every counter and histogram compared
//! with what was sent. Also the clock-skew early warning header, past its threshold and
//! not before; and forged requests that carry a real partner's id, which must move none of
//! that partner's series, while the partner's own out-of-window requests do.
//!
//! The recorder is global to the process, so this file holds one test, in two parts.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Router;
use axum::routing::post;
use jg_hmac::metrics::{
    CLOCK_SKEW_BUCKETS, CLOCK_SKEW_SECONDS, LATENCY_BUCKETS, STORE_LOOKUP_SECONDS, VERIFY_SECONDS,
};
use jg_hmac::tower::{Authenticated, InMemoryCredentialStore, VerifyLayer};
use jg_hmac::{Credential, InMemoryReplayGuard, Secret, SigningKey, Verifier};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

mod support;
use support::raw::{Raw, signed};
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
async fn a_real_server_counts_per_client_only_what_the_client_signed() {
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
    every_outcome_is_counted_per_client_exactly(&handle).await;
    forged_requests_move_none_of_a_partners_series(&handle).await;
}

async fn every_outcome_is_counted_per_client_exactly(handle: &PrometheusHandle) {
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

    // Tampered body (anyone can send it: `unknown`); stale and future-dated (signed by the
    // client all the same: its own); replayed (its signature).
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

    // A partner's requests out of the window are its own, first request or not: their
    // signatures verify, though they are refused.
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
        (CLIENT, "timestamp_out_of_range", 2.0),
        (CLIENT, "replayed_request", 1.0),
        (OTHER, "accepted", 1.0),
        (OTHER, "timestamp_out_of_range", 2.0),
        ("unknown", "invalid_signature", 1.0),
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
        8,
        "no other client series: {text}"
    );
    // Every signature that verified, accepted or not: 4 accepted, 2 out of the window and
    // the replay with the new key.
    assert_series(
        &m,
        "jg_hmac_key_used_total{client_id=\"jk_live_example\",key_id=\"new\"}",
        7.0,
    );
    assert_series(
        &m,
        "jg_hmac_key_used_total{client_id=\"jk_live_example\",key_id=\"old\"}",
        1.0,
    );
    assert_series(
        &m,
        "jg_hmac_key_used_total{client_id=\"jk_live_other\",key_id=\"0\"}",
        3.0,
    );

    // Skew of the example client's requests: 0, 90, -30, 60, -61 (accepted), 400, -400
    // (out of the window), 0 (replayed).
    let count = |client: &str| m[&format!("{CLOCK_SKEW_SECONDS}_count{{client_id=\"{client}\"}}")];
    let sum = |client: &str| m[&format!("{CLOCK_SKEW_SECONDS}_sum{{client_id=\"{client}\"}}")];
    assert_eq!((count(CLIENT), sum(CLIENT)), (8.0, 59.0));
    for (le, n) in [
        (-300.0, 1.0),
        (-60.0, 2.0),
        (-30.0, 3.0),
        (0.0, 5.0),
        (60.0, 6.0),
        (120.0, 7.0),
        (300.0, 7.0),
        (f64::INFINITY, 8.0),
    ] {
        assert_eq!(skew_bucket(&m, CLIENT, le), n, "le={le}");
    }
    assert_eq!((count(OTHER), sum(OTHER)), (3.0, 30.0));
    // Tampered, made-up id, unsigned: each carried a parseable timestamp.
    assert_eq!((count("unknown"), sum("unknown")), (3.0, 0.0));

    // One layer time per request; one lookup per request that reached the store (the
    // four out of the window too, to be attributed); the guard holds the six accepted.
    assert_series(&m, "jg_hmac_verify_seconds_count", 14.0);
    assert_series(&m, "jg_hmac_store_lookup_seconds_count", 13.0);
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

/// A partner of its own for the second part, so that its series start at zero.
const VICTIM: &str = "jk_live_victim";
const VICTIM_SECRET: &str = "victim_partner_secret";

/// The reproduction of issue 17: forged requests carrying a real partner's id and skewed
/// timestamps (in the window, refused `invalid_signature`; out of it, refused on their
/// head) moved that partner's skew histogram and outcome counters, enough to fire
/// `JgHmacPartnerClockSkew`. Now they land under `unknown`, while the partner's own
/// requests, out of the window included, land under its id.
async fn forged_requests_move_none_of_a_partners_series(handle: &PrometheusHandle) {
    let store = InMemoryCredentialStore::from_credentials([
        Credential::new(VICTIM).with_key(SigningKey::new("k1", &Secret::from(VICTIM_SECRET)))
    ]);
    let clock = TestClock::new(T0);
    let layer = VerifyLayer::builder(store)
        .clock(clock.as_clock())
        .verifier(Verifier::new().with_content_types(["application/json"]))
        .body_limit(1024)
        .request_timeout(Duration::from_secs(1))
        .build();
    let app = Router::new()
        .route("/v1/orders", post(|| async { "ok" }))
        .layer(layer);
    let addr = serve(app).await;
    let typed = |ts: u64, key, content_type: &str| {
        let mut request = signed("POST", "/v1/orders", "/v1/orders", BODY, ts, key);
        request.headers += &format!("Content-Type: {content_type}\r\n");
        request
    };
    let post = |ts: u64, key| typed(ts, key, "application/json");
    let partner = (VICTIM, VICTIM_SECRET);
    let forger = (VICTIM, "a guess at the secret");
    let before = scrape(&handle.render());

    // The partner: 3 requests on time, 2 with its clock 400 s behind (refused, its own).
    for _ in 0..3 {
        post(T0, partner).send(addr).await.assert_ok();
    }
    for _ in 0..2 {
        let late = post(T0 - 400, partner).send(addr).await;
        late.assert_refused(401, "timestamp_out_of_range");
    }
    // The impostor knows the id, not the secret: 40 requests 200 s off (in the window),
    // 40 out of it, either way.
    for i in 0..40 {
        let forged = post(T0 - 200, forger).send(addr).await;
        forged.assert_refused(401, "invalid_signature");
        let ts = if i % 2 == 0 { T0 - 400 } else { T0 + 500 };
        let forged = post(ts, forger).send(addr).await;
        forged.assert_refused(401, "timestamp_out_of_range");
    }
    // Refused on their head for another reason, a content type not allowed, or once
    // complete, the body having arrived after the window closed: the partner's own, and
    // the impostor's.
    for key in [partner, forger] {
        let reply = typed(T0, key, "text/plain").send(addr).await;
        reply.assert_refused(415, "unsupported_content_type");
        let request = post(T0, key);
        let mut raw = Raw::connect(addr).await;
        let seen = clock.reads();
        raw.write(&request.head()).await;
        clock.read_after(seen).await;
        clock.set(T0 + 400);
        raw.write(&request.body).await;
        raw.reply()
            .await
            .assert_refused(401, "timestamp_out_of_range");
        clock.set(T0);
    }
    // Out of the window, its body never sent: read until the deadline, then the head's
    // refusal stands. Declaring a body above the limit: not read, nor looked up.
    let mut held = post(T0 - 400, forger);
    let mut oversized = post(T0 - 400, forger);
    oversized.body = vec![b'x'; 2048];
    for request in [&mut held, &mut oversized] {
        let mut raw = Raw::connect(addr).await;
        raw.write(&request.head()).await;
        let reply = raw.reply().await;
        reply.assert_refused(401, "timestamp_out_of_range");
    }

    let text = handle.render();
    let after = scrape(&text);
    let delta =
        |series: &str| after.get(series).unwrap_or(&0.0) - before.get(series).unwrap_or(&0.0);
    let client = |client: &str, outcome: &str| {
        format!("jg_hmac_client_requests_total{{client_id=\"{client}\",outcome=\"{outcome}\"}}")
    };
    // The partner's series hold its own 7 requests and nothing else: no outcome, skew
    // sample or key use of the 86 forged ones.
    let series = |name: &str, labels: &str| format!("{name}{{client_id=\"{VICTIM}\"{labels}}}");
    let own: Vec<&String> = after
        .keys()
        .filter(|k| k.contains(&format!("client_id=\"{VICTIM}\"")))
        .filter(|k| !k.contains("_bucket"))
        .collect();
    assert_eq!(own.len(), 6, "{own:#?}");
    assert_series(&after, &client(VICTIM, "accepted"), 3.0);
    assert_series(&after, &client(VICTIM, "timestamp_out_of_range"), 3.0);
    assert_series(&after, &client(VICTIM, "unsupported_content_type"), 1.0);
    assert_series(
        &after,
        &series("jg_hmac_key_used_total", ",key_id=\"k1\""),
        7.0,
    );
    assert_series(&after, &series("jg_hmac_clock_skew_seconds_count", ""), 7.0);
    assert_series(
        &after,
        &series("jg_hmac_clock_skew_seconds_sum", ""),
        1200.0,
    );
    // 3 of its 7 samples are 120 s or more off: its own drift, which it should hear of.
    assert_eq!(skew_bucket(&after, VICTIM, 120.0), 4.0);

    // The forged ones are all `unknown`.
    assert_eq!(delta(&client("unknown", "invalid_signature")), 40.0);
    assert_eq!(delta(&client("unknown", "timestamp_out_of_range")), 43.0);
    assert_eq!(delta(&client("unknown", "unsupported_content_type")), 1.0);
    let unknown_skew = |part: &str| {
        delta(&format!(
            "{CLOCK_SKEW_SECONDS}_{part}{{client_id=\"unknown\"}}"
        ))
    };
    // 40 × 200, 20 × 400, 20 × -500, 0 (content type), 3 × 400 (late body, held,
    // oversized).
    assert_eq!((unknown_skew("count"), unknown_skew("sum")), (84.0, 7200.0));
    for (outcome, n) in [
        ("accepted", 3.0),
        ("invalid_signature", 40.0),
        ("timestamp_out_of_range", 46.0),
        ("unsupported_content_type", 2.0),
    ] {
        assert_eq!(
            delta(&format!("jg_hmac_requests_total{{outcome=\"{outcome}\"}}")),
            n,
            "{outcome}"
        );
    }
    // The cost: every request naming a known client reached the store (the oversized one
    // did not), and the forged out-of-window ones had their body read and checked.
    assert_eq!(delta("jg_hmac_store_lookup_seconds_count"), 90.0);
}
