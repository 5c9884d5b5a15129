//! The service on a loopback port, asked by a tonic client with real `CheckRequest`s as
//! Envoy builds them (lower-case header names, pseudo-headers, `raw_body`).

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use envoy_types::ext_authz::v3::pb::{
    CheckRequest, CheckResponse, DeniedHttpResponse, HeaderAppendAction, HttpResponse,
    OkHttpResponse,
};
use envoy_types::pb::envoy::config::core::v3::{HeaderMap as RawHeaders, HeaderValue as Raw};
use envoy_types::pb::envoy::service::auth::v3::AttributeContext;
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Request};
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use jg_hmac::tower::{InMemoryCredentialStore, RequireScopeLayer, VerifyLayer};
use jg_hmac::{
    Credential, Error, HeaderKind, InMemoryReplayGuard, LimitKind, Secret, Signer, SigningKey,
};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::Code;
use tonic::transport::Channel;

const T0: u64 = 1_735_550_160;
const CLIENT: &str = "jk_live_example";
const SECRET: &str = "s3cr3t_test_key_justgold";

/// A running service and a client of it; the service stops when `stop` is sent or
/// dropped.
struct Fixture {
    client: AuthorizationClient<Channel>,
    clock: Arc<AtomicU64>,
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    served: JoinHandle<io::Result<()>>,
}

type Stop = Pin<Box<dyn Future<Output = ()> + Send>>;
type TestLayer = VerifyLayer<InMemoryCredentialStore, InMemoryReplayGuard>;

async fn start() -> Fixture {
    launch(|listener, layer, stop| tokio::spawn(super::serve(listener, layer, stop))).await
}

/// [`start`] with a `RequireScopeLayer` under the layer.
async fn start_guarded(scope: &str) -> Fixture {
    let guard = RequireScopeLayer::new(scope);
    launch(move |listener, layer, stop| {
        tokio::spawn(super::serve_guarded(listener, layer, guard, stop))
    })
    .await
}

async fn launch(
    spawn: impl FnOnce(TcpListener, TestLayer, Stop) -> JoinHandle<io::Result<()>>,
) -> Fixture {
    let store = InMemoryCredentialStore::from_credentials([Credential::new(CLIENT)
        .with_key(SigningKey::new("k1", &Secret::from(SECRET)))
        .with_scope("transactions:write")
        .with_scope("reports:read")]);
    let clock = Arc::new(AtomicU64::new(T0));
    let now = Arc::clone(&clock);
    let layer = VerifyLayer::builder(store)
        .clock(move || now.load(Ordering::SeqCst))
        .replay_guard(InMemoryReplayGuard::new(1000))
        .body_limit(64 * 1024)
        .build();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let served = spawn(
        listener,
        layer,
        Box::pin(async {
            let _ = stopped.await;
        }),
    );
    let client = AuthorizationClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    Fixture {
        client,
        clock,
        addr,
        stop,
        served,
    }
}

/// The `attributes.request.http` Envoy sends for a request signed at `timestamp`, with
/// the pseudo-headers and `x-request-id` Envoy adds, plus `extra` headers.
fn signed(
    method: &str,
    path: &str,
    body: &[u8],
    timestamp: u64,
    extra: &[(&str, &str)],
) -> HttpRequest {
    let signer = Signer::new(CLIENT, &Secret::from(SECRET)).unwrap();
    let auth = signer.sign(method, path, body, timestamp);
    let mut headers: HashMap<String, String> = [
        (":authority", "api.example"),
        (":method", method),
        (":path", path),
        (":scheme", "http"),
        ("content-type", "application/json"),
        ("x-client-id", auth.client_id()),
        ("x-timestamp", auth.timestamp()),
        ("x-request-id", "req-1"),
        ("x-envoy-auth-partial-body", "false"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    headers.insert("x-signature".into(), auth.signature().to_hex());
    headers.insert("content-length".into(), body.len().to_string());
    for (k, v) in extra {
        headers.insert((*k).to_owned(), (*v).to_owned());
    }
    HttpRequest {
        id: "1234567890".into(),
        method: method.into(),
        headers,
        path: path.into(),
        host: "api.example".into(),
        scheme: "http".into(),
        protocol: "HTTP/1.1".into(),
        size: i64::try_from(body.len()).unwrap(),
        raw_body: body.to_vec(),
        ..HttpRequest::default()
    }
}

fn check_request(http: Option<HttpRequest>) -> CheckRequest {
    CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(Request { time: None, http }),
            ..AttributeContext::default()
        }),
    }
}

async fn ask(f: &mut Fixture, http: HttpRequest) -> CheckResponse {
    f.client
        .check(check_request(Some(http)))
        .await
        .unwrap()
        .into_inner()
}

fn assert_ok(response: &CheckResponse) -> &OkHttpResponse {
    assert_eq!(response.status.as_ref().unwrap().code, i32::from(Code::Ok));
    match response.http_response.as_ref().unwrap() {
        HttpResponse::OkResponse(ok) => ok,
        other => panic!("not OK: {other:?}"),
    }
}

/// Asserts a Denied answer with `error`'s status and JSON body; returns it.
fn assert_denied(response: &CheckResponse, error: Error) -> &DeniedHttpResponse {
    assert_ne!(response.status.as_ref().unwrap().code, i32::from(Code::Ok));
    let HttpResponse::DeniedResponse(denied) = response.http_response.as_ref().unwrap() else {
        panic!("not denied: {response:?}");
    };
    assert_eq!(denied.status.unwrap().code, i32::from(error.status()));
    let body: serde_json::Value = serde_json::from_str(&denied.body).unwrap();
    assert_eq!(body["error"], error.code(), "{body}");
    assert_eq!(body["status"], error.status());
    assert_eq!(
        header(&denied.headers, "content-type"),
        Some("application/json")
    );
    denied
}

fn header<'a>(
    headers: &'a [envoy_types::ext_authz::v3::pb::HeaderValueOption],
    name: &str,
) -> Option<&'a str> {
    headers
        .iter()
        .filter_map(|h| h.header.as_ref())
        .find(|h| h.key == name)
        .map(|h| h.value.as_str())
}

/// The headers the upstream receives: `sent` after Envoy applied `ok` (set, then remove).
fn upstream(sent: &HashMap<String, String>, ok: &OkHttpResponse) -> HashMap<String, String> {
    let mut out = sent.clone();
    for option in &ok.headers {
        assert_eq!(
            option.append_action,
            i32::from(HeaderAppendAction::OverwriteIfExistsOrAdd)
        );
        let h = option.header.as_ref().unwrap();
        out.insert(h.key.clone(), h.value.clone());
    }
    for name in &ok.headers_to_remove {
        out.remove(name);
    }
    out
}

#[tokio::test]
async fn an_accepted_request_gets_the_identity_and_no_spoofed_copy() {
    let mut f = start().await;
    let body = br#"{"grams":"1.5"}"#;
    let http = signed(
        "POST",
        "/v1/transactions/buy?z=1&a=%2F",
        body,
        T0,
        &[
            ("x-jg-client-id", "jk_live_admin"),
            ("x-jg-identity", "forged"),
            ("x-jg-scopes", "admin:all"),
        ],
    );
    let sent = http.headers.clone();
    let response = ask(&mut f, http).await;
    let ok = assert_ok(&response);
    let upstream = upstream(&sent, ok);
    assert_eq!(upstream["x-jg-client-id"], CLIENT);
    assert_eq!(upstream["x-jg-key-id"], "k1");
    assert_eq!(upstream["x-jg-scopes"], "transactions:write reports:read");
    assert_eq!(upstream["x-jg-environment"], "live");
    assert_eq!(upstream["x-request-id"], "req-1");
    assert!(!upstream.contains_key("x-jg-identity"));
    assert!(ok.headers_to_remove.contains(&"x-jg-identity".to_owned()));
    // A name that is set is never also removed (Envoy removes after it sets).
    for name in &ok.headers_to_remove {
        assert!(
            header(&ok.headers, name).is_none(),
            "{name} set and removed"
        );
    }
}

#[tokio::test]
async fn a_bad_signature_is_denied_401_with_the_json_body() {
    let mut f = start().await;
    let mut http = signed("POST", "/v1/transactions/buy", b"{}", T0, &[]);
    http.path = "/v1/transactions/sell".into(); // signed for another path
    let response = ask(&mut f, http).await;
    assert_eq!(
        response.status.as_ref().unwrap().code,
        i32::from(Code::Unauthenticated)
    );
    let denied = assert_denied(&response, Error::InvalidSignature);
    assert_eq!(header(&denied.headers, "x-request-id"), Some("req-1"));
    assert_eq!(header(&denied.headers, "cache-control"), Some("no-store"));

    let mut http = signed("GET", "/v1/balance", b"", T0, &[]);
    http.headers.remove("x-signature");
    assert_denied(
        &ask(&mut f, http).await,
        Error::MissingHeader(HeaderKind::Signature),
    );

    f.clock.store(T0 + 301, Ordering::SeqCst);
    let http = signed("GET", "/v1/balance", b"", T0, &[]);
    assert_denied(&ask(&mut f, http).await, Error::TimestampOutOfRange);
}

#[tokio::test]
async fn a_replay_is_denied() {
    let mut f = start().await;
    let http = signed("POST", "/v1/transactions/buy", b"{}", T0, &[]);
    assert_ok(&ask(&mut f, http.clone()).await);
    assert_denied(&ask(&mut f, http).await, Error::ReplayedRequest);
}

#[tokio::test]
async fn a_partial_body_is_refused_and_never_verified() {
    let mut f = start().await;
    // Signed over the bytes Envoy forwards, flagged as cut: still refused.
    let http = signed(
        "POST",
        "/v1/transactions/buy",
        b"{}",
        T0,
        &[("x-envoy-auth-partial-body", "true")],
    );
    let response = ask(&mut f, http.clone()).await;
    let denied = assert_denied(&response, Error::TooLarge(LimitKind::Body));
    assert_eq!(header(&denied.headers, "x-request-id"), Some("req-1"));
    // Not verified, so not recorded by the replay guard: the whole request still passes.
    let mut whole = http;
    whole
        .headers
        .insert("x-envoy-auth-partial-body".into(), "false".into());
    assert_ok(&ask(&mut f, whole).await);
}

#[tokio::test]
async fn the_body_is_verified_byte_for_byte() {
    let mut f = start().await;
    let body = b"line one\r\nline two\r\n\xff\xfe\x00 not UTF-8\r\n";
    let http = signed("POST", "/v1/upload", body, T0, &[]);
    assert_ok(&ask(&mut f, http.clone()).await);

    // One byte changed (CRLF to LF) is another body.
    let mut changed = signed("POST", "/v1/upload", body, T0 + 1, &[]);
    changed.raw_body = body.iter().copied().filter(|b| *b != b'\r').collect();
    changed
        .headers
        .insert("content-length".into(), changed.raw_body.len().to_string());
    assert_denied(&ask(&mut f, changed).await, Error::InvalidSignature);

    // Over the layer's body limit: 413 from the layer.
    let big = vec![b'x'; 64 * 1024 + 1];
    assert_denied(
        &ask(&mut f, signed("POST", "/v1/upload", &big, T0, &[])).await,
        Error::TooLarge(LimitKind::Body),
    );
}

#[tokio::test]
async fn raw_headers_with_non_utf8_values_are_read_as_bytes() {
    let mut f = start().await;
    let http = signed("POST", "/v1/upload", b"\x80\x81", T0, &[]);
    let mut raw: Vec<Raw> = http
        .headers
        .iter()
        .map(|(k, v)| Raw {
            key: k.clone(),
            raw_value: v.as_bytes().to_vec(),
            ..Raw::default()
        })
        .collect();
    raw.push(Raw {
        key: "x-partner-note".into(),
        raw_value: b"caf\xe9".to_vec(),
        ..Raw::default()
    });
    let raw_request = HttpRequest {
        headers: HashMap::new(),
        header_map: Some(RawHeaders { headers: raw }),
        ..http
    };
    assert_ok(&ask(&mut f, raw_request).await);
}

#[tokio::test]
async fn envoy_misconfigurations_are_refused_not_guessed() {
    let mut f = start().await;
    // pack_as_bytes: false: the body came as a string.
    let mut as_string = signed("POST", "/v1/transactions/buy", b"{}", T0, &[]);
    as_string.body = "{}".into();
    as_string.raw_body.clear();
    assert_denied(&ask(&mut f, as_string).await, Error::NotConfigured);

    // No with_request_body: a declared body that never came.
    let mut no_body = signed("POST", "/v1/transactions/buy", b"{}", T0, &[]);
    no_body.raw_body.clear();
    assert_denied(&ask(&mut f, no_body).await, Error::NotConfigured);

    // No request attributes at all.
    let response = f
        .client
        .check(check_request(None))
        .await
        .unwrap()
        .into_inner();
    assert_denied(&response, Error::MissingHeader(HeaderKind::ClientId));
    let response = f
        .client
        .check(CheckRequest { attributes: None })
        .await
        .unwrap()
        .into_inner();
    assert_denied(&response, Error::MissingHeader(HeaderKind::ClientId));
}

#[tokio::test]
async fn hostile_check_requests_fail_the_rpc_without_a_panic() {
    let mut f = start().await;
    let mut huge = signed("GET", "/v1/balance", b"", T0, &[]);
    for i in 0..40_000 {
        huge.headers.insert(format!("x-h{i}"), String::new());
    }
    let status = f.client.check(check_request(Some(huge))).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);

    let mut bad_path = signed("GET", "/v1/balance", b"", T0, &[]);
    bad_path.path = "/v1/a b".into();
    let status = f
        .client
        .check(check_request(Some(bad_path)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);

    // Larger than the body limit (64 KiB here) plus 1 MiB: never decoded.
    let mut oversize = signed("POST", "/v1/upload", b"", T0, &[]);
    oversize.raw_body = vec![b'x'; 64 * 1024 + 1024 * 1024 + 1];
    let status = f
        .client
        .check(check_request(Some(oversize)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange);

    // The service still answers.
    assert_ok(&ask(&mut f, signed("GET", "/v1/balance", b"", T0, &[])).await);
}

#[tokio::test]
async fn clock_skew_is_told_to_the_client_on_success() {
    let mut f = start().await;
    let response = ask(&mut f, signed("GET", "/v1/balance", b"", T0 - 100, &[])).await;
    let ok = assert_ok(&response);
    assert_eq!(
        header(&ok.response_headers_to_add, "x-jg-clock-skew"),
        Some("100")
    );
}

#[tokio::test]
async fn a_guard_under_the_layer_denies_with_its_own_answer() {
    let mut f = start_guarded("admin:write").await;
    let response = ask(&mut f, signed("GET", "/v1/balance", b"", T0, &[])).await;
    assert_eq!(
        response.status.as_ref().unwrap().code,
        i32::from(Code::PermissionDenied)
    );
    assert_denied(&response, Error::InsufficientScope);

    let mut f = start_guarded("reports:read").await;
    assert_ok(&ask(&mut f, signed("GET", "/v1/balance", b"", T0, &[])).await);
}

#[tokio::test]
async fn shutdown_stops_the_service() {
    let f = start().await;
    f.stop.send(()).unwrap();
    f.served.await.unwrap().unwrap();
    assert!(tokio::net::TcpStream::connect(f.addr).await.is_err());
}
