//! The query mistakes: an empty query line, the pairs unsorted or sorted another way,
//! decoded keys and values. The pairs are cut, decoded and encoded by the crate's own
//! canonicalization ([`crate::query`]).

use core::cmp::Ordering;

use crate::query::{CanonicalQuery, SentPair, pairs_as_sent};
use crate::verifier::Limits;

use super::Diagnosis;
use super::search::{Lines, Search};

/// An empty query line though the request has a query.
pub(super) fn missing(s: &Search<'_>) -> Option<Diagnosis> {
    let query = Lines {
        query: b"",
        ..s.lines
    };
    (!s.lines.query.is_empty() && s.signed(&query)).then_some(Diagnosis::QueryMissing)
}

/// The pairs in another order or decoded; tried only for a query within the default
/// limits of SPEC.md §10, as a verifier would accept it.
pub(super) fn order(s: &Search<'_>) -> Option<Diagnosis> {
    let raw = s.target.query();
    let limits = Limits::default();
    if CanonicalQuery::parse_limited(raw, limits.max_query_len, limits.max_query_pairs).is_err() {
        return None;
    }
    let pairs: Vec<SentPair> = pairs_as_sent(raw).collect();
    if pairs.is_empty() {
        return None;
    }
    let right = s.lines.query;
    let attempt = |query: &[u8]| s.signed_variant(&Lines { query, ..s.lines }, query, right);
    fn encoded<'p>(p: &&'p SentPair) -> (&'p [u8], &'p [u8]) {
        (&p.encoded_key, &p.encoded_value)
    }
    fn decoded<'p>(p: &&'p SentPair) -> (&'p [u8], &'p [u8]) {
        (&p.key, &p.value)
    }

    // In the order sent: canonically encoded, or the raw query verbatim.
    let mut order: Vec<&SentPair> = pairs.iter().collect();
    if attempt(&join(order.iter().map(encoded))) || attempt(raw) {
        return Some(Diagnosis::QueryUnsorted);
    }

    // Case-insensitive ordinal order of the encoded pairs, then a locale-like collation
    // of the decoded ones (what `localeCompare` does, approximated: see `collation_key`).
    order.sort_by(|a, b| {
        cmp_ignore_case(&a.encoded_key, &b.encoded_key)
            .then_with(|| cmp_ignore_case(&a.encoded_value, &b.encoded_value))
    });
    if attempt(&join(order.iter().map(encoded))) {
        return Some(Diagnosis::QueryLocaleOrder);
    }
    order.sort_by_cached_key(|p| (collation_key(&p.key), collation_key(&p.value)));
    if attempt(&join(order.iter().map(encoded))) {
        return Some(Diagnosis::QueryLocaleOrder);
    }

    // Decoded keys and values: in the canonical order, or sorted as decoded bytes.
    order.sort_by(|a, b| encoded(a).cmp(&encoded(b)));
    if attempt(&join(order.iter().map(decoded))) {
        return Some(Diagnosis::QueryNotEncoded);
    }
    order.sort_by(|a, b| decoded(a).cmp(&decoded(b)));
    if attempt(&join(order.iter().map(decoded))) {
        return Some(Diagnosis::QueryNotEncoded);
    }
    None
}

/// `key=value` pairs joined with `&`.
fn join<'p>(pairs: impl Iterator<Item = (&'p [u8], &'p [u8])>) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, (key, value)) in pairs.enumerate() {
        if i > 0 {
            out.push(b'&');
        }
        out.extend_from_slice(key);
        out.push(b'=');
        out.extend_from_slice(value);
    }
    out
}

fn cmp_ignore_case(a: &[u8], b: &[u8]) -> Ordering {
    a.iter()
        .map(u8::to_ascii_lowercase)
        .cmp(b.iter().map(u8::to_ascii_lowercase))
}

/// An approximation of the Unicode root collation that `localeCompare` applies: spaces
/// and punctuation before digits before letters, letters compared without case first
/// (lowercase before uppercase only when that is the only difference), then by bytes.
fn collation_key(bytes: &[u8]) -> (Vec<(u8, u32)>, Vec<bool>, Vec<u8>) {
    let text = String::from_utf8_lossy(bytes);
    let mut primary = Vec::new();
    let mut case = Vec::new();
    for c in text.chars() {
        let class = if c.is_whitespace() {
            0
        } else if c.is_ascii_punctuation() {
            1
        } else if c.is_ascii_digit() {
            2
        } else if c.is_alphabetic() {
            3
        } else {
            4
        };
        let base = c.to_lowercase().next().unwrap_or(c);
        primary.push((class, u32::from(base)));
        case.push(c.is_uppercase());
    }
    (primary, case, bytes.to_vec())
}
