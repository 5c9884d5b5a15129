//! Secret material: the shared secret and the pre-keyed HMAC state derived from it.

use core::fmt;

use hmac::{Hmac, KeyInit};
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop};

pub(crate) type HmacSha256 = Hmac<Sha256>;

/// A client secret: bytes that are wiped from memory when dropped and never printed.
///
/// The seed's clients use the UTF-8 bytes of the secret string (SPEC.md §8), which is
/// what [`Secret::from`] with a `&str` gives.
///
/// ```
/// use jg_hmac::Secret;
/// let secret = Secret::from("s3cr3t_test_key_justgold");
/// assert_eq!(format!("{secret:?}"), "Secret([redacted])");
/// assert_eq!(secret.len(), 24);
/// ```
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Secret(Box<[u8]>);

impl Secret {
    /// Wraps secret bytes. The caller's copy is not wiped: prefer passing an owned
    /// `Vec<u8>` through [`From`], which moves it.
    ///
    /// ```
    /// let secret = jg_hmac::Secret::new(b"raw secret bytes");
    /// assert!(!secret.is_empty());
    /// ```
    pub fn new(bytes: &[u8]) -> Self {
        Self(bytes.into())
    }

    /// Number of bytes in the secret.
    ///
    /// ```
    /// assert_eq!(jg_hmac::Secret::from("abc").len(), 3);
    /// ```
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the secret has no bytes. An empty secret is accepted by HMAC but offers no
    /// security; key stores should refuse it.
    ///
    /// ```
    /// assert!(jg_hmac::Secret::from("").is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Exposes the secret bytes, for handing them to a key store or KMS.
    ///
    /// Named so that every use stands out in review: nothing in this crate calls it to
    /// print, log or compare.
    ///
    /// ```
    /// let secret = jg_hmac::Secret::from("abc");
    /// assert_eq!(secret.expose_secret(), b"abc");
    /// ```
    pub fn expose_secret(&self) -> &[u8] {
        &self.0
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Self::new(s.as_bytes())
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Self::from(s.into_bytes())
    }
}

impl From<Vec<u8>> for Secret {
    fn from(v: Vec<u8>) -> Self {
        // `into_boxed_slice` may reallocate and leave the old buffer unwiped, so copy the
        // bytes and wipe the whole of the vector's allocation instead.
        let mut v = v;
        let boxed: Box<[u8]> = v.as_slice().into();
        v.zeroize();
        Self(boxed)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// An HMAC-SHA256 state already keyed with a secret.
///
/// Keying HMAC costs two SHA-256 compressions; doing it once when a secret is loaded and
/// cloning the keyed state per request keeps that cost off the verification hot path. The
/// state is secret-equivalent: it is wiped on drop (sha2's `zeroize` feature) and printed
/// as `[redacted]`.
#[derive(Clone)]
pub(crate) struct KeyedMac(HmacSha256);

impl KeyedMac {
    pub(crate) fn new(secret: &Secret) -> Self {
        Self(keyed(secret.expose_secret()))
    }

    /// A fresh MAC ready to absorb a string-to-sign.
    #[inline]
    pub(crate) fn start(&self) -> HmacSha256 {
        self.0.clone()
    }
}

impl fmt::Debug for KeyedMac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

fn keyed(key: &[u8]) -> HmacSha256 {
    match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        // HMAC accepts keys of every length (long keys are hashed first).
        Err(_) => unreachable!("HMAC-SHA256 accepts keys of any length"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_bytes() {
        let secret = Secret::from("hunter2-very-secret");
        let printed = format!("{secret:?} {:?}", KeyedMac::new(&secret));
        assert!(!printed.contains("hunter2"));
        assert!(printed.contains("redacted"));
    }

    #[test]
    fn from_vec_keeps_bytes() {
        let secret = Secret::from(b"abc".to_vec());
        assert_eq!(secret.expose_secret(), b"abc");
    }
}
