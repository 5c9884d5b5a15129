//! Every refusal is answered by the gateway in the seed's JSON shape, and the upstream
//! never sees the request (not a byte of its body).

use std::time::Duration;

use crate::harness::{
    Behaviour, Gateway, OTHER, OTHER_SECRET, TempDir, Upstream, credentials, now, setup,
};
use crate::support::{CLIENT, SECRET, free_port, raw};

#[tokio::test(flavor = "multi_thread")]
async fn unsigned_forged_and_replayed_requests_stop_at_the_gateway() {
    let (_dir, upstream, gw) = setup("refuse", Behaviour::Echo, &[]).await;

    raw::unsigned("POST", "/v1/buy", b"{}")
        .send(gw.addr)
        .await
        .assert_refused(401, "missing_header");
    let mut forged = raw::signed(
        "POST",
        "/v1/buy",
        "/v1/buy",
        b"{}",
        now(),
        (CLIENT, "wrong secret"),
    );
    forged.body = b"{}".to_vec();
    forged
        .send(gw.addr)
        .await
        .assert_refused(401, "invalid_signature");
    // Signed for one path, sent to another.
    raw::signed(
        "POST",
        "/v1/buy",
        "/v1/sell",
        b"{}",
        now(),
        (CLIENT, SECRET),
    )
    .send(gw.addr)
    .await
    .assert_refused(401, "invalid_signature");
    raw::signed(
        "POST",
        "/v1/buy",
        "/v1/buy",
        b"{}",
        now() - 3600,
        (CLIENT, SECRET),
    )
    .send(gw.addr)
    .await
    .assert_refused(401, "timestamp_out_of_range");
    assert!(upstream.seen().is_empty(), "{:?}", upstream.seen());

    let once = raw::signed("POST", "/v1/buy", "/v1/buy", b"{}", now(), (CLIENT, SECRET));
    once.send(gw.addr).await.assert_ok();
    let replay = once.send(gw.addr).await;
    replay.assert_refused(401, "replayed_request");
    assert_eq!(replay.header("content-type"), Some("application/json"));
    let json = replay.json();
    assert_eq!(json["status"], 401);
    assert!(
        json["requestId"].is_string()
            && json["timestamp"].is_number()
            && json["message"].is_string()
    );
    assert_eq!(
        upstream.seen().len(),
        1,
        "the replay never reached the upstream"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_oversize_body_is_refused_before_the_upstream_sees_a_byte() {
    let (_dir, upstream, gw) = setup("oversize", Behaviour::Echo, &["--body-limit", "1000"]).await;
    let big = vec![b'a'; 5000];
    // Declared by Content-Length: refused from the head.
    gw.signed("POST", "/v1/upload", &big, "")
        .await
        .assert_refused(413, "request_too_large");
    // Chunked, no length: refused once the limit is crossed.
    let signed = raw::signed(
        "POST",
        "/v1/upload",
        "/v1/upload",
        &big,
        now(),
        (CLIENT, SECRET),
    );
    let mut conn = raw::Raw::connect(gw.addr).await;
    conn.write(format!(
        "POST /v1/upload HTTP/1.1\r\nHost: api.test\r\n{}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        signed.headers
    ).as_bytes()).await;
    // All at once: the gateway refuses mid-body, and reads nothing more.
    let mut chunked = Vec::new();
    for part in big.chunks(700) {
        chunked.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        chunked.extend_from_slice(part);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    conn.write(&chunked).await;
    conn.reply().await.assert_refused(413, "request_too_large");
    // Exactly at the limit passes.
    gw.signed("POST", "/v1/upload", &big[..1000], "")
        .await
        .assert_ok();
    assert_eq!(upstream.seen().len(), 1);
    assert_eq!(
        *upstream.body_bytes.lock().unwrap(),
        1000,
        "only the accepted body reached it"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_body_is_forwarded_once_complete_and_a_stalled_one_times_out() {
    let (_dir, upstream, gw) =
        setup("slow-body", Behaviour::Echo, &["--request-timeout", "1"]).await;
    let body = b"{\"amount\":\"5000\"}";
    let signed = raw::signed("POST", "/v1/buy", "/v1/buy", body, now(), (CLIENT, SECRET));
    let mut conn = raw::Raw::connect(gw.addr).await;
    conn.write(&signed.head()).await;
    for byte in body.chunks(4) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        conn.write(byte).await;
    }
    conn.reply().await.assert_ok();
    assert_eq!(upstream.last().body, body);

    let stalled = raw::signed("POST", "/v1/buy", "/v1/buy", body, now(), (CLIENT, SECRET));
    let mut conn = raw::Raw::connect(gw.addr).await;
    conn.write(&stalled.head()).await;
    conn.write(&body[..3]).await;
    conn.reply().await.assert_refused(408, "request_timeout");
    assert_eq!(upstream.seen().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn public_routes_pass_unsigned_in_their_exact_spelling_only() {
    let (_dir, upstream, gw) =
        setup("public", Behaviour::Echo, &["--public", "GET /v1/health"]).await;
    let mut health = raw::unsigned("GET", "/v1/health?probe=1", b"");
    health.headers = "X-JG-Client-Id: jk_live_admin\r\nX-JG-Scopes: admin\r\n".into();
    health.send(gw.addr).await.assert_ok();
    let seen = upstream.last();
    assert_eq!(seen.target, "/v1/health?probe=1");
    assert!(
        seen.all("x-jg-client-id").is_empty() && seen.all("x-jg-scopes").is_empty(),
        "{seen:?}"
    );
    for (method, target) in [
        ("GET", "/v1/health/"),
        ("GET", "//v1/health"),
        ("GET", "/v1/Health"),
        ("POST", "/v1/health"),
    ] {
        raw::unsigned(method, target, b"")
            .send(gw.addr)
            .await
            .assert_refused(401, "missing_header");
    }
    assert_eq!(upstream.seen().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn scope_rules_hold_for_every_spelling_of_the_path() {
    let rule = ["--scope", "POST /v1/transactions transactions:write"];
    let (_dir, upstream, gw) = setup("scope", Behaviour::Echo, &rule).await;
    for target in [
        "/v1/transactions/buy",
        "//v1/Transactions/./buy",
        "/v1/%74ransactions/buy",
        "/v1/x/../transactions",
    ] {
        raw::signed("POST", target, target, b"{}", now(), (OTHER, OTHER_SECRET))
            .send(gw.addr)
            .await
            .assert_refused(403, "insufficient_scope");
    }
    assert!(upstream.seen().is_empty());
    gw.signed("POST", "/v1/transactions/buy", b"{}", "")
        .await
        .assert_ok();
    // Another method, another prefix: no rule.
    raw::signed(
        "GET",
        "/v1/transactions",
        "/v1/transactions",
        b"",
        now(),
        (OTHER, OTHER_SECRET),
    )
    .send(gw.addr)
    .await
    .assert_ok();
    assert_eq!(upstream.seen().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn upstream_down_is_502_and_slow_is_504_both_counted() {
    let dir = TempDir::new("upstream");
    let creds = dir.file("credentials.toml", credentials().as_bytes());
    let metrics_port = free_port().to_string();
    let metrics_addr = format!("127.0.0.1:{metrics_port}");
    let down = format!("http://127.0.0.1:{}", free_port());
    let gw = Gateway::start(
        &down,
        &[
            "--credentials",
            creds.to_str().unwrap(),
            "--metrics-listen",
            &metrics_addr,
        ],
        &dir.0,
    )
    .await;
    let reply = gw.signed("POST", "/v1/buy", b"{}", "").await;
    reply.assert_refused(502, "upstream_unavailable");
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert!(
        gw.log().contains("upstream_unavailable"),
        "audited: {}",
        gw.log()
    );
    let metrics = raw::unsigned("GET", "/metrics", b"")
        .send(metrics_addr.parse().unwrap())
        .await;
    assert!(
        metrics
            .text()
            .contains("jg_hmac_gateway_upstream_errors_total{code=\"upstream_unavailable\"} 1"),
        "{}",
        metrics.text()
    );

    let slow = Upstream::start(Behaviour::Slow(Duration::from_secs(3))).await;
    let gw = Gateway::start(
        &slow.url(),
        &[
            "--credentials",
            creds.to_str().unwrap(),
            "--upstream-timeout",
            "0.3",
        ],
        &dir.0,
    )
    .await;
    gw.signed("POST", "/v1/buy", b"{}", "")
        .await
        .assert_refused(504, "upstream_timeout");
    assert!(gw.log().contains("upstream_timeout"));
    assert_eq!(slow.seen().len(), 1, "it was sent once, not retried");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_over_its_rate_limit_gets_429_and_the_upstream_nothing() {
    let dir = TempDir::new("rate");
    let creds = dir.file(
        "credentials.toml",
        format!(
            "[[clients]]\nid = \"{CLIENT}\"\nrate_limit = \"1/s:2\"\n[[clients.keys]]\nid = \"k1\"\nsecret = \"{SECRET}\"\n"
        )
        .as_bytes(),
    );
    let upstream = Upstream::start(Behaviour::Echo).await;
    let gw = Gateway::start(
        &upstream.url(),
        &["--credentials", creds.to_str().unwrap()],
        &dir.0,
    )
    .await;
    let mut statuses = Vec::new();
    for n in 0..4 {
        let body = format!("{{\"n\":{n}}}");
        statuses.push(gw.signed("POST", "/v1/buy", body.as_bytes(), "").await);
    }
    statuses[0].assert_ok();
    statuses[1].assert_ok();
    statuses[3].assert_refused(429, "rate_limited");
    assert!(statuses[3].header("retry-after").is_some());
    assert!(upstream.seen().len() <= 3, "{}", upstream.seen().len());
    assert_eq!(
        upstream.seen().len(),
        statuses.iter().filter(|r| r.status == 200).count()
    );
}

/// Two gateways sharing one Redis replay guard (`--redis`): a request accepted by one is
/// a replay at the other.
#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread")]
async fn a_replay_to_another_gateway_of_the_fleet_is_refused_with_redis() {
    use crate::redis_support::RedisServer;
    let redis = redis_or_skip!();
    let dir = TempDir::new("redis");
    let creds = dir.file("credentials.toml", credentials().as_bytes());
    let upstream = Upstream::start(Behaviour::Echo).await;
    let args = [
        "--credentials",
        creds.to_str().unwrap(),
        "--redis",
        &redis.url(),
    ];
    let first = Gateway::start(&upstream.url(), &args, &dir.0).await;
    let second = Gateway::start(&upstream.url(), &args, &dir.0).await;
    let request = raw::signed("POST", "/v1/buy", "/v1/buy", b"{}", now(), (CLIENT, SECRET));
    request.send(first.addr).await.assert_ok();
    request
        .send(second.addr)
        .await
        .assert_refused(401, "replayed_request");
    assert_eq!(upstream.seen().len(), 1);
}
