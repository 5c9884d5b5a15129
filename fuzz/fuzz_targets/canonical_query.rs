//! The canonical query (SPEC.md §3) on arbitrary bytes.
//!
//! Invariants, beyond "never panics":
//! - the result equals an independent, deliberately naive implementation written here;
//! - it contains only unreserved bytes, `%XX` (uppercase hex), `=` and `&`, and is a list
//!   of `key=value` pairs;
//! - canonicalizing it again returns it unchanged;
//! - building it from the decoded pairs (`from_pairs`, the client's path) gives the same;
//! - `parse_limited` accepts the input at exactly its length and pair count, and refuses
//!   it one byte or one pair below, with the right error.
#![no_main]

use jg_hmac::{CanonicalQuery, Error, LimitKind};
use libfuzzer_sys::fuzz_target;

fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~".contains(&b)
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// `+` is a space, `%XX` a byte, anything else (a lone `%` included) itself.
fn decode(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' if i + 2 < s.len() && hex(s[i + 1]).is_some() && hex(s[i + 2]).is_some() => {
                out.push(hex(s[i + 1]).unwrap() * 16 + hex(s[i + 2]).unwrap());
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

fn encode(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for &b in s {
        if unreserved(b) {
            out.push(b);
        } else {
            out.extend(format!("%{b:02X}").bytes());
        }
    }
    out
}

fn segments(raw: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    raw.split(|&b| b == b'&')
        .filter(|s| !s.is_empty())
        .map(|s| match s.iter().position(|&b| b == b'=') {
            Some(eq) => (decode(&s[..eq]), decode(&s[eq + 1..])),
            None => (decode(s), Vec::new()),
        })
        .collect()
}

fn reference(raw: &[u8]) -> Vec<u8> {
    let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = segments(raw)
        .into_iter()
        .map(|(k, v)| (encode(&k), encode(&v)))
        .collect();
    pairs.sort();
    let joined: Vec<Vec<u8>> = pairs
        .into_iter()
        .map(|(mut k, v)| {
            k.push(b'=');
            k.extend(v);
            k
        })
        .collect();
    joined.join(&b'&')
}

fn assert_charset(out: &[u8]) {
    let mut i = 0;
    while i < out.len() {
        let b = out[i];
        if b == b'%' {
            let ok = out.get(i + 1..i + 3).is_some_and(|h| {
                h.iter()
                    .all(|c| c.is_ascii_digit() || (b'A'..=b'F').contains(c))
            });
            assert!(
                ok,
                "bad escape at {i} in {:?}",
                String::from_utf8_lossy(out)
            );
            i += 3;
        } else {
            assert!(
                unreserved(b) || b == b'=' || b == b'&',
                "byte {b:#04x} in {:?}",
                String::from_utf8_lossy(out)
            );
            i += 1;
        }
    }
    if !out.is_empty() {
        for pair in out.split(|&b| b == b'&') {
            assert_eq!(
                pair.iter().filter(|&&b| b == b'=').count(),
                1,
                "pair {pair:?}"
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let query = CanonicalQuery::parse_bytes(data);
    let out = query.to_string();

    assert_eq!(
        out.as_bytes(),
        reference(data),
        "differs from the reference"
    );
    assert_charset(out.as_bytes());
    assert_eq!(CanonicalQuery::parse(&out).to_string(), out, "not idempotent");

    let decoded = segments(data);
    assert_eq!(query.len(), decoded.len());
    let from_pairs =
        CanonicalQuery::from_pairs(decoded.iter().map(|(k, v)| (k.as_slice(), v.as_slice())));
    assert_eq!(
        from_pairs.to_string(),
        out,
        "from_pairs disagrees with parse"
    );

    let (len, pairs) = (data.len(), decoded.len());
    assert_eq!(
        CanonicalQuery::parse_limited(data, len, pairs).map(|q| q.to_string()),
        Ok(out)
    );
    if len > 0 {
        assert_eq!(
            CanonicalQuery::parse_limited(data, len - 1, pairs).err(),
            Some(Error::TooLarge(LimitKind::QueryLength))
        );
    }
    if pairs > 0 {
        assert_eq!(
            CanonicalQuery::parse_limited(data, len, pairs - 1).err(),
            Some(Error::TooLarge(LimitKind::QueryPairs))
        );
    }
});
