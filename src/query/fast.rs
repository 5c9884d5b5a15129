//! The hand-tuned fast path of the canonical query, and the only one: a short query whose
//! pairs are already in canonical form (nearly every API query) is canonicalized by a sort
//! of packed words and a copy, its `&`s and `=`s found eight bytes at a time.
//!
//! It is kept because `benches/hot_path.rs` shows it earns its place in `verify/get`
//! (figures in docs/performance.md). The general path of the parent module is its oracle:
//! `tests::matches_the_general_path` compares the two on random queries.

use core::cmp::Ordering;

use crate::sink::Flat;
use crate::swar;

use super::UNRESERVED;

/// Longest raw query that [`write_short`] takes: one bit per byte fits a `u64`.
pub(super) const SHORT_LEN: usize = 64;
/// Most pairs that [`write_short`] (and the smaller stack array of the general path)
/// holds.
pub(super) const SHORT_PAIRS: usize = 16;
/// Longest canonical form of a query that [`write_short`] takes: its bytes, and a `=`
/// added to each pair that has none.
pub(super) const SHORT_OUT: usize = SHORT_LEN + SHORT_PAIRS;

/// Bytes that keep a short query on the fast path: unreserved, `&` and `=`.
// Evaluated at compile time: an index out of range would fail the build, not panic.
#[allow(clippy::indexing_slicing)]
static PLAIN: [bool; 256] = {
    let mut table = UNRESERVED;
    table[b'&' as usize] = true;
    table[b'=' as usize] = true;
    table
};

/// One pair of a short query, as offsets into it, packed in a word: the key is
/// `start..eq`, the value `eq + 1..end` (`eq == end` when the pair has no `=`). Moved
/// whole when sorting: bytes stored one at a time and loaded as a word would stall.
#[derive(Clone, Copy, Default)]
struct Span(u32);

impl Span {
    /// Offsets below 256 (a short query is at most `SHORT_LEN` bytes).
    #[inline(always)]
    fn new(start: usize, eq: usize, end: usize) -> Self {
        Self((start as u32 & 0xff) | (eq as u32 & 0xff) << 8 | (end as u32 & 0xff) << 16)
    }

    #[inline(always)]
    fn start(self) -> usize {
        (self.0 & 0xff) as usize
    }

    #[inline(always)]
    fn eq(self) -> usize {
        (self.0 >> 8 & 0xff) as usize
    }

    #[inline(always)]
    fn end(self) -> usize {
        (self.0 >> 16 & 0xff) as usize
    }

    /// Whether `self` sorts after `other`: by key, then by value, as bytes. The first
    /// eight bytes of each part, loaded as one big-endian word and zero-padded (no byte
    /// of a short query is zero), settle nearly every comparison.
    #[inline(always)]
    fn after(self, other: Self, raw: &[u8]) -> bool {
        #[inline(always)]
        fn cmp_part(raw: &[u8], a: (usize, usize), b: (usize, usize)) -> Ordering {
            let prefix = |(from, to): (usize, usize)| {
                let kept = u64::MAX.checked_shr(8 * (to - from).min(8) as u32);
                swar::word_be(raw, from) & !kept.unwrap_or(0)
            };
            match prefix(a).cmp(&prefix(b)) {
                // Equal prefixes that hold both parts whole: equal parts.
                Ordering::Equal if a.1 - a.0 > 8 || b.1 - b.0 > 8 => {
                    raw.get(a.0..a.1).cmp(&raw.get(b.0..b.1))
                }
                order => order,
            }
        }
        let key = |s: Self| (s.start(), s.eq());
        let value = |s: Self| ((s.eq() + 1).min(s.end()), s.end());
        cmp_part(raw, key(self), key(other)).then_with(|| cmp_part(raw, value(self), value(other)))
            == Ordering::Greater
    }
}

/// The fast path for a short query whose pairs are each already in canonical form: at
/// most [`SHORT_LEN`] bytes and [`SHORT_PAIRS`] pairs, every byte unreserved, a `&`, or
/// the first `=` of its pair. Decoding and re-encoding such a pair gives back its own
/// bytes (followed by `=` when it has none), so its canonical form is a sort and a copy.
/// Nearly every API query is of this kind.
///
/// Writes the canonical form into `out` and returns its length; `None` for any other
/// query, or when `out` is too small (a caller's buffer of [`SHORT_OUT`] bytes never is).
///
/// One table lookup per byte, without a branch, says whether the query qualifies; the
/// `&`s and `=`s are then found eight bytes at a time ([`swar`]) as bit masks, so that
/// cutting the pairs costs a few instructions per pair rather than a branch per byte.
#[inline(always)]
pub(super) fn write_short(raw: &[u8], out: &mut [u8]) -> Option<usize> {
    if raw.len() > SHORT_LEN
        || !raw.iter().fold(true, |plain, &b| {
            plain & PLAIN.get(usize::from(b)).copied().unwrap_or(false)
        })
    {
        return None;
    }
    let (mut amps, mut eqs) = (0u64, 0u64);
    let mut at = 0;
    while at < raw.len() {
        // Zero padding past the end: neither `&` nor `=`.
        let x = swar::word_le(raw, at);
        amps |= u64::from(swar::movemask(swar::bytes_eq(x, b'&'))) << at;
        eqs |= u64::from(swar::movemask(swar::bytes_eq(x, b'='))) << at;
        at += 8;
    }
    let below = |n: usize| u64::MAX.checked_shr(64 - n as u32).unwrap_or(0);
    // Each pair as one word to sort by: its key's first eight bytes (big-endian,
    // zero-padded) above, its `Span` below. Comparing the upper halves settles nearly
    // every comparison; equal ones go to `Span::after`.
    let mut pairs = [0u128; SHORT_PAIRS];
    let mut len = 0;
    let mut start = 0;
    loop {
        // The pair ends at the next `&`, or at the end of the query.
        let end = match amps & !below(start) {
            0 => raw.len(),
            rest => rest.trailing_zeros() as usize,
        };
        if end > start {
            let pair_eqs = eqs & below(end) & !below(start);
            // A second `=` belongs to the value, where it is encoded.
            if pair_eqs & pair_eqs.wrapping_sub(1) != 0 {
                return None;
            }
            let eq = match pair_eqs {
                0 => end,
                eqs => eqs.trailing_zeros() as usize,
            };
            let kept = u64::MAX.checked_shr(8 * (eq - start).min(8) as u32);
            let prefix = swar::word_be(raw, start) & !kept.unwrap_or(0);
            *pairs.get_mut(len)? =
                u128::from(prefix) << 64 | u128::from(Span::new(start, eq, end).0);
            len += 1;
        }
        if end >= raw.len() {
            break;
        }
        start = end + 1;
    }
    let pairs = pairs.get_mut(..len).unwrap_or_default();
    let span = |pair: u128| Span(pair as u32);
    // Insertion sort: a handful of pairs, often in order already.
    for i in 1..pairs.len() {
        let mut j = i;
        while j > 0 {
            let (Some(&a), Some(&b)) = (pairs.get(j - 1), pairs.get(j)) else {
                break;
            };
            let after = match (a >> 64).cmp(&(b >> 64)) {
                Ordering::Greater => true,
                Ordering::Less => false,
                Ordering::Equal => span(a).after(span(b), raw),
            };
            if !after {
                break;
            }
            pairs.swap(j - 1, j);
            j -= 1;
        }
    }
    let mut out = Flat::new(out);
    for (i, span) in pairs.iter().map(|&pair| span(pair)).enumerate() {
        if i > 0 {
            out.put(b"&")?;
        }
        out.put(raw.get(span.start()..span.end())?)?;
        if span.eq() == span.end() {
            out.put(b"=")?;
        }
    }
    Some(out.written().len())
}
