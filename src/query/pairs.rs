//! The pieces of a query: its `&`-separated pairs cut from the raw bytes, their logical
//! (decoded) and encoded forms, and the order canonicalization sorts them in (SPEC.md §3).

use core::cmp::Ordering;

use percent_encoding::{
    AsciiSet, NON_ALPHANUMERIC, PercentDecode, percent_decode, percent_encode, percent_encode_byte,
};

use crate::sink::Sink;

/// `A–Z a–z 0–9 - . _ ~`: the bytes that are never percent-encoded, as a lookup table.
// Evaluated at compile time: an index out of range would fail the build, not panic.
#[allow(clippy::indexing_slicing)]
pub(super) static UNRESERVED: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || c == b'-' || c == b'.' || c == b'_' || c == b'~';
        b += 1;
    }
    table
};

#[inline]
pub(super) fn is_unreserved(b: u8) -> bool {
    // Always in bounds: the table has an entry for every byte.
    UNRESERVED.get(usize::from(b)).copied().unwrap_or(false)
}

/// The bytes that are percent-encoded: every byte but the unreserved ones. Encoding is
/// `percent-encoding`'s (`%XX`, uppercase hex); `tests` checks that this set and the
/// [`UNRESERVED`] table, which classifies bytes while cutting pairs, agree on all 256.
pub(super) const ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// How the bytes of a key or value relate to their encoded form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Form {
    /// Every byte is unreserved: the encoded form is the bytes themselves.
    Verbatim,
    /// As sent on the wire: decode `+` and `%XX` first, then encode.
    Wire,
    /// Logical bytes from a client's pairs: encode only.
    Plain,
}

#[derive(Clone, Copy, Debug)]
pub(super) struct Part<'a> {
    pub(super) bytes: &'a [u8],
    pub(super) form: Form,
}

impl<'a> Part<'a> {
    pub(super) fn new(bytes: &'a [u8], form_if_not_verbatim: Form) -> Self {
        let form = if bytes.iter().all(|&b| is_unreserved(b)) {
            Form::Verbatim
        } else {
            form_if_not_verbatim
        };
        Self { bytes, form }
    }

    pub(super) fn logical(&self) -> Logical<'a> {
        if self.form == Form::Wire {
            Logical::wire(self.bytes)
        } else {
            Logical::Plain(self.bytes.iter())
        }
    }

    pub(super) fn encoded(&self) -> Encoded<'a> {
        Encoded {
            logical: self.logical(),
            pending: &[],
        }
    }

    #[inline]
    pub(super) fn cmp_encoded(&self, other: &Self) -> Ordering {
        if self.form == Form::Verbatim && other.form == Form::Verbatim {
            self.bytes.cmp(other.bytes)
        } else {
            self.encoded().cmp(other.encoded())
        }
    }

    #[inline]
    pub(super) fn write<S: Sink>(&self, sink: &mut S) {
        match self.form {
            Form::Verbatim => sink.put(self.bytes),
            Form::Plain => {
                for chunk in percent_encode(self.bytes, ENCODE) {
                    sink.put(chunk.as_bytes());
                }
            }
            Form::Wire => self.write_wire(sink),
        }
    }

    /// A leading run of unreserved bytes is its own encoding (and holds no `+` or `%`),
    /// so it goes to the sink whole; the rest is decoded and encoded byte by byte.
    pub(super) fn write_wire<S: Sink>(&self, sink: &mut S) {
        let run = self
            .bytes
            .iter()
            .position(|&b| !is_unreserved(b))
            .unwrap_or(self.bytes.len());
        let (verbatim, tail) = self
            .bytes
            .split_at_checked(run)
            .unwrap_or((self.bytes, &[]));
        if !verbatim.is_empty() {
            sink.put(verbatim);
        }
        let tail = Part {
            bytes: tail,
            form: Form::Wire,
        };
        for b in tail.encoded() {
            sink.put(&[b]);
        }
    }
}

/// The logical bytes of a part. As sent on the wire: `+` is a space and `%XX` a byte,
/// decoded by `percent-encoding` (a `%` without two hex digits stays a literal `%`); no
/// UTF-8 interpretation. A `+` is not a hex digit, so no `%XX` spans one, and each
/// `+`-separated piece decodes on its own.
pub(super) enum Logical<'a> {
    Wire {
        piece: PercentDecode<'a>,
        /// What follows the `+` that ends the current piece, if one does.
        after_plus: Option<&'a [u8]>,
    },
    Plain(core::slice::Iter<'a, u8>),
}

impl<'a> Logical<'a> {
    pub(super) fn wire(bytes: &'a [u8]) -> Self {
        let (piece, after_plus) = split_at_plus(bytes);
        Self::Wire {
            piece: percent_decode(piece),
            after_plus,
        }
    }
}

pub(super) fn split_at_plus(bytes: &[u8]) -> (&[u8], Option<&[u8]>) {
    match memchr::memchr(b'+', bytes) {
        Some(at) => (
            bytes.get(..at).unwrap_or_default(),
            Some(bytes.get(at + 1..).unwrap_or_default()),
        ),
        None => (bytes, None),
    }
}

impl Iterator for Logical<'_> {
    type Item = u8;

    #[inline]
    fn next(&mut self) -> Option<u8> {
        match self {
            Self::Plain(bytes) => bytes.next().copied(),
            Self::Wire { piece, after_plus } => {
                if let Some(b) = piece.next() {
                    return Some(b);
                }
                let (next, after) = split_at_plus(after_plus.take()?);
                *piece = percent_decode(next);
                *after_plus = after;
                Some(b' ')
            }
        }
    }
}

/// The encoded bytes of a part, produced lazily for comparisons.
pub(super) struct Encoded<'a> {
    pub(super) logical: Logical<'a>,
    /// The rest of a `%XX` being produced.
    pub(super) pending: &'static [u8],
}

impl Iterator for Encoded<'_> {
    type Item = u8;

    #[inline]
    fn next(&mut self) -> Option<u8> {
        if let Some((&first, rest)) = self.pending.split_first() {
            self.pending = rest;
            return Some(first);
        }
        let b = self.logical.next()?;
        if is_unreserved(b) {
            Some(b)
        } else {
            let (&percent, rest) = percent_encode_byte(b).as_bytes().split_first()?;
            self.pending = rest;
            Some(percent)
        }
    }
}

/// A key and a value, and what sorting needs to compare keys quickly.
#[derive(Clone, Copy, Debug)]
pub(super) struct Pair<'a> {
    pub(super) key: &'a [u8],
    pub(super) value: &'a [u8],
    /// The first 8 bytes of the key's encoded form, big-endian, padded with zeros. No
    /// encoded byte is zero, so comparing prefixes orders keys as their encoded forms
    /// would, unless the prefixes are equal.
    pub(super) key_prefix: u64,
    pub(super) key_form: Form,
    pub(super) value_form: Form,
}

impl<'a> Pair<'a> {
    pub(super) const EMPTY: Pair<'static> = Pair {
        key: b"",
        value: b"",
        key_prefix: 0,
        key_form: Form::Verbatim,
        value_form: Form::Verbatim,
    };

    #[inline]
    pub(super) fn new(key: Part<'a>, value: Part<'a>) -> Self {
        Self {
            key: key.bytes,
            value: value.bytes,
            key_prefix: encoded_prefix(&key),
            key_form: key.form,
            value_form: value.form,
        }
    }

    #[inline]
    pub(super) fn key(&self) -> Part<'a> {
        Part {
            bytes: self.key,
            form: self.key_form,
        }
    }

    #[inline]
    pub(super) fn value(&self) -> Part<'a> {
        Part {
            bytes: self.value,
            form: self.value_form,
        }
    }

    #[inline]
    pub(super) fn cmp_encoded(&self, other: &Self) -> Ordering {
        let keys = match self.key_prefix.cmp(&other.key_prefix) {
            Ordering::Equal
                if self.key_form == Form::Verbatim
                    && other.key_form == Form::Verbatim
                    && self.key.len() <= 8
                    && other.key.len() <= 8 =>
            {
                // Equal prefixes that hold both keys whole: equal keys.
                Ordering::Equal
            }
            Ordering::Equal => self.key().cmp_encoded(&other.key()),
            unequal => unequal,
        };
        keys.then_with(|| self.value().cmp_encoded(&other.value()))
    }
}

/// See [`Pair::key_prefix`].
#[inline]
pub(super) fn encoded_prefix(part: &Part<'_>) -> u64 {
    if part.form == Form::Verbatim
        && let Some(head) = part.bytes.first_chunk::<8>()
    {
        return u64::from_be_bytes(*head);
    }
    let mut prefix = [0u8; 8];
    if part.form == Form::Verbatim {
        for (dst, &b) in prefix.iter_mut().zip(part.bytes) {
            *dst = b;
        }
    } else {
        for (dst, b) in prefix.iter_mut().zip(part.encoded()) {
            *dst = b;
        }
    }
    u64::from_be_bytes(prefix)
}

/// The pairs of a raw query, in order: `&`-separated segments, empty ones skipped, each
/// cut at its first `=` (none: the value is empty). One pass over the bytes finds the
/// delimiters and whether each key and value is already in encoded form.
pub(super) struct RawPairs<'a> {
    pub(super) rest: &'a [u8],
}

impl<'a> Iterator for RawPairs<'a> {
    type Item = Pair<'a>;

    // Inlined so that each pair is built in its slot rather than returned through memory.
    #[inline(always)]
    fn next(&mut self) -> Option<Pair<'a>> {
        loop {
            if self.rest.is_empty() {
                return None;
            }
            let segment = self.rest;
            // The key: up to the first `=` or `&`.
            let mut i = 0;
            let mut key_verbatim = true;
            let mut eq = None;
            while let Some(&b) = segment.get(i) {
                if is_unreserved(b) {
                    i += 1;
                    continue;
                }
                if b == b'&' {
                    break;
                }
                if b == b'=' {
                    eq = Some(i);
                    i += 1;
                    break;
                }
                key_verbatim = false;
                i += 1;
            }
            // The value, if any: up to the next `&`.
            let mut value_verbatim = true;
            if eq.is_some() {
                while let Some(&b) = segment.get(i) {
                    if is_unreserved(b) {
                        i += 1;
                        continue;
                    }
                    if b == b'&' {
                        break;
                    }
                    value_verbatim = false;
                    i += 1;
                }
            }
            // `i` is at the `&` ending the segment, or at the end of the input.
            let end = i;
            self.rest = segment.get(end + 1..).unwrap_or_default();
            if end == 0 {
                continue;
            }
            let form = |verbatim| if verbatim { Form::Verbatim } else { Form::Wire };
            let (key, value) = match eq {
                Some(eq) => (
                    segment.get(..eq).unwrap_or_default(),
                    segment.get(eq + 1..end).unwrap_or_default(),
                ),
                None => (segment.get(..end).unwrap_or_default(), &b""[..]),
            };
            let key = Part {
                bytes: key,
                form: form(key_verbatim),
            };
            return Some(Pair {
                key: key.bytes,
                value,
                // Gathered above for a verbatim key; computed for any other.
                key_prefix: match segment.first_chunk::<8>() {
                    // A verbatim key is its own encoded form: its first bytes are those
                    // of the segment, the rest of the word masked off.
                    Some(head) if key_verbatim && key.bytes.len() >= 8 => u64::from_be_bytes(*head),
                    Some(head) if key_verbatim => {
                        let kept = 8 * key.bytes.len() as u32;
                        u64::from_be_bytes(*head) & !(u64::MAX.checked_shr(kept).unwrap_or(0))
                    }
                    _ => encoded_prefix(&key),
                },
                key_form: key.form,
                value_form: form(value_verbatim),
            });
        }
    }
}

/// One pair of a raw query as sent, for sandbox diagnostics (`crate::diagnose`), which
/// rebuild the query lines a mistaken signer would have signed: the key and value decoded
/// (`+` and `%XX`, SPEC.md §3.2 step 4) and encoded (step 5) exactly as canonicalization
/// decodes and encodes them.
pub(crate) struct SentPair {
    pub(crate) key: Vec<u8>,
    pub(crate) value: Vec<u8>,
    pub(crate) encoded_key: Vec<u8>,
    pub(crate) encoded_value: Vec<u8>,
}

/// The pairs of a raw query in the order sent (empty segments skipped, as canonicalization
/// skips them).
pub(crate) fn pairs_as_sent(raw: &[u8]) -> impl Iterator<Item = SentPair> + '_ {
    RawPairs { rest: raw }.map(|pair| SentPair {
        key: pair.key().logical().collect(),
        value: pair.value().logical().collect(),
        encoded_key: pair.key().encoded().collect(),
        encoded_value: pair.value().encoded().collect(),
    })
}

/// Number of `&` bytes.
pub(super) fn count_ampersands(raw: &[u8]) -> usize {
    memchr::memchr_iter(b'&', raw).count()
}

/// Number of non-empty `&`-separated segments: the starts of runs of bytes other than
/// `&`. Branch-free, so it runs at memory speed.
pub(super) fn count_pairs(raw: &[u8]) -> usize {
    let first = raw.first().is_some_and(|&b| b != b'&');
    let starts = raw
        .iter()
        .zip(raw.get(1..).unwrap_or_default())
        .map(|(&prev, &b)| usize::from(prev == b'&' && b != b'&'))
        .sum::<usize>();
    usize::from(first) + starts
}

pub(super) fn sort(pairs: &mut [Pair<'_>]) {
    // Pairs that compare equal have identical encoded forms, so an unstable sort
    // (which never allocates) gives the same output as a stable one.
    pairs.sort_unstable_by(Pair::cmp_encoded);
}

pub(super) fn write_pairs<S: Sink>(pairs: &[Pair<'_>], sink: &mut S) {
    for (i, pair) in pairs.iter().enumerate() {
        if i > 0 {
            sink.put(b"&");
        }
        pair.key().write(sink);
        sink.put(b"=");
        pair.value().write(sink);
    }
}

/// Cuts, sorts and streams a raw query of at most `N` pairs, on the stack.
#[inline]
pub(super) fn write_raw<const N: usize, S: Sink>(raw: &[u8], sink: &mut S) {
    let mut slots = [Pair::EMPTY; N];
    let mut len = 0;
    let mut raw_pairs = RawPairs { rest: raw };
    for slot in &mut slots {
        let Some(pair) = raw_pairs.next() else {
            break;
        };
        *slot = pair;
        len += 1;
    }
    let pairs = slots.get_mut(..len).unwrap_or_default();
    sort(pairs);
    write_pairs(pairs, sink);
}
