//! `jg-hmac explain`: every piece of the string-to-sign, the expected signature and a
//! diagnosis of a mismatch.

use clap::Args;
use jg_hmac::{CanonicalRequest, Clock, ContentHash, Signature, SystemClock, Verifier};

use crate::EarlyExit;
use crate::diagnosis::diagnosis_line;
use crate::input::{Input, SecretSource, parse_request};
use crate::raw::Framing;
use crate::terminal::{push_escaped, push_visible_newlines};
use crate::verify;

#[derive(Debug, Args)]
pub struct ExplainArgs {
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

pub fn explain(args: &ExplainArgs) -> Result<Vec<u8>, EarlyExit> {
    let secret = args.secret.load()?;
    if args.now.is_some() && secret.is_none() {
        return Err(EarlyExit::Input(
            "--now runs the verifier, which needs --secret-env or --secret-file".into(),
        ));
    }
    let bytes = args.input.read()?;
    let request = parse_request(&bytes)?;

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
    let mut field = |label: &str, value: &[u8]| push_field(&mut out, label, value);
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
    push_visible_newlines(&mut out, &string_to_sign);
    out.extend_from_slice(b"\n\n");

    let sent = request.header_values("x-signature").next();
    match &secret {
        Some(secret) => {
            let expected = canonical.sign(secret, &timestamp, &content);
            let mut field = |label: &str, value: &[u8]| push_field(&mut out, label, value);
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
                    Some(sent) => {
                        let given_hash = args.content_sha256.as_ref().map(|_| content);
                        diagnosis_line(secret, &request, parts, &timestamp, given_hash, &sent)
                    }
                    None => b"unknown (X-Signature is not 64 hex digits)".to_vec(),
                }
            } else {
                field("signature", b"the request has no X-Signature");
                b"unknown (the request has no X-Signature)".to_vec()
            };
            if let Some(now) = args.now {
                let verdict = match verify::run(&Verifier::new(), &request, secret, None, now) {
                    Ok(_) => "ok".into(),
                    Err(e) => format!("{}: {}", e.code(), e.message()),
                };
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

/// One `label: value` line, the value escaped for the terminal: a captured request may
/// hold escape sequences.
fn push_field(out: &mut Vec<u8>, label: &str, value: &[u8]) {
    out.extend_from_slice(format!("{:<19} ", format!("{label}:")).as_bytes());
    push_escaped(out, value);
    out.push(b'\n');
}
