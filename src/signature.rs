//! The 32-byte signature and the body's content hash.

use core::fmt;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// 32 bytes as 64 lowercase hex digits.
pub(crate) fn hex_lower(bytes: &[u8; 32]) -> [u8; 64] {
    #[inline]
    fn digit(nibble: u8) -> u8 {
        // Branch-free, so the loop vectorizes.
        nibble + if nibble < 10 { b'0' } else { b'a' - 10 }
    }
    let mut out = [0u8; 64];
    for (pair, &b) in out.chunks_exact_mut(2).zip(bytes) {
        if let [hi, lo] = pair {
            *hi = digit(b >> 4);
            *lo = digit(b & 0x0f);
        }
    }
    out
}

/// [`ContentHash::EMPTY`] in hex, computed at compile time.
// Evaluated at compile time: an index out of range would fail the build, not panic.
#[allow(clippy::indexing_slicing)]
const EMPTY_HEX: [u8; 64] = {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 64];
    let mut i = 0;
    while i < 32 {
        let b = ContentHash::EMPTY.0[i];
        out[2 * i] = DIGITS[(b >> 4) as usize];
        out[2 * i + 1] = DIGITS[(b & 0x0f) as usize];
        i += 1;
    }
    out
};

/// Parses exactly 64 hex digits (either case) into 32 bytes.
///
/// Eight digits at a time, in one `u64` and without a branch per digit: every byte is
/// range-checked at once ([`crate::swar`]), and the check of all 64 digits is tested
/// once at the end.
///
/// Hand-written rather than the `hex` crate's `decode_to_slice` because it decodes
/// `X-Signature` on every request: the `hex` crate's codecs make `verify/get`
/// (`benches/hot_path.rs`) about 1.5 times slower (docs/performance.md). Its tests check
/// it against the `hex` crate.
#[inline]
pub(crate) fn parse_hex32(hex: &[u8]) -> Option<[u8; 32]> {
    use crate::swar::{HIGH, ONES, ascii, bytes_in};
    let hex: &[u8; 64] = hex.try_into().ok()?;
    // Gathered in two 16-byte words and stored whole at the end: storing four bytes at a
    // time and then moving the array sixteen at a time stalls store-to-load forwarding.
    let mut halves = [0u128; 2];
    let mut valid = HIGH;
    for (i, src) in hex.chunks_exact(8).enumerate() {
        let x = u64::from_le_bytes(src.try_into().unwrap_or([0; 8]));
        let digit = bytes_in(x, b'0', b'9');
        let letter = bytes_in(x | (ONES * 0x20), b'a', b'f');
        valid &= ascii(x) & (digit | letter);
        // Low nibble, plus 9 for a letter: 'a' and 'A' are 0x?1.
        let nibbles = (x & (ONES * 0x0f)) + (letter >> 7) * 9;
        // Digit 2k is the high nibble of byte k, digit 2k+1 the low one.
        let pairs =
            ((nibbles & 0x00ff_00ff_00ff_00ff) << 4) | ((nibbles >> 8) & 0x00ff_00ff_00ff_00ff);
        let packed = (pairs | (pairs >> 8)) & 0x0000_ffff_0000_ffff;
        let packed = (packed | (packed >> 16)) & 0xffff_ffff;
        if let Some(half) = halves.get_mut(i / 4) {
            *half |= u128::from(packed) << (32 * (i % 4));
        }
    }
    let [low, high] = halves.map(u128::to_le_bytes);
    let mut out = [0u8; 32];
    if let Some((first, second)) = out.split_first_chunk_mut::<16>() {
        *first = low;
        if let Some(second) = second.first_chunk_mut::<16>() {
            *second = high;
        }
    }
    (valid == HIGH).then_some(out)
}

/// Constant-time equality of two 32-byte values: the XOR of each 8-byte word is OR-ed
/// together with no data-dependent branch, and only the final word is compared (by
/// `subtle`, through its optimisation barrier).
fn ct_eq_32(a: &[u8; 32], b: &[u8; 32]) -> subtle::Choice {
    let mut diff = 0u64;
    for (x, y) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        let x = u64::from_ne_bytes(x.try_into().unwrap_or([0; 8]));
        let y = u64::from_ne_bytes(y.try_into().unwrap_or([0; 8]));
        diff |= x ^ y;
    }
    diff.ct_eq(&0)
}

/// A JG-HMAC-SHA256 signature: the 32 bytes of an HMAC-SHA256 tag.
///
/// Equality is constant-time over all 32 bytes. `Debug` shows only the first 8 hex
/// digits, so a signature can be correlated in logs but never replayed from them; there is
/// deliberately no `Display`. [`Signature::to_hex`] gives the full lowercase value for the
/// `X-Signature` header.
///
/// ```
/// use jg_hmac::Signature;
/// let sig = Signature::from_hex("FA86029249A12A9531E269EF8986CBA153A9839D741F6F38E457C6EB96BEDE76").unwrap();
/// assert_eq!(sig.to_hex(), "fa86029249a12a9531e269ef8986cba153a9839d741f6f38e457c6eb96bede76");
/// assert_eq!(format!("{sig:?}"), "Signature(fa860292…)");
/// assert!(Signature::from_hex("fa86").is_none());
/// ```
#[derive(Clone, Copy)]
pub struct Signature([u8; 32]);

impl Signature {
    /// Parses the `X-Signature` syntax: exactly 64 hexadecimal digits, upper or lower case
    /// (SPEC.md §5.3). Returns `None` for anything else, including an empty string, a
    /// `0x` prefix or surrounding spaces.
    ///
    /// ```
    /// assert!(jg_hmac::Signature::from_hex(&"0".repeat(64)).is_some());
    /// assert!(jg_hmac::Signature::from_hex(&"0".repeat(65)).is_none());
    /// ```
    pub fn from_hex(hex: &str) -> Option<Self> {
        Self::from_hex_bytes(hex.as_bytes())
    }

    #[inline]
    pub(crate) fn from_hex_bytes(hex: &[u8]) -> Option<Self> {
        parse_hex32(hex).map(Self)
    }

    /// Wraps the 32 bytes of a tag.
    ///
    /// ```
    /// let sig = jg_hmac::Signature::from_bytes([0xab; 32]);
    /// assert_eq!(&sig.to_hex()[..4], "abab");
    /// ```
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The 32 tag bytes.
    ///
    /// ```
    /// assert_eq!(jg_hmac::Signature::from_bytes([1; 32]).as_bytes(), &[1; 32]);
    /// ```
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The full signature as 64 lowercase hex digits: the `X-Signature` header value.
    ///
    /// This is the only way to print a whole signature; keep it out of logs.
    ///
    /// ```
    /// assert_eq!(jg_hmac::Signature::from_bytes([0; 32]).to_hex(), "0".repeat(64));
    /// ```
    pub fn to_hex(&self) -> String {
        hex_lower(&self.0).iter().map(|&b| char::from(b)).collect()
    }

    /// The first 8 hex digits, for audit logs and support tickets.
    ///
    /// ```
    /// assert_eq!(jg_hmac::Signature::from_bytes([0xab; 32]).short_hex(), "abababab");
    /// ```
    pub fn short_hex(&self) -> String {
        hex_lower(&self.0)[..8]
            .iter()
            .map(|&b| char::from(b))
            .collect()
    }
}

impl PartialEq for Signature {
    /// Constant-time comparison of all 32 bytes.
    fn eq(&self, other: &Self) -> bool {
        ct_eq_32(&self.0, &other.0).into()
    }
}

impl Eq for Signature {}

impl ConstantTimeEq for Signature {
    fn ct_eq(&self, other: &Self) -> subtle::Choice {
        ct_eq_32(&self.0, &other.0)
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({}…)", self.short_hex())
    }
}

/// The SHA-256 of a request body: the last line of the string-to-sign.
///
/// Build it from the body bytes ([`ContentHash::of`]), chunk by chunk ([`BodyHasher`]), or
/// from a hash the caller already has ([`ContentHash::from_hex`]). `Display` gives the
/// lowercase hex that is signed.
///
/// ```
/// use jg_hmac::ContentHash;
/// assert_eq!(ContentHash::of(b""), ContentHash::EMPTY);
/// assert_eq!(
///     ContentHash::EMPTY.to_string(),
///     "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
/// );
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ContentHash([u8; 32]);

impl ContentHash {
    /// SHA-256 of the empty body.
    ///
    /// ```
    /// assert_eq!(jg_hmac::ContentHash::EMPTY, jg_hmac::ContentHash::of(b""));
    /// ```
    pub const EMPTY: Self = Self([
        0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9,
        0x24, 0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52,
        0xb8, 0x55,
    ]);

    /// SHA-256 of the exact body bytes.
    ///
    /// ```
    /// let h = jg_hmac::ContentHash::of(br#"{"amount":"5000","transactionId":"12345"}"#);
    /// assert_eq!(h.to_string(), "62950c2bd265b88926052417cc0df8accf5535079c3aa59e2bf2918eb3b5873d");
    /// ```
    pub fn of(body: &[u8]) -> Self {
        // Most requests (every GET) have no body: their hash is a constant.
        if body.is_empty() {
            return Self::EMPTY;
        }
        let mut hasher = BodyHasher::new();
        hasher.update(body);
        hasher.finish()
    }

    /// Parses a precomputed hash: 64 hex digits, either case.
    ///
    /// ```
    /// let h = jg_hmac::ContentHash::from_hex(
    ///     "faaa1f00ee99cf6afdc2ee9ded75dcdeee2870f06e5ee23b9a886d73e1c6dfe8",
    /// );
    /// assert!(h.is_some());
    /// assert!(jg_hmac::ContentHash::from_hex("faaa").is_none());
    /// ```
    pub fn from_hex(hex: &str) -> Option<Self> {
        parse_hex32(hex.as_bytes()).map(Self)
    }

    /// Wraps 32 digest bytes.
    ///
    /// ```
    /// let h = jg_hmac::ContentHash::from_bytes([0; 32]);
    /// assert_eq!(h.as_bytes(), &[0; 32]);
    /// ```
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The 32 digest bytes.
    ///
    /// ```
    /// assert_eq!(jg_hmac::ContentHash::EMPTY.as_bytes()[0], 0xe3);
    /// ```
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub(crate) fn hex(&self) -> [u8; 64] {
        // The empty body's (every GET's) hash, spelled out once at compile time.
        if self.0 == Self::EMPTY.0 {
            return EMPTY_HEX;
        }
        hex_lower(&self.0)
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hex = self.hex();
        // Always ASCII.
        f.write_str(core::str::from_utf8(&hex).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentHash({self})")
    }
}

/// Incremental SHA-256 of a body that arrives in chunks (a stream, a file).
///
/// ```
/// use jg_hmac::{BodyHasher, ContentHash};
/// let mut hasher = BodyHasher::new();
/// hasher.update(br#"{"amount":"5000","#);
/// hasher.update(br#""transactionId":"12345"}"#);
/// assert_eq!(
///     hasher.finish(),
///     ContentHash::of(br#"{"amount":"5000","transactionId":"12345"}"#)
/// );
/// ```
#[derive(Clone, Default)]
pub struct BodyHasher {
    sha: Sha256,
    /// Whether any byte was fed: an empty body's hash is [`ContentHash::EMPTY`], with no
    /// SHA-256 computed.
    fed: bool,
}

impl BodyHasher {
    /// A hasher that has seen no bytes.
    ///
    /// ```
    /// assert_eq!(jg_hmac::BodyHasher::new().finish(), jg_hmac::ContentHash::EMPTY);
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the next chunk of body bytes.
    ///
    /// ```
    /// let mut h = jg_hmac::BodyHasher::new();
    /// h.update(b"abc");
    /// assert_ne!(h.finish(), jg_hmac::ContentHash::EMPTY);
    /// ```
    pub fn update(&mut self, chunk: &[u8]) {
        if !chunk.is_empty() {
            self.fed = true;
            self.sha.update(chunk);
        }
    }

    /// The hash of every byte fed so far.
    ///
    /// ```
    /// let h = jg_hmac::BodyHasher::new();
    /// assert_eq!(h.finish().to_string().len(), 64);
    /// ```
    pub fn finish(self) -> ContentHash {
        if !self.fed {
            return ContentHash::EMPTY;
        }
        ContentHash(self.sha.finalize().into())
    }
}

impl fmt::Debug for BodyHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BodyHasher")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_constant_matches_sha256() {
        assert_eq!(EMPTY_HEX, hex_lower(&ContentHash::EMPTY.0));
        assert_eq!(ContentHash::EMPTY.hex(), hex_lower(&ContentHash::EMPTY.0));
        assert_eq!(ContentHash(Sha256::digest(b"").into()), ContentHash::EMPTY);
        // The shortcut for an empty body, and empty chunks among others.
        let mut hasher = BodyHasher::new();
        hasher.update(b"");
        assert_eq!(hasher.finish(), ContentHash::EMPTY);
        let mut hasher = BodyHasher::new();
        for chunk in [&b""[..], b"ab", b"", b"c"] {
            hasher.update(chunk);
        }
        assert_eq!(hasher.finish(), ContentHash(Sha256::digest(b"abc").into()));
        assert_eq!(
            ContentHash::of(b"abc"),
            ContentHash(Sha256::digest(b"abc").into())
        );
    }

    #[test]
    fn rejects_every_malformed_signature() {
        let good = "a".repeat(64);
        for bad in [
            String::new(),
            "a".repeat(63),
            "a".repeat(65),
            format!("0x{}", &good[2..]),
            format!(" {}", &good[1..]),
            format!("{}g", &good[1..]),
            format!("{}é", &good[2..]),
        ] {
            assert!(Signature::from_hex(&bad).is_none(), "{bad:?}");
        }
        assert!(Signature::from_hex(&good).is_some());
    }

    #[test]
    fn hex_agrees_with_the_hex_crate_on_every_byte() {
        for k in 0..8u8 {
            let bytes: [u8; 32] = core::array::from_fn(|i| k * 32 + i as u8);
            assert_eq!(hex_lower(&bytes)[..], *hex::encode(bytes).as_bytes());
            assert_eq!(parse_hex32(&hex_lower(&bytes)), Some(bytes));
            assert_eq!(
                parse_hex32(hex::encode_upper(bytes).as_bytes()),
                Some(bytes)
            );
        }
    }

    #[test]
    fn every_non_hex_byte_is_refused_at_every_place() {
        for c in 0..=255u8 {
            for place in 0..64 {
                let mut hex = [b'a'; 64];
                hex[place] = c;
                assert_eq!(
                    parse_hex32(&hex).is_some(),
                    c.is_ascii_hexdigit(),
                    "byte {c:#04x} at {place}"
                );
            }
        }
    }

    #[test]
    fn equality_checks_every_bit() {
        let a = Signature([0x5a; 32]);
        for bit in 0..256 {
            let mut b = [0x5a; 32];
            b[bit / 8] ^= 1 << (bit % 8);
            assert_ne!(a, Signature(b), "bit {bit}");
            assert!(!bool::from(a.ct_eq(&Signature(b))), "bit {bit}");
        }
        assert!(bool::from(a.ct_eq(&Signature([0x5a; 32]))));
    }

    #[test]
    fn equality_checks_every_byte() {
        let a = Signature([7; 32]);
        for i in 0..32 {
            let mut b = [7; 32];
            b[i] ^= 1;
            assert_ne!(a, Signature(b));
        }
        assert_eq!(a, Signature([7; 32]));
    }
}
