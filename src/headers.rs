//! The authentication headers, gathered from any header collection (SPEC.md §1).

use core::fmt;

use crate::error::{Error, HeaderKind};
use crate::swar::parse_digits;

/// `X-Client-Id`: the partner's public client id.
pub(crate) const CLIENT_ID: &str = HeaderKind::ClientId.name();
/// `X-Access-Key`: the seed's examples' name for the client id, accepted as an alias.
pub(crate) const ACCESS_KEY: &str = "X-Access-Key";
/// `X-Timestamp`: UNIX time in seconds, as signed.
pub(crate) const TIMESTAMP: &str = HeaderKind::Timestamp.name();
/// `X-Signature`: 64 hex digits of HMAC-SHA256.
pub(crate) const SIGNATURE: &str = HeaderKind::Signature.name();

/// What was seen of one header name.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Slot<'a> {
    #[default]
    Absent,
    One(&'a [u8]),
    /// Seen more than once: malformed, whatever the copies say.
    Repeated,
}

impl<'a> Slot<'a> {
    fn push(&mut self, value: &'a [u8]) {
        *self = match self {
            Self::Absent => Self::One(value),
            Self::One(_) | Self::Repeated => Self::Repeated,
        };
    }

    fn describe(&self) -> &'static str {
        match self {
            Self::Absent => "absent",
            Self::One(_) => "present",
            Self::Repeated => "repeated",
        }
    }
}

/// A header name seen as two little-endian words, its first and its last 8 bytes (they
/// overlap for names shorter than 16 bytes), loaded straight from the name: comparing a
/// name costs a few instructions instead of a loop over its bytes.
#[derive(Clone, Copy)]
struct NameWord {
    head: u64,
    tail: u64,
    len: usize,
}

/// A name to match ASCII-case-insensitively, in the same two words: its lowercase bytes,
/// and `0x20` at each letter. `byte | 0x20 == l` holds for a lowercase letter `l` exactly
/// when `byte` is `l` or its uppercase; every other byte (here `-`) must match exactly.
struct NamePattern {
    head: u64,
    head_letters: u64,
    tail: u64,
    tail_letters: u64,
    len: usize,
}

impl NamePattern {
    /// For names of 8 to 16 bytes, as all of ours are.
    // Only evaluated at compile time (for the statics below), where an index out of
    // range would fail the build rather than panic.
    #[allow(clippy::indexing_slicing)]
    const fn new(name: &str) -> Self {
        let bytes = name.as_bytes();
        let len = bytes.len();
        assert!(len >= 8 && len <= 16);
        let mut lower = [0u8; 16];
        let mut letters = [0u8; 16];
        let mut i = 0;
        while i < len {
            let c = bytes[i].to_ascii_lowercase();
            lower[i] = c;
            if c.is_ascii_lowercase() {
                letters[i] = 0x20;
            }
            i += 1;
        }
        Self {
            head: word(&lower, 0),
            head_letters: word(&letters, 0),
            tail: word(&lower, len - 8),
            tail_letters: word(&letters, len - 8),
            len,
        }
    }
}

/// The 8 bytes of `bytes` from `from`, as a little-endian word.
// Only evaluated at compile time, like `NamePattern::new`.
#[allow(clippy::indexing_slicing)]
const fn word(bytes: &[u8; 16], from: usize) -> u64 {
    let mut w = [0u8; 8];
    let mut j = 0;
    while j < 8 {
        w[j] = bytes[from + j];
        j += 1;
    }
    u64::from_le_bytes(w)
}

static NAME_CLIENT_ID: NamePattern = NamePattern::new(CLIENT_ID);
static NAME_ACCESS_KEY: NamePattern = NamePattern::new(ACCESS_KEY);
static NAME_TIMESTAMP: NamePattern = NamePattern::new(TIMESTAMP);
static NAME_SIGNATURE: NamePattern = NamePattern::new(SIGNATURE);
static NAME_CONTENT_TYPE: NamePattern = NamePattern::new("content-type");

impl NameWord {
    /// `None` for a name of fewer than 8 bytes, which matches none of ours.
    #[inline]
    fn of(name: &[u8]) -> Option<Self> {
        Some(Self {
            head: u64::from_le_bytes(*name.first_chunk::<8>()?),
            tail: u64::from_le_bytes(*name.last_chunk::<8>()?),
            len: name.len(),
        })
    }

    #[inline]
    fn is(self, pattern: &NamePattern) -> bool {
        self.len == pattern.len
            && self.head | pattern.head_letters == pattern.head
            && self.tail | pattern.tail_letters == pattern.tail
    }
}

/// The headers that JG-HMAC-SHA256 reads, collected from a request without copying:
/// what [`SignedRequest`](crate::SignedRequest) holds.
///
/// Names match case-insensitively; every occurrence is counted, so a repeated header is
/// detected rather than one copy silently picked. Other headers are ignored. `Debug` says
/// which headers are present, never their values.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct AuthHeaders<'a> {
    pub(crate) client_id: Slot<'a>,
    pub(crate) access_key: Slot<'a>,
    pub(crate) timestamp: Slot<'a>,
    pub(crate) signature: Slot<'a>,
    pub(crate) content_type: Slot<'a>,
}

impl<'a> AuthHeaders<'a> {
    /// Records one header line. Unrelated names are ignored.
    pub(crate) fn push(&mut self, name: &[u8], value: &'a [u8]) {
        let Some(word) = NameWord::of(name) else {
            return;
        };
        let slot = if word.is(&NAME_CLIENT_ID) {
            &mut self.client_id
        } else if word.is(&NAME_ACCESS_KEY) {
            &mut self.access_key
        } else if word.is(&NAME_TIMESTAMP) {
            &mut self.timestamp
        } else if word.is(&NAME_SIGNATURE) {
            &mut self.signature
        } else if word.is(&NAME_CONTENT_TYPE) {
            &mut self.content_type
        } else {
            return;
        };
        slot.push(value);
    }
}

/// Most digits of `X-Timestamp` (SPEC.md §1): 18, so every timestamp fits in a `u64`.
pub(crate) const MAX_TIMESTAMP_DIGITS: usize = 18;

/// `X-Timestamp`: 1 to 18 ASCII digits (so it always fits in a `u64`).
pub(crate) fn parse_timestamp(raw: &[u8]) -> Result<u64, Error> {
    let malformed = Error::MalformedHeader(HeaderKind::Timestamp);
    if raw.is_empty() || raw.len() > MAX_TIMESTAMP_DIGITS {
        return Err(malformed);
    }
    // Up to three groups (2 + 8 + 8 digits at most), eight digits at a time.
    let mut value = 0u64;
    let head = raw.len() % 8;
    let (first, rest) = raw.split_at_checked(head).unwrap_or((&[], raw));
    if !first.is_empty() {
        value = parse_digits(first).ok_or(malformed)?;
    }
    for group in rest.chunks_exact(8) {
        // At most 18 digits in all: no overflow.
        value = value * 100_000_000 + parse_digits(group).ok_or(malformed)?;
    }
    Ok(value)
}

#[cfg(feature = "tower")]
impl<'a> AuthHeaders<'a> {
    /// The client id a request claimed, for the audit log and the metrics of a request
    /// refused before it was prepared: one well-formed value of `X-Client-Id` (else of
    /// `X-Access-Key`); else none.
    pub(crate) fn claimed_client_id(&self) -> Option<&'a str> {
        let value = match (self.client_id, self.access_key) {
            (Slot::One(v), _) | (Slot::Absent, Slot::One(v)) => v,
            _ => return None,
        };
        crate::client_id::is_well_formed(value, crate::client_id::MAX_LEN)
            .then(|| core::str::from_utf8(value).ok())
            .flatten()
    }

    /// The `X-Timestamp` of a request refused before it was prepared, if it has exactly
    /// one that parses.
    pub(crate) fn claimed_timestamp(&self) -> Option<u64> {
        match self.timestamp {
            Slot::One(v) => parse_timestamp(v).ok(),
            _ => None,
        }
    }
}

impl fmt::Debug for AuthHeaders<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthHeaders")
            .field("client_id", &self.client_id.describe())
            .field("access_key", &self.access_key.describe())
            .field("timestamp", &self.timestamp.describe())
            .field("signature", &self.signature.describe())
            .field("content_type", &self.content_type.describe())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The word comparison agrees with `eq_ignore_ascii_case` for every byte at every
    /// place of every name, and for lengths around each name's.
    #[test]
    fn name_matching_is_exactly_ascii_case_insensitive() {
        let names = [CLIENT_ID, ACCESS_KEY, TIMESTAMP, SIGNATURE, "content-type"];
        let patterns = [
            &NAME_CLIENT_ID,
            &NAME_ACCESS_KEY,
            &NAME_TIMESTAMP,
            &NAME_SIGNATURE,
            &NAME_CONTENT_TYPE,
        ];
        for (name, pattern) in names.iter().zip(patterns) {
            for variant in [
                name.to_string(),
                name.to_ascii_uppercase(),
                name.to_ascii_lowercase(),
            ] {
                for place in 0..variant.len() {
                    for byte in 0..=255u8 {
                        let mut candidate = variant.as_bytes().to_vec();
                        candidate[place] = byte;
                        let expected = candidate.eq_ignore_ascii_case(name.as_bytes());
                        let got = NameWord::of(&candidate).is_some_and(|w| w.is(pattern));
                        assert_eq!(got, expected, "{name}: {candidate:?}");
                    }
                }
            }
            let mut longer = name.as_bytes().to_vec();
            longer.push(0);
            assert!(!NameWord::of(&longer).is_some_and(|w| w.is(pattern)));
            let shorter = &name.as_bytes()[..name.len() - 1];
            assert!(!NameWord::of(shorter).is_some_and(|w| w.is(pattern)));
        }
        assert!(NameWord::of(b"X-Clien").is_none());
    }
}
