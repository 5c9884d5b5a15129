//! `jg-hmac sign --curl URL | sh` sends exactly the signed request and runs nothing else.
//!
//! Each test signs a request with the binary, runs the printed command through `sh` in an
//! empty directory against a one-shot HTTP listener on 127.0.0.1, and compares what the
//! listener received with the request, byte for byte: method, target, every header value
//! and the body. The requests carry shell syntax everywhere it can go (methods are tokens
//! made of the whole `tchar` set, header values hold quotes, `$(...)`, backticks and
//! binary bytes, bodies start with `-`, `%` or `\`); a file appearing in the directory
//! means the shell ran something.
//!
//! Needs `curl` and `sh`. Without curl the tests print `SKIPPED: curl not installed` and
//! pass, unless the environment variable `CI` is set: then they fail.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use jg_hmac::{Credential, Secret, SignedRequest, Verifier};
use proptest::prelude::*;

// The binary's own raw HTTP/1.1 parser, which keeps header values as bytes (control bytes
// included) where general-purpose parsers refuse them.
#[allow(dead_code)]
#[path = "../src/bin/jg-hmac/raw/mod.rs"]
mod raw;
use raw::RawLimits;

const SECRET: &str = "s3cr3t_test_key_justgold";
const TIMESTAMP: &str = "1735550160";

/// Whether curl can be run; without it, `false` after printing the skip notice (or a
/// panic when `CI` is set).
fn have_curl() -> bool {
    static FOUND: OnceLock<bool> = OnceLock::new();
    let found = *FOUND.get_or_init(|| {
        Command::new("curl")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "curl is not installed, and CI is set: install curl (Debian package `curl`)"
        );
        static TOLD: std::sync::Once = std::sync::Once::new();
        TOLD.call_once(|| println!("SKIPPED: curl not installed"));
    }
    found
}

mod cli_support;
use cli_support::{Run, run_with};

/// Runs `jg-hmac` with `args`, the secret in `JG_TEST_SECRET`, and `stdin`.
fn jg_hmac(args: &[&str], stdin: &[u8]) -> Run {
    run_with(args, Some(SECRET.into()), stdin)
}

fn sign_curl(request: &[u8], base: &str) -> Run {
    jg_hmac(
        &[
            "sign",
            "--client-id",
            "jk_live_example",
            "--timestamp",
            TIMESTAMP,
            "--secret-env",
            "JG_TEST_SECRET",
            "--curl",
            base,
        ],
        request,
    )
}

/// A listener on a free loopback port that answers one request with an empty 200 and
/// hands over the bytes it received.
struct OneShot {
    base: String,
    received: std::thread::JoinHandle<Vec<u8>>,
}

fn one_shot() -> OneShot {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let received = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut bytes = Vec::new();
        let mut chunk = [0u8; 4096];
        // The header section, then as many body bytes as Content-Length says.
        let head_end = loop {
            if let Some(i) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let n = stream.read(&mut chunk).unwrap();
            assert!(n > 0, "connection closed before the header section ended");
            bytes.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&bytes[..head_end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map_or(0, |v| v.trim().parse().unwrap());
        while bytes.len() < head_end + length {
            let n = stream.read(&mut chunk).unwrap();
            assert!(n > 0, "connection closed before the body ended");
            bytes.extend_from_slice(&chunk[..n]);
        }
        stream
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            .unwrap();
        bytes
    });
    OneShot { base, received }
}

/// An empty directory under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        static COUNT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "jg-hmac-cli-shell-{}-{name}-{n}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn entries(&self) -> Vec<String> {
        std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Signs `request` for `--curl`, runs the command with `sh` in an empty directory, and
/// returns the bytes the listener received. Fails if the shell left any file behind.
fn send_through_sh(request: &[u8]) -> Vec<u8> {
    let server = one_shot();
    let signed = sign_curl(request, &server.base);
    assert_eq!(signed.code, 0, "sign --curl failed: {}", signed.stderr);
    // The command is safe to show on a terminal too: printable ASCII and line ends.
    assert!(
        signed
            .stdout
            .iter()
            .all(|&b| b == b'\n' || (0x20..=0x7e).contains(&b)),
        "not printable ASCII: {:?}",
        String::from_utf8_lossy(&signed.stdout)
    );
    let dir = TempDir::new("sh");
    let output = Command::new("sh")
        .arg("-c")
        .arg(std::str::from_utf8(&signed.stdout).unwrap())
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let command = String::from_utf8_lossy(&signed.stdout);
    assert!(
        output.status.success(),
        "sh failed: {}\n{command}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.stderr.is_empty(),
        "sh wrote to stderr: {}\n{command}",
        String::from_utf8_lossy(&output.stderr)
    );
    let received = server.received.join().expect("listener");
    assert_eq!(
        dir.entries(),
        Vec::<String>::new(),
        "the command created files:\n{command}"
    );
    received
}

/// Headers curl sets itself and the tool leaves to it, or adds.
const NOT_FORWARDED: [&str; 7] = [
    "host",
    "content-length",
    "transfer-encoding",
    "x-client-id",
    "x-access-key",
    "x-timestamp",
    "x-signature",
];

/// Asserts that `received` is `request` as sent by curl: same method, target, headers
/// (but Host and Content-Length, and the three signature headers added) and body, and
/// that it verifies.
fn assert_same_request(request: &[u8], received: &[u8]) {
    let limits = RawLimits::default();
    let want = raw::parse(request, &limits).unwrap();
    let got = raw::parse(received, &limits).unwrap_or_else(|e| {
        panic!(
            "the listener got an unreadable request ({e}): {:?}",
            String::from_utf8_lossy(received)
        )
    });
    assert_eq!(got.method(), want.method());
    assert_eq!(got.target(), want.target());
    assert_eq!(got.body(), want.body());
    let forwarded = |r: &raw::RawRequest<'_>| -> Vec<(String, Vec<u8>)> {
        r.headers()
            .iter()
            .filter(|h| !NOT_FORWARDED.iter().any(|n| h.is(n)))
            .map(|h| (h.name().to_owned(), h.value().to_vec()))
            .collect()
    };
    assert_eq!(forwarded(&got), forwarded(&want));
    let value = |name: &str| got.header_values(name).collect::<Vec<_>>();
    assert_eq!(value("x-client-id"), [b"jk_live_example"]);
    assert_eq!(value("x-timestamp"), [TIMESTAMP.as_bytes()]);

    let secret = Secret::from(SECRET);
    let lookup = |id: &str| {
        Some(Arc::new(
            Credential::new(id).with_key(jg_hmac::SigningKey::new("0", &secret)),
        ))
    };
    let verified = Verifier::new().verify(
        &lookup,
        &SignedRequest::from(&got),
        &got.content_hash(),
        TIMESTAMP.parse().unwrap(),
    );
    assert!(verified.is_ok(), "{verified:?}");
}

fn request(method: &[u8], target: &[u8], headers: &[(&[u8], &[u8])], body: &[u8]) -> Vec<u8> {
    let mut out = [
        method,
        b" ",
        target,
        b" HTTP/1.1\r\nHost: api.justgold.me\r\n",
    ]
    .concat();
    for (name, value) in headers {
        out.extend_from_slice(&[name, &b": "[..], value, b"\r\n"].concat());
    }
    if !body.is_empty() {
        out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

// ---- regressions: the two attacks of issue 12 ----

#[test]
fn a_method_carrying_a_command_runs_nothing() {
    if !have_curl() {
        return;
    }
    let method = b"GET`touch$IFS'x'`";
    let req = request(method, b"/v1/ping", &[], b"");
    let command = String::from_utf8(sign_curl(&req, "http://127.0.0.1:9").stdout).unwrap();
    assert!(
        command.contains(r#" --request 'GET`touch$IFS'\''x'\''`' "#),
        "{command}"
    );
    // Under `sh`, against a listener: the method arrives as sent, no file `x` appears.
    let received = send_through_sh(&req);
    assert!(received.starts_with(b"GET`touch$IFS'x'` /v1/ping HTTP/1.1\r\n"));
    assert_same_request(&req, &received);

    // Every other field too: a header value and the target.
    let req = request(
        b"POST",
        b"/v1/$(touch$IFS'y')/`touch$IFS'z'`?q='$(touch$IFS'w')'",
        &[(
            b"X-Note",
            b"it's $(touch pwned) `touch pwned2` \"$HOME\" \\ ; touch pwned3",
        )],
        b"'; touch pwned4; '",
    );
    assert_same_request(&req, &send_through_sh(&req));
}

#[test]
fn a_multipart_body_starting_with_dashes_is_sent_whole() {
    if !have_curl() {
        return;
    }
    let body = b"--boundary42\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.bin\"\r\n\
                 Content-Type: application/octet-stream\r\n\r\n\x00\x01\xff%s%n\\c\r\n--boundary42--\r\n";
    let req = request(
        b"POST",
        b"/v1/documents",
        &[(b"Content-Type", b"multipart/form-data; boundary=boundary42")],
        body,
    );
    let command = String::from_utf8(sign_curl(&req, "http://127.0.0.1:9").stdout).unwrap();
    assert!(command.starts_with("printf '\\055-boundary42"), "{command}");
    let received = send_through_sh(&req);
    assert!(received.ends_with(body), "body not sent whole");
    assert_same_request(&req, &received);

    // A body that is exactly one `-`, or starts like a printf option.
    for body in [&b"-"[..], b"-v x", b"--", b"-%d\\n"] {
        let req = request(b"PUT", b"/v1/x", &[], body);
        assert_same_request(&req, &send_through_sh(&req));
    }
}

#[test]
fn what_curl_cannot_send_is_refused() {
    let cases: [(Vec<u8>, &str); 4] = [
        (
            request(b"GET", b"/v1/ping", &[(b"X-Bin", b"a\x00b")], b""),
            "NUL byte",
        ),
        (request(b"GET", b"/v1/ping#top", &[], b""), "fragment"),
        (
            request(b"GET", b"/v1/caf\xc3\xa9", &[], b""),
            "not ASCII (\\xc3)",
        ),
        (
            request(b"GET", b"/v1/x?name=Jos\xc3\xa9", &[], b""),
            "percent-encode",
        ),
    ];
    for (req, message) in cases {
        let r = sign_curl(&req, "http://127.0.0.1:9");
        assert_eq!(r.code, 2, "{}", String::from_utf8_lossy(&r.stdout));
        assert!(r.stdout.is_empty());
        assert!(r.stderr.contains(message), "want {message:?}: {}", r.stderr);
    }
    for base in ["http://127.0.0.1:9/a?b", "http://", "ftp://x", "http://a b"] {
        let r = sign_curl(&request(b"GET", b"/", &[], b""), base);
        assert_eq!(r.code, 2, "{base}");
        assert!(r.stderr.contains("--curl takes a URL base"), "{}", r.stderr);
    }
}

#[test]
fn empty_header_values_and_curl_defaults() {
    if !have_curl() {
        return;
    }
    // An empty value is sent empty (`Name;`), not dropped; curl's own User-Agent, Accept,
    // Content-Type and Expect are not added; the request's own are kept.
    let req = request(
        b"post",
        b"//v1/./a/../b/%2f?b=2&a=[1]&{x}",
        &[
            (b"X-Empty", b""),
            (b"Accept", b"application/json"),
            (b"X-Dup", b"1"),
            (b"X-Dup", b"2"),
        ],
        &[0u8; 2000],
    );
    let received = send_through_sh(&req);
    assert_same_request(&req, &received);
    let head = String::from_utf8_lossy(&received).to_ascii_lowercase();
    assert!(!head.contains("user-agent") && !head.contains("expect"));
    assert!(!head.contains("content-type"));
}

// ---- the property ----

/// RFC 9110 `tchar`: every byte a method or a header name may hold.
const TCHAR: &[u8] =
    b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn token(pieces: &'static [&'static str]) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            3 => prop::sample::select(TCHAR).prop_map(|b| vec![b]),
            1 => prop::sample::select(pieces).prop_map(|p| p.as_bytes().to_vec()),
        ],
        1..6,
    )
    .prop_map(|parts| parts.concat())
}

const METHOD_PIECES: &[&str] = &[
    "GET",
    "POST",
    "`touch$IFS'pwned'`",
    "|touch$IFS'pwned'",
    "&&touch$IFS'pwned'",
    "$IFS",
    "'",
    "!",
    "#",
    "--",
];

/// Visible ASCII but `#` (a fragment curl would not send) and `?`.
fn target_byte() -> impl Strategy<Value = u8> {
    (0x21u8..=0x7e).prop_filter("not # or ?", |b| *b != b'#' && *b != b'?')
}

fn target() -> impl Strategy<Value = Vec<u8>> {
    let part = |pieces: &'static [&'static str]| {
        prop::collection::vec(
            prop_oneof![
                3 => target_byte().prop_map(|b| vec![b]),
                1 => prop::sample::select(pieces).prop_map(|p| p.as_bytes().to_vec()),
            ],
            0..8,
        )
        .prop_map(|parts| parts.concat())
    };
    const PIECES: &[&str] = &[
        "$(touch$IFS'pwned')",
        "`id`",
        "'",
        "%",
        "\\",
        "{a,b}",
        "[1]",
        "/../",
        "/./",
        "%2F",
    ];
    (part(PIECES), prop::option::of(part(PIECES))).prop_map(|(path, query)| {
        let mut target = [&b"/"[..], &path].concat();
        if let Some(query) = query {
            target.push(b'?');
            target.extend_from_slice(&query);
        }
        target
    })
}

const VALUE_PIECES: &[&str] = &[
    "'",
    "\"",
    "`touch pwned`",
    "$(touch pwned)",
    "${HOME}",
    "\\",
    "%s",
    "%",
    ";touch pwned;",
    "&& touch pwned",
    "| touch pwned",
    "\t",
    " ",
    "\x1b[2J",
    "\x7f",
    "é",
];

fn header_value() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            2 => (0x20u8..=0x7e).prop_map(|b| vec![b]),
            1 => prop::sample::select(VALUE_PIECES).prop_map(|p| p.as_bytes().to_vec()),
            1 => any::<u8>()
                .prop_filter("no NUL, CR or LF", |b| !matches!(b, 0 | b'\r' | b'\n'))
                .prop_map(|b| vec![b]),
        ],
        0..8,
    )
    .prop_map(|parts| {
        // A parser trims spaces and tabs around a value: they cannot be sent.
        let value = parts.concat();
        let start = value.iter().position(|b| !matches!(b, b' ' | b'\t'));
        let end = value.iter().rposition(|b| !matches!(b, b' ' | b'\t'));
        match (start, end) {
            (Some(s), Some(e)) => value[s..=e].to_vec(),
            _ => Vec::new(),
        }
    })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    const STARTS: &[&str] = &[
        "",
        "",
        "-",
        "--boundary\r\n",
        "-n ",
        "%",
        "%s%d",
        "\\",
        "\\c",
        "'",
    ];
    (
        prop::sample::select(STARTS),
        prop::collection::vec(any::<u8>(), 0..48),
    )
        .prop_map(|(start, rest)| [start.as_bytes(), &rest].concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn sign_curl_through_sh_sends_the_request_byte_for_byte(
        method in token(METHOD_PIECES),
        target in target(),
        names in prop::collection::vec(token(&["'", "`", "$", "|"]), 0..4),
        values in prop::collection::vec(header_value(), 4),
        content_type in prop::option::of(header_value()),
        body in body(),
    ) {
        if have_curl() {
            let names: Vec<Vec<u8>> = names.iter().map(|n| [&b"X-"[..], n].concat()).collect();
            let mut headers: Vec<(&[u8], &[u8])> = names
                .iter()
                .zip(&values)
                .map(|(n, v)| (n.as_slice(), v.as_slice()))
                .collect();
            if let Some(ct) = &content_type {
                headers.push((b"Content-Type", ct));
            }
            let req = request(&method, &target, &headers, &body);
            let received = send_through_sh(&req);
            assert_same_request(&req, &received);
        }
    }
}
