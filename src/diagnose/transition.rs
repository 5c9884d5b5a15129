//! TRANSITIONAL, crate-private: the old entry point the tower layer's `hint`
//! (src/tower/authorize.rs) still calls, kept only so that the crate builds until the
//! layer calls [`diagnose`](super::diagnose()) itself. Delete this file (and its `mod`
//! line) then; it is no public API.

use crate::credential::SigningKey;
use crate::request::SignedRequest;
use crate::signature::Signature;
use crate::target::Target;

use super::{Diagnosis, diagnose};

/// The old `Received`: a request's method, target, `X-Timestamp` text and body.
pub(crate) struct Received<'a> {
    method: &'a str,
    target: Target<'a>,
    timestamp: &'a str,
    body: &'a [u8],
}

impl<'a> Received<'a> {
    pub(crate) fn new(
        method: &'a str,
        target: Target<'a>,
        timestamp: &'a str,
        body: &'a [u8],
    ) -> Self {
        Self {
            method,
            target,
            timestamp,
            body,
        }
    }
}

/// The old `diagnose_key`, through the one [`diagnose`].
pub(crate) fn diagnose_key(
    key: &SigningKey,
    received: &Received<'_>,
    sent: &Signature,
) -> Diagnosis {
    let sent = sent.to_hex();
    let request = SignedRequest::new(
        received.method,
        received.target,
        [
            ("X-Timestamp", received.timestamp.as_bytes()),
            ("X-Signature", sent.as_bytes()),
        ],
    );
    diagnose(key, &request, received.body)
}
