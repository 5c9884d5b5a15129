//! Verification of an arbitrary request: method, request-target, header list, body, clock
//! and verifier settings all come from the fuzzer.
//!
//! Input: `[sep, flags, method, sep, target, sep, body, sep, now, (sep, name:value)*]`.
//! The first byte picks the separator, so any byte can appear in any field. `flags`: bit 0
//! turns the `X-Access-Key` alias off, bit 1 sets a `Content-Type` allow-list, bits 2–3
//! pick the window (300, 0, 5 or `u64::MAX` seconds each way), bit 4 sets tiny query limits.
//!
//! Invariants, beyond "never panics":
//! - `ok` only with the right secret: an accepted request's signature equals a one-shot
//!   HMAC (the `hmac` crate, not the crate's streamed MAC) of its string-to-sign under the
//!   secret of the key that matched, and the same request fails when the client's secret
//!   is replaced by one the fuzzer cannot know;
//! - hiding unknown clients changes exactly one thing: `client_id` becomes
//!   `invalid_signature`; and in that mode an unknown client gets exactly the answer a
//!   known client with another secret gets;
//! - for origin-form requests that `http` can represent, `SignedRequest::from(&http::Request)`
//!   gives the same answer as the core.
#![no_main]

use std::sync::Arc;

use hmac::{Hmac, KeyInit, Mac};
use jg_hmac::{
    ContentHash, Credential, Error, Limits, Secret, SignedRequest, SigningKey, Target,
    Verifier,
};
use libfuzzer_sys::fuzz_target;
use sha2::Sha256;

const SEED_SECRET: &[u8] = b"s3cr3t_test_key_justgold";
const OTHER_SECRET: &[u8] = b"other_secret_9f2c51";
const ROTATING: [&[u8]; 2] = [b"rot_secret_2024_old", b"rot_secret_2025_new"];
/// Appears in no seed and no vector: the fuzzer cannot sign with it.
const UNGUESSABLE: &[u8] = b"\x7f\x06\xbe\xca\x39\xc6\x92\x8a\x3d\x55\x9e\x2c\xc3\x97\xc9\x7a\
\x72\xe7\xe0\x47\x80\xc4\xc0\xd0\x27\x41\x8d\x45\x43\xf2\x86\xbb";

/// The keys of a client id, as `(key id, secret, not_after)`; `None`: unknown client.
fn keys_of(client_id: &str) -> Option<Vec<(&'static str, &'static [u8], Option<u64>)>> {
    match client_id {
        id if id.starts_with("unknown") => None,
        "jk_live_revoked" => Some(vec![]),
        "jk_live_expired" => Some(vec![("old", SEED_SECRET, Some(1_000_000_000))]),
        "jk_live_other" => Some(vec![("0", OTHER_SECRET, None)]),
        "jk_live_rotating" => Some(vec![("old", ROTATING[0], None), ("new", ROTATING[1], None)]),
        _ => Some(vec![("0", SEED_SECRET, None)]),
    }
}

fn credential(client_id: &str, replace_secrets: bool) -> Option<Arc<Credential>> {
    let mut cred = Credential::new(client_id);
    for (id, secret, not_after) in keys_of(client_id)? {
        let secret = if replace_secrets { UNGUESSABLE } else { secret };
        cred = cred.with_key(SigningKey::new(id, &Secret::new(secret)).with_validity(None, not_after));
    }
    Some(Arc::new(cred))
}

fn hmac_oneshot(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap();
    mac.update(message);
    mac.finalize().into_bytes().into()
}

type Outcome = Result<(String, String), Error>;

fn outcome(r: Result<jg_hmac::Verified, Error>) -> Outcome {
    r.map(|v| (v.client_id().to_owned(), v.key_id().to_owned()))
}

fn parse_now(field: &[u8]) -> u64 {
    std::str::from_utf8(field)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_735_550_160)
}

fuzz_target!(|data: &[u8]| {
    let [sep, flags, rest @ ..] = data else {
        return;
    };
    let mut fields = rest.split(|b| b == sep);
    let method = String::from_utf8_lossy(fields.next().unwrap_or_default()).into_owned();
    let target_bytes = fields.next().unwrap_or_default();
    let body = fields.next().unwrap_or_default();
    let now = parse_now(fields.next().unwrap_or_default());
    let header_list: Vec<(&[u8], &[u8])> = fields
        .map(|h| match h.iter().position(|&b| b == b':') {
            Some(colon) => (&h[..colon], &h[colon + 1..]),
            None => (h, &b""[..]),
        })
        .collect();

    let mut verifier = Verifier::new().with_access_key_alias(flags & 1 == 0);
    if flags & 2 != 0 {
        verifier = verifier.with_content_types(["application/json", "text/plain"]);
    }
    verifier = match (flags >> 2) & 3 {
        0 => verifier,
        1 => verifier.with_window(0),
        2 => verifier.with_window(5),
        _ => verifier.with_window(u64::MAX),
    };
    if flags & 16 != 0 {
        let mut limits = Limits::default();
        limits.max_query_len = 16;
        limits.max_query_pairs = 2;
        limits.max_client_id_len = 16;
        verifier = verifier.with_limits(limits);
    }
    let hidden = verifier.clone().with_hidden_unknown_clients(true);

    let request = SignedRequest::new(
        &method,
        Target::parse_bytes(target_bytes),
        header_list.iter().copied(),
    );
    let content = ContentHash::of(body);
    let lookup = |id: &str| credential(id, false);
    let result = outcome(verifier.verify(&lookup, &request, &content, now));

    // Hiding unknown clients changes `client_id` into `invalid_signature`, nothing else.
    let hidden_result = outcome(hidden.verify(&lookup, &request, &content, now));
    let expected_hidden = result.clone().map_err(|e| match e {
        Error::UnknownClient => Error::InvalidSignature,
        e => e,
    });
    assert_eq!(hidden_result, expected_hidden, "hidden mode differs");
    // Hidden mode answers an unknown client exactly like a known one with another secret.
    let unknown = |_: &str| None;
    let unguessable = |id: &str| credential(id, true);
    assert_eq!(
        outcome(hidden.verify(&unknown, &request, &content, now)),
        outcome(hidden.verify(&unguessable, &request, &content, now)),
        "hidden mode tells an unknown client from a known one"
    );

    if let Ok((client_id, key_id)) = &result {
        // The right secret, and nothing but it.
        let prepared = verifier.prepare(&request, now).unwrap();
        assert_eq!(prepared.client_id(), client_id);
        let timestamp_raw = header_list
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(b"x-timestamp"))
            .map(|(_, v)| std::str::from_utf8(v).unwrap())
            .unwrap();
        let sts = prepared
            .canonical_request()
            .string_to_sign_bytes(timestamp_raw, &content);
        let lines: Vec<&[u8]> = sts.split(|&b| b == b'\n').collect();
        assert!(lines.len() >= 6);
        assert_eq!(lines[0], b"JG-HMAC-SHA256");
        assert_eq!(lines[1], timestamp_raw.as_bytes());
        assert_eq!(lines[2], method.to_ascii_uppercase().as_bytes());
        assert_eq!(*lines.last().unwrap(), content.to_string().as_bytes());
        let secret = keys_of(client_id)
            .unwrap()
            .into_iter()
            .find(|(id, _, _)| id == key_id)
            .unwrap()
            .1;
        assert_eq!(
            &hmac_oneshot(secret, &sts),
            prepared.signature().as_bytes(),
            "accepted a signature that is not the HMAC of the string-to-sign"
        );
        for v in [&verifier, &hidden] {
            assert_eq!(
                v.verify(&unguessable, &request, &content, now).err(),
                Some(Error::InvalidSignature),
                "accepted without the right secret"
            );
        }
    }

    // The `http` adapter agrees with the core on what `http` can represent.
    if target_bytes.first() == Some(&b'/') {
        let mut builder = http::Request::builder()
            .method(method.as_bytes())
            .uri(target_bytes);
        for (name, value) in &header_list {
            builder = builder.header(*name, *value);
        }
        if let Ok(http_request) = builder.body(body.to_vec()) {
            let via_http = outcome(verifier.verify(
                &lookup,
                &SignedRequest::from(&http_request),
                &ContentHash::of(http_request.body()),
                now,
            ));
            assert_eq!(via_http, result, "http adapter differs from the core");
        }
    }
});
