//! The deployment suite: the verifying layer the way services run it. A real axum server
//! on 127.0.0.1 (ephemeral port) is driven by raw-socket clients that can hold a body and
//! send it late, flood one client id, replay, and by hyper's HTTP/2 (h2c) client. The
//! layer sits where apps put it: at the top, inside `Router::nest`, inside
//! `nest_service`, under `route_layer`, behind URI-rewriting middleware. Every refusal is
//! asserted by its wire code.
//!
//! Time is a test clock that the test moves while a body is pending; the test waits for
//! the server to read the clock (a notification, not a sleep). Any future integration
//! proves itself here.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::routing::{get, post};
use http::HeaderMap;
use http_body_util::{BodyExt, Full};
use jg_hmac::tower::{
    Authenticated, CredentialStore, InMemoryCredentialStore, OriginalTargetLayer, StoreError,
    VerifyLayer,
};
use jg_hmac::{Credential, InMemoryReplayGuard, Secret, Signer, SigningKey};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tower_layer::Layer;

mod support;
use support::raw::{Raw, Signed, signed};
use support::{CLIENT, OTHER, OTHER_SECRET, Reply, SECRET, T0, TestClock, serve, serve_service};

fn store() -> InMemoryCredentialStore {
    InMemoryCredentialStore::from_credentials([
        Credential::new(CLIENT).with_key(SigningKey::new("0", &Secret::from(SECRET))),
        Credential::new(OTHER).with_key(SigningKey::new("0", &Secret::from(OTHER_SECRET))),
        // A key that stops being valid at T0 + 10 (inclusive).
        Credential::new("jk_live_expiring").with_key(
            SigningKey::new("short", &Secret::from("expiring_secret"))
                .with_validity(None, Some(T0 + 10)),
        ),
    ])
}

fn layer(clock: &TestClock) -> VerifyLayer<InMemoryCredentialStore> {
    VerifyLayer::builder(store())
        .clock(clock.as_clock())
        .body_limit(1024)
        .build()
}

/// The API's own routes, unaware of where they are mounted: `/ping` and `/echo`.
fn api() -> Router {
    Router::new()
        .route(
            "/ping",
            get(|who: Authenticated| async move { format!("pong {}", who.client_id()) }),
        )
        .route(
            "/echo",
            post(|headers: HeaderMap, body: Bytes| async move {
                // What the handler sees of the framing, beside the body it is given.
                let header = |name: &str| {
                    headers
                        .get(name)
                        .map_or("-".to_owned(), |v| v.to_str().unwrap_or("?").to_owned())
                };
                format!(
                    "len={} content-length={} transfer-encoding={}",
                    body.len(),
                    header("content-length"),
                    header("transfer-encoding")
                )
            }),
        )
}

/// `/v1/ping` and `/v1/echo` with the layer on the router that holds them.
fn top_level(clock: &TestClock) -> Router {
    Router::new().nest("/v1", api()).layer(layer(clock))
}

const ME: (&str, &str) = (CLIENT, SECRET);

// ---------------------------------------------------------------- the layer at the top

#[tokio::test]
async fn every_refusal_by_wire_code_at_the_top() {
    let clock = TestClock::new(T0);
    let addr = serve(top_level(&clock)).await;
    let ok = signed("GET", "/v1/ping", "/v1/ping", b"", T0, ME);
    let reply = ok.send(addr).await;
    reply.assert_ok();
    assert_eq!(reply.text(), format!("pong {CLIENT}"));

    let post = signed("POST", "/v1/echo", "/v1/echo", b"{\"a\":1}", T0, ME);
    post.send(addr).await.assert_ok();

    let mut tampered = signed("POST", "/v1/echo", "/v1/echo", b"{\"a\":1}", T0, ME);
    tampered.body = b"{\"a\":2}".to_vec();
    tampered
        .send(addr)
        .await
        .assert_refused(401, "invalid_signature");

    let mut missing = signed("GET", "/v1/ping", "/v1/ping", b"", T0, ME);
    missing.headers = missing.headers.replace("X-Signature", "X-Other");
    missing
        .send(addr)
        .await
        .assert_refused(401, "missing_header");

    let mut malformed = signed("GET", "/v1/ping", "/v1/ping", b"", T0, ME);
    malformed.headers = malformed.headers.replace("X-Timestamp: ", "X-Timestamp: +");
    malformed
        .send(addr)
        .await
        .assert_refused(400, "malformed_header");

    let stale = signed("GET", "/v1/ping", "/v1/ping", b"", T0 - 301, ME);
    stale
        .send(addr)
        .await
        .assert_refused(401, "timestamp_out_of_range");

    let unknown = signed(
        "GET",
        "/v1/ping",
        "/v1/ping",
        b"",
        T0,
        ("jk_live_nobody", "x"),
    );
    unknown.send(addr).await.assert_refused(401, "client_id");

    let large = signed("POST", "/v1/echo", "/v1/echo", &[b'x'; 2048], T0, ME);
    large
        .send(addr)
        .await
        .assert_refused(413, "request_too_large");

    let mut wrong_key = signed(
        "GET",
        "/v1/ping",
        "/v1/ping",
        b"",
        T0,
        (CLIENT, OTHER_SECRET),
    );
    wrong_key.headers += "X-Request-Id: trace-42\r\n";
    let reply = wrong_key.send(addr).await;
    reply.assert_refused(401, "invalid_signature");
    assert_eq!(reply.header("x-request-id"), Some("trace-42"), "{reply:?}");
}

// ---------------------------------------------------------------- time: the body arrives late

/// Sends `request`'s head, waits until the server has read the clock for it, moves the
/// clock to `later`, then sends the body.
async fn send_body_late(
    addr: SocketAddr,
    clock: &TestClock,
    request: &Signed,
    later: u64,
) -> Reply {
    let seen = clock.reads();
    let mut raw = Raw::connect(addr).await;
    raw.write(&request.head()).await;
    clock.read_after(seen).await;
    clock.set(later);
    raw.write(&request.body).await;
    raw.reply().await
}

#[tokio::test]
async fn a_body_completed_after_the_window_is_out_of_range() {
    let clock = TestClock::new(T0 + 300);
    let addr = serve(top_level(&clock)).await;
    // Headers arrive at the edge of the window; the last body byte one second later.
    let late = signed("POST", "/v1/echo", "/v1/echo", b"{\"amount\":5}", T0, ME);
    send_body_late(addr, &clock, &late, T0 + 301)
        .await
        .assert_refused(401, "timestamp_out_of_range");

    // The same, completed in time, is accepted: the refusal above is about time alone.
    clock.set(T0 + 300);
    send_body_late(addr, &clock, &late, T0 + 300)
        .await
        .assert_ok();
}

#[tokio::test]
async fn a_replay_through_a_slow_body_is_refused() {
    let clock = TestClock::new(T0);
    let guard = Arc::new(InMemoryReplayGuard::new(1000));
    let verify = VerifyLayer::builder(store())
        .clock(clock.as_clock())
        .replay_guard(Arc::clone(&guard))
        .build();
    let addr = serve(Router::new().nest("/v1", api()).layer(verify)).await;
    let original = signed("POST", "/v1/echo", "/v1/echo", b"{\"buy\":1}", T0, ME);
    original.send(addr).await.assert_ok();
    // Within the window, a replay is a replay.
    clock.set(T0 + 200);
    original
        .send(addr)
        .await
        .assert_refused(401, "replayed_request");
    // Headers at the window's last second, body after the guard may forget the original:
    // judged at completion, it is out of the window.
    clock.set(T0 + 300);
    send_body_late(addr, &clock, &original, T0 + 400)
        .await
        .assert_refused(401, "timestamp_out_of_range");
    // The guard has since forgotten it (expired at T0 + 300), and nothing was re-recorded.
    assert_eq!(
        jg_hmac::ReplayGuard::check_and_record(
            &*guard,
            "probe",
            &jg_hmac::Signature::from_bytes([0; 32]),
            T0 + 700,
            T0 + 400
        ),
        Ok(())
    );
    assert_eq!(guard.len(), 1, "only the probe is remembered");
}

#[tokio::test]
async fn a_key_that_expires_while_the_body_streams_is_not_used() {
    let clock = TestClock::new(T0 + 10);
    let addr = serve(top_level(&clock)).await;
    let expiring = ("jk_live_expiring", "expiring_secret");
    let request = signed("POST", "/v1/echo", "/v1/echo", b"{}", T0 + 10, expiring);
    send_body_late(addr, &clock, &request, T0 + 11)
        .await
        .assert_refused(401, "client_id");
    clock.set(T0 + 10);
    let again = signed("POST", "/v1/echo", "/v1/echo", b"{ }", T0 + 10, expiring);
    send_body_late(addr, &clock, &again, T0 + 10)
        .await
        .assert_ok();
}

/// A store that counts its lookups and says when one was made, so a test can act between
/// the lookup on arrival and the body.
#[derive(Clone)]
struct Watched {
    store: InMemoryCredentialStore,
    lookups: Arc<AtomicUsize>,
    looked_up: Arc<Notify>,
}

impl CredentialStore for Watched {
    async fn get(&self, client_id: &str) -> Result<Option<Arc<Credential>>, StoreError> {
        let found = self.store.get(client_id).await;
        self.lookups.fetch_add(1, Ordering::SeqCst);
        self.looked_up.notify_waiters();
        found
    }
}

impl Watched {
    async fn lookups_reach(&self, n: usize) {
        loop {
            let notified = self.looked_up.notified();
            if self.lookups.load(Ordering::SeqCst) >= n {
                return;
            }
            notified.await;
        }
    }
}

/// Revocation is final for a request in flight: a key revoked (or ended by a rotation)
/// after the head was verified and the credential looked up, but before the last body
/// byte, does not verify it. Before the layer read the credential again at completion,
/// both requests below were answered 200.
#[tokio::test]
async fn a_key_revoked_while_the_body_streams_is_not_used() {
    let clock = TestClock::new(T0);
    let watched = Watched {
        store: store(),
        lookups: Arc::default(),
        looked_up: Arc::default(),
    };
    let app = Router::new().nest("/v1", api()).layer(
        VerifyLayer::builder(watched.clone())
            .clock(clock.as_clock())
            .build(),
    );
    let addr = serve(app).await;

    // Revoked outright: the client has no key left.
    let request = signed("POST", "/v1/echo", "/v1/echo", b"{}", T0, ME);
    let mut raw = Raw::connect(addr).await;
    raw.write(&request.head()).await;
    watched.lookups_reach(1).await;
    assert!(watched.store.revoke_key(CLIENT, "0"));
    raw.write(&request.body).await;
    raw.reply().await.assert_refused(401, "client_id");

    // Rotated: a new key replaced the one that signed.
    let request = signed(
        "POST",
        "/v1/echo",
        "/v1/echo",
        b"{ }",
        T0,
        (OTHER, OTHER_SECRET),
    );
    let seen = watched.lookups.load(Ordering::SeqCst);
    let mut raw = Raw::connect(addr).await;
    raw.write(&request.head()).await;
    watched.lookups_reach(seen + 1).await;
    watched.store.add_key(
        OTHER,
        SigningKey::new("1", &Secret::from("the next secret")),
    );
    assert!(watched.store.revoke_key(OTHER, "0"));
    raw.write(&request.body).await;
    raw.reply().await.assert_refused(401, "invalid_signature");
}

/// A store that never answers.
#[derive(Clone)]
struct Hanging;

impl CredentialStore for Hanging {
    async fn get(&self, _: &str) -> Result<Option<Arc<Credential>>, StoreError> {
        std::future::pending().await
    }
}

/// A request must be complete within the layer's deadline, whatever holds it: a client
/// that sends its head and keeps its body, or a store that never answers. Past it: 408
/// `request_timeout` in the JSON error shape. (Real time, a 200 ms deadline; the test
/// asserts the answer, not how long it took.)
#[tokio::test]
async fn a_request_not_complete_within_the_deadline_is_408() {
    let clock = TestClock::new(T0);
    let held = Router::new().nest("/v1", api()).layer(
        VerifyLayer::builder(store())
            .clock(clock.as_clock())
            .request_timeout(Duration::from_millis(200))
            .build(),
    );
    let addr = serve(held).await;
    let request = signed("POST", "/v1/echo", "/v1/echo", b"{}", T0, ME);
    let mut raw = Raw::connect(addr).await;
    raw.write(&request.head()).await; // the body never comes
    let reply = raw.reply().await;
    reply.assert_refused(408, "request_timeout");
    assert_eq!(reply.json()["status"], 408);

    let stuck = Router::new().nest("/v1", api()).layer(
        VerifyLayer::builder(Hanging)
            .clock(clock.as_clock())
            .request_timeout(Duration::from_millis(200))
            .build(),
    );
    let addr = serve(stuck).await;
    signed("GET", "/v1/ping", "/v1/ping", b"", T0, ME)
        .send(addr)
        .await
        .assert_refused(408, "request_timeout");
}

// ---------------------------------------------------------------- where the layer sits

#[tokio::test]
async fn inside_router_nest_the_path_as_sent_is_verified() {
    let clock = TestClock::new(T0);
    let app = Router::new()
        .nest("/v1", api().layer(layer(&clock)))
        .nest("/v2", api().layer(layer(&clock)));
    let addr = serve(app).await;
    signed("GET", "/v1/ping", "/v1/ping", b"", T0, ME)
        .send(addr)
        .await
        .assert_ok();
    // A signature over the stripped path is not accepted under the prefix...
    signed("GET", "/ping", "/v1/ping", b"", T0, ME)
        .send(addr)
        .await
        .assert_refused(401, "invalid_signature");
    // ...and a request signed for one mount point is not accepted at another.
    signed("GET", "/v1/ping", "/v2/ping", b"", T0, ME)
        .send(addr)
        .await
        .assert_refused(401, "invalid_signature");
}

#[tokio::test]
async fn inside_nest_service_the_path_as_sent_is_verified() {
    let clock = TestClock::new(T0);
    let app = Router::new().nest_service("/v1", api().layer(layer(&clock)));
    let addr = serve(app).await;
    signed("POST", "/v1/echo?x=1", "/v1/echo?x=1", b"hi", T0, ME)
        .send(addr)
        .await
        .assert_ok();
    signed("POST", "/echo?x=1", "/v1/echo?x=1", b"hi", T0, ME)
        .send(addr)
        .await
        .assert_refused(401, "invalid_signature");
}

#[tokio::test]
async fn under_route_layer_nested_the_path_as_sent_is_verified() {
    let clock = TestClock::new(T0);
    let inner = Router::new()
        .route(
            "/ping",
            get(|who: Authenticated| async move { who.client_id().to_owned() }),
        )
        .route_layer(layer(&clock))
        .route("/open", get(|| async { "open" }));
    let addr = serve(Router::new().nest("/api/v1", inner)).await;
    signed("GET", "/api/v1/ping", "/api/v1/ping", b"", T0, ME)
        .send(addr)
        .await
        .assert_ok();
    signed("GET", "/ping", "/api/v1/ping", b"", T0, ME)
        .send(addr)
        .await
        .assert_refused(401, "invalid_signature");
    // Routes outside `route_layer` are not verified.
    let open = Signed {
        method: "GET",
        sent_target: "/api/v1/open".into(),
        headers: String::new(),
        body: Vec::new(),
    };
    open.send(addr).await.assert_ok();
}

/// `OriginalTargetLayer` misplaced inside a nested router (where it is not needed) must
/// not make the verifier trust the path the nesting stripped: it records what the outer
/// router received. Were it to record the stripped path, one signature over `/ping` would
/// pass at `/v1/ping` and at `/other-prefix/ping`.
#[tokio::test]
async fn original_target_layer_inside_a_nested_router_keeps_the_path_as_sent() {
    let clock = TestClock::new(T0);
    let nested = || api().layer(layer(&clock)).layer(OriginalTargetLayer);
    let app = Router::new()
        .nest("/v1", nested())
        .nest("/other-prefix", nested());
    let addr = serve(app).await;
    for sent in ["/v1/ping", "/other-prefix/ping"] {
        signed("GET", "/ping", sent, b"", T0, ME)
            .send(addr)
            .await
            .assert_refused(401, "invalid_signature");
        signed("GET", sent, sent, b"", T0, ME)
            .send(addr)
            .await
            .assert_ok();
    }
}

/// `NormalizePath` wrapped around the router rewrites the URI before the router, and so
/// before the layer. With `OriginalTargetLayer` outermost, the path as sent is verified.
#[tokio::test]
async fn behind_normalize_path_with_original_target_layer_the_path_as_sent_is_verified() {
    use tower_http::normalize_path::NormalizePathLayer;
    let clock = TestClock::new(T0);
    let app = OriginalTargetLayer
        .layer(NormalizePathLayer::trim_trailing_slash().layer(top_level(&clock)));
    let addr = serve_service(app).await;
    signed("GET", "/v1/ping", "/v1/ping", b"", T0, ME)
        .send(addr)
        .await
        .assert_ok();
    for variant in ["/v1/ping/", "/v1/ping//", "//v1/ping"] {
        // A signature over the canonical spelling does not cover another spelling...
        signed("GET", "/v1/ping", variant, b"", T0, ME)
            .send(addr)
            .await
            .assert_refused(401, "invalid_signature");
        // ...and a partner who signed what it sent is accepted (the route still matches).
        signed("GET", variant, variant, b"", T0, ME)
            .send(addr)
            .await
            .assert_ok();
    }
}

/// What the README and SECURITY.md warn about: without `OriginalTargetLayer`, the layer
/// verifies the rewritten path, so one signature covers every spelling that normalises
/// to it. Kept as a test so the warning stays true.
#[tokio::test]
async fn behind_normalize_path_without_original_target_layer_the_rewritten_path_is_verified() {
    use tower_http::normalize_path::NormalizePathLayer;
    let clock = TestClock::new(T0);
    let app = NormalizePathLayer::trim_trailing_slash().layer(top_level(&clock));
    let addr = serve_service(app).await;
    signed("GET", "/v1/ping", "/v1/ping/", b"", T0, ME)
        .send(addr)
        .await
        .assert_ok();
    signed("GET", "/v1/ping/", "/v1/ping/", b"", T0, ME)
        .send(addr)
        .await
        .assert_refused(401, "invalid_signature");
}

// ---------------------------------------------------------------- one client's flood

/// The API behind the layer, with `guard` as its replay guard.
async fn serve_guarded(clock: &TestClock, guard: InMemoryReplayGuard) -> SocketAddr {
    let verify = VerifyLayer::builder(store())
        .clock(clock.as_clock())
        .replay_guard(guard)
        .build();
    serve(Router::new().nest("/v1", api()).layer(verify)).await
}

#[tokio::test]
async fn one_client_flooding_the_replay_guard_does_not_lock_others_out() {
    let clock = TestClock::new(T0);
    // 20 entries; 2 per client once it holds 10 (half), none refused for its share below.
    let addr = serve_guarded(&clock, InMemoryReplayGuard::new(20)).await;
    // Distinct valid requests, dated at the future edge (each would hold a slot 600 s).
    let flood = |n: usize, at: u64| {
        signed(
            "GET",
            &format!("/v1/ping?n={n}"),
            &format!("/v1/ping?n={n}"),
            b"",
            at,
            ME,
        )
    };
    let other = |n: usize| {
        signed(
            "GET",
            &format!("/v1/ping?m={n}"),
            &format!("/v1/ping?m={n}"),
            b"",
            T0,
            (OTHER, OTHER_SECRET),
        )
    };
    // Alone, it may use free room: five times its share, no refusal.
    for n in 0..10 {
        flood(n, T0 + 300).send(addr).await.assert_ok();
    }
    // Half full: over its share, it is refused…
    for n in 10..14 {
        flood(n, T0 + 300)
            .send(addr)
            .await
            .assert_refused(429, "replay_quota_exceeded");
    }
    // …while the other partner is still served, up to its own share.
    for n in 0..2 {
        other(n).send(addr).await.assert_ok();
    }
    other(2)
        .send(addr)
        .await
        .assert_refused(429, "replay_quota_exceeded");
    // Once its entries expire, the flooding partner is served again.
    clock.set(T0 + 601);
    for n in 14..24 {
        flood(n, T0 + 601).send(addr).await.assert_ok();
    }
}

/// docs/server.md's sizing: twice the peak per 330 s. One partner at that peak, here
/// 1 request/s into 660 entries, for three windows, with its clock 29 s ahead (so it
/// holds 330 entries, the pressure level), is never refused.
#[tokio::test]
async fn a_replay_guard_sized_as_documented_never_refuses_one_partner_at_the_peak() {
    let clock = TestClock::new(T0);
    let addr = serve_guarded(&clock, InMemoryReplayGuard::new(660)).await;
    for second in 0..900 {
        let now = T0 + second;
        clock.set(now);
        let target = format!("/v1/ping?n={second}");
        signed("GET", &target, &target, b"", now + 29, ME)
            .send(addr)
            .await
            .assert_ok();
    }
}

// ---------------------------------------------------------------- framing, HEAD, HTTP/2

#[tokio::test]
async fn the_handler_sees_framing_that_matches_its_body() {
    let clock = TestClock::new(T0);
    let addr = serve(top_level(&clock)).await;
    let body = b"hello";
    let request = signed("POST", "/v1/echo", "/v1/echo", body, T0, ME);
    // Content-Length beside Transfer-Encoding (a smuggling classic): the chunked framing
    // wins, and the handler is not shown the stale Content-Length.
    let head = format!(
        "POST /v1/echo HTTP/1.1\r\nHost: api.test\r\n{}Content-Length: 3\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        request.headers
    );
    let mut raw = Raw::connect(addr).await;
    raw.write(head.as_bytes()).await;
    let reply = raw.reply().await;
    reply.assert_ok();
    assert_eq!(
        reply.text(),
        "len=5 content-length=- transfer-encoding=chunked"
    );

    // A plain Content-Length request: the header matches the body handed on.
    let reply = request.send(addr).await;
    reply.assert_ok();
    assert_eq!(reply.text(), "len=5 content-length=5 transfer-encoding=-");
}

#[tokio::test]
async fn head_requests_are_verified_like_any_other() {
    let clock = TestClock::new(T0);
    let addr = serve(top_level(&clock)).await;
    let reply = signed("HEAD", "/v1/ping", "/v1/ping", b"", T0, ME)
        .send(addr)
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert!(reply.body.is_empty());
    // Signed as GET, sent as HEAD: the method is signed.
    let mut as_get = signed("GET", "/v1/ping", "/v1/ping", b"", T0, ME);
    as_get.method = "HEAD";
    let reply = as_get.send(addr).await;
    assert_eq!(reply.status, 401, "{reply:?}");
    assert!(reply.body.is_empty(), "a HEAD answer has no body");
    assert_eq!(
        reply.header("content-type"),
        Some("application/json"),
        "{reply:?}"
    );
}

#[tokio::test]
async fn http2_prior_knowledge_is_verified() {
    let clock = TestClock::new(T0);
    let addr = serve(top_level(&clock)).await;
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    let signer = Signer::new(CLIENT, &Secret::from(SECRET)).unwrap();
    let send = |body: &'static [u8], sign_body: &'static [u8]| {
        let mut request = http::Request::post(format!("http://{addr}/v1/echo?b=2&a=1"))
            .body(Full::new(Bytes::from_static(body)))
            .unwrap();
        let headers = signer.sign("POST", "/v1/echo?b=2&a=1", sign_body, T0);
        headers.apply_to(request.headers_mut());
        request
    };
    let response = sender.send_request(send(b"h2", b"h2")).await.unwrap();
    assert_eq!(response.version(), http::Version::HTTP_2);
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(
        &body[..],
        b"len=2 content-length=2 transfer-encoding=-".as_slice()
    );

    let response = sender.send_request(send(b"h3", b"h2")).await.unwrap();
    assert_eq!(response.status(), 401);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let json: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["error"], "invalid_signature");
}
