//! Naming the mistake behind a signature mismatch: a support tool, never a verifier.
//!
//! [`diagnose`] takes a request whose `X-Signature` did not verify, its body, and the
//! client's key, and tries the typical mistakes of partner implementations one at a time
//! (an unsorted query, a decoded path, a lowercase method, CRLF line ends, a secret with a
//! trailing newline, another timestamp, ...: [`Diagnosis::ALL`] in order). For each it
//! rebuilds the string-to-sign the way the mistaken signer would have, computes its HMAC
//! and compares it in constant time with the sent signature. The first mistake that
//! reproduces the sent signature is the [`Diagnosis`].
//!
//! It is pure (no I/O, no clock), its work is bounded (at most 601 HMACs for the timestamp
//! search, about 80 for everything else, and the query mistakes are only tried on a query
//! within the default limits of SPEC.md §10), and it decides nothing: a request that
//! does not verify stays refused whatever the diagnosis. It never runs in
//! [`Verifier`](crate::Verifier); the tower layer runs it only for its sandbox
//! diagnostics. Its result names a mistake; it never holds the secret or the expected
//! signature.
//!
//! ```
//! use hmac::{Hmac, KeyInit, Mac};
//! use jg_hmac::diagnose::{Diagnosis, diagnose};
//! use jg_hmac::{Secret, SignedRequest, Target};
//!
//! // The partner signed the query in the order it was sent instead of sorting it.
//! let mistaken = "JG-HMAC-SHA256\n1735550160\nGET\n/v1/ping\nz=two&a=hello\n\
//!                 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
//! let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"s3cr3t_test_key_justgold").unwrap();
//! mac.update(mistaken.as_bytes());
//! let sent = hex::encode(mac.finalize().into_bytes());
//!
//! let request = SignedRequest::new("GET", Target::parse("/v1/ping?z=two&a=hello"), [
//!     ("X-Timestamp", &b"1735550160"[..]),
//!     ("X-Signature", sent.as_bytes()),
//! ]);
//! let secret = Secret::from("s3cr3t_test_key_justgold");
//! let diagnosis = diagnose(&secret, &request, b"");
//! assert_eq!(diagnosis, Diagnosis::QueryUnsorted);
//! assert_eq!(diagnosis.code(), "query_unsorted");
//! ```

mod diagnosis;
mod mistakes;
mod query;
mod search;

pub use diagnosis::Diagnosis;

use crate::canonical::CanonicalRequest;
use crate::credential::SigningKey;
use crate::headers::{Slot, parse_timestamp};
use crate::request::SignedRequest;
use crate::secret::{KeyedMac, Secret};
use crate::signature::{ContentHash, Signature};

use search::{Lines, Search};

/// The key [`diagnose`] computes HMACs with: a verifier's [`SigningKey`], or the
/// [`Secret`] itself. Both try every mistake but one: a `SigningKey` keeps no secret
/// bytes, so only with the `Secret` is `secret_whitespace` tried.
///
/// `diagnose` takes either (`&key` or `&secret`) through `From`.
///
/// ```
/// use jg_hmac::diagnose::Key;
/// use jg_hmac::{Secret, SigningKey};
/// let secret = Secret::from("s3cr3t_test_key_justgold");
/// let key = SigningKey::new("2026-11", &secret);
/// assert!(matches!(Key::from(&key), Key::Signing(_)));
/// assert!(matches!(Key::from(&secret), Key::Secret(_)));
/// ```
#[derive(Clone, Copy, Debug)]
pub enum Key<'a> {
    /// A key as a verifier holds it (the tower layer's diagnostics).
    Signing(&'a SigningKey),
    /// The secret's bytes (the CLI's `explain`).
    Secret(&'a Secret),
}

impl<'a> From<&'a SigningKey> for Key<'a> {
    fn from(key: &'a SigningKey) -> Self {
        Self::Signing(key)
    }
}

impl<'a> From<&'a Secret> for Key<'a> {
    fn from(secret: &'a Secret) -> Self {
        Self::Secret(secret)
    }
}

/// Names the mistake that reproduces the request's `X-Signature`, trying each typical one
/// in the order of [`Diagnosis::ALL`]: [`Diagnosis::None`] if it is the right signature,
/// [`Diagnosis::Unknown`] if no mistake reproduces it, or if the request has no single
/// well-formed `X-Timestamp` (1 to 18 digits) and `X-Signature` (64 hex digits).
///
/// The timestamp and the signature are read from `request`'s headers; `body` is the body
/// received (its bytes, not only its hash: `body_trailing_newline` hashes variants of
/// them). See the [module](self) docs.
///
/// ```
/// use jg_hmac::diagnose::{Diagnosis, diagnose};
/// use jg_hmac::{CanonicalRequest, ContentHash, Secret, SignedRequest, SigningKey, Target};
/// let secret = Secret::from("s3cr3t_test_key_justgold");
/// let key = SigningKey::new("2026-11", &secret);
/// let target = Target::parse("/v1/ping?z=two&z=three&version=1&a=hello");
/// let signed_at = |ts: &str| CanonicalRequest::new("GET", target).sign(&secret, ts, &ContentHash::EMPTY).to_hex();
/// let request = |signature: &str| {
///     let headers = [("X-Timestamp", "1735550160"), ("X-Signature", signature)];
///     diagnose(&key, &SignedRequest::new("GET", target, headers.map(|(n, v)| (n, v.as_bytes()))), b"")
/// };
/// assert_eq!(request(&signed_at("1735550160")), Diagnosis::None);
///
/// // Signed ten seconds before the X-Timestamp it sends.
/// assert_eq!(
///     request(&signed_at("1735550150")),
///     Diagnosis::TimestampDiffers { signed: 1735550150, offset: -10 }
/// );
///
/// // Another secret, or no well-formed signature: cannot tell.
/// let other = CanonicalRequest::new("GET", target).sign(&Secret::from("x"), "1735550160", &ContentHash::EMPTY);
/// assert_eq!(request(&other.to_hex()), Diagnosis::Unknown);
/// assert_eq!(request("not hex"), Diagnosis::Unknown);
/// ```
pub fn diagnose<'k>(
    key: impl Into<Key<'k>>,
    request: &SignedRequest<'_>,
    body: &[u8],
) -> Diagnosis {
    let headers = &request.headers;
    let (Slot::One(timestamp_text), Slot::One(signature)) = (headers.timestamp, headers.signature)
    else {
        return Diagnosis::Unknown;
    };
    let (Ok(timestamp), Some(sent)) = (
        parse_timestamp(timestamp_text),
        Signature::from_hex_bytes(signature),
    ) else {
        return Diagnosis::Unknown;
    };
    let keyed;
    let (mac, secret) = match key.into() {
        Key::Signing(key) => (key.mac(), None),
        Key::Secret(secret) => {
            keyed = KeyedMac::new(secret);
            (&keyed, Some(secret))
        }
    };

    let canonical = CanonicalRequest::new(request.method(), request.target());
    let method = request.method().to_ascii_uppercase();
    let query = canonical.query().to_string();
    let hash = ContentHash::of(body).to_string();
    let search = Search {
        mac,
        secret,
        sent,
        method: request.method(),
        target: request.target(),
        body,
        timestamp,
        lines: Lines {
            timestamp: timestamp_text,
            method: method.as_bytes(),
            path: canonical.path(),
            query: query.as_bytes(),
            hash: hash.as_bytes(),
        },
    };
    if search.signed(&search.lines) {
        return Diagnosis::None;
    }
    // In the order of `Diagnosis::ALL`.
    let mistakes = [
        mistakes::method,
        query::missing,
        query::order,
        mistakes::path,
        mistakes::body,
        mistakes::layout,
        mistakes::secret,
        mistakes::timestamp,
    ];
    mistakes
        .iter()
        .find_map(|mistake| mistake(&search))
        .unwrap_or(Diagnosis::Unknown)
}

#[cfg(test)]
mod tests;
