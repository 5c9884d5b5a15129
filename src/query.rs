//! The canonical query string (SPEC.md §3), computed without building strings.
//!
//! A parsed query of up to [`INLINE_PAIRS`] pairs keeps only the raw bytes and the number
//! of pairs: each time it is written, its pairs are cut from the raw query into an array
//! on the writer's stack, as borrowed slices, sorted in place by their *encoded* form
//! (produced lazily, byte by byte, when two pairs are compared), and streamed. The value
//! itself is a few words, so it moves for free through [`Verifier::prepare`] and
//! [`Prepared`]. A larger query, or one built from pairs, holds one `Vec` of sorted pairs
//! with exactly one slot per pair.
//!
//! [`Verifier::prepare`]: crate::Verifier::prepare
//! [`Prepared`]: crate::Prepared

use core::cmp::Ordering;
use core::fmt;

use percent_encoding::{
    AsciiSet, NON_ALPHANUMERIC, PercentDecode, percent_decode, percent_encode, percent_encode_byte,
};

use crate::error::{Error, LimitKind};
use crate::sink::Sink;

/// Queries of up to this many pairs are sorted in a smaller array on the stack.
const SMALL_PAIRS: usize = 16;

/// Number of query pairs of a request canonicalized without touching the heap (parsing,
/// sorting and streaming all happen on the stack up to this many). `tests/alloc.rs`
/// checks the figure.
pub(crate) const INLINE_PAIRS: usize = 32;

/// `A–Z a–z 0–9 - . _ ~`: the bytes that are never percent-encoded, as a lookup table.
// Evaluated at compile time: an index out of range would fail the build, not panic.
#[allow(clippy::indexing_slicing)]
static UNRESERVED: [bool; 256] = {
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
fn is_unreserved(b: u8) -> bool {
    // Always in bounds: the table has an entry for every byte.
    UNRESERVED.get(usize::from(b)).copied().unwrap_or(false)
}

/// The bytes that are percent-encoded: every byte but the unreserved ones. Encoding is
/// `percent-encoding`'s (`%XX`, uppercase hex); `tests` checks that this set and the
/// [`UNRESERVED`] table, which classifies bytes while cutting pairs, agree on all 256.
const ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

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
    fn new(bytes: &'a [u8], form_if_not_verbatim: Form) -> Self {
        let form = if bytes.iter().all(|&b| is_unreserved(b)) {
            Form::Verbatim
        } else {
            form_if_not_verbatim
        };
        Self { bytes, form }
    }

    fn logical(&self) -> Logical<'a> {
        if self.form == Form::Wire {
            Logical::wire(self.bytes)
        } else {
            Logical::Plain(self.bytes.iter())
        }
    }

    fn encoded(&self) -> Encoded<'a> {
        Encoded {
            logical: self.logical(),
            pending: &[],
        }
    }

    #[inline]
    fn cmp_encoded(&self, other: &Self) -> Ordering {
        if self.form == Form::Verbatim && other.form == Form::Verbatim {
            self.bytes.cmp(other.bytes)
        } else {
            self.encoded().cmp(other.encoded())
        }
    }

    #[inline]
    fn write<S: Sink>(&self, sink: &mut S) {
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
    fn write_wire<S: Sink>(&self, sink: &mut S) {
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
enum Logical<'a> {
    Wire {
        piece: PercentDecode<'a>,
        /// What follows the `+` that ends the current piece, if one does.
        after_plus: Option<&'a [u8]>,
    },
    Plain(core::slice::Iter<'a, u8>),
}

impl<'a> Logical<'a> {
    fn wire(bytes: &'a [u8]) -> Self {
        let (piece, after_plus) = split_at_plus(bytes);
        Self::Wire {
            piece: percent_decode(piece),
            after_plus,
        }
    }
}

fn split_at_plus(bytes: &[u8]) -> (&[u8], Option<&[u8]>) {
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
struct Encoded<'a> {
    logical: Logical<'a>,
    /// The rest of a `%XX` being produced.
    pending: &'static [u8],
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
struct Pair<'a> {
    key: &'a [u8],
    value: &'a [u8],
    /// The first 8 bytes of the key's encoded form, big-endian, padded with zeros. No
    /// encoded byte is zero, so comparing prefixes orders keys as their encoded forms
    /// would, unless the prefixes are equal.
    key_prefix: u64,
    key_form: Form,
    value_form: Form,
}

impl<'a> Pair<'a> {
    const EMPTY: Pair<'static> = Pair {
        key: b"",
        value: b"",
        key_prefix: 0,
        key_form: Form::Verbatim,
        value_form: Form::Verbatim,
    };

    #[inline]
    fn new(key: Part<'a>, value: Part<'a>) -> Self {
        Self {
            key: key.bytes,
            value: value.bytes,
            key_prefix: encoded_prefix(&key),
            key_form: key.form,
            value_form: value.form,
        }
    }

    #[inline]
    fn key(&self) -> Part<'a> {
        Part {
            bytes: self.key,
            form: self.key_form,
        }
    }

    #[inline]
    fn value(&self) -> Part<'a> {
        Part {
            bytes: self.value,
            form: self.value_form,
        }
    }

    #[inline]
    fn cmp_encoded(&self, other: &Self) -> Ordering {
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
fn encoded_prefix(part: &Part<'_>) -> u64 {
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
struct RawPairs<'a> {
    rest: &'a [u8],
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
fn count_ampersands(raw: &[u8]) -> usize {
    memchr::memchr_iter(b'&', raw).count()
}

/// Number of non-empty `&`-separated segments: the starts of runs of bytes other than
/// `&`. Branch-free, so it runs at memory speed.
fn count_pairs(raw: &[u8]) -> usize {
    let first = raw.first().is_some_and(|&b| b != b'&');
    let starts = raw
        .iter()
        .zip(raw.get(1..).unwrap_or_default())
        .map(|(&prev, &b)| usize::from(prev == b'&' && b != b'&'))
        .sum::<usize>();
    usize::from(first) + starts
}

fn sort(pairs: &mut [Pair<'_>]) {
    // Pairs that compare equal have identical encoded forms, so an unstable sort
    // (which never allocates) gives the same output as a stable one.
    pairs.sort_unstable_by(Pair::cmp_encoded);
}

fn write_pairs<S: Sink>(pairs: &[Pair<'_>], sink: &mut S) {
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
fn write_raw<const N: usize, S: Sink>(raw: &[u8], sink: &mut S) {
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

#[derive(Clone)]
enum Repr<'a> {
    /// A raw query of at most `most` pairs (`most <= INLINE_PAIRS`), sorted on the
    /// stack when written.
    Raw { raw: &'a [u8], most: usize },
    /// Pairs sorted once, one slot per pair.
    Sorted(Vec<Pair<'a>>),
}

/// A canonical query string: the query's pairs decoded, re-encoded and sorted.
///
/// Build it from the raw query of a request ([`CanonicalQuery::parse`]) or from the pairs
/// a client intends to send ([`CanonicalQuery::from_pairs`]); the same logical pairs give
/// the same result either way. `Display` prints the canonical string, which is also a valid
/// query string to send.
///
/// Borrowing: the value keeps references into its input. A parsed query allocates only
/// for more than 32 pairs (one `Vec`, one slot per pair); a query built
/// from pairs holds one `Vec` of them.
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
    repr: Repr<'a>,
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
    /// `max_pairs` non-empty `&`-separated segments. Both limits are checked before any
    /// allocation.
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
        // A pair takes a byte, and every pair but the last a `&` too: a query of at most
        // `2 * INLINE_PAIRS` bytes needs no count.
        let most = raw.len().div_ceil(2);
        if most <= INLINE_PAIRS && most <= max_pairs {
            return Ok(Self {
                repr: Repr::Raw { raw, most },
            });
        }
        // Every pair but the last ends at a `&`, so `&`s + 1 bounds the number of pairs.
        // Counting them is one vectorized pass; when the bound is within the limits, as
        // it is for nearly every request, the exact count is not needed.
        let most = count_ampersands(raw) + 1;
        if most <= INLINE_PAIRS && most <= max_pairs {
            return Ok(Self {
                repr: Repr::Raw { raw, most },
            });
        }
        let len = count_pairs(raw);
        if len > max_pairs {
            return Err(Error::TooLarge(LimitKind::QueryPairs));
        }
        if len <= INLINE_PAIRS {
            return Ok(Self {
                repr: Repr::Raw { raw, most: len },
            });
        }
        let mut pairs = Vec::with_capacity(len);
        pairs.extend(RawPairs { rest: raw });
        sort(&mut pairs);
        Ok(Self {
            repr: Repr::Sorted(pairs),
        })
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
        let mut sorted: Vec<Pair<'a>> = pairs
            .into_iter()
            .map(|(k, v)| {
                Pair::new(
                    Part::new(k.as_ref(), Form::Plain),
                    Part::new(v.as_ref(), Form::Plain),
                )
            })
            .collect();
        sort(&mut sorted);
        Self {
            repr: Repr::Sorted(sorted),
        }
    }

    fn empty() -> Self {
        Self {
            repr: Repr::Raw { raw: b"", most: 0 },
        }
    }

    /// Number of pairs (empty segments are not pairs).
    ///
    /// ```
    /// assert_eq!(jg_hmac::CanonicalQuery::parse("a=b=c&&").len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Raw { raw, .. } => count_pairs(raw),
            Repr::Sorted(pairs) => pairs.len(),
        }
    }

    /// Whether the query has no pairs (its canonical form is the empty string).
    ///
    /// ```
    /// assert!(jg_hmac::CanonicalQuery::parse("&&").is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes the canonical form into `out` and returns its length, when it is a parsed
    /// query of at most [`INLINE_PAIRS`] pairs and fits; `None` otherwise, and the caller
    /// streams it with [`CanonicalQuery::write`] instead.
    #[inline(always)]
    pub(crate) fn write_flat(&self, out: &mut [u8]) -> Option<usize> {
        let mut fits = Fits {
            out,
            len: 0,
            overflow: false,
        };
        match &self.repr {
            Repr::Raw { raw, most } if *most <= SMALL_PAIRS => {
                write_raw::<SMALL_PAIRS, _>(raw, &mut fits);
            }
            Repr::Raw { raw, .. } => write_raw::<INLINE_PAIRS, _>(raw, &mut fits),
            Repr::Sorted(_) => return None,
        }
        (!fits.overflow).then_some(fits.len)
    }

    /// Streams the canonical form into `sink`.
    pub(crate) fn write<S: Sink>(&self, sink: &mut S) {
        match &self.repr {
            Repr::Raw { raw: [], .. } => {}
            Repr::Raw { raw, most } if *most <= SMALL_PAIRS => {
                write_raw::<SMALL_PAIRS, S>(raw, sink);
            }
            Repr::Raw { raw, .. } => write_raw::<INLINE_PAIRS, S>(raw, sink),
            Repr::Sorted(pairs) => write_pairs(pairs, sink),
        }
    }
}

/// A sink over a buffer that remembers whether everything fit.
struct Fits<'b> {
    out: &'b mut [u8],
    len: usize,
    overflow: bool,
}

impl Sink for Fits<'_> {
    #[inline(always)]
    fn put(&mut self, bytes: &[u8]) {
        let end = self.len + bytes.len();
        match self.out.get_mut(self.len..end) {
            Some(dst) => {
                dst.copy_from_slice(bytes);
                self.len = end;
            }
            None => self.overflow = true,
        }
    }
}

/// Writes a canonical form (ASCII by construction) to a formatter in chunks of up to
/// 128 bytes gathered on the stack, rather than one formatter call per separator.
struct FmtSink<'f, 'g> {
    f: &'f mut fmt::Formatter<'g>,
    buf: [u8; 128],
    len: usize,
    result: fmt::Result,
}

impl FmtSink<'_, '_> {
    fn emit(&mut self, bytes: &[u8]) {
        if self.result.is_ok() {
            self.result = core::str::from_utf8(bytes)
                .map_err(|_| fmt::Error)
                .and_then(|s| self.f.write_str(s));
        }
    }

    fn flush(&mut self) {
        let buf = self.buf;
        let len = core::mem::take(&mut self.len);
        self.emit(buf.get(..len).unwrap_or_default());
    }
}

impl Sink for FmtSink<'_, '_> {
    fn put(&mut self, bytes: &[u8]) {
        let end = self.len + bytes.len();
        if let Some(dst) = self.buf.get_mut(self.len..end) {
            dst.copy_from_slice(bytes);
            self.len = end;
            return;
        }
        self.flush();
        self.emit(bytes);
    }
}

impl fmt::Display for CanonicalQuery<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sink = FmtSink {
            f,
            buf: [0; 128],
            len: 0,
            result: Ok(()),
        };
        self.write(&mut sink);
        sink.flush();
        sink.result
    }
}

impl fmt::Debug for CanonicalQuery<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CanonicalQuery({:?})", self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Long enough for the tests to cross every size the code cares about.
    const SHORT_LEN: usize = 64;

    fn canonical_query(raw: &str) -> String {
        CanonicalQuery::parse(raw).to_string()
    }

    #[test]
    fn encode_set_agrees_with_the_unreserved_table() {
        for b in 0..=255u8 {
            let encoded = percent_encode(&[b], ENCODE).to_string();
            assert_eq!(encoded.len() == 1, is_unreserved(b), "byte {b:#04x}");
        }
    }

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

    /// Memory follows the number of pairs, not the query's length: an 8 KiB query with
    /// 33 pairs once reserved room for 4,097.
    #[test]
    fn heap_capacity_bounded_by_max_pairs() {
        let raw: Vec<String> = (0..33)
            .map(|i| format!("k{i:02}={}", "v".repeat(240)))
            .collect();
        let raw = raw.join("&");
        assert!(raw.len() > 8000);
        let query = CanonicalQuery::parse_limited(raw.as_bytes(), 8192, 256).unwrap();
        match &query.repr {
            Repr::Sorted(heap) => assert!(heap.capacity() <= 256, "{}", heap.capacity()),
            Repr::Raw { .. } => panic!("33 pairs must be on the heap"),
        }
    }

    /// The textbook canonical form: split, decode, encode, sort the encoded pairs, join.
    fn naive(raw: &[u8]) -> (String, usize) {
        fn decode(part: &[u8]) -> Vec<u8> {
            let mut out = Vec::new();
            let mut i = 0;
            while i < part.len() {
                let hex = part.get(i + 1..i + 3).and_then(|h| {
                    u8::from_str_radix(std::str::from_utf8(h).ok()?, 16)
                        .ok()
                        .filter(|_| h.iter().all(u8::is_ascii_hexdigit))
                });
                match (part[i], hex) {
                    (b'+', _) => (out.push(b' '), i += 1),
                    (b'%', Some(b)) => (out.push(b), i += 3),
                    (b, _) => (out.push(b), i += 1),
                };
            }
            out
        }
        fn encode(bytes: &[u8]) -> String {
            bytes
                .iter()
                .map(|&b| {
                    if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                        char::from(b).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect()
        }
        let mut pairs: Vec<(String, String)> = raw
            .split(|&b| b == b'&')
            .filter(|s| !s.is_empty())
            .map(|seg| match seg.iter().position(|&b| b == b'=') {
                Some(i) => (encode(&decode(&seg[..i])), encode(&decode(&seg[i + 1..]))),
                None => (encode(&decode(seg)), String::new()),
            })
            .collect();
        pairs.sort();
        let joined: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        (joined.join("&"), pairs.len())
    }

    proptest::proptest! {
        /// On both sides of `INLINE_PAIRS` (up to ~100 pairs here), with bytes chosen to
        /// hit every delimiter, escape and run boundary.
        #[test]
        fn streaming_form_matches_the_textbook_one(
            raw in proptest::collection::vec(
                proptest::sample::select(b"aZ9-._~=&&&%%+2fF \xc3/".to_vec()),
                0..300,
            )
        ) {
            let query = CanonicalQuery::parse_bytes(&raw);
            let (expected, len) = naive(&raw);
            proptest::prop_assert_eq!(query.to_string(), expected);
            proptest::prop_assert_eq!(query.len(), len);
        }
    }

    proptest::proptest! {
        /// Queries made of unreserved bytes, `&` and `=`, on both sides of
        /// `SMALL_PAIRS`: the small array and the larger one.
        #[test]
        fn small_queries_match_the_textbook_one(
            raw in proptest::collection::vec(
                proptest::sample::select(b"aaZ9-._~==&&&&".to_vec()),
                0..(SHORT_LEN + 10),
            )
        ) {
            let query = CanonicalQuery::parse_bytes(&raw);
            proptest::prop_assert_eq!(query.to_string(), naive(&raw).0);
        }
    }

    #[test]
    fn queries_at_the_edges_of_word_and_array_sizes() {
        let unreserved_only =
            |len: usize| -> Vec<u8> { (0..len).map(|i| b"zyx-._~9A"[i % 9]).collect() };
        for len in [
            0,
            1,
            7,
            8,
            9,
            15,
            16,
            17,
            SHORT_LEN - 1,
            SHORT_LEN,
            SHORT_LEN + 1,
            130,
        ] {
            let raw = unreserved_only(len);
            assert_eq!(
                canonical_query(std::str::from_utf8(&raw).unwrap()),
                naive(&raw).0
            );
            let mut with_pairs = raw.clone();
            for i in (0..len).step_by(5) {
                with_pairs[i] = if i % 10 == 0 { b'&' } else { b'=' };
            }
            assert_eq!(
                CanonicalQuery::parse_bytes(&with_pairs).to_string(),
                naive(&with_pairs).0
            );
        }
        assert_eq!(
            canonical_query("k&k&k&k&k&k&k&k&k&k&k&k&k&k&k&k&k"),
            "k=&".repeat(16) + "k="
        );
    }

    #[test]
    fn counts_ampersands_at_every_place_and_length() {
        for len in 0..40 {
            for mask in [
                0u64,
                u64::MAX,
                0x5555_5555_5555,
                0x8000_0001_0000_0001,
                0xff00,
            ] {
                let raw: Vec<u8> = (0..len)
                    .map(|i| {
                        if mask >> (i % 64) & 1 == 1 {
                            b'&'
                        } else {
                            b'%' + (i as u8 % 3)
                        }
                    })
                    .collect();
                let expected = raw.iter().filter(|&&b| b == b'&').count();
                assert_eq!(count_ampersands(&raw), expected, "{raw:?}");
            }
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
