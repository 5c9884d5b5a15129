//! What the upstream receives: exactly what was verified, hop-by-hop headers gone, the
//! gateway's identity (and only the gateway's), and the response streamed back.

use std::time::Duration;

use crate::harness::{Behaviour, OTHER, OTHER_SECRET, TempDir, now, setup};
use crate::support::{CLIENT, SECRET, raw};

#[tokio::test(flavor = "multi_thread")]
async fn odd_targets_and_bodies_arrive_byte_for_byte() {
    let (_dir, upstream, gw) = setup("bytes", Behaviour::Echo, &[]).await;
    let body: Vec<u8> = (0u8..=255).chain(*b"\r\n\r\n{\"a\":1}\0").collect();
    let cases: [(&'static str, &str, &[u8]); 6] = [
        ("POST", "/v1/transactions/buy?b=2&a=1&a=0", &body),
        ("POST", "/v1//double//slash/./dot/../x?q=%2F%2f&z=", b"{}"),
        ("GET", "/v1/%7Euser/%2e%2e/caf%C3%A9?x=a+b&&y=%20", b""),
        ("PUT", "/V1/Case/Path/?Z=1&z=2&empty", b"plain text body"),
        ("DELETE", "/v1/items/42;matrix=1", b""),
        (
            "PATCH",
            "/v1/a%2Fb?list=1,2,3&sort=-created",
            &[0xff, 0xfe, 0x00, 0x0d],
        ),
    ];
    for (method, target, body) in cases {
        let reply = gw
            .signed(method, target, body, "Content-Type: application/json\r\nX-Custom:  spaced  value\r\nX-Forwarded-For: 203.0.113.9\r\n")
            .await;
        reply.assert_ok();
        assert_eq!(reply.text(), "echo");
        let seen = upstream.last();
        assert_eq!(seen.method, method);
        assert_eq!(seen.target, target, "the request-target as sent");
        assert_eq!(
            seen.body, body,
            "{method} {target}: the body bytes that were hashed"
        );
        assert_eq!(seen.one("x-custom").as_deref(), Some("spaced  value"));
        assert_eq!(
            seen.one("x-forwarded-for").as_deref(),
            Some("203.0.113.9, 127.0.0.1")
        );
        assert_eq!(seen.one("x-forwarded-proto").as_deref(), Some("http"));
        assert_eq!(
            seen.one("content-type").as_deref(),
            Some("application/json")
        );
        assert_eq!(
            seen.one("host").as_deref(),
            Some("api.test"),
            "Host is end-to-end"
        );
        assert_eq!(seen.one("x-jg-client-id").as_deref(), Some(CLIENT));
        assert_eq!(seen.one("x-jg-key-id").as_deref(), Some("k1"));
        assert_eq!(
            seen.one("x-jg-scopes").as_deref(),
            Some("transactions:write balance:read")
        );
        assert_eq!(seen.one("x-jg-environment").as_deref(), Some("live"));
        assert!(seen.one("x-request-id").is_some_and(|id| !id.is_empty()));
        assert!(
            seen.one("x-jg-identity").is_none(),
            "no identity key, no assertion"
        );
    }
    assert_eq!(upstream.seen().len(), cases.len());
}

#[tokio::test(flavor = "multi_thread")]
async fn chunked_request_body_is_forwarded_whole_after_verification() {
    let (_dir, upstream, gw) = setup("chunked", Behaviour::Echo, &[]).await;
    let body = b"{\"amount\":\"5000\",\"transactionId\":\"12345\"}";
    let signed = raw::signed("POST", "/v1/buy", "/v1/buy", body, now(), (CLIENT, SECRET));
    let mut conn = raw::Raw::connect(gw.addr).await;
    conn.write(format!(
        "POST /v1/buy HTTP/1.1\r\nHost: api.test\r\n{}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        signed.headers
    ).as_bytes()).await;
    conn.write(b"5\r\n{\"amo\r\n").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        upstream.seen().is_empty(),
        "nothing forwarded before the body is complete"
    );
    let rest = &body[5..];
    conn.write(format!("{:x}\r\n", rest.len()).as_bytes()).await;
    conn.write(rest).await;
    conn.write(b"\r\n0\r\n\r\n").await;
    conn.reply().await.assert_ok();
    let seen = upstream.last();
    assert_eq!(seen.body, body);
    assert_eq!(seen.one("transfer-encoding"), None, "hop-by-hop");
    assert_eq!(seen.one("content-length"), Some(body.len().to_string()));
}

#[tokio::test(flavor = "multi_thread")]
async fn spoofed_identity_and_connection_tricks_never_reach_the_upstream() {
    let (_dir, upstream, gw) = setup("spoof", Behaviour::Echo, &[]).await;
    let spoof = "x-jg-client-id: jk_live_admin\r\nX-JG-SCOPES: admin:all\r\nX-Jg-Key-Id: root\r\n\
                 X-JG-Environment: live\r\nX-JG-Identity: v1;t=1;sig=00\r\nX-Request-Id: req-from-client\r\n\
                 Connection: X-JG-Client-Id, x-jg-scopes, X-Hop, X-Forwarded-For, keep-alive\r\nX-Hop: secret-hop\r\n\
                 Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\n\
                 X-Forwarded-For: 203.0.113.9\r\nX-End: kept\r\n";
    let mut request = raw::signed(
        "POST",
        "/v1/buy",
        "/v1/buy",
        b"{}",
        now(),
        (OTHER, OTHER_SECRET),
    );
    request.headers.push_str(spoof);
    request.send(gw.addr).await.assert_ok();
    let seen = upstream.last();
    assert_eq!(seen.all("x-jg-client-id"), [OTHER], "{seen:?}");
    assert_eq!(seen.all("x-jg-scopes"), [""]);
    assert_eq!(seen.all("x-jg-key-id"), ["k7"]);
    assert_eq!(seen.all("x-jg-environment"), ["test"]);
    assert!(seen.all("x-jg-identity").is_empty());
    // The request id the client sent is sane: the layer keeps it, the gateway sets it once.
    assert_eq!(seen.all("x-request-id"), ["req-from-client"]);
    for hop in ["x-hop", "keep-alive", "proxy-connection", "te"] {
        assert!(seen.all(hop).is_empty(), "{hop} forwarded: {seen:?}");
    }
    assert!(
        seen.all("connection")
            .iter()
            .all(|v| !v.to_ascii_lowercase().contains("x-jg"))
    );
    // The client's own X-Forwarded-For was named in Connection, so it went; the value the
    // gateway adds is added after the hop-by-hop removal and cannot be dropped that way.
    assert_eq!(seen.all("x-forwarded-for"), ["127.0.0.1"]);
    assert_eq!(seen.all("x-forwarded-proto"), ["http"]);
    assert_eq!(seen.all("x-end"), ["kept"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn identity_assertion_verifies_with_the_crate_function() {
    let key = b"an-identity-key-of-thirty-two-bytes-or-more";
    let keys = TempDir::new("identity-key");
    let key_file = keys.file("identity.key", &[&key[..], b"\n"].concat());
    let key_arg = ["--identity-key-file", key_file.to_str().unwrap()];
    let (_dir, upstream, gw) = setup("identity", Behaviour::Echo, &key_arg).await;
    let target = "/v1/transactions/buy?b=2&a=1";
    gw.signed(
        "POST",
        target,
        b"{}",
        "X-JG-Identity: v1;t=1;sig=forged\r\n",
    )
    .await
    .assert_ok();
    let seen = upstream.last();
    let headers = seen.header_map();
    assert_eq!(seen.all("x-jg-identity").len(), 1);
    jg_hmac::identity::verify(key, "POST", target, &headers, now(), 30).unwrap();
    // Any change is caught: another path, method, scope set, or key.
    assert!(
        jg_hmac::identity::verify(key, "POST", "/v1/transactions/buy", &headers, now(), 30)
            .is_err()
    );
    assert!(jg_hmac::identity::verify(key, "GET", target, &headers, now(), 30).is_err());
    assert!(
        jg_hmac::identity::verify(
            b"another key of some length......",
            "POST",
            target,
            &headers,
            now(),
            30
        )
        .is_err()
    );
    let mut changed = headers.clone();
    changed.insert("x-jg-scopes", "admin".parse().unwrap());
    assert_eq!(
        jg_hmac::identity::verify(key, "POST", target, &changed, now(), 30),
        Err(jg_hmac::identity::IdentityError::Mismatch)
    );
    assert_eq!(
        jg_hmac::identity::verify(key, "POST", target, &headers, now() + 3600, 30),
        Err(jg_hmac::identity::IdentityError::Expired)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn h2c_clients_are_verified_and_forwarded_as_http11() {
    use http_body_util::{BodyExt, Full};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;

    let (_dir, upstream, gw) = setup("h2c", Behaviour::Echo, &[]).await;
    let client: Client<_, Full<bytes::Bytes>> = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http();
    let target = "/v1/orders/%41b?z=1&a=2";
    let body = b"{\"h2\":true}";
    let request = http::Request::post(format!("http://{}{target}", gw.addr))
        .header("content-type", "application/json")
        .body(body.to_vec())
        .unwrap();
    let request = crate::support::sign(request, (CLIENT, SECRET), now())
        .map(|b| Full::new(bytes::Bytes::from(b)));
    let response = client.request(request).await.unwrap();
    assert_eq!(response.version(), http::Version::HTTP_2);
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.into_body().collect().await.unwrap().to_bytes(),
        "echo"
    );
    let seen = upstream.last();
    assert_eq!(
        (seen.method.as_str(), seen.target.as_str()),
        ("POST", target)
    );
    assert_eq!(seen.body, body);
    assert_eq!(
        seen.one("host"),
        Some(gw.addr.to_string()),
        ":authority becomes Host"
    );
    assert_eq!(seen.one("x-jg-client-id").as_deref(), Some(CLIENT));
}

/// VmHWM (peak resident set) of a process, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_100_mb_chunked_response_streams_in_bounded_memory() {
    use tokio::io::AsyncReadExt;
    const TOTAL: usize = 100 * 1024 * 1024;
    let stream = Behaviour::Stream {
        total: TOTAL,
        pause: Duration::ZERO,
    };
    let (_dir, _upstream, gw) = setup("stream", stream, &["--replay-capacity", "1000"]).await;
    let before = peak_rss_kib(gw.child.id());
    let request = raw::signed(
        "GET",
        "/v1/export",
        "/v1/export",
        b"",
        now(),
        (CLIENT, SECRET),
    );
    let mut conn = raw::Raw::connect(gw.addr).await;
    conn.write(&request.head()).await;
    // Read slowly at first: a gateway that buffered would now hold what the upstream sent.
    let mut received = 0usize;
    let mut buf = vec![0u8; 256 * 1024];
    let mut first = true;
    loop {
        let n = conn.0.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        received += n;
        if first {
            first = false;
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
    assert!(
        received > TOTAL,
        "the whole body (and chunk framing) arrived: {received}"
    );
    let peak = peak_rss_kib(gw.child.id());
    assert!(
        peak < before + 40 * 1024,
        "peak RSS grew from {before} KiB to {peak} KiB for a {TOTAL}-byte response"
    );
}
