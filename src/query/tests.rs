//! Canonical query tests: the spec's examples, the edges of every size limit, and the
//! inline path against the general one.

use percent_encoding::percent_encode;

use super::pairs::*;
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
