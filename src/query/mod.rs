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

mod pairs;
#[cfg(test)]
mod tests;

use core::fmt;

use crate::error::{Error, LimitKind};
use crate::sink::Sink;

use pairs::*;
pub(crate) use pairs::{SentPair, pairs_as_sent};

/// Queries of up to this many pairs are sorted in a smaller array on the stack.
pub(crate) const SMALL_PAIRS: usize = 16;

/// Number of query pairs of a request canonicalized without touching the heap (parsing,
/// sorting and streaming all happen on the stack up to this many). `tests/alloc.rs`
/// checks the figure.
pub(crate) const INLINE_PAIRS: usize = 32;

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
