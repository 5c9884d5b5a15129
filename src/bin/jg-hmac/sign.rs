//! `jg-hmac sign`: add the signature headers to a request.

use clap::Args;
use jg_hmac::{CanonicalRequest, Clock, Signer, SystemClock};

use crate::EarlyExit;
use crate::input::{Input, SecretSource, parse_request};
use crate::shell::curl_command;

#[derive(Debug, Args)]
pub struct SignArgs {
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

/// The authentication headers a signed request carries; those of the input are replaced.
pub const AUTH_HEADERS: [&str; 4] = ["x-client-id", "x-access-key", "x-timestamp", "x-signature"];

pub fn sign(args: &SignArgs) -> Result<Vec<u8>, EarlyExit> {
    let secret = args.secret.require()?;
    let signer = Signer::new(args.client_id.as_str(), &secret)
        .map_err(|_| "--client-id must be 1 to 128 visible ASCII characters")?;
    let bytes = args.input.read()?;
    let request = parse_request(&bytes)?;
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
