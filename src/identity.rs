//! The gateway's identity assertion, `X-JG-Identity` (SPEC.md §13): what `jg-hmac gateway`
//! adds to an accepted request so that an upstream other routes can reach checks that the
//! identity headers came from the gateway.
//!
//! The value is `v1;t=<unix seconds>;sig=<64 lowercase hex digits>`, the HMAC-SHA256, under
//! the identity key, of these lines joined by `\n`: `JG-IDENTITY-V1`, `t`, the method, the
//! request-target as sent (path and query), and the values of `X-JG-Client-Id`,
//! `X-JG-Key-Id`, `X-JG-Scopes`, `X-JG-Environment` and `X-Request-Id`.
//!
//! ```
//! use http::HeaderMap;
//! let mut headers = HeaderMap::new();
//! for (name, value) in [
//!     ("x-jg-client-id", "jk_live_example"),
//!     ("x-jg-key-id", "k1"),
//!     ("x-jg-scopes", "transactions:write"),
//!     ("x-jg-environment", "live"),
//!     ("x-request-id", "req-1"),
//! ] {
//!     headers.insert(name, value.parse().unwrap());
//! }
//! let key = b"identity-key-of-at-least-16-bytes";
//! let value = jg_hmac::identity::sign(key, "POST", "/v1/buy?x=1", &headers, 1_735_550_160).unwrap();
//! headers.insert("x-jg-identity", value.parse().unwrap());
//! assert!(jg_hmac::identity::verify(key, "POST", "/v1/buy?x=1", &headers, 1_735_550_170, 30).is_ok());
//! assert!(jg_hmac::identity::verify(key, "POST", "/v1/buy?x=2", &headers, 1_735_550_170, 30).is_err());
//! ```

use std::fmt;

use hmac::{KeyInit, Mac};
use http::HeaderMap;

use crate::secret::HmacSha256;
use crate::signature::{hex_lower, parse_hex32};

/// The first line of the string the assertion signs; names the version.
const DOMAIN: &[u8] = b"JG-IDENTITY-V1";

/// Every identity header only a gateway may set, lower-case: the five the assertion
/// covers, in the order they are signed, then `x-jg-identity` itself. A gateway removes
/// a client's copies of all of them, whatever their case, before it sets its own.
///
/// ```
/// assert_eq!(jg_hmac::identity::HEADERS[0], "x-jg-client-id");
/// assert_eq!(jg_hmac::identity::HEADERS.last(), Some(&"x-jg-identity"));
/// ```
pub const HEADERS: [&str; 6] = [
    "x-jg-client-id",
    "x-jg-key-id",
    "x-jg-scopes",
    "x-jg-environment",
    "x-request-id",
    "x-jg-identity",
];

/// How many of [`HEADERS`] the assertion covers (all but `x-jg-identity`).
const COVERED: usize = 5;

/// Why an `X-JG-Identity` assertion is not accepted. Its text never holds the key or the
/// signature.
///
/// ```
/// let err = jg_hmac::identity::verify(b"k", "GET", "/", &http::HeaderMap::new(), 0, 30).unwrap_err();
/// assert_eq!(err, jg_hmac::identity::IdentityError::Missing("x-jg-identity"));
/// assert_eq!(err.to_string(), "missing header x-jg-identity");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdentityError {
    /// A covered header, or `X-JG-Identity` itself, is absent (or present twice).
    Missing(&'static str),
    /// `X-JG-Identity` is not `v1;t=<digits>;sig=<64 hex>`.
    Malformed,
    /// The assertion's time is further than the allowed age from now.
    Expired,
    /// The signature does not match: another key, or a changed value.
    Mismatch,
}

impl fmt::Display for IdentityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing(name) => write!(f, "missing header {name}"),
            Self::Malformed => f.write_str("X-JG-Identity is not v1;t=<seconds>;sig=<64 hex>"),
            Self::Expired => f.write_str("X-JG-Identity is too old or from the future"),
            Self::Mismatch => f.write_str("X-JG-Identity does not match the request"),
        }
    }
}

impl std::error::Error for IdentityError {}

/// The `X-JG-Identity` value for a request whose identity headers (`X-JG-Client-Id`,
/// `X-JG-Key-Id`, `X-JG-Scopes`, `X-JG-Environment`, `X-Request-Id`) are already in
/// `headers`, at time `now` (UNIX seconds). `target` is the request-target as sent.
///
/// # Errors
/// [`IdentityError::Missing`] when a covered header is absent or repeated.
///
/// ```
/// let mut headers = http::HeaderMap::new();
/// for name in ["x-jg-client-id", "x-jg-key-id", "x-jg-scopes", "x-jg-environment", "x-request-id"] {
///     headers.insert(name, "v".parse().unwrap());
/// }
/// let value = jg_hmac::identity::sign(b"0123456789abcdef", "GET", "/", &headers, 7).unwrap();
/// assert!(value.starts_with("v1;t=7;sig="));
/// ```
pub fn sign(
    key: &[u8],
    method: &str,
    target: &str,
    headers: &HeaderMap,
    now: u64,
) -> Result<String, IdentityError> {
    let tag = mac(key, method, target, headers, now)?;
    let hex = hex_lower(&tag);
    Ok(format!("v1;t={now};sig={}", String::from_utf8_lossy(&hex)))
}

/// Checks the request's `X-JG-Identity` against its identity headers, its method and
/// request-target (`req.originalUrl` in Express), under `key`, at time `now`: the
/// assertion is accepted when its time is within `max_age` seconds of `now` (either side)
/// and its signature matches (compared in constant time).
///
/// # Errors
/// [`IdentityError`] says which check failed.
///
/// ```
/// # let headers = http::HeaderMap::new();
/// match jg_hmac::identity::verify(b"0123456789abcdef", "GET", "/", &headers, 0, 30) {
///     Ok(()) => {}
///     Err(e) => eprintln!("identity refused: {e}"),
/// }
/// ```
pub fn verify(
    key: &[u8],
    method: &str,
    target: &str,
    headers: &HeaderMap,
    now: u64,
    max_age: u64,
) -> Result<(), IdentityError> {
    let value = single(headers, "x-jg-identity")?;
    let rest = value
        .strip_prefix(b"v1;t=")
        .ok_or(IdentityError::Malformed)?;
    let split = rest
        .iter()
        .position(|&b| b == b';')
        .ok_or(IdentityError::Malformed)?;
    let (digits, sig) = rest.split_at(split);
    let sig = sig.strip_prefix(b";sig=").ok_or(IdentityError::Malformed)?;
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(IdentityError::Malformed);
    }
    let at: u64 = std::str::from_utf8(digits)
        .ok()
        .and_then(|d| d.parse().ok())
        .ok_or(IdentityError::Malformed)?;
    let claimed = parse_hex32(sig).ok_or(IdentityError::Malformed)?;
    if now.abs_diff(at) > max_age {
        return Err(IdentityError::Expired);
    }
    let expected = mac(key, method, target, headers, at)?;
    if bool::from(subtle::ConstantTimeEq::ct_eq(&expected[..], &claimed[..])) {
        Ok(())
    } else {
        Err(IdentityError::Mismatch)
    }
}

fn mac(
    key: &[u8],
    method: &str,
    target: &str,
    headers: &HeaderMap,
    at: u64,
) -> Result<[u8; 32], IdentityError> {
    let mut mac =
        <HmacSha256 as KeyInit>::new_from_slice(key).map_err(|_| IdentityError::Malformed)?;
    mac.update(DOMAIN);
    mac.update(b"\n");
    mac.update(at.to_string().as_bytes());
    mac.update(b"\n");
    mac.update(method.as_bytes());
    mac.update(b"\n");
    mac.update(target.as_bytes());
    for name in HEADERS.iter().take(COVERED) {
        mac.update(b"\n");
        mac.update(single(headers, name)?);
    }
    Ok(mac.finalize().into_bytes().into())
}

/// The one value of header `name`, as bytes.
fn single<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<&'a [u8], IdentityError> {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (Some(value), None) => Ok(value.as_bytes()),
        _ => Err(IdentityError::Missing(name)),
    }
}
