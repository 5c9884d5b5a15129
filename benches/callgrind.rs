//! A probe for `scripts/callgrind.sh`: runs one operation of the hot-path bench many times
//! so that callgrind can count its instructions, a figure that does not depend on the
//! machine's load.
//!
//! ```text
//! callgrind_probe <verify-get|floor-get> <iterations>
//! ```
//!
//! The measured loops are the functions `probe_verify_get` and `probe_floor_get`;
//! the script collects inside them only (`--toggle-collect`), so setup is not counted.
//! Run by `cargo bench` with no such arguments, it does nothing.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;

use hmac::{Hmac, KeyInit, Mac};
use jg_hmac::{AuthHeaders, CanonicalRequest, ContentHash, Credential, Secret, Target, Verifier};
use sha2::{Digest, Sha256};

const SECRET: &str = "s3cr3t_test_key_justgold";
const CLIENT_ID: &str = "jk_live_example";
const TARGET: &str = "/v1/ping?z=two&z=three&version=1&a=hello";
const TIMESTAMP: u64 = 1_735_550_160;
const SIGNATURE: &str = "fa86029249a12a9531e269ef8986cba153a9839d741f6f38e457c6eb96bede76";

/// `verify/get` of the hot-path bench, `iterations` times.
#[inline(never)]
fn probe_verify_get(iterations: u64) -> usize {
    let mut store = HashMap::new();
    store.insert(
        CLIENT_ID.to_owned(),
        Arc::new(Credential::new(CLIENT_ID).with_secret(&Secret::from(SECRET))),
    );
    let verifier = Verifier::new();
    let timestamp = TIMESTAMP.to_string();
    let pairs: [(&[u8], &[u8]); 3] = [
        (b"X-Client-Id", CLIENT_ID.as_bytes()),
        (b"X-Timestamp", timestamp.as_bytes()),
        (b"X-Signature", SIGNATURE.as_bytes()),
    ];
    let body: &[u8] = b"";
    run_verify(iterations, &verifier, &store, pairs, body)
}

#[inline(never)]
fn run_verify(
    iterations: u64,
    verifier: &Verifier,
    store: &HashMap<String, Arc<Credential>>,
    pairs: [(&[u8], &[u8]); 3],
    body: &[u8],
) -> usize {
    let mut ok = 0;
    for _ in 0..iterations {
        let headers = AuthHeaders::from_pairs(black_box(pairs));
        let verified = verifier.verify(
            store,
            "GET",
            Target::parse(black_box(TARGET)),
            &headers,
            &ContentHash::of(black_box(body)),
            TIMESTAMP,
        );
        ok += usize::from(black_box(verified).is_ok());
    }
    ok
}

/// `floor/get` of the hot-path bench, `iterations` times.
#[inline(never)]
fn probe_floor_get(iterations: u64) -> usize {
    let mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("any key length");
    let string_to_sign = CanonicalRequest::new("GET", Target::parse(TARGET))
        .string_to_sign_bytes(&TIMESTAMP.to_string(), &ContentHash::EMPTY);
    run_floor(iterations, &mac, &string_to_sign, b"")
}

#[inline(never)]
fn run_floor(iterations: u64, mac: &Hmac<Sha256>, string_to_sign: &[u8], body: &[u8]) -> usize {
    let mut acc = 0usize;
    for _ in 0..iterations {
        let content: [u8; 32] = Sha256::digest(black_box(body)).into();
        let tag: [u8; 32] = mac
            .clone()
            .chain_update(black_box(string_to_sign))
            .finalize()
            .into_bytes()
            .into();
        let (content, tag) = black_box((content, tag));
        acc += usize::from(content[0] ^ tag[0]);
    }
    acc
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(which), Some(iterations)) = (args.next(), args.next()) else {
        println!("callgrind probe: run through scripts/callgrind.sh");
        return;
    };
    let Ok(iterations) = iterations.parse::<u64>() else {
        println!("callgrind probe: run through scripts/callgrind.sh");
        return;
    };
    let result = match which.as_str() {
        "verify-get" => {
            let ok = probe_verify_get(iterations);
            assert_eq!(ok as u64, iterations, "every verification must succeed");
            ok
        }
        "floor-get" => probe_floor_get(iterations),
        _ => {
            println!("callgrind probe: run through scripts/callgrind.sh");
            return;
        }
    };
    black_box(result);
}
