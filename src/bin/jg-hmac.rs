//! `jg-hmac`: sign, verify and explain raw HTTP/1.1 requests signed with JG-HMAC-SHA256.
//!
//! Exit codes: 0 success; 1 the request does not verify (`verify`); 2 usage error or
//! input that is not a request this tool can read (never a panic).
//!
//! Secrets are never taken on the command line, where `ps` and shell history would show
//! them: `--secret-env VAR` reads an environment variable, `--secret-file PATH` a file
//! (one trailing newline, LF or CRLF, is removed).

use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use jg_hmac::diagnose::{Diagnosis, diagnose};
use jg_hmac::raw::{self, Framing, RawLimits, RawRequest};
use jg_hmac::{
    CanonicalRequest, Clock, ContentHash, Credential, Secret, Signature, Signer, SystemClock,
    Verifier,
};

/// Sign, verify and explain raw HTTP/1.1 requests signed with JG-HMAC-SHA256.
///
/// Each command reads one request (request line, headers, empty line, body) from stdin or
/// `--in FILE`. CRLF and LF line ends are accepted; the body is framed by Content-Length
/// or Transfer-Encoding: chunked.
///
/// Exit codes: 0 success, 1 verification failed, 2 usage error or unreadable input.
// `db` and `keys` (feature `postgres`): partner keys in PostgreSQL.
#[cfg(feature = "postgres")]
#[path = "jg-hmac/keys.rs"]
mod keys;

#[derive(Debug, Parser)]
#[command(name = "jg-hmac", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Add X-Client-Id, X-Timestamp and X-Signature to a request (replacing any present)
    /// and print it, or print it as a curl command with --curl.
    Sign(SignArgs),
    /// Verify a signed request: print `ok` (exit 0) or `<error_code>: <reason>` (exit 1).
    ///
    /// The client id comes from the request's X-Client-Id (or X-Access-Key); the secret
    /// given is that client's. One client, one secret per run.
    Verify(VerifyArgs),
    /// Print the canonical query, the body hash, the string-to-sign and, with a secret,
    /// the expected signature, and whether the request's X-Signature matches it.
    Explain(ExplainArgs),
    /// The PostgreSQL schema: `db migrate` (needs $JG_DATABASE_URL).
    #[cfg(feature = "postgres")]
    Db(keys::DbArgs),
    /// Partner keys in PostgreSQL: create, rotate, revoke, list, rekey ($JG_DATABASE_URL,
    /// $JG_KEK_FILE). Exit codes: 0 ok, 1 database or KEK failure, 2 usage or input error.
    #[cfg(feature = "postgres")]
    Keys(keys::KeysArgs),
}

#[derive(Debug, Args)]
struct Input {
    /// Read the request from FILE instead of stdin.
    #[arg(long = "in", value_name = "FILE")]
    input: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[group(multiple = false)]
struct SecretSource {
    /// Read the client secret from the environment variable VAR.
    #[arg(long, value_name = "VAR")]
    secret_env: Option<OsString>,
    /// Read the client secret from FILE (one trailing newline, LF or CRLF, is removed).
    #[arg(long, value_name = "FILE")]
    secret_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct SignArgs {
    /// The client id to send in X-Client-Id.
    #[arg(long, value_name = "ID")]
    client_id: String,
    /// Sign at this UNIX time in seconds instead of now.
    #[arg(long, value_name = "TS")]
    timestamp: Option<u64>,
    /// Print a curl command that sends the signed request to URL_BASE (scheme, host and
    /// port, e.g. http://127.0.0.1:8080), with the body passed byte for byte.
    #[arg(long, value_name = "URL_BASE")]
    curl: Option<String>,
    #[command(flatten)]
    secret: SecretSource,
    #[command(flatten)]
    input: Input,
}

#[derive(Debug, Args)]
struct VerifyArgs {
    /// Verify as if the time were TS (UNIX seconds) instead of now.
    #[arg(long, value_name = "TS")]
    now: Option<u64>,
    /// Accepted clock skew each way, in seconds.
    #[arg(long, value_name = "S", default_value_t = jg_hmac::DEFAULT_WINDOW)]
    window: u64,
    /// Only accept this client id (others are answered `client_id`). By default the
    /// secret is taken to be that of whichever client id the request names.
    #[arg(long, value_name = "ID")]
    client_id: Option<String>,
    /// Allowed media type (repeatable); without it Content-Type is not checked.
    #[arg(long, value_name = "TYPE")]
    content_type: Vec<String>,
    /// Do not accept X-Access-Key as an alias of X-Client-Id.
    #[arg(long)]
    no_access_key_alias: bool,
    #[command(flatten)]
    secret: SecretSource,
    #[command(flatten)]
    input: Input,
}

#[derive(Debug, Args)]
struct ExplainArgs {
    /// Use this X-Timestamp value instead of the request's (default: the request's, else
    /// now).
    #[arg(long, value_name = "TS")]
    timestamp: Option<u64>,
    /// Use this body hash (64 hex digits) instead of hashing the body, e.g. to check a
    /// published example whose body is unknown.
    #[arg(long, value_name = "HEX")]
    content_sha256: Option<String>,
    /// Also run the verifier at this UNIX time and print its answer (needs a secret).
    #[arg(long, value_name = "TS")]
    now: Option<u64>,
    #[command(flatten)]
    secret: SecretSource,
    #[command(flatten)]
    input: Input,
}

/// Why the tool stops early.
enum EarlyExit {
    /// Usage or input error: exit 2.
    Input(String),
    /// The request does not verify: exit 1, message on stdout.
    Rejected(String),
}

impl<E: std::fmt::Display> From<E> for EarlyExit {
    fn from(e: E) -> Self {
        Self::Input(e.to_string())
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Sign(args) => sign(&args),
        Command::Verify(args) => verify(&args),
        Command::Explain(args) => explain(&args),
        #[cfg(feature = "postgres")]
        Command::Db(args) => return keys::db(args),
        #[cfg(feature = "postgres")]
        Command::Keys(args) => return keys::keys(args),
    };
    match result {
        Ok(out) => match write_stdout(&out) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("jg-hmac: writing the output: {e}");
                ExitCode::from(2)
            }
        },
        Err(EarlyExit::Rejected(line)) => {
            // The verdict is the output; a closed stdout changes nothing about it.
            let _ = write_stdout(line.as_bytes());
            ExitCode::from(1)
        }
        Err(EarlyExit::Input(message)) => {
            eprintln!("jg-hmac: {message}");
            ExitCode::from(2)
        }
    }
}

fn write_stdout(bytes: &[u8]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)?;
    out.flush()
}

/// Reads the whole input, refusing more than the parser could accept without
/// buffering it.
fn read_input(input: &Input, limits: &RawLimits) -> Result<Vec<u8>, EarlyExit> {
    let cap = limits.max_input();
    let mut bytes = Vec::new();
    let reader: Box<dyn Read> = match &input.input {
        Some(path) => Box::new(
            std::fs::File::open(path)
                .map_err(|e| format!("cannot open {}: {e}", path.display()))?,
        ),
        None => Box::new(std::io::stdin().lock()),
    };
    reader
        .take(u64::try_from(cap).unwrap_or(u64::MAX).saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| format!("reading the request: {e}"))?;
    if bytes.len() > cap {
        return Err(EarlyExit::Input(format!(
            "input too large: more than {cap} bytes (limits: header section {} bytes, body {} bytes)",
            limits.max_head, limits.max_body
        )));
    }
    Ok(bytes)
}

fn parse_request<'a>(bytes: &'a [u8], limits: &RawLimits) -> Result<RawRequest<'a>, EarlyExit> {
    raw::parse(bytes, limits).map_err(|e| EarlyExit::Input(format!("malformed request: {e}")))
}

fn load_secret(source: &SecretSource) -> Result<Option<Secret>, EarlyExit> {
    let bytes = if let Some(var) = &source.secret_env {
        let value = std::env::var_os(var)
            .ok_or_else(|| format!("environment variable {} is not set", var.to_string_lossy()))?;
        os_bytes(value)?
    } else if let Some(path) = &source.secret_file {
        let mut bytes =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if bytes.ends_with(b"\n") {
            bytes.pop();
            if bytes.ends_with(b"\r") {
                bytes.pop();
            }
        }
        bytes
    } else {
        return Ok(None);
    };
    let secret = Secret::from(bytes);
    if secret.is_empty() {
        return Err(EarlyExit::Input("the secret is empty".into()));
    }
    Ok(Some(secret))
}

#[cfg(unix)]
fn os_bytes(value: OsString) -> Result<Vec<u8>, EarlyExit> {
    use std::os::unix::ffi::OsStringExt;
    Ok(value.into_vec())
}

#[cfg(not(unix))]
fn os_bytes(value: OsString) -> Result<Vec<u8>, EarlyExit> {
    value
        .into_string()
        .map(String::into_bytes)
        .map_err(|_| EarlyExit::Input("the secret variable is not valid Unicode".into()))
}

fn require_secret(source: &SecretSource) -> Result<Secret, EarlyExit> {
    load_secret(source)?.ok_or_else(|| {
        EarlyExit::Input("a secret is required: --secret-env VAR or --secret-file FILE".into())
    })
}

const AUTH_HEADERS: [&str; 4] = ["x-client-id", "x-access-key", "x-timestamp", "x-signature"];

fn sign(args: &SignArgs) -> Result<Vec<u8>, EarlyExit> {
    let secret = require_secret(&args.secret)?;
    let signer = Signer::new(args.client_id.as_str(), &secret)
        .map_err(|_| "--client-id must be 1 to 128 visible ASCII characters")?;
    let limits = RawLimits::default();
    let bytes = read_input(&args.input, &limits)?;
    let request = parse_request(&bytes, &limits)?;
    let timestamp = args.timestamp.unwrap_or_else(|| SystemClock.now());
    let canonical = CanonicalRequest::new(request.method(), request.target_parts());
    let signed = signer.sign_canonical(&canonical, &request.content_hash(), timestamp);
    let signature = signed.signature().to_hex();
    let added: [(&str, &[u8]); 3] = [
        ("X-Client-Id", signed.client_id().as_bytes()),
        ("X-Timestamp", signed.timestamp().as_bytes()),
        ("X-Signature", signature.as_bytes()),
    ];
    match &args.curl {
        None => Ok(request.to_bytes_replacing(&AUTH_HEADERS, &added)),
        Some(base) => curl_command(&request, base, &added),
    }
}

/// A POSIX shell command: `printf '<body>' | curl ... --data-binary @-`.
///
/// Every field is in single quotes (a `'` becomes `'\''`), so `| sh` runs this one
/// command and nothing else, whatever the request holds; the body, and a header value
/// with bytes that are not printable ASCII, go through `printf` with every such byte
/// written as an octal escape, and never as a format that starts with `-`. The command
/// itself is printable ASCII. What curl cannot send byte for byte is refused instead
/// (exit 2): a NUL in a header value, a fragment or a byte that is not ASCII in the
/// request-target.
fn curl_command(
    request: &RawRequest<'_>,
    base: &str,
    added: &[(&str, &[u8])],
) -> Result<Vec<u8>, EarlyExit> {
    let base = base.trim_end_matches('/');
    let Some(rest) = base
        .strip_prefix("http://")
        .or_else(|| base.strip_prefix("https://"))
    else {
        return Err(EarlyExit::Input(
            "--curl takes a URL base such as http://127.0.0.1:8080".into(),
        ));
    };
    if rest.is_empty()
        || rest
            .bytes()
            .any(|b| !(0x21..=0x7e).contains(&b) || matches!(b, b'?' | b'#' | b'\'' | b'\\'))
    {
        return Err(EarlyExit::Input(
            "--curl takes a URL base such as http://127.0.0.1:8080: scheme, host, port and an optional path, in visible ASCII without ?, #, ' or \\".into(),
        ));
    }
    let target = request.target();
    let mut url = base.as_bytes().to_vec();
    if target.first() == Some(&b'/') {
        url.extend_from_slice(target);
    } else {
        let parts = request.target_parts();
        if parts.path().first() != Some(&b'/') {
            return Err(EarlyExit::Input(
                "--curl needs an origin-form or absolute-form request-target".into(),
            ));
        }
        url.extend_from_slice(parts.path());
        if !parts.query().is_empty() {
            url.push(b'?');
            url.extend_from_slice(parts.query());
        }
    }
    let sent = url.get(base.len()..).unwrap_or_default();
    if sent.contains(&b'#') {
        return Err(EarlyExit::Input(
            "--curl: the request-target has a fragment (#), which curl does not send; remove it, or percent-encode the # as %23 and sign again".into(),
        ));
    }
    if let Some(b) = sent.iter().find(|b| !b.is_ascii()) {
        return Err(EarlyExit::Input(format!(
            "--curl: the request-target has a byte that is not ASCII ({}), which curl would percent-encode, changing the signed path; percent-encode it in the request and sign again",
            escape_for_terminal(&[*b])
        )));
    }
    let body = request.body();
    let method = request.method();
    let mut out = Vec::new();
    if !body.is_empty() {
        out.extend_from_slice(b"printf '");
        printf_escape(&mut out, body);
        out.extend_from_slice(b"' | ");
    }
    // --path-as-is: curl would otherwise remove dot segments, changing the signed path.
    // --globoff: [] and {} in URLs are data, not curl globs.
    out.extend_from_slice(b"curl --silent --show-error --path-as-is --globoff");
    if method == "HEAD" && body.is_empty() {
        out.extend_from_slice(b" --head");
    } else {
        out.extend_from_slice(b" --request ");
        shell_quote(&mut out, method.as_bytes());
    }
    out.push(b' ');
    shell_quote(&mut out, &url);
    let skip = ["host", "content-length", "transfer-encoding"];
    let mut headers: Vec<(&str, &[u8])> = Vec::new();
    for header in request.headers() {
        if skip.iter().chain(&AUTH_HEADERS).any(|n| header.is(n)) {
            continue;
        }
        headers.push((header.name(), header.value()));
    }
    // Headers curl adds by itself, unless the request has its own: removed, so that the
    // request sent is the request signed. (`Name:` with nothing after the colon tells
    // curl to leave its own header out.)
    let mut remove: Vec<&str> = ["User-Agent", "Accept"].to_vec();
    if !body.is_empty() {
        // curl would add `Content-Type: application/x-www-form-urlencoded`, and
        // `Expect: 100-continue` for a large body.
        remove.extend(["Content-Type", "Expect"]);
    }
    for name in remove {
        if request.header_values(name).next().is_none() {
            out.extend_from_slice(b" \\\n  --header ");
            shell_quote(&mut out, format!("{name}:").as_bytes());
        }
    }
    headers.extend(added.iter().copied());
    for (name, value) in headers {
        if value.contains(&0) {
            return Err(EarlyExit::Input(format!(
                "--curl: the value of header {} holds a NUL byte, which cannot be passed to curl",
                escape_for_terminal(name.as_bytes())
            )));
        }
        out.extend_from_slice(b" \\\n  --header ");
        let mut line = name.as_bytes().to_vec();
        if value.is_empty() {
            // `Name:` would remove the header; `Name;` sends it with an empty value.
            line.push(b';');
        } else {
            line.extend_from_slice(b": ");
            line.extend_from_slice(value);
        }
        shell_argument(&mut out, &line);
    }
    if !body.is_empty() {
        out.extend_from_slice(b" \\\n  --data-binary @-");
    }
    out.push(b'\n');
    Ok(out)
}

/// `printf` format text that prints `bytes` exactly: `%` doubled, everything but
/// printable ASCII (and `'` and `\`) as a three-digit octal escape. A leading `-` is
/// escaped too, so that no `printf` (dash's builtin included) takes the format for an
/// option.
fn printf_escape(out: &mut Vec<u8>, bytes: &[u8]) {
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'%' => out.extend_from_slice(b"%%"),
            b'-' if i == 0 => push_octal(out, b),
            b'\'' | b'\\' => push_octal(out, b),
            0x20..=0x7e => out.push(b),
            _ => push_octal(out, b),
        }
    }
}

fn push_octal(out: &mut Vec<u8>, b: u8) {
    out.extend_from_slice(&[
        b'\\',
        b'0' + (b >> 6),
        b'0' + ((b >> 3) & 7),
        b'0' + (b & 7),
    ]);
}

/// One shell word that is exactly `bytes`, written in printable ASCII only (a command
/// shown on a terminal must not carry escape sequences): single-quoted when `bytes` is
/// printable ASCII, else `"$(printf '<escaped>')"`. `bytes` must not hold NUL, and must
/// not end with LF (command substitution removes trailing newlines).
fn shell_argument(out: &mut Vec<u8>, bytes: &[u8]) {
    if bytes.iter().all(|b| (0x20..=0x7e).contains(b)) {
        shell_quote(out, bytes);
    } else {
        out.extend_from_slice(b"\"$(printf '");
        printf_escape(out, bytes);
        out.extend_from_slice(b"')\"");
    }
}

/// Single-quotes for a POSIX shell (`'` becomes `'\''`).
fn shell_quote(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'\'');
    for &b in bytes {
        if b == b'\'' {
            out.extend_from_slice(b"'\\''");
        } else {
            out.push(b);
        }
    }
    out.push(b'\'');
}

/// `bytes` made safe to write to a terminal: printable ASCII (`0x20`-`0x7E`) as is, every
/// other byte (control bytes such as ESC, DEL, bytes that are not ASCII) as `\xHH`.
fn escape_for_terminal(bytes: &[u8]) -> String {
    let mut out = Vec::with_capacity(bytes.len());
    push_escaped(&mut out, bytes);
    String::from_utf8(out).unwrap_or_default()
}

/// Appends `bytes` to `out` escaped as [`escape_for_terminal`] does.
fn push_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    let digit = |n: u8| if n < 10 { b'0' + n } else { b'a' + n - 10 };
    for &b in bytes {
        if (0x20..=0x7e).contains(&b) {
            out.push(b);
        } else {
            out.extend_from_slice(b"\\x");
            out.push(digit(b >> 4));
            out.push(digit(b & 15));
        }
    }
}

fn verify(args: &VerifyArgs) -> Result<Vec<u8>, EarlyExit> {
    let secret = require_secret(&args.secret)?;
    let limits = RawLimits::default();
    let bytes = read_input(&args.input, &limits)?;
    let request = parse_request(&bytes, &limits)?;
    let now = args.now.unwrap_or_else(|| SystemClock.now());
    let mut verifier = Verifier::new()
        .with_window(args.window)
        .with_access_key_alias(!args.no_access_key_alias);
    if !args.content_type.is_empty() {
        verifier = verifier.with_content_types(&args.content_type);
    }
    let only = args.client_id.as_deref();
    let lookup = |id: &str| {
        only.is_none_or(|only| only == id)
            .then(|| Arc::new(Credential::new(id).with_key(jg_hmac::SigningKey::new("0", &secret))))
    };
    match verifier.verify(
        &lookup,
        &jg_hmac::SignedRequest::from(&request),
        &request.content_hash(),
        now,
    ) {
        Ok(_) => Ok(b"ok\n".to_vec()),
        Err(e) => {
            let detail = match e {
                jg_hmac::Error::TimestampOutOfRange => timestamp_detail(&request, now, args.window),
                jg_hmac::Error::InvalidSignature => {
                    " (run `jg-hmac explain` on the same request to see the string-to-sign and a diagnosis)".into()
                }
                jg_hmac::Error::UnknownClient => match only {
                    Some(only) => format!(
                        " (this run accepts client id {} only)",
                        escape_for_terminal(only.as_bytes())
                    ),
                    None => String::new(),
                },
                _ => String::new(),
            };
            Err(EarlyExit::Rejected(format!(
                "{}: {}{detail}\n",
                e.code(),
                e.message()
            )))
        }
    }
}

/// How far X-Timestamp is from `now` (it passed the syntax check to get here).
fn timestamp_detail(request: &RawRequest<'_>, now: u64, window: u64) -> String {
    let Some(ts) = request
        .header_values("x-timestamp")
        .next()
        .and_then(|v| core::str::from_utf8(v).ok())
        .and_then(|v| v.parse::<u64>().ok())
    else {
        return String::new();
    };
    let (distance, side) = if ts <= now {
        (now - ts, "before")
    } else {
        (ts - now, "after")
    };
    let hint = if ts > 100_000_000_000 {
        "; milliseconds? X-Timestamp is in seconds"
    } else {
        ""
    };
    format!(
        " (X-Timestamp {ts} is {distance} s {side} now, {now}; the window is ±{window} s{hint})"
    )
}

fn explain(args: &ExplainArgs) -> Result<Vec<u8>, EarlyExit> {
    let secret = load_secret(&args.secret)?;
    if args.now.is_some() && secret.is_none() {
        return Err(EarlyExit::Input(
            "--now runs the verifier, which needs --secret-env or --secret-file".into(),
        ));
    }
    let limits = RawLimits::default();
    let bytes = read_input(&args.input, &limits)?;
    let request = parse_request(&bytes, &limits)?;

    let mut notes: Vec<String> = Vec::new();
    let sent_timestamps: Vec<&[u8]> = request.header_values("x-timestamp").collect();
    if sent_timestamps.len() > 1 {
        notes.push(format!(
            "X-Timestamp appears {} times: a verifier answers malformed_header",
            sent_timestamps.len()
        ));
    }
    let given_timestamp = args.timestamp.map(|t| t.to_string());
    let (timestamp, timestamp_source): (Vec<u8>, &str) =
        match (&given_timestamp, sent_timestamps.first()) {
            (Some(t), _) => (t.clone().into_bytes(), "from --timestamp"),
            (None, Some(sent)) => (sent.to_vec(), "from X-Timestamp, verbatim"),
            (None, None) => (
                SystemClock.now().to_string().into_bytes(),
                "now: the request has no X-Timestamp",
            ),
        };
    let timestamp = String::from_utf8(timestamp).map_err(|_| {
        EarlyExit::Input("X-Timestamp is not ASCII: a verifier answers malformed_header".into())
    })?;

    let content = match &args.content_sha256 {
        Some(hex) => {
            ContentHash::from_hex(hex).ok_or("--content-sha256 takes 64 hexadecimal digits")?
        }
        None => request.content_hash(),
    };
    let parts = request.target_parts();
    let canonical = CanonicalRequest::new(request.method(), parts);
    let string_to_sign = canonical.string_to_sign_bytes(&timestamp, &content);

    let mut out = Vec::new();
    // Every value is escaped for the terminal: a captured request may hold escape
    // sequences.
    let mut field = |label: &str, value: &[u8]| {
        out.extend_from_slice(format!("{:<19} ", format!("{label}:")).as_bytes());
        push_escaped(&mut out, value);
        out.push(b'\n');
    };
    field("request line", request.request_line());
    field("method", request.method().as_bytes());
    field("path", parts.path());
    field("query (raw)", parts.query());
    field("canonical query", canonical.query().to_string().as_bytes());
    let framing = match request.framing() {
        Framing::Chunked => " (decoded from chunked)",
        Framing::ContentLength(_) | Framing::None => "",
    };
    field(
        "body",
        format!("{} bytes{framing}", request.body().len()).as_bytes(),
    );
    let hash_source = if args.content_sha256.is_some() {
        " (from --content-sha256; the body is not hashed)"
    } else {
        ""
    };
    field("body sha256", format!("{content}{hash_source}").as_bytes());
    field(
        "timestamp",
        format!("{timestamp} ({timestamp_source})").as_bytes(),
    );
    let client_id = request
        .header_values("x-client-id")
        .next()
        .map(|v| (v, "X-Client-Id"))
        .or_else(|| {
            request
                .header_values("x-access-key")
                .next()
                .map(|v| (v, "X-Access-Key"))
        });
    if let Some((id, from)) = client_id {
        let mut value = id.to_vec();
        value.extend_from_slice(
            format!(" (from {from}; not part of the string-to-sign)").as_bytes(),
        );
        field("client id", &value);
    }

    out.extend_from_slice(b"\nstring-to-sign (each \\n marks a newline; none at the end):\n");
    for (i, line) in string_to_sign.split(|&b| b == b'\n').enumerate() {
        if i > 0 {
            out.extend_from_slice(b"\\n\n");
        }
        push_escaped(&mut out, line);
    }
    out.extend_from_slice(b"\n\n");

    let sent = request.header_values("x-signature").next();
    match &secret {
        Some(secret) => {
            let expected = canonical.sign(secret, &timestamp, &content);
            let mut field = |label: &str, value: &[u8]| {
                out.extend_from_slice(format!("{:<19} ", format!("{label}:")).as_bytes());
                push_escaped(&mut out, value);
                out.push(b'\n');
            };
            field("expected signature", expected.to_hex().as_bytes());
            let diagnosis = if let Some(sent) = sent {
                field("sent signature", sent);
                let parsed = core::str::from_utf8(sent)
                    .ok()
                    .and_then(Signature::from_hex);
                let verdict: &[u8] = match parsed {
                    Some(s) if s == expected => b"matches",
                    Some(_) => b"DOES NOT MATCH: diff the string-to-sign above with the sender's",
                    None => b"DOES NOT MATCH: X-Signature is not 64 hex digits (malformed_header)",
                };
                field("signature", verdict);
                match parsed {
                    Some(_) if args.content_sha256.is_some() => {
                        b"unknown (the body is not at hand with --content-sha256)".to_vec()
                    }
                    Some(_) => {
                        let signed = jg_hmac::SignedRequest::new(
                            request.method(),
                            parts,
                            [("X-Timestamp", timestamp.as_bytes()), ("X-Signature", sent)],
                        );
                        diagnosis_line(&diagnose(secret, &signed, request.body()), parts.path())
                    }
                    None => b"unknown (X-Signature is not 64 hex digits)".to_vec(),
                }
            } else {
                field("signature", b"the request has no X-Signature");
                b"unknown (the request has no X-Signature)".to_vec()
            };
            if let Some(now) = args.now {
                let verdict = verify_at(&request, secret, now);
                field(&format!("verify at {now}"), verdict.as_bytes());
            }
            out.extend_from_slice(b"diagnosis: ");
            out.extend_from_slice(&diagnosis);
            out.push(b'\n');
        }
        None => {
            out.extend_from_slice(
                b"expected signature: (give --secret-env or --secret-file to compute it)\n",
            );
        }
    }
    for note in notes {
        out.extend_from_slice(format!("note: {note}\n").as_bytes());
    }
    Ok(out)
}

/// `CODE (explanation)`, escaped for the terminal; for `path_prefix`, the missing prefix
/// too.
fn diagnosis_line(diagnosis: &Diagnosis, path: &[u8]) -> Vec<u8> {
    let mut line = Vec::new();
    push_escaped(
        &mut line,
        format!("{} ({}", diagnosis.code(), diagnosis).as_bytes(),
    );
    if let Diagnosis::PathPrefix { prefix_len, .. } = diagnosis {
        line.extend_from_slice(b"; missing: ");
        push_escaped(&mut line, path.get(..*prefix_len).unwrap_or_default());
    }
    line.push(b')');
    line
}

fn verify_at(request: &RawRequest<'_>, secret: &Secret, now: u64) -> String {
    let lookup = |id: &str| {
        Some(Arc::new(
            Credential::new(id).with_key(jg_hmac::SigningKey::new("0", secret)),
        ))
    };
    match Verifier::new().verify(
        &lookup,
        &jg_hmac::SignedRequest::from(request),
        &request.content_hash(),
        now,
    ) {
        Ok(_) => "ok".into(),
        Err(e) => format!("{}: {}", e.code(), e.message()),
    }
}
