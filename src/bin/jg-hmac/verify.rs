//! `jg-hmac verify`: run the verifier on a request, with one client's secret.

use std::sync::Arc;

use clap::Args;
use jg_hmac::{Clock, Credential, Secret, SignedRequest, SystemClock, Verified, Verifier};

use crate::EarlyExit;
use crate::input::{Input, SecretSource, parse_request};
use crate::raw::RawRequest;
use crate::terminal::escape_for_terminal;

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Verify as if the time were TS (UNIX seconds) instead of now.
    #[arg(long, value_name = "TS")]
    now: Option<u64>,
    /// Accepted clock skew each way, in seconds [default: the verifier's, 300].
    #[arg(long, value_name = "S")]
    window: Option<u64>,
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

pub fn verify(args: &VerifyArgs) -> Result<Vec<u8>, EarlyExit> {
    let secret = args.secret.require()?;
    let bytes = args.input.read()?;
    let request = parse_request(&bytes)?;
    let now = args.now.unwrap_or_else(|| SystemClock.now());
    let mut verifier = Verifier::new().with_access_key_alias(!args.no_access_key_alias);
    if let Some(window) = args.window {
        verifier = verifier.with_window(window);
    }
    if !args.content_type.is_empty() {
        verifier = verifier.with_content_types(&args.content_type);
    }
    let only = args.client_id.as_deref();
    match run(&verifier, &request, &secret, only, now) {
        Ok(_) => Ok(b"ok\n".to_vec()),
        Err(e) => {
            let detail = match e {
                jg_hmac::Error::TimestampOutOfRange => timestamp_detail(&request, now, verifier.replay_horizon()),
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

/// `verifier`'s answer for `request`, with `secret` as the secret of the client id the
/// request names (of `only` alone, when given).
pub fn run(
    verifier: &Verifier,
    request: &RawRequest<'_>,
    secret: &Secret,
    only: Option<&str>,
    now: u64,
) -> Result<Verified, jg_hmac::Error> {
    let lookup = |id: &str| {
        only.is_none_or(|only| only == id)
            .then(|| Arc::new(Credential::new(id).with_key(jg_hmac::SigningKey::new("0", secret))))
    };
    verifier.verify(
        &lookup,
        &SignedRequest::from(request),
        &request.content_hash(),
        now,
    )
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
