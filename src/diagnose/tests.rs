//! The search's edges; the mistakes themselves are the vectors of
//! `test-vectors/diagnose.json` (`tests/diagnose.rs`).

use super::*;
use crate::target::Target;

const SECRET: &str = "s3cr3t_test_key_justgold";

/// `GET` of `target` at `timestamp` carrying `signature`.
fn diagnosed(key: Key<'_>, target: &str, timestamp: &str, signature: &str) -> Diagnosis {
    let headers = [("X-Timestamp", timestamp), ("X-Signature", signature)];
    let request = SignedRequest::new(
        "GET",
        Target::parse(target),
        headers.map(|(name, value)| (name, value.as_bytes())),
    );
    diagnose(key, &request, b"")
}

fn signed(secret: &str, target: &str, timestamp: u64) -> String {
    CanonicalRequest::new("GET", Target::parse(target))
        .sign(
            &Secret::from(secret),
            &timestamp.to_string(),
            &ContentHash::EMPTY,
        )
        .to_hex()
}

#[test]
fn the_timestamp_search_stops_at_the_window() {
    let secret = Secret::from(SECRET);
    let at = |sent: &str, signed_at: u64| {
        diagnosed(
            Key::from(&secret),
            "/",
            sent,
            &signed(SECRET, "/", signed_at),
        )
    };
    let differs = |signed, offset| Diagnosis::TimestampDiffers { signed, offset };
    assert_eq!(at("1000", 1300), differs(1300, 300));
    assert_eq!(at("1000", 700), differs(700, -300));
    assert_eq!(at("1000", 1301), Diagnosis::Unknown);
    assert_eq!(at("1000", 699), Diagnosis::Unknown);
    // Near zero, no underflow; near the largest timestamp, no overflow.
    assert_eq!(at("3", 0), differs(0, -3));
    assert_eq!(
        at("999999999999999999", 999999999999999998),
        differs(999999999999999998, -1)
    );
    // Leading zeros dropped by the signer.
    assert_eq!(at("0042", 42), differs(42, 0));
}

#[test]
fn without_a_single_well_formed_timestamp_and_signature_it_cannot_tell() {
    let key = SigningKey::new("k", &Secret::from(SECRET));
    let right = signed(SECRET, "/", 1);
    assert_eq!(
        diagnosed(Key::from(&key), "/", "1", &right),
        Diagnosis::None
    );
    for (timestamp, signature) in [
        ("", right.as_str()),
        (" 1", &right),
        ("1234567890123456789", &right),
        ("1", &right[1..]),
        ("1", ""),
    ] {
        assert_eq!(
            diagnosed(Key::from(&key), "/", timestamp, signature),
            Diagnosis::Unknown,
            "{timestamp:?} {signature:?}"
        );
    }
    let repeated = SignedRequest::new(
        "GET",
        Target::parse("/"),
        [
            ("X-Timestamp", &b"1"[..]),
            ("X-Signature", right.as_bytes()),
            ("x-signature", right.as_bytes()),
        ],
    );
    assert_eq!(diagnose(&key, &repeated, b""), Diagnosis::Unknown);
    let absent = SignedRequest::new("GET", Target::parse("/"), [("X-Timestamp", &b"1"[..])]);
    assert_eq!(diagnose(&key, &absent, b""), Diagnosis::Unknown);
}

#[test]
fn only_the_secret_itself_finds_secret_whitespace() {
    let secret = Secret::from(SECRET);
    let key = SigningKey::new("k", &secret);
    let sent = signed(&format!("{SECRET}\n"), "/", 1);
    assert_eq!(
        diagnosed(Key::from(&secret), "/", "1", &sent),
        Diagnosis::SecretWhitespace
    );
    assert_eq!(
        diagnosed(Key::from(&key), "/", "1", &sent),
        Diagnosis::Unknown
    );
}

#[test]
fn oversized_queries_are_not_searched() {
    let query = "b=1&a=1&".repeat(129);
    let target = format!("/?{query}");
    let hash = ContentHash::EMPTY;
    let unsorted = format!(
        "JG-HMAC-SHA256\n1\nGET\n/\n{}\n{hash}",
        query.trim_end_matches('&')
    );
    let sent = search::mac(&KeyedMac::new(&Secret::from(SECRET)), unsorted.as_bytes());
    let secret = Secret::from(SECRET);
    assert_eq!(
        diagnosed(Key::from(&secret), &target, "1", &sent.to_hex()),
        Diagnosis::Unknown
    );
    // One pair fewer is within the limit: searched.
    let query = format!("{}a=1", "b=1&a=1&".repeat(127));
    let target = format!("/?b=1&{query}");
    let unsorted = format!("JG-HMAC-SHA256\n1\nGET\n/\nb=1&{query}\n{hash}");
    let sent = search::mac(&KeyedMac::new(&secret), unsorted.as_bytes());
    assert_eq!(
        diagnosed(Key::from(&secret), &target, "1", &sent.to_hex()),
        Diagnosis::QueryUnsorted
    );
}
