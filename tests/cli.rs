//! The `jg-hmac` binary, run as a process: sign → verify round trips through stdin, the
//! seed's GET request, every signing vector of `test-vectors/` through `explain`, the
//! verification vectors through `verify`, and bad input answered with exit 2.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const SEED_SECRET: &str = "s3cr3t_test_key_justgold";
const SEED_GET: &str = "GET /v1/ping?z=two&z=three&version=1&a=hello HTTP/1.1\r\n\
                        Host: api.justgold.me\r\n\
                        X-Client-Id: jk_live_example\r\n\
                        X-Timestamp: 1735550160\r\n\
                        X-Signature: fa86029249a12a9531e269ef8986cba153a9839d741f6f38e457c6eb96bede76\r\n\r\n";
const SEED_POST_BODY: &str = r#"{"amount":"5000","transactionId":"12345"}"#;

mod cli_support;
use cli_support::{Run, run_with};

fn run(args: &[&str], stdin: &[u8]) -> Run {
    run_with(args, Some(SEED_SECRET.into()), stdin)
}

/// `args` with `--secret-env JG_TEST_SECRET` added.
fn with_secret<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut v = args.to_vec();
    v.extend(["--secret-env", "JG_TEST_SECRET"]);
    v
}

fn post_request(eol: &str) -> Vec<u8> {
    format!(
        "POST /v1/transactions/buy HTTP/1.1{eol}Host: api.justgold.me{eol}\
         Content-Type: application/json; charset=utf-8{eol}Content-Length: 41{eol}{eol}{SEED_POST_BODY}"
    )
    .into_bytes()
}

fn sign_at(request: &[u8], ts: &str) -> Run {
    run(
        &with_secret(&["sign", "--client-id", "jk_live_example", "--timestamp", ts]),
        request,
    )
}

fn verify_at(request: &[u8], now: &str) -> Run {
    run(&with_secret(&["verify", "--now", now]), request)
}

#[test]
fn help_describes_the_tool_and_its_exit_codes() {
    let r = run_with(&["--help"], None, b"");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let help = r.out();
    assert!(
        help.starts_with(
            "Sign, verify and explain raw HTTP/1.1 requests signed with JG-HMAC-SHA256."
        ),
        "{help}"
    );
    for code in [
        "0 success",
        "1 verification failed",
        "2 usage error or unreadable input",
    ] {
        assert!(
            help.contains(code),
            "exit code `{code}` missing from:\n{help}"
        );
    }
}

#[test]
fn seed_get_request_verifies_at_its_time() {
    let r = verify_at(SEED_GET.as_bytes(), "1735550160");
    assert_eq!((r.code, r.out().as_str()), (0, "ok\n"), "{}", r.stderr);

    let r = verify_at(SEED_GET.as_bytes(), "1735550461");
    assert_eq!(r.code, 1);
    assert!(
        r.out().starts_with(
            "timestamp_out_of_range: Timestamp outside the allowed window (X-Timestamp 1735550160 is 301 s before now"
        ),
        "{}",
        r.out()
    );
    // The window is a setting.
    let r = run(
        &with_secret(&["verify", "--now", "1735550461", "--window", "301"]),
        SEED_GET.as_bytes(),
    );
    assert_eq!(r.code, 0, "{}", r.out());

    // LF line ends, and the seed's X-Access-Key name, verify too.
    let lf = SEED_GET
        .replace("\r\n", "\n")
        .replace("X-Client-Id", "X-Access-Key");
    let r = verify_at(lf.as_bytes(), "1735550160");
    assert_eq!((r.code, r.out().as_str()), (0, "ok\n"));
    let r = run(
        &with_secret(&["verify", "--now", "1735550160", "--no-access-key-alias"]),
        lf.as_bytes(),
    );
    assert_eq!(
        (r.code, r.out().as_str()),
        (1, "missing_header: Missing required header X-Client-Id\n")
    );
}

#[test]
fn verify_reports_each_failure_with_its_wire_code() {
    let tampered = SEED_GET.replace("a=hello", "a=hell0");
    let r = verify_at(tampered.as_bytes(), "1735550160");
    assert_eq!(r.code, 1);
    assert!(
        r.out().starts_with("invalid_signature: Signature mismatch"),
        "{}",
        r.out()
    );

    let r = run_with(
        &with_secret(&["verify", "--now", "1735550160"]),
        Some("another secret".into()),
        SEED_GET.as_bytes(),
    );
    assert!(r.out().starts_with("invalid_signature: "), "{}", r.out());

    let r = run(
        &with_secret(&[
            "verify",
            "--now",
            "1735550160",
            "--client-id",
            "jk_live_other",
        ]),
        SEED_GET.as_bytes(),
    );
    assert_eq!(r.code, 1);
    assert!(r.out().starts_with("client_id: "), "{}", r.out());

    let missing = SEED_GET.replace("X-Timestamp: 1735550160\r\n", "");
    let r = verify_at(missing.as_bytes(), "1735550160");
    assert_eq!(
        (r.code, r.out().as_str()),
        (1, "missing_header: Missing required header X-Timestamp\n")
    );

    let millis = SEED_GET.replace("1735550160\r\n", "1735550160000\r\n");
    let r = verify_at(millis.as_bytes(), "1735550160");
    assert!(
        r.out().starts_with("timestamp_out_of_range: ") && r.out().contains("milliseconds?"),
        "{}",
        r.out()
    );

    let r = run(
        &with_secret(&[
            "verify",
            "--now",
            "1735550100",
            "--content-type",
            "text/plain",
        ]),
        &sign_at(&post_request("\r\n"), "1735550100").stdout,
    );
    assert!(
        r.out().starts_with("unsupported_content_type: "),
        "{}",
        r.out()
    );
}

#[test]
fn sign_then_verify_round_trips_through_stdin() {
    let chunked = b"PUT /v1/upload?b=2&a=1 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\
                    4\r\n\x00\xff\r\n\r\n3;ext=1\r\nabc\r\n0\r\n\r\n"
        .to_vec();
    let raw_utf8 = "GET /v1/café?name=José&city=Zürich HTTP/1.1\nHost: x\n\n"
        .as_bytes()
        .to_vec();
    for (name, request) in [
        ("post crlf", post_request("\r\n")),
        ("post lf", post_request("\n")),
        ("get crlf", SEED_GET.as_bytes().to_vec()),
        ("chunked", chunked),
        ("raw utf-8 target", raw_utf8),
    ] {
        let signed = sign_at(&request, "1735550100");
        assert_eq!(signed.code, 0, "{name}: {}", signed.stderr);
        let text = signed.out();
        for header in ["X-Client-Id: jk_live_example", "X-Timestamp: 1735550100"] {
            assert_eq!(text.matches(header).count(), 1, "{name}: {text}");
        }
        assert_eq!(text.matches("X-Signature: ").count(), 1, "{name}");
        assert!(!text.contains(SEED_SECRET));
        let ok = verify_at(&signed.stdout, "1735550100");
        assert_eq!((ok.code, ok.out().as_str()), (0, "ok\n"), "{name}");
        let late = verify_at(&signed.stdout, "1735550401");
        assert_eq!(late.code, 1, "{name}");
    }

    // The corrected seed POST signs to the published corrected signature, and the
    // request line, other headers and body come out byte for byte.
    let signed = sign_at(&post_request("\r\n"), "1735550100");
    let expected = format!(
        "POST /v1/transactions/buy HTTP/1.1\r\nHost: api.justgold.me\r\n\
         Content-Type: application/json; charset=utf-8\r\nContent-Length: 41\r\n\
         X-Client-Id: jk_live_example\r\nX-Timestamp: 1735550100\r\n\
         X-Signature: 97b5a41c23cc09f798599e9475eb091c408e2fed941c54aef544c2a364ee76e7\r\n\r\n{SEED_POST_BODY}"
    );
    assert_eq!(signed.out(), expected);
}

#[test]
fn sign_replaces_existing_auth_headers() {
    let stale = format!(
        "{}X-Access-Key: jk_old\nx-timestamp: 1\nX-SIGNATURE: {}\nX-Client-Id: jk_old\nAccept: */*\n\n",
        "GET /v1/ping?z=two&z=three&version=1&a=hello HTTP/1.1\n",
        "0".repeat(64)
    );
    let signed = sign_at(stale.as_bytes(), "1735550160");
    assert_eq!(
        signed.out(),
        "GET /v1/ping?z=two&z=three&version=1&a=hello HTTP/1.1\nAccept: */*\n\
         X-Client-Id: jk_live_example\nX-Timestamp: 1735550160\n\
         X-Signature: fa86029249a12a9531e269ef8986cba153a9839d741f6f38e457c6eb96bede76\n\n"
    );
}

#[test]
fn secret_sources() {
    let dir = temp_dir("secret_sources");
    let file = dir.join("secret");
    let signed_get = SEED_GET.as_bytes();

    // One trailing newline (LF or CRLF) is removed from a secret file.
    for content in [
        &b"s3cr3t_test_key_justgold\n"[..],
        b"s3cr3t_test_key_justgold\r\n",
        SEED_SECRET.as_bytes(),
    ] {
        std::fs::write(&file, content).unwrap();
        let r = run_with(
            &[
                "verify",
                "--now",
                "1735550160",
                "--secret-file",
                file.to_str().unwrap(),
            ],
            None,
            signed_get,
        );
        assert_eq!((r.code, r.out().as_str()), (0, "ok\n"), "{content:?}");
    }
    // Only one: a second newline is part of the secret.
    std::fs::write(&file, b"s3cr3t_test_key_justgold\n\n").unwrap();
    let r = run_with(
        &[
            "verify",
            "--now",
            "1735550160",
            "--secret-file",
            file.to_str().unwrap(),
        ],
        None,
        signed_get,
    );
    assert_eq!(r.code, 1);

    // Missing sources are usage errors (exit 2), with a message.
    for (args, needle) in [
        (
            vec!["verify", "--secret-env", "JG_TEST_SECRET"],
            "JG_TEST_SECRET is not set",
        ),
        (vec!["verify"], "a secret is required"),
        (vec!["sign", "--client-id", "c"], "a secret is required"),
        (
            vec!["verify", "--secret-file", "/nonexistent/jg"],
            "cannot read /nonexistent/jg",
        ),
        (
            vec!["verify", "--secret-env", "A", "--secret-file", "B"],
            "cannot be used with",
        ),
        (vec!["verify", "--secret", "s3cr3t"], "unexpected argument"),
    ] {
        let r = run_with(&args, None, signed_get);
        assert_eq!(r.code, 2, "{args:?}");
        assert!(r.stderr.contains(needle), "{args:?}: {}", r.stderr);
    }
    std::fs::write(&file, b"\n").unwrap();
    let r = run_with(
        &["verify", "--secret-file", file.to_str().unwrap()],
        None,
        signed_get,
    );
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("the secret is empty"));

    // --in reads a file instead of stdin.
    let req = dir.join("req.http");
    std::fs::write(&req, SEED_GET).unwrap();
    let r = run(
        &with_secret(&[
            "verify",
            "--now",
            "1735550160",
            "--in",
            req.to_str().unwrap(),
        ]),
        b"",
    );
    assert_eq!((r.code, r.out().as_str()), (0, "ok\n"));
}

#[test]
fn garbage_truncated_and_oversized_input_exit_2() {
    let mut cases: Vec<(String, Vec<u8>)> = vec![
        ("empty".into(), Vec::new()),
        ("blank lines".into(), b"\r\n\r\n\n".to_vec()),
        ("text".into(), b"hello world\n".to_vec()),
        (
            "http2 preface".into(),
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec(),
        ),
        ("binary".into(), (0u8..=255).cycle().take(3000).collect()),
        ("bare cr".into(), b"GET / HTTP/1.1\rX: y\r\n\r\n".to_vec()),
        (
            "both framings".into(),
            b"POST / HTTP/1.1\nContent-Length: 1\nTransfer-Encoding: chunked\n\n0\n\n".to_vec(),
        ),
        (
            "gzip".into(),
            b"POST / HTTP/1.1\nTransfer-Encoding: gzip\n\n".to_vec(),
        ),
        (
            "body without length".into(),
            format!("POST /v1/orders HTTP/1.1\n\n{SEED_POST_BODY}").into_bytes(),
        ),
    ];
    // Pseudo-random bytes, seeded.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..5 {
        let bytes = (0..200 + 97 * i)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x.to_le_bytes()[0]
            })
            .collect();
        cases.push((format!("random {i}"), bytes));
    }
    for (name, input) in &cases {
        for command in [
            with_secret(&["verify", "--now", "1735550160"]),
            with_secret(&["explain"]),
            with_secret(&["sign", "--client-id", "c", "--timestamp", "1"]),
        ] {
            let r = run(&command, input);
            assert_eq!(r.code, 2, "{name} {command:?}: {}", r.out());
            assert!(r.stdout.is_empty(), "{name}");
            assert!(r.stderr.starts_with("jg-hmac: "), "{name}: {}", r.stderr);
        }
    }

    // Every proper prefix of a signed POST is refused as input (exit 2), never verified.
    let signed = sign_at(&post_request("\r\n"), "1735550100").stdout;
    for cut in 0..signed.len() {
        let r = verify_at(&signed[..cut], "1735550100");
        assert_eq!(r.code, 2, "prefix of {cut} bytes: {}", r.out());
        assert!(
            r.stderr.contains("truncated") || r.stderr.contains("empty"),
            "prefix of {cut} bytes: {}",
            r.stderr
        );
    }
    assert_eq!(verify_at(&signed, "1735550100").code, 0);

    // A Content-Length above the 10 MiB body limit, and input beyond what the limits
    // allow at all (the tool stops reading).
    let head = b"POST /v1/upload HTTP/1.1\r\nContent-Length: 10485761\r\n\r\n";
    let r = verify_at(head, "1");
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("body larger than 10485760 bytes"),
        "{}",
        r.stderr
    );
    let mut huge = head.to_vec();
    huge.resize(head.len() + 12 * 1024 * 1024, b'a');
    let r = verify_at(&huge, "1");
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("input too large"), "{}", r.stderr);
    let long_header = [
        &b"GET / HTTP/1.1\r\nX-Pad: "[..],
        &vec![b'a'; 70 * 1024],
        b"\r\n\r\n",
    ]
    .concat();
    let r = verify_at(&long_header, "1");
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("header section larger than 65536 bytes"),
        "{}",
        r.stderr
    );
}

#[test]
fn explain_shows_a_mismatch_and_verifies_on_request() {
    let tampered = SEED_GET.replace("version=1", "version=2");
    let r = run(
        &with_secret(&["explain", "--now", "1735550160"]),
        tampered.as_bytes(),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let out = r.out();
    assert!(
        out.contains("canonical query:    a=hello&version=2&z=three&z=two\n"),
        "{out}"
    );
    assert!(out.contains("signature:          DOES NOT MATCH"), "{out}");
    assert!(
        out.contains("verify at 1735550160: invalid_signature: Signature mismatch"),
        "{out}"
    );
    assert!(!out.contains(SEED_SECRET));

    // Without a secret: everything but the signature.
    let r = run_with(&["explain"], None, SEED_GET.as_bytes());
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.out()
            .contains("GET\\n\n/v1/ping\\n\na=hello&version=1&z=three&z=two\\n\n")
    );
    assert!(r.out().contains("give --secret-env or --secret-file"));

    // A chunked body is hashed decoded.
    let chunked = b"POST /v1/transactions/buy HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\
        10\r\n{\"amount\":\"5000\"\r\n19\r\n,\"transactionId\":\"12345\"}\r\n0\r\n\r\n";
    let r = run(
        &with_secret(&["explain", "--timestamp", "1735550100"]),
        chunked,
    );
    let out = r.out();
    assert!(
        out.contains("body:               41 bytes (decoded from chunked)"),
        "{out}"
    );
    assert!(
        out.contains(
            "expected signature: 97b5a41c23cc09f798599e9475eb091c408e2fed941c54aef544c2a364ee76e7"
        ),
        "{out}"
    );
}

#[test]
fn explain_and_verify_escape_what_they_echo() {
    // Escape sequences (clear screen, hide text, 8-bit CSI) in every field explain echoes.
    // (A request-target cannot hold control bytes, but 0x9B is CSI to some terminals.)
    let raw = b"GET /v1/\x9b2J\x9b31m\xff?a=\xff HTTP/1.1\r\n\
                X-Client-Id: jk\x1b]0;pwned\x07\r\n\
                X-Timestamp: 17355\x1b[8m50160\r\n\
                X-Signature: \x1b[2Jfa86\r\n\r\n";
    let r = run(&with_secret(&["explain", "--now", "1735550160"]), raw);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let printable = |bytes: &[u8]| {
        bytes
            .iter()
            .all(|&b| b == b'\n' || (0x20..=0x7e).contains(&b))
    };
    assert!(printable(&r.stdout), "{:?}", r.out());
    let out = r.out();
    assert!(
        out.contains("path:               /v1/\\x9b2J\\x9b31m\\xff\n"),
        "{out}"
    );
    assert!(out.contains("client id:          jk\\x1b]0;pwned\\x07 (from X-Client-Id"));
    assert!(out.contains("timestamp:          17355\\x1b[8m50160 (from X-Timestamp"));
    assert!(out.contains("sent signature:     \\x1b[2Jfa86\n"));
    assert!(out.contains("\n17355\\x1b[8m50160\\n\n"), "{out}");
    // The string-to-sign block gives back the bytes.
    assert!(string_to_sign(&out).contains("\n17355\x1b[8m50160\n"));

    let r = run(
        &with_secret(&["verify", "--now", "1735550160", "--client-id", "a\x1bb"]),
        SEED_GET.as_bytes(),
    );
    assert_eq!(r.code, 1);
    assert!(printable(&r.stdout), "{:?}", r.out());
    assert!(r.out().contains("client id a\\x1bb only"), "{}", r.out());
}

#[test]
fn curl_command_passes_the_body_byte_for_byte() {
    let body: Vec<u8> = [
        &b"{\"note\":\"it's 100% \\\\ done\"}\n"[..],
        &[0u8, 1, 0x7f, 0x80, 0xff],
        "é".as_bytes(),
    ]
    .concat();
    let mut request = format!(
        "PUT /v1/./notes/%7E?b=2&a=[1] HTTP/1.1\r\nHost: api.justgold.me\r\nX-Note: o'brien\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    let r = run(
        &with_secret(&[
            "sign",
            "--client-id",
            "jk_live_example",
            "--timestamp",
            "1735550160",
            "--curl",
            "http://127.0.0.1:8080/",
        ]),
        &request,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let command = r.out();
    assert!(!command.contains(SEED_SECRET));

    // Run the command with `curl` replaced by a function that records what it was given.
    let dir = temp_dir("curl");
    let script = format!(
        "curl() {{ cat > '{d}/body'; printf '%s\\n' \"$@\" > '{d}/args'; }}\n{command}",
        d = dir.display()
    );
    let status = Command::new("sh").arg("-c").arg(&script).status().unwrap();
    assert!(status.success());
    assert_eq!(std::fs::read(dir.join("body")).unwrap(), body);
    let args = std::fs::read_to_string(dir.join("args")).unwrap();
    let args: Vec<&str> = args.lines().collect();
    let expected_signature = {
        let signed = sign_at(&request, "1735550160").out();
        signed
            .lines()
            .find_map(|l| l.strip_prefix("X-Signature: "))
            .unwrap()
            .trim()
            .to_owned()
    };
    for want in [
        "--path-as-is",
        "--globoff",
        "http://127.0.0.1:8080/v1/./notes/%7E?b=2&a=[1]",
        "X-Note: o'brien",
        "Content-Type:",
        "X-Client-Id: jk_live_example",
        "X-Timestamp: 1735550160",
        &format!("X-Signature: {expected_signature}"),
        "@-",
    ] {
        assert!(args.contains(&want), "missing {want:?} in {args:?}");
    }
    assert!(
        !args
            .iter()
            .any(|a| a.starts_with("Host:") || a.starts_with("Content-Length:"))
    );
}

// ---- test vectors through `explain` and `verify` ----

fn vector_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("test-vectors");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

fn body_of(v: &Value) -> Vec<u8> {
    if let Some(h) = v.get("body_hex").and_then(Value::as_str) {
        return hex::decode(h).unwrap();
    }
    v.get("body")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .as_bytes()
        .to_vec()
}

#[cfg(unix)]
fn os_from_bytes(bytes: Vec<u8>) -> OsString {
    use std::os::unix::ffi::OsStringExt;
    OsString::from_vec(bytes)
}

#[cfg(not(unix))]
fn os_from_bytes(bytes: Vec<u8>) -> OsString {
    String::from_utf8(bytes).unwrap().into()
}

fn field<'a>(out: &'a str, label: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(label))
        .unwrap_or_else(|| panic!("no {label:?} in:\n{out}"))
        .trim_start()
}

/// The string-to-sign block of `explain`'s output, with the visible `\n` markers
/// turned back into newlines and the `\xHH` escapes into their bytes.
fn string_to_sign(out: &str) -> String {
    let block = out
        .split_once("none at the end):\n")
        .unwrap_or_else(|| panic!("no string-to-sign in:\n{out}"))
        .1;
    let block = block.split_once("\n\n").unwrap().0;
    String::from_utf8_lossy(&unescape(&block.replace("\\n\n", "\n"))).into_owned()
}

/// Undoes the terminal escaping of `explain`: `\xHH` back to the byte.
fn unescape(shown: &str) -> Vec<u8> {
    let bytes = shown.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && bytes.get(i + 1) == Some(&b'x')
            && let Some(Ok(b)) = bytes
                .get(i + 2..i + 4)
                .map(|h| u8::from_str_radix(std::str::from_utf8(h).unwrap_or("zz"), 16))
        {
            out.push(b);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

#[test]
fn every_signing_vector_through_explain() {
    let mut checked = 0;
    let mut skipped = Vec::new();
    let secrets_dir = temp_dir("vector_secrets");
    for file in vector_files() {
        let doc: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        let fname = file.file_name().unwrap().to_string_lossy().into_owned();
        for v in doc["signing"].as_array().unwrap() {
            let name = format!("{fname} {}", v["name"].as_str().unwrap());
            let secret = match v.get("secret_hex").and_then(Value::as_str) {
                Some(h) => hex::decode(h).unwrap(),
                None => v["secret"].as_str().unwrap().as_bytes().to_vec(),
            };
            let target = v["target"].as_str().unwrap();
            let expected = &v["expected"];
            let body = body_of(v);
            let mut raw = format!(
                "{} {target} HTTP/1.1\r\nHost: api.justgold.me\r\nX-Client-Id: jk_live_example\r\n\
                 X-Timestamp: {}\r\nX-Signature: {}\r\n",
                v["method"].as_str().unwrap(),
                v["timestamp"].as_str().unwrap(),
                expected["signature"].as_str().unwrap(),
            )
            .into_bytes();
            if !body.is_empty() {
                raw.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
            }
            raw.extend_from_slice(b"\r\n");
            raw.extend_from_slice(&body);

            let given_hash = v.get("content_sha256").and_then(Value::as_str);
            let mut args = vec!["explain"];
            if let Some(h) = given_hash {
                args.extend(["--content-sha256", h]);
            }
            // A secret with a NUL byte cannot be put in the environment: use a file,
            // whose one trailing newline the tool removes.
            let secret_file = secrets_dir.join(format!("{checked}-{}", skipped.len()));
            let r = if secret.contains(&0) {
                assert!(!secret.ends_with(b"\r"), "{name}");
                std::fs::write(&secret_file, [&secret[..], b"\n"].concat()).unwrap();
                args.extend(["--secret-file", secret_file.to_str().unwrap()]);
                run_with(&args, None, &raw)
            } else {
                args.extend(["--secret-env", "JG_TEST_SECRET"]);
                run_with(&args, Some(os_from_bytes(secret)), &raw)
            };
            if target.is_empty() {
                // An empty request-target cannot be written on an HTTP/1.1 request line.
                assert_eq!(r.code, 2, "{name}");
                assert!(
                    r.stderr.contains("empty request-target"),
                    "{name}: {}",
                    r.stderr
                );
                skipped.push(name);
                continue;
            }
            assert_eq!(r.code, 0, "{name}: {}", r.stderr);
            let out = r.out();
            assert_eq!(
                field(&out, "canonical query:"),
                expected["canonical_query"].as_str().unwrap(),
                "{name}"
            );
            let hash = field(&out, "body sha256:").split(' ').next().unwrap();
            assert_eq!(hash, expected["content_sha256"].as_str().unwrap(), "{name}");
            assert_eq!(
                string_to_sign(&out),
                expected["string_to_sign"].as_str().unwrap(),
                "{name}"
            );
            assert_eq!(
                field(&out, "expected signature:"),
                expected["signature"].as_str().unwrap(),
                "{name}"
            );
            assert_eq!(field(&out, "signature:"), "matches", "{name}");
            checked += 1;
        }
    }
    eprintln!("signing vectors through explain: {checked} checked, skipped: {skipped:?}");
    // The vector with an empty target is the only one not explained.
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert!(checked >= 60, "only {checked} vectors checked");
}

#[test]
fn verification_vectors_through_verify() {
    let mut checked = 0;
    let mut skipped = 0;
    for file in vector_files() {
        let doc: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        let fname = file.file_name().unwrap().to_string_lossy().into_owned();
        for v in doc["verification"].as_array().unwrap() {
            let name = format!("{fname} {}", v["name"].as_str().unwrap());
            let secrets = v["secrets"].as_object().unwrap();
            let req = &v["request"];
            let headers: Vec<(String, Vec<u8>)> = req["headers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| {
                    let h = h.as_array().unwrap();
                    let value = if h.len() == 3 {
                        hex::decode(h[1].as_str().unwrap()).unwrap()
                    } else {
                        h[1].as_str().unwrap().as_bytes().to_vec()
                    };
                    (h[0].as_str().unwrap().to_owned(), value)
                })
                .collect();
            // What one run of the CLI cannot express, or an HTTP/1.1 request line and
            // header section cannot carry (a parser trims spaces around values).
            let one_secret = secrets.len() == 1
                && secrets.values().next().unwrap().as_array().unwrap().len() == 1;
            let carries = headers.iter().all(|(_, value)| {
                !value.iter().any(|&b| b == b'\r' || b == b'\n')
                    && !value.first().is_some_and(|&b| b == b' ' || b == b'\t')
                    && !value.last().is_some_and(|&b| b == b' ' || b == b'\t')
            });
            let target = req["target"].as_str().unwrap();
            if !one_secret
                || !carries
                || target.is_empty()
                || v.get("replay").and_then(Value::as_bool) == Some(true)
            {
                skipped += 1;
                continue;
            }
            let (client, list) = secrets.iter().next().unwrap();
            let secret = list[0].as_str().unwrap().to_owned();

            let body = body_of(req);
            let mut raw =
                format!("{} {target} HTTP/1.1\r\n", req["method"].as_str().unwrap()).into_bytes();
            for (name, value) in &headers {
                raw.extend_from_slice(name.as_bytes());
                raw.extend_from_slice(b": ");
                raw.extend_from_slice(value);
                raw.extend_from_slice(b"\r\n");
            }
            if !body.is_empty() {
                raw.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
            }
            raw.extend_from_slice(b"\r\n");
            raw.extend_from_slice(&body);

            let now = v["now"].as_u64().unwrap().to_string();
            let window = v.get("window").map(|w| w.as_u64().unwrap().to_string());
            let mut args = with_secret(&["verify", "--now", &now, "--client-id", client]);
            if let Some(w) = &window {
                args.extend(["--window", w]);
            }
            if v.get("alias").and_then(Value::as_bool) == Some(false) {
                args.push("--no-access-key-alias");
            }
            let types: Vec<String> = v
                .get("content_types")
                .map(|t| {
                    t.as_array()
                        .unwrap()
                        .iter()
                        .map(|s| s.as_str().unwrap().to_owned())
                        .collect()
                })
                .unwrap_or_default();
            for t in &types {
                args.extend(["--content-type", t]);
            }
            let r = run_with(&args, Some(secret.into()), &raw);
            let expected = v["expected"].as_str().unwrap();
            if expected == "ok" {
                assert_eq!(
                    (r.code, r.out().as_str()),
                    (0, "ok\n"),
                    "{name}: {}",
                    r.stderr
                );
            } else {
                assert_eq!(r.code, 1, "{name}: {} {}", r.out(), r.stderr);
                assert!(
                    r.out().starts_with(&format!("{expected}: ")),
                    "{name}: want {expected}, got {}",
                    r.out()
                );
            }
            checked += 1;
        }
    }
    eprintln!("verification vectors through verify: {checked} checked, {skipped} skipped");
    assert!(checked >= 100, "only {checked} checked ({skipped} skipped)");
}

/// A directory under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl std::ops::Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn temp_dir(name: &str) -> TempDir {
    let dir = std::env::temp_dir().join(format!("jg-hmac-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    TempDir(dir)
}

// ---- `explain` names the mistake ----

const EMPTY_HASH: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// The string-to-sign a (possibly mistaken) signer builds from these lines.
fn sts_of(ts: &str, method: &str, path: &str, query: &str, hash: &str) -> Vec<u8> {
    format!("JG-HMAC-SHA256\n{ts}\n{method}\n{path}\n{query}\n{hash}").into_bytes()
}

fn hmac_hex(secret: &[u8], message: &[u8]) -> String {
    use hmac::{KeyInit, Mac};
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}

/// A request carrying `signature`, timestamp 1735550160.
fn signed_request(method: &str, target: &str, body: &[u8], signature: &str) -> Vec<u8> {
    let mut raw = format!(
        "{method} {target} HTTP/1.1\r\nHost: api.justgold.me\r\nContent-Type: application/json\r\n\
         X-Client-Id: jk_live_example\r\nX-Timestamp: 1735550160\r\nX-Signature: {signature}\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(body);
    raw
}

/// `explain`'s one `diagnosis:` line (after `diagnosis: `), checking that the secret is
/// not in the output.
fn diagnosis(request: &[u8]) -> String {
    let r = run(&with_secret(&["explain"]), request);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let out = r.out();
    assert!(!out.contains(SEED_SECRET), "the secret is printed:\n{out}");
    assert!(!r.stderr.contains(SEED_SECRET));
    let lines: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("diagnosis: "))
        .collect();
    assert_eq!(lines.len(), 1, "want one diagnosis line:\n{out}");
    lines[0].to_owned()
}

fn assert_diagnosis(code: &str, method: &str, target: &str, body: &[u8], signed: &[u8]) -> String {
    let signature = hmac_hex(SEED_SECRET.as_bytes(), signed);
    let line = diagnosis(&signed_request(method, target, body, &signature));
    assert!(
        line.starts_with(&format!("{code} (")),
        "want {code}, got {line:?} for {:?}",
        String::from_utf8_lossy(signed)
    );
    line
}

const TS: &str = "1735550160";

#[test]
fn explain_diagnoses_none_and_unknown() {
    let line = diagnosis(SEED_GET.as_bytes());
    assert_eq!(line, "none (the sent signature matches)");

    // Another secret: no mistake explains it.
    let sts = sts_of(TS, "GET", "/v1/ping", "", EMPTY_HASH);
    let other = hmac_hex(b"another secret", &sts);
    let line = diagnosis(&signed_request("GET", "/v1/ping", b"", &other));
    assert!(line.starts_with("unknown ("), "{line}");
    // Two mistakes at once are not one typical mistake either.
    let sts = sts_of(TS, "get", "/v1/ping/", "", EMPTY_HASH);
    let line = diagnosis(&signed_request(
        "GET",
        "/v1/ping",
        b"",
        &hmac_hex(SEED_SECRET.as_bytes(), &sts),
    ));
    assert!(line.starts_with("unknown ("), "{line}");

    // No X-Signature, or a malformed one.
    let no_sig = SEED_GET.replace(
        "X-Signature: fa86029249a12a9531e269ef8986cba153a9839d741f6f38e457c6eb96bede76\r\n",
        "",
    );
    assert!(diagnosis(no_sig.as_bytes()).starts_with("unknown (the request has no X-Signature"));
    let bad = SEED_GET.replace("fa86029249a12a95", "zz");
    assert!(diagnosis(bad.as_bytes()).starts_with("unknown (X-Signature is not 64 hex"));

    // Without a secret there is nothing to diagnose: no line.
    let r = run_with(&["explain"], None, SEED_GET.as_bytes());
    assert!(!r.out().contains("diagnosis:"), "{}", r.out());
}

#[test]
fn explain_diagnoses_query_mistakes() {
    // Signed in the order sent.
    assert_diagnosis(
        "query_unsorted",
        "GET",
        "/v1/ping?z=two&z=three&version=1&a=hello",
        b"",
        &sts_of(
            TS,
            "GET",
            "/v1/ping",
            "z=two&z=three&version=1&a=hello",
            EMPTY_HASH,
        ),
    );
    // Sorted like the published Node snippet's localeCompare: `a` before `B`.
    assert_diagnosis(
        "query_locale_order",
        "GET",
        "/v1/ping?B=2&a=1",
        b"",
        &sts_of(TS, "GET", "/v1/ping", "a=1&B=2", EMPTY_HASH),
    );
    // Decoded values signed.
    assert_diagnosis(
        "query_not_encoded",
        "GET",
        "/v1/search?q=gold+bar&city=Z%C3%BCrich",
        b"",
        &sts_of(
            TS,
            "GET",
            "/v1/search",
            "city=Zürich&q=gold bar",
            EMPTY_HASH,
        ),
    );
    // An empty query line though the request has a query.
    assert_diagnosis(
        "query_missing",
        "GET",
        "/v1/ping?version=1",
        b"",
        &sts_of(TS, "GET", "/v1/ping", "", EMPTY_HASH),
    );
}

#[test]
fn explain_diagnoses_path_and_method_mistakes() {
    assert_diagnosis(
        "path_decoded",
        "GET",
        "/v1/files/gold%20bar%2Finvoice",
        b"",
        &sts_of(TS, "GET", "/v1/files/gold bar/invoice", "", EMPTY_HASH),
    );
    let line = assert_diagnosis(
        "path_trailing_slash",
        "GET",
        "/v1/ping/",
        b"",
        &sts_of(TS, "GET", "/v1/ping", "", EMPTY_HASH),
    );
    assert!(line.contains("without the trailing slash"), "{line}");
    let line = assert_diagnosis(
        "path_trailing_slash",
        "GET",
        "/v1/ping",
        b"",
        &sts_of(TS, "GET", "/v1/ping/", "", EMPTY_HASH),
    );
    assert!(line.contains("with a trailing slash"), "{line}");
    let line = assert_diagnosis(
        "path_prefix",
        "GET",
        "/partner-api/v2/v1/ping?a=1",
        b"",
        &sts_of(TS, "GET", "/v1/ping", "a=1", EMPTY_HASH),
    );
    assert!(line.contains("first 2 segments"), "{line}");
    assert!(line.ends_with("; missing: /partner-api/v2)"), "{line}");
    assert_diagnosis(
        "method_lowercase",
        "POST",
        "/v1/orders",
        b"",
        &sts_of(TS, "post", "/v1/orders", "", EMPTY_HASH),
    );
}

#[test]
fn explain_diagnoses_body_mistakes() {
    let body = SEED_POST_BODY.as_bytes();
    let hash = |b: &[u8]| jg_hmac::ContentHash::of(b).to_string();
    assert_diagnosis(
        "body_hash_empty",
        "POST",
        "/v1/transactions/buy",
        body,
        &sts_of(TS, "POST", "/v1/transactions/buy", "", EMPTY_HASH),
    );
    // The signer hashed a newline more (a file with a final newline, `echo`)...
    let with_newline = [body, b"\n"].concat();
    let line = assert_diagnosis(
        "body_trailing_newline",
        "POST",
        "/v1/transactions/buy",
        body,
        &sts_of(TS, "POST", "/v1/transactions/buy", "", &hash(&with_newline)),
    );
    assert!(line.contains("more"), "{line}");
    // ... or one less than was sent (curl -d @file strips newlines).
    let line = assert_diagnosis(
        "body_trailing_newline",
        "POST",
        "/v1/transactions/buy",
        &with_newline,
        &sts_of(TS, "POST", "/v1/transactions/buy", "", &hash(body)),
    );
    assert!(line.contains("less"), "{line}");
}

#[test]
fn explain_diagnoses_string_to_sign_secret_and_timestamp_mistakes() {
    let right = sts_of(TS, "GET", "/v1/ping", "a=hello", EMPTY_HASH);
    let target = "/v1/ping?a=hello";
    let crlf = String::from_utf8(right.clone())
        .unwrap()
        .replace('\n', "\r\n");
    assert_diagnosis("crlf_newlines", "GET", target, b"", crlf.as_bytes());
    // The published GET example, copied with its indentation (SPEC.md §11 item 1).
    let indented = format!(
        "JG-HMAC-SHA256\n1735550160\nGET\n/v1/ping\n a=hello&version=1&z=three&z=two\n {EMPTY_HASH}"
    );
    assert_diagnosis(
        "indented_lines",
        "GET",
        "/v1/ping?z=two&z=three&version=1&a=hello",
        b"",
        indented.as_bytes(),
    );
    assert_diagnosis(
        "string_trailing_newline",
        "GET",
        target,
        b"",
        &[&right[..], b"\n"].concat(),
    );

    // The secret read from a file with its newline, or pasted with spaces.
    for secret in [
        format!("{SEED_SECRET}\n"),
        format!(" {SEED_SECRET} "),
        format!("{SEED_SECRET}\r\n"),
    ] {
        let signature = hmac_hex(secret.as_bytes(), &right);
        let line = diagnosis(&signed_request("GET", target, b"", &signature));
        assert!(line.starts_with("secret_whitespace ("), "{line}");
    }

    // Signed 7 s before the X-Timestamp sent; and at the edges of the window.
    for (signed, offset) in [
        (1735550153u64, "-7"),
        (1735550460, "+300"),
        (1735549860, "-300"),
    ] {
        let line = assert_diagnosis(
            "timestamp_differs",
            "GET",
            target,
            b"",
            &sts_of(
                &signed.to_string(),
                "GET",
                "/v1/ping",
                "a=hello",
                EMPTY_HASH,
            ),
        );
        assert!(
            line.contains(&format!("timestamp {signed}, {offset} s from")),
            "{line}"
        );
    }
    // Beyond the window: not searched.
    let line = diagnosis(&signed_request(
        "GET",
        target,
        b"",
        &hmac_hex(
            SEED_SECRET.as_bytes(),
            &sts_of("1735550461", "GET", "/v1/ping", "a=hello", EMPTY_HASH),
        ),
    ));
    assert!(line.starts_with("unknown ("), "{line}");
}
