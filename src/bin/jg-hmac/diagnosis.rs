//! The `diagnosis:` line of `explain`: the CLI's one use of [`jg_hmac::diagnose`].

use jg_hmac::diagnose::{Diagnosis, diagnose};
use jg_hmac::{ContentHash, Secret, Signature, SignedRequest, Target};

use crate::raw::RawRequest;
use crate::terminal::push_escaped;

/// `CODE (explanation)` for why `sent` is or is not the signature of `request` at
/// `timestamp`, escaped for the terminal; for `path_prefix`, the missing prefix too.
/// `given_hash` stands for the body when `--content-sha256` was given: then the body is
/// not at hand, and the mistakes are not searched.
pub fn diagnosis_line(
    secret: &Secret,
    request: &RawRequest<'_>,
    target: Target<'_>,
    timestamp: &str,
    given_hash: Option<ContentHash>,
    sent: &Signature,
) -> Vec<u8> {
    if given_hash.is_some() {
        return b"unknown (the body is not at hand with --content-sha256)".to_vec();
    }
    let sent = sent.to_hex();
    let signed = SignedRequest::new(
        request.method(),
        target,
        [
            ("X-Timestamp", timestamp.as_bytes()),
            ("X-Signature", sent.as_bytes()),
        ],
    );
    let diagnosis = diagnose(secret, &signed, request.body());
    let mut line = Vec::new();
    push_escaped(
        &mut line,
        format!("{} ({}", diagnosis.code(), diagnosis).as_bytes(),
    );
    if let Diagnosis::PathPrefix { prefix_len, .. } = diagnosis {
        line.extend_from_slice(b"; missing: ");
        push_escaped(
            &mut line,
            target.path().get(..prefix_len).unwrap_or_default(),
        );
    }
    line.push(b')');
    line
}
