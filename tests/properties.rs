//! Property tests of canonicalization, signing and verification.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::HashMap;
use std::sync::Arc;

use jg_hmac::{
    CanonicalQuery, ContentHash, Credential, Secret, SignedRequest, Signer, SigningKey, Target,
    Verifier,
};
use proptest::prelude::*;

const NOW: u64 = 1_735_550_160;

type Pair = (Vec<u8>, Vec<u8>);

fn pairs() -> impl Strategy<Value = Vec<Pair>> {
    let bytes = prop::collection::vec(any::<u8>(), 0..8);
    prop::collection::vec((bytes.clone(), bytes), 0..12)
}

/// One way, among many, to put a logical byte on the wire: literal where that is
/// unambiguous, `%XX` in either hex case, `+` for a space.
fn wire_byte(b: u8, choice: u8, out: &mut String) {
    let literal_ok = b.is_ascii_alphanumeric() || b"-._~!$'()*,;:@/?".contains(&b);
    match choice % 4 {
        0 if literal_ok => out.push(char::from(b)),
        1 if b == b' ' => out.push('+'),
        2 => out.push_str(&format!("%{b:02x}")),
        _ => out.push_str(&format!("%{b:02X}")),
    }
}

fn serialize(pairs: &[Pair], choices: &[u8]) -> String {
    let mut choice = choices.iter().copied().cycle();
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
            // Empty segments are dropped: a valid serialization may add some.
            if choice.next().unwrap_or(0) % 5 == 0 {
                out.push('&');
            }
        }
        for &b in k {
            wire_byte(b, choice.next().unwrap_or(0), &mut out);
        }
        out.push('=');
        for &b in v {
            wire_byte(b, choice.next().unwrap_or(0), &mut out);
        }
    }
    out
}

fn canonical_of_pairs(pairs: &[Pair]) -> String {
    CanonicalQuery::from_pairs(pairs.iter().map(|(k, v)| (k, v))).to_string()
}

fn store(client_id: &str, secret: &Secret) -> HashMap<String, Arc<Credential>> {
    HashMap::from([(
        client_id.to_owned(),
        Arc::new(Credential::new(client_id).with_key(SigningKey::new("0", secret))),
    )])
}

/// What a signed request looks like on the wire.
#[derive(Clone, Debug)]
struct Wire {
    method: String,
    target: Vec<u8>,
    body: Vec<u8>,
    client_id: Vec<u8>,
    timestamp: Vec<u8>,
    signature: Vec<u8>,
}

fn verify(verifier: &Verifier, store: &HashMap<String, Arc<Credential>>, w: &Wire) -> String {
    let headers = [
        (&b"X-Client-Id"[..], &w.client_id[..]),
        (b"X-Timestamp", &w.timestamp[..]),
        (b"X-Signature", &w.signature[..]),
    ];
    match verifier.verify(
        store,
        &SignedRequest::new(&w.method, Target::parse_bytes(&w.target), headers),
        &ContentHash::of(&w.body),
        NOW,
    ) {
        Ok(_) => "ok".into(),
        Err(e) => e.code().into(),
    }
}

fn method() -> impl Strategy<Value = String> {
    "[A-Za-z]{1,8}"
}

fn path() -> impl Strategy<Value = String> {
    "/[A-Za-z0-9%._~/-]{0,16}"
}

fn client_id() -> impl Strategy<Value = String> {
    "jk_(live|test)_[A-Za-z0-9]{1,12}"
}

fn signed_wire(
    method: &str,
    path: &str,
    query: &[Pair],
    body: &[u8],
    client_id: &str,
    secret: &Secret,
    ts: u64,
) -> Wire {
    let query = canonical_of_pairs(query);
    let target = if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{query}")
    };
    let signer = Signer::new(client_id, secret).unwrap();
    let signed = signer.sign(method, &target, body, ts);
    Wire {
        method: method.to_owned(),
        target: target.into_bytes(),
        body: body.to_vec(),
        client_id: client_id.as_bytes().to_vec(),
        timestamp: signed.timestamp().as_bytes().to_vec(),
        signature: signed.signature().to_hex().into_bytes(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_serialization_of_the_same_pairs_canonicalizes_alike(
        pairs in pairs(),
        choices in prop::collection::vec(any::<u8>(), 1..64),
    ) {
        let raw = serialize(&pairs, &choices);
        prop_assert_eq!(CanonicalQuery::parse(&raw).to_string(), canonical_of_pairs(&pairs), "raw {}", raw);
    }

    #[test]
    fn canonicalization_ignores_pair_order(pairs in pairs(), seed in any::<u64>()) {
        let mut shuffled = pairs.clone();
        // A deterministic shuffle driven by the seed.
        let mut s = seed | 1;
        for i in (1..shuffled.len()).rev() {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            shuffled.swap(i, (s % (i as u64 + 1)) as usize);
        }
        prop_assert_eq!(canonical_of_pairs(&shuffled), canonical_of_pairs(&pairs));
    }

    #[test]
    fn canonicalization_is_idempotent(raw in prop::collection::vec(any::<u8>(), 0..64)) {
        let once = CanonicalQuery::parse_bytes(&raw).to_string();
        prop_assert_eq!(CanonicalQuery::parse(&once).to_string(), once.clone());
        prop_assert!(once.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~%=&".contains(&b)));
    }

    #[test]
    fn sign_then_verify_round_trips(
        method in method(),
        path in path(),
        query in pairs(),
        body in prop::collection::vec(any::<u8>(), 0..256),
        client_id in client_id(),
        secret in prop::collection::vec(any::<u8>(), 1..80),
        skew in -300i64..=300,
    ) {
        let secret = Secret::from(secret);
        let ts = NOW.checked_add_signed(skew).unwrap();
        let wire = signed_wire(&method, &path, &query, &body, &client_id, &secret, ts);
        prop_assert_eq!(verify(&Verifier::new(), &store(&client_id, &secret), &wire), "ok");
    }

    #[test]
    fn changing_one_byte_of_a_signed_part_fails_unless_it_canonicalizes_away(
        method in method(),
        path in path(),
        query in pairs(),
        body in prop::collection::vec(any::<u8>(), 0..64),
        client_id in client_id(),
        part in 0usize..6,
        position in any::<prop::sample::Index>(),
        replacement in any::<u8>(),
    ) {
        let secret = Secret::from("s3cr3t_test_key_justgold");
        let store = store(&client_id, &secret);
        let original = signed_wire(&method, &path, &query, &body, &client_id, &secret, NOW);
        let mut tampered = original.clone();
        let mut no_field = Vec::new();
        let field: &mut Vec<u8> = match part {
            0 => &mut tampered.target,
            1 => &mut tampered.body,
            2 => &mut tampered.client_id,
            3 => &mut tampered.timestamp,
            4 => &mut tampered.signature,
            _ => {
                let mut m = tampered.method.clone().into_bytes();
                let i = position.index(m.len());
                m[i] = if replacement.is_ascii_alphabetic() { replacement } else { b'Q' };
                tampered.method = String::from_utf8(m).unwrap();
                &mut no_field
            }
        };
        if part != 5 {
            if field.is_empty() {
                field.push(replacement);
            } else {
                let i = position.index(field.len());
                if field[i] == replacement {
                    field[i] = replacement.wrapping_add(1);
                } else {
                    field[i] = replacement;
                }
            }
        }
        let outcome = verify(&Verifier::new(), &store, &tampered);
        // The only changes allowed to verify are those that do not change what is signed:
        // a method byte's case, or a target that canonicalizes to the same path and query.
        let same_method = tampered.method.eq_ignore_ascii_case(&original.method);
        let (t0, t1) = (Target::parse_bytes(&original.target), Target::parse_bytes(&tampered.target));
        let same_target = t0.path() == t1.path()
            && CanonicalQuery::parse_bytes(t0.query()).to_string()
                == CanonicalQuery::parse_bytes(t1.query()).to_string();
        let same_signature = tampered.signature.eq_ignore_ascii_case(&original.signature);
        let unchanged = same_method && same_target && same_signature
            && tampered.body == original.body
            && tampered.client_id == original.client_id
            && tampered.timestamp == original.timestamp;
        prop_assert_eq!(outcome == "ok", unchanged, "part {} gave {}: {:?}", part, outcome, tampered);
    }

    #[test]
    fn verifier_never_panics_on_arbitrary_input(
        method in "[!-~]{0,12}",
        target in prop::collection::vec(any::<u8>(), 0..128),
        headers in prop::collection::vec(
            (prop::sample::select(vec![
                "X-Client-Id", "x-access-key", "X-TIMESTAMP", "x-signature", "content-type", "other",
            ]), prop::collection::vec(any::<u8>(), 0..80)),
            0..10,
        ),
        body in prop::collection::vec(any::<u8>(), 0..64),
        now in any::<u64>(),
        hide in any::<bool>(),
    ) {
        let secret = Secret::from("s3cr3t_test_key_justgold");
        let store = store("jk_live_example", &secret);
        let verifier = Verifier::new()
            .with_content_types(["application/json"])
            .with_hidden_unknown_clients(hide)
            .with_window(u64::MAX);
        let auth = headers.iter().map(|(n, v)| (n.as_bytes(), &v[..]));
        let result = verifier.verify(&store, &SignedRequest::new(&method, Target::parse_bytes(&target), auth), &ContentHash::of(&body), now);
        // Without the secret, random input never verifies.
        prop_assert!(result.is_err());
    }

    #[test]
    fn raw_target_and_http_uri_agree(path in path(), query in "[A-Za-z0-9%+=&._~-]{0,24}") {
        let target = if query.is_empty() { path.clone() } else { format!("{path}?{query}") };
        if let Ok(uri) = target.parse::<http::Uri>() {
            prop_assert_eq!(Target::from_uri(&uri), Target::parse(&target));
        }
    }
}
