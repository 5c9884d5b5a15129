//! Operating the gateway: SIGHUP reloads, file permissions, errors that name the file and
//! line (never a secret), `--config`, probes, graceful shutdown on SIGTERM.

use std::process::Command;
use std::time::Duration;

use crate::harness::{
    Behaviour, Gateway, OTHER, OTHER_SECRET, TempDir, Upstream, credentials, now,
};
use crate::support::{CLIENT, SECRET, raw};

fn only_client() -> String {
    format!(
        "[[clients]]\nid = \"{CLIENT}\"\n[[clients.keys]]\nid = \"k1\"\nsecret = \"{SECRET}\"\n"
    )
}

/// A fresh request (a unique body: never a replay) signed by `OTHER`; its status.
async fn other(gw: &Gateway) -> u16 {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let body = format!(
        "{{\"n\":{}}}",
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    raw::signed(
        "POST",
        "/v1/buy",
        "/v1/buy",
        body.as_bytes(),
        now(),
        (OTHER, OTHER_SECRET),
    )
    .send(gw.addr)
    .await
    .status
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_reloads_the_credentials_file_and_keeps_the_old_one_when_invalid() {
    let dir = TempDir::new("sighup");
    let creds = dir.file("credentials.toml", only_client().as_bytes());
    let upstream = Upstream::start(Behaviour::Echo).await;
    let gw = Gateway::start(
        &upstream.url(),
        &["--credentials", creds.to_str().unwrap()],
        &dir.0,
    )
    .await;
    assert_eq!(other(&gw).await, 401);

    dir.file("credentials.toml", credentials().as_bytes());
    gw.signal("HUP");
    let mut status = 0;
    for _ in 0..100 {
        status = other(&gw).await;
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, 200, "{}", gw.log());

    // An invalid file (a key with two secret sources on line 9) is refused whole.
    let invalid = format!(
        "{}\n[[clients]]\nid = \"jk_live_new\"\n[[clients.keys]]\nid = \"k2\"\nsecret = \"leaky-secret-value\"\nsecret_env = \"X\"\n",
        only_client()
    );
    dir.file("credentials.toml", invalid.as_bytes());
    gw.signal("HUP");
    for _ in 0..100 {
        if gw.log().contains("credentials file refused") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = gw.log();
    assert!(log.contains("credentials file refused"), "{log}");
    assert!(
        log.contains("line 9") && log.contains("exactly one of secret"),
        "{log}"
    );
    assert!(
        !log.contains("leaky-secret-value") && !log.contains(SECRET),
        "{log}"
    );
    assert_eq!(other(&gw).await, 200, "the credentials in use stay");
}

#[test]
fn invalid_files_and_flags_exit_2_naming_the_file_and_line_never_a_secret() {
    let dir = TempDir::new("invalid");
    let cases = [
        (
            "[[clients]]\nid = \"jk_live_a\"\n[[clients.keys]]\nid = \"k\"\nsecret = \"hidden-secret-1\"\nextra = 1\n",
            "line 6",
        ),
        (
            "[[clients]]\nid = \"jk_live_a\"\n[[clients.keys]]\nid = \"k\"\nsecret = \"hidden-secret-1\n",
            "line 5",
        ),
        (
            "[[clients]]\nid = \"jk_live_a\"\n[[clients.keys]]\nid = \"k\"\nsecret_env = \"JG_SURELY_UNSET_VAR\"\n",
            "JG_SURELY_UNSET_VAR is not set",
        ),
        (
            "[[clients]]\nid = \"jk_live_a\"\nrate_limit = \"fast\"\n",
            "rate_limit",
        ),
    ];
    for (text, expected) in cases {
        let path = dir.file("bad.toml", text.as_bytes());
        let out = Command::new(env!("CARGO_BIN_EXE_jg-hmac"))
            .args([
                "gateway",
                "--listen",
                "127.0.0.1:0",
                "--upstream",
                "http://127.0.0.1:1",
                "--credentials",
            ])
            .arg(&path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(path.to_str().unwrap()) && stderr.contains(expected),
            "{expected}: {stderr}"
        );
        assert!(!stderr.contains("hidden-secret-1"), "{stderr}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_jg-hmac"))
        .args([
            "gateway",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            "https://x:1/base",
        ])
        .env_remove("JG_DATABASE_URL")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread")]
async fn config_file_probes_and_a_shared_credentials_file_reported() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("config");
    let creds = dir.file("credentials.toml", credentials().as_bytes());
    std::fs::set_permissions(&creds, std::fs::Permissions::from_mode(0o644)).unwrap();
    let upstream = Upstream::start(Behaviour::Echo).await;
    let config = dir.file(
        "gateway.toml",
        format!(
            "credentials = \"{}\"\npublic = [\"GET /v1/health\"]\nscope = [\"POST /v1/transactions transactions:write\"]\nbody-limit = 100\n",
            creds.display()
        )
        .as_bytes(),
    );
    let gw = Gateway::start(
        &upstream.url(),
        &["--config", config.to_str().unwrap()],
        &dir.0,
    )
    .await;
    assert!(gw.log().contains("chmod 600"), "{}", gw.log());
    raw::unsigned("GET", "/v1/health", b"")
        .send(gw.addr)
        .await
        .assert_ok();
    raw::unsigned("GET", "/healthz", b"")
        .send(gw.addr)
        .await
        .assert_ok();
    raw::unsigned("GET", "/readyz", b"")
        .send(gw.addr)
        .await
        .assert_ok();
    gw.signed("POST", "/v1/x", &[b'a'; 101], "")
        .await
        .assert_refused(413, "request_too_large");
    raw::signed(
        "POST",
        "/v1/transactions",
        "/v1/transactions",
        b"{}",
        now(),
        (OTHER, OTHER_SECRET),
    )
    .send(gw.addr)
    .await
    .assert_refused(403, "insufficient_scope");
    assert_eq!(upstream.seen().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_finishes_requests_in_flight_and_refuses_new_connections() {
    let dir = TempDir::new("sigterm");
    let creds = dir.file("credentials.toml", credentials().as_bytes());
    let upstream = Upstream::start(Behaviour::Slow(Duration::from_millis(800))).await;
    let mut gw = Gateway::start(
        &upstream.url(),
        &["--credentials", creds.to_str().unwrap()],
        &dir.0,
    )
    .await;
    let addr = gw.addr;
    let in_flight = tokio::spawn(async move {
        raw::signed("POST", "/v1/buy", "/v1/buy", b"{}", now(), (CLIENT, SECRET))
            .send(addr)
            .await
    });
    while upstream.seen().is_empty() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    gw.signal("TERM");
    let reply = in_flight.await.unwrap();
    reply.assert_ok();
    assert_eq!(reply.text(), "slow");
    let status = gw.child.wait().unwrap();
    assert!(status.success(), "{status}: {}", gw.log());
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "new connections are refused"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ext_authz_grpc_listens_beside_the_proxy_and_stops_with_it() {
    let dir = TempDir::new("ext-authz");
    let creds = dir.file("credentials.toml", credentials().as_bytes());
    let upstream = Upstream::start(Behaviour::Echo).await;
    let grpc = format!("127.0.0.1:{}", crate::support::free_port());
    let mut gw = Gateway::start(
        &upstream.url(),
        &[
            "--credentials",
            creds.to_str().unwrap(),
            "--ext-authz-grpc",
            &grpc,
        ],
        &dir.0,
    )
    .await;
    // An HTTP/2 server answers the client preface with its SETTINGS frame (type 4).
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(&grpc).await.unwrap();
    conn.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .await
        .unwrap();
    let mut frame = [0u8; 9];
    conn.read_exact(&mut frame).await.unwrap();
    assert_eq!(frame[3], 4, "a SETTINGS frame: {frame:?}");
    drop(conn);
    gw.signal("TERM");
    assert!(gw.child.wait().unwrap().success(), "{}", gw.log());
    assert!(tokio::net::TcpStream::connect(&grpc).await.is_err());
}
