//! The Express upstream of examples/express-upstream/ (real `express` from npm, after
//! `npm ci`) behind the gateway: a request signed by `jg-hmac sign` goes through, and the
//! Express middleware checks X-JG-Identity with node's crypto. Needs node and npm: without
//! them it prints SKIPPED and passes, unless `CI` is set.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::harness::{Gateway, TempDir, credentials};
use crate::support::{CLIENT, SECRET, raw::Raw};

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `request` signed by `CLIENT` through `jg-hmac sign` with `extra` arguments: its stdout.
fn cli_sign(request: &[u8], extra: &[&str]) -> Vec<u8> {
    let mut sign = Command::new(env!("CARGO_BIN_EXE_jg-hmac"))
        .args([
            "sign",
            "--client-id",
            CLIENT,
            "--secret-env",
            "JG_TEST_SECRET",
        ])
        .args(extra)
        .env("JG_TEST_SECRET", SECRET)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    sign.stdin.take().unwrap().write_all(request).unwrap();
    let out = sign.wait_with_output().unwrap();
    assert!(out.status.success());
    out.stdout
}

struct Node(Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn express_checks_the_identity_of_a_request_signed_by_the_cli() {
    if !(have("node") && have("npm")) {
        assert!(
            std::env::var_os("CI").is_none(),
            "node and npm are required in CI"
        );
        println!("SKIPPED: node/npm not installed");
        return;
    }
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/express-upstream");
    if std::env::var_os("CI").is_some() || !example.join("node_modules/express").exists() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&example)
            .status()
            .unwrap();
        assert!(status.success(), "npm ci");
    }
    // The middleware agrees with the vectors.
    let vectors = Command::new("node")
        .arg("check-vectors.js")
        .current_dir(&example)
        .output()
        .unwrap();
    assert!(
        vectors.status.success(),
        "{}",
        String::from_utf8_lossy(&vectors.stdout)
    );

    let dir = TempDir::new("express");
    let creds = dir.file("credentials.toml", credentials().as_bytes());
    let key = dir.file("identity.key", b"express-identity-key-0123456789abcdef\n");
    let mut node = Node(
        Command::new("node")
            .arg("server.js")
            .current_dir(&example)
            .env("PORT", "0")
            .env("JG_IDENTITY_KEY_FILE", &key)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(node.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .trim()
        .strip_prefix("listening on ")
        .expect("node's port line");
    let gw = Gateway::start(
        &format!("http://127.0.0.1:{port}"),
        &[
            "--credentials",
            creds.to_str().unwrap(),
            "--identity-key-file",
            key.to_str().unwrap(),
            "--public",
            "GET /v1/health",
        ],
        &dir.0,
    )
    .await;

    let body = r#"{"amount":"5000","transactionId":"12345"}"#;
    let request = format!(
        "POST /v1/transactions/buy?b=2&a=1 HTTP/1.1\r\nHost: api.justgold.me\r\n\
         Content-Type: application/json\r\nX-JG-Client-Id: jk_live_spoofed\r\n\
         Connection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let signed = cli_sign(request.as_bytes(), &[]);

    let mut conn = Raw::connect(gw.addr).await;
    conn.write(&signed).await;
    let reply = conn.reply().await;
    reply.assert_ok();
    let seen: Value = reply.json();
    assert_eq!(seen["method"], "POST");
    assert_eq!(seen["target"], "/v1/transactions/buy?b=2&a=1");
    assert_eq!(seen["identity"]["clientId"], CLIENT);
    assert_eq!(seen["identity"]["keyId"], "k1");
    assert_eq!(
        seen["identity"]["scopes"],
        serde_json::json!(["transactions:write", "balance:read"])
    );
    assert_eq!(seen["identity"]["environment"], "live");
    assert_eq!(seen["bodyLength"], body.len());

    // Around the gateway, the same identity headers without a valid assertion are refused.
    let mut direct = Raw::connect(format!("127.0.0.1:{port}").parse().unwrap()).await;
    direct
        .write(
            b"GET /v1/orders HTTP/1.1\r\nHost: x\r\nX-JG-Client-Id: jk_live_example\r\nX-JG-Key-Id: k1\r\n\
              X-JG-Scopes: admin\r\nX-JG-Environment: live\r\nX-Request-Id: r\r\n\
              X-JG-Identity: v1;t=1;sig=0000000000000000000000000000000000000000000000000000000000000000\r\n\
              Connection: close\r\n\r\n",
        )
        .await;
    let refused = direct.reply().await;
    assert_eq!(refused.status, 401);
    assert_eq!(refused.code(), "gateway_identity_expired");

    // What docs/gateway.md shows an operator: `jg-hmac sign --curl`, run by the shell.
    if have("curl") {
        let request = "GET /v1/balance?currency=XAU HTTP/1.1\r\nHost: api.justgold.me\r\n\r\n";
        let curl = format!("http://{}", gw.addr);
        let command = cli_sign(request.as_bytes(), &["--curl", &curl]);
        let out = Command::new("sh")
            .arg("-c")
            .arg(String::from_utf8(command).unwrap())
            .output()
            .unwrap();
        let seen: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stdout)));
        assert_eq!(seen["target"], "/v1/balance?currency=XAU");
        assert_eq!(seen["identity"]["clientId"], CLIENT);
    } else {
        assert!(std::env::var_os("CI").is_none(), "curl is required in CI");
    }

    // The seed's unsigned health route passes the gateway as a public route.
    let mut health = Raw::connect(gw.addr).await;
    health
        .write(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await;
    health.reply().await.assert_ok();
}
