//! The canonical query string (SPEC-NOTES §3), computed without building strings.
//!
//! Pairs are kept as borrowed slices of the raw query and sorted in place by their
//! *encoded* form, which is produced lazily, byte by byte, when two pairs are compared and
//! when the result is streamed into the MAC. Up to [`INLINE_PAIRS`] pairs live on the
//! stack; beyond that one `Vec` sized by the number of pairs is used.

use core::cmp::Ordering;
use core::fmt;

use crate::error::{Error, LimitKind};
use crate::sink::Sink;

/// Number of query pairs canonicalized without touching the heap.
pub const INLINE_PAIRS: usize = 32;

/// `A–Z a–z 0–9 - . _ ~`: the bytes that are never percent-encoded.
#[inline]
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// `%XX` with uppercase hex.
#[inline]
fn percent_encoded(b: u8) -> [u8; 3] {
    [b'%', upper_hex_digit(b >> 4), upper_hex_digit(b & 0x0f)]
}

#[inline]
fn upper_hex_digit(nibble: u8) -> u8 {
    if nibble < 10 {
        b'0' + nibble
    } else {
        b'A' + (nibble - 10)
    }
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// How the bytes of a key or value relate to their encoded form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Form {
    /// Every byte is unreserved: the encoded form is the bytes themselves.
    Verbatim,
    /// As sent on the wire: decode `+` and `%XX` first, then encode.
    Wire,
    /// Logical bytes from a client's pairs: encode only.
    Plain,
}

#[derive(Clone, Copy, Debug)]
struct Part<'a> {
    bytes: &'a [u8],
    form: Form,
}

impl<'a> Part<'a> {
    const EMPTY: Part<'static> = Part {
        bytes: b"",
        form: Form::Verbatim,
    };

    fn new(bytes: &'a [u8], form_if_not_verbatim: Form) -> Self {
        let form = if bytes.iter().all(|&b| is_unreserved(b)) {
            Form::Verbatim
        } else {
            form_if_not_verbatim
        };
        Self { bytes, form }
    }

    fn logical(&self) -> Logical<'a> {
        Logical {
            rest: self.bytes,
            decode: self.form == Form::Wire,
        }
    }

    fn encoded(&self) -> Encoded<'a> {
        Encoded {
            logical: self.logical(),
            pending: [0; 2],
            npending: 0,
        }
    }

    fn cmp_encoded(&self, other: &Self) -> Ordering {
        if self.form == Form::Verbatim && other.form == Form::Verbatim {
            self.bytes.cmp(other.bytes)
        } else {
            self.encoded().cmp(other.encoded())
        }
    }

    fn write<S: Sink>(&self, sink: &mut S) {
        if self.form == Form::Verbatim {
            sink.put(self.bytes);
            return;
        }
        for b in self.logical() {
            if is_unreserved(b) {
                sink.put(&[b]);
            } else {
                sink.put(&percent_encoded(b));
            }
        }
    }
}

/// The decoded bytes of a part: `+` → space, `%XX` → byte, a `%` without two hex digits
/// stays a literal `%`. No UTF-8 interpretation.
struct Logical<'a> {
    rest: &'a [u8],
    decode: bool,
}

impl Iterator for Logical<'_> {
    type Item = u8;

    #[inline]
    fn next(&mut self) -> Option<u8> {
        let (&first, tail) = self.rest.split_first()?;
        if self.decode {
            match first {
                b'+' => {
                    self.rest = tail;
                    return Some(b' ');
                }
                b'%' => {
                    if let [hi, lo, after @ ..] = tail
                        && let (Some(hi), Some(lo)) = (hex_value(*hi), hex_value(*lo))
                    {
                        self.rest = after;
                        return Some(hi << 4 | lo);
                    }
                }
                _ => {}
            }
        }
        self.rest = tail;
        Some(first)
    }
}

/// The encoded bytes of a part, produced lazily for comparisons.
struct Encoded<'a> {
    logical: Logical<'a>,
    pending: [u8; 2],
    npending: u8,
}

impl Iterator for Encoded<'_> {
    type Item = u8;

    #[inline]
    fn next(&mut self) -> Option<u8> {
        match self.npending {
            2 => {
                self.npending = 1;
                return Some(self.pending[0]);
            }
            1 => {
                self.npending = 0;
                return Some(self.pending[1]);
            }
            _ => {}
        }
        let b = self.logical.next()?;
        if is_unreserved(b) {
            Some(b)
        } else {
            let [percent, hi, lo] = percent_encoded(b);
            self.pending = [hi, lo];
            self.npending = 2;
            Some(percent)
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Pair<'a> {
    key: Part<'a>,
    value: Part<'a>,
}

impl Pair<'_> {
    const EMPTY: Pair<'static> = Pair {
        key: Part::EMPTY,
        value: Part::EMPTY,
    };

    fn cmp_encoded(&self, other: &Self) -> Ordering {
        self.key
            .cmp_encoded(&other.key)
            .then_with(|| self.value.cmp_encoded(&other.value))
    }
}

/// The stack variant is the point: up to 32 pairs need no allocation.
#[derive(Clone)]
#[allow(clippy::large_enum_variant)]
enum Pairs<'a> {
    Inline {
        pairs: [Pair<'a>; INLINE_PAIRS],
        len: usize,
    },
    Heap(Vec<Pair<'a>>),
}

impl<'a> Pairs<'a> {
    fn new() -> Self {
        Self::Inline {
            pairs: [Pair::EMPTY; INLINE_PAIRS],
            len: 0,
        }
    }

    fn push(&mut self, pair: Pair<'a>, size_hint: usize) {
        match self {
            Self::Inline { pairs, len } => {
                if let Some(slot) = pairs.get_mut(*len) {
                    *slot = pair;
                    *len += 1;
                } else {
                    let mut heap = Vec::with_capacity(size_hint.max(INLINE_PAIRS + 1));
                    heap.extend_from_slice(pairs);
                    heap.push(pair);
                    *self = Self::Heap(heap);
                }
            }
            Self::Heap(heap) => heap.push(pair),
        }
    }

    fn as_slice(&self) -> &[Pair<'a>] {
        match self {
            Self::Inline { pairs, len } => pairs.get(..*len).unwrap_or(&[]),
            Self::Heap(heap) => heap,
        }
    }

    fn as_mut_slice(&mut self) -> &mut [Pair<'a>] {
        match self {
            Self::Inline { pairs, len } => pairs.get_mut(..*len).unwrap_or(&mut []),
            Self::Heap(heap) => heap,
        }
    }
}

/// A canonical query string: the query's pairs decoded, re-encoded and sorted.
///
/// Build it from the raw query of a request ([`CanonicalQuery::parse`]) or from the pairs
/// a client intends to send ([`CanonicalQuery::from_pairs`]); the same logical pairs give
/// the same result either way. `Display` prints the canonical string, which is also a valid
/// query string to send.
///
/// Borrowing: the value keeps references into its input and allocates only for more than
/// [`INLINE_PAIRS`] pairs.
///
/// ```
/// use jg_hmac::CanonicalQuery;
/// let from_wire = CanonicalQuery::parse("z=two&z=three&version=1&a=hello");
/// assert_eq!(from_wire.to_string(), "a=hello&version=1&z=three&z=two");
///
/// let from_pairs = CanonicalQuery::from_pairs([("q", "a b"), ("a", "é")]);
/// assert_eq!(from_pairs.to_string(), "a=%C3%A9&q=a%20b");
/// ```
#[derive(Clone)]
pub struct CanonicalQuery<'a> {
    pairs: Pairs<'a>,
}

impl<'a> CanonicalQuery<'a> {
    /// The canonical form of a raw query as sent (the part after `?`, without `?` and
    /// without any `#` fragment), with no size limits.
    ///
    /// Use [`CanonicalQuery::parse_limited`] on input from the network.
    ///
    /// ```
    /// use jg_hmac::CanonicalQuery;
    /// assert_eq!(CanonicalQuery::parse("q=a+b&r=a%20b&s=a%2Bb").to_string(), "q=a%20b&r=a%20b&s=a%2Bb");
    /// assert_eq!(CanonicalQuery::parse("").to_string(), "");
    /// ```
    pub fn parse(raw: &'a str) -> Self {
        Self::parse_bytes(raw.as_bytes())
    }

    /// [`CanonicalQuery::parse`] for a query that is not valid UTF-8 (decoding works on
    /// bytes throughout).
    ///
    /// ```
    /// let q = jg_hmac::CanonicalQuery::parse_bytes(b"k=\xff");
    /// assert_eq!(q.to_string(), "k=%FF");
    /// ```
    pub fn parse_bytes(raw: &'a [u8]) -> Self {
        match Self::parse_limited(raw, usize::MAX, usize::MAX) {
            Ok(query) => query,
            // Unreachable: no limit can be exceeded.
            Err(_) => Self::empty(),
        }
    }

    /// Parses a raw query, refusing one longer than `max_len` bytes or with more than
    /// `max_pairs` non-empty `&`-separated segments.
    ///
    /// # Errors
    /// [`Error::TooLarge`] with [`LimitKind::QueryLength`] or [`LimitKind::QueryPairs`].
    ///
    /// ```
    /// use jg_hmac::{CanonicalQuery, Error, LimitKind};
    /// assert!(CanonicalQuery::parse_limited(b"a=1&b=2", 16, 2).is_ok());
    /// assert_eq!(
    ///     CanonicalQuery::parse_limited(b"a=1&b=2&c=3", 16, 2).err(),
    ///     Some(Error::TooLarge(LimitKind::QueryPairs))
    /// );
    /// ```
    pub fn parse_limited(raw: &'a [u8], max_len: usize, max_pairs: usize) -> Result<Self, Error> {
        if raw.len() > max_len {
            return Err(Error::TooLarge(LimitKind::QueryLength));
        }
        let mut pairs = Pairs::new();
        let mut count = 0usize;
        for segment in raw.split(|&b| b == b'&') {
            if segment.is_empty() {
                continue;
            }
            count += 1;
            if count > max_pairs {
                return Err(Error::TooLarge(LimitKind::QueryPairs));
            }
            let (key, value) = match segment.iter().position(|&b| b == b'=') {
                Some(eq) => (segment.get(..eq), segment.get(eq + 1..)),
                None => (Some(segment), Some(&b""[..])),
            };
            let pair = Pair {
                key: Part::new(key.unwrap_or_default(), Form::Wire),
                value: Part::new(value.unwrap_or_default(), Form::Wire),
            };
            // At most one segment per two bytes of the remaining input.
            pairs.push(pair, raw.len() / 2 + 1);
        }
        Ok(Self::sorted(pairs))
    }

    /// The canonical form of the pairs a client intends to send, given as logical
    /// (unencoded) keys and values.
    ///
    /// Send the result of `to_string()` as the query: the server's parse of it gives the
    /// same canonical form.
    ///
    /// ```
    /// use jg_hmac::CanonicalQuery;
    /// let q = CanonicalQuery::from_pairs([("z", "two"), ("z", "three"), ("version", "1"), ("a", "hello")]);
    /// assert_eq!(q.to_string(), "a=hello&version=1&z=three&z=two");
    /// assert_eq!(CanonicalQuery::parse(&q.to_string()).to_string(), q.to_string());
    /// ```
    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (&'a K, &'a V)>,
        K: AsRef<[u8]> + ?Sized + 'a,
        V: AsRef<[u8]> + ?Sized + 'a,
    {
        let iter = pairs.into_iter();
        let hint = iter.size_hint().0;
        let mut out = Pairs::new();
        for (k, v) in iter {
            let pair = Pair {
                key: Part::new(k.as_ref(), Form::Plain),
                value: Part::new(v.as_ref(), Form::Plain),
            };
            out.push(pair, hint);
        }
        Self::sorted(out)
    }

    fn empty() -> Self {
        Self {
            pairs: Pairs::new(),
        }
    }

    fn sorted(mut pairs: Pairs<'a>) -> Self {
        // Pairs that compare equal have identical encoded forms, so an unstable sort
        // (which never allocates) gives the same output as a stable one.
        pairs
            .as_mut_slice()
            .sort_unstable_by(|a, b| a.cmp_encoded(b));
        Self { pairs }
    }

    /// Number of pairs (empty segments are not pairs).
    ///
    /// ```
    /// assert_eq!(jg_hmac::CanonicalQuery::parse("a=b=c&&").len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.pairs.as_slice().len()
    }

    /// Whether the query has no pairs (its canonical form is the empty string).
    ///
    /// ```
    /// assert!(jg_hmac::CanonicalQuery::parse("&&").is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Streams the canonical form into `sink`.
    pub(crate) fn write<S: Sink>(&self, sink: &mut S) {
        for (i, pair) in self.pairs.as_slice().iter().enumerate() {
            if i > 0 {
                sink.put(b"&");
            }
            pair.key.write(sink);
            sink.put(b"=");
            pair.value.write(sink);
        }
    }
}

impl fmt::Display for CanonicalQuery<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = Vec::new();
        self.write(&mut out);
        // The canonical form is ASCII by construction.
        f.write_str(core::str::from_utf8(&out).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for CanonicalQuery<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CanonicalQuery({:?})", self.to_string())
    }
}

/// Canonical query of a raw query string, as an owned `String`.
///
/// ```
/// assert_eq!(jg_hmac::canonical_query("b=%zz&a%2=1"), "a%252=1&b=%25zz");
/// ```
pub fn canonical_query(raw: &str) -> String {
    CanonicalQuery::parse(raw).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_notes_table() {
        for (raw, canonical) in [
            (
                "z=two&z=three&version=1&a=hello",
                "a=hello&version=1&z=three&z=two",
            ),
            ("q=a+b&r=a%20b&s=a%2Bb", "q=a%20b&r=a%20b&s=a%2Bb"),
            ("b=%zz&a%2=1", "a%252=1&b=%25zz"),
            ("e&=x&f=%c3%a9&g=%7e", "=x&e=&f=%C3%A9&g=~"),
            ("a=b=c&&", "a=b%3Dc"),
            ("k=%FF", "k=%FF"),
        ] {
            assert_eq!(canonical_query(raw), canonical, "raw {raw:?}");
        }
    }

    #[test]
    fn ordinal_not_locale_order() {
        assert_eq!(canonical_query("a=1&B=2"), "B=2&a=1");
    }

    #[test]
    fn sorts_by_key_then_value_not_by_joined_string() {
        // Joined strings would put "a-b=1" before "a=2" ('-' < '='); keys compare first.
        assert_eq!(canonical_query("a-b=1&a=2"), "a=2&a-b=1");
    }

    #[test]
    fn compares_encoded_forms() {
        // '%41' decodes to 'A' (0x41) which sorts before '_' (0x5F) once encoded.
        assert_eq!(canonical_query("_=1&%41=2"), "A=2&_=1");
        // A space encodes to %20; '%' (0x25) sorts before '0' (0x30).
        assert_eq!(canonical_query("0=1&+=2"), "%20=2&0=1");
    }

    #[test]
    fn more_pairs_than_inline_still_sorted() {
        let raw: Vec<String> = (0..100).rev().map(|i| format!("k{i:03}=v")).collect();
        let raw = raw.join("&");
        let mut expected: Vec<String> = (0..100).map(|i| format!("k{i:03}=v")).collect();
        expected.sort();
        assert_eq!(canonical_query(&raw), expected.join("&"));
    }

    #[test]
    fn limits_at_edge_and_past_it() {
        assert!(CanonicalQuery::parse_limited(b"a=1", 3, 1).is_ok());
        assert_eq!(
            CanonicalQuery::parse_limited(b"a=12", 3, 1).err(),
            Some(Error::TooLarge(LimitKind::QueryLength))
        );
        assert_eq!(
            CanonicalQuery::parse_limited(b"a&b", 3, 1).err(),
            Some(Error::TooLarge(LimitKind::QueryPairs))
        );
    }
}
