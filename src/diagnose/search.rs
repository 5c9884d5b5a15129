//! The search's state: the received request's right string-to-sign, line by line, and the
//! one comparison every candidate goes through.

use hmac::Mac;

use crate::canonical::ALGORITHM;
use crate::secret::{KeyedMac, Secret};
use crate::signature::Signature;
use crate::target::Target;

/// The five variable lines of a string-to-sign.
#[derive(Clone, Copy)]
pub(super) struct Lines<'a> {
    pub(super) timestamp: &'a [u8],
    pub(super) method: &'a [u8],
    pub(super) path: &'a [u8],
    pub(super) query: &'a [u8],
    pub(super) hash: &'a [u8],
}

impl Lines<'_> {
    /// The string-to-sign with its lines joined by `separator` (a right one: `\n`).
    pub(super) fn join(&self, separator: &[u8]) -> Vec<u8> {
        let parts = [
            ALGORITHM.as_bytes(),
            self.timestamp,
            self.method,
            self.path,
            self.query,
            self.hash,
        ];
        let len = parts.iter().map(|p| p.len()).sum::<usize>() + 5 * separator.len();
        let mut out = Vec::with_capacity(len);
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(separator);
            }
            out.extend_from_slice(part);
        }
        out
    }
}

/// What the mistakes are tried against: the received request, its right lines, the key
/// and the sent signature.
pub(super) struct Search<'a> {
    pub(super) mac: &'a KeyedMac,
    /// The secret's bytes, when the caller gave them (for `secret_whitespace`).
    pub(super) secret: Option<&'a Secret>,
    pub(super) sent: Signature,
    /// The method as sent.
    pub(super) method: &'a str,
    pub(super) target: Target<'a>,
    pub(super) body: &'a [u8],
    /// The `X-Timestamp` sent, parsed.
    pub(super) timestamp: u64,
    /// The right lines.
    pub(super) lines: Lines<'a>,
}

impl Search<'_> {
    /// Whether `message`, signed with the key, is the sent signature (constant time).
    pub(super) fn signs(&self, message: &[u8]) -> bool {
        mac(self.mac, message) == self.sent
    }

    /// Whether `lines`, joined right, is what was signed.
    pub(super) fn signed(&self, lines: &Lines<'_>) -> bool {
        self.signs(&lines.join(b"\n"))
    }

    /// [`Search::signed`] for a variant whose changed line is `line`, the right one being
    /// `right`: a variant equal to the right line cannot be the mistake.
    pub(super) fn signed_variant(&self, lines: &Lines<'_>, line: &[u8], right: &[u8]) -> bool {
        line != right && self.signed(lines)
    }
}

/// The HMAC-SHA256 of `message` under a keyed state.
pub(super) fn mac(key: &KeyedMac, message: &[u8]) -> Signature {
    let mut mac = key.start();
    mac.update(message);
    Signature::from_bytes(mac.finalize().into_bytes().into())
}
