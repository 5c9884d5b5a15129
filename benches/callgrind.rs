//! A probe for `scripts/callgrind.sh`: runs one operation of the hot-path bench many times
//! so that callgrind can count its instructions, a figure that does not depend on the
//! machine's load.
//!
//! ```text
//! callgrind_probe <verify-get|floor-get|verify-post_41b|floor-post_41b> <iterations>
//! ```
//!
//! The measured loops are the functions `run_verify` and `run_floor`;
//! the script collects inside them only (`--toggle-collect`), so setup is not counted.
//! Run by `cargo bench` with no such arguments, it does nothing and succeeds: the options
//! cargo and criterion pass to every bench (`--bench`, `--save-baseline NAME`, `--noplot`,
//! a filter, …) are accepted and ignored.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;

use hmac::{Hmac, KeyInit, Mac};
use jg_hmac::{
    CanonicalRequest, ContentHash, Credential, Secret, SignedRequest, SigningKey, Target, Verifier,
};
use sha2::{Digest, Sha256};

const SECRET: &str = "s3cr3t_test_key_justgold";
const CLIENT_ID: &str = "jk_live_example";

/// One request of the hot-path bench.
struct Case {
    method: &'static str,
    target: &'static str,
    body: &'static [u8],
    timestamp: u64,
    signature: &'static str,
}

/// `verify/get` and `floor/get`: the seed's GET (4 query pairs, no body).
const GET: Case = Case {
    method: "GET",
    target: "/v1/ping?z=two&z=three&version=1&a=hello",
    body: b"",
    timestamp: 1_735_550_160,
    signature: "fa86029249a12a9531e269ef8986cba153a9839d741f6f38e457c6eb96bede76",
};

/// `verify/post_41b` and `floor/post_41b`: the seed's POST with its 41-byte body. No
/// shortcut applies to it (the body must be hashed), so its ratio is the crate's
/// overhead over the cryptography, undiluted.
const POST_41B: Case = Case {
    method: "POST",
    target: "/v1/transactions/buy",
    body: br#"{"amount":"5000","transactionId":"12345"}"#,
    timestamp: 1_735_550_100,
    signature: "97b5a41c23cc09f798599e9475eb091c408e2fed941c54aef544c2a364ee76e7",
};

/// `verify/*` of the hot-path bench, `iterations` times.
#[inline(never)]
fn probe_verify(case: &Case, iterations: u64) -> usize {
    let mut store = HashMap::new();
    store.insert(
        CLIENT_ID.to_owned(),
        Arc::new(Credential::new(CLIENT_ID).with_key(SigningKey::new("0", &Secret::from(SECRET)))),
    );
    let verifier = Verifier::new();
    let timestamp = case.timestamp.to_string();
    let pairs: [(&[u8], &[u8]); 3] = [
        (b"X-Client-Id", CLIENT_ID.as_bytes()),
        (b"X-Timestamp", timestamp.as_bytes()),
        (b"X-Signature", case.signature.as_bytes()),
    ];
    run_verify(iterations, &verifier, &store, pairs, case)
}

#[inline(never)]
fn run_verify(
    iterations: u64,
    verifier: &Verifier,
    store: &HashMap<String, Arc<Credential>>,
    pairs: [(&[u8], &[u8]); 3],
    case: &Case,
) -> usize {
    let mut ok = 0;
    for _ in 0..iterations {
        let headers = black_box(pairs);
        let verified = verifier.verify(
            store,
            &SignedRequest::new(case.method, Target::parse(black_box(case.target)), headers),
            &ContentHash::of(black_box(case.body)),
            case.timestamp,
        );
        ok += usize::from(black_box(verified).is_ok());
    }
    ok
}

/// `floor/*` of the hot-path bench, `iterations` times.
#[inline(never)]
fn probe_floor(case: &Case, iterations: u64) -> usize {
    let mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("any key length");
    let string_to_sign = CanonicalRequest::new(case.method, Target::parse(case.target))
        .string_to_sign_bytes(&case.timestamp.to_string(), &ContentHash::of(case.body));
    run_floor(iterations, &mac, &string_to_sign, case.body)
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

/// Criterion's options that take a value (`--name value`; `--name=value` is one argument).
const OPTIONS_WITH_VALUE: &[&str] = &[
    "-c",
    "--color",
    "-s",
    "--save-baseline",
    "-b",
    "--baseline",
    "--baseline-lenient",
    "--load-baseline",
    "--format",
    "--profile-time",
    "--sample-size",
    "--warm-up-time",
    "--measurement-time",
    "--nresamples",
    "--noise-threshold",
    "--confidence-level",
    "--significance-level",
    "--plotting-backend",
    "--output-format",
];

/// The positional arguments, without the options (and their values) that `cargo bench`
/// and criterion pass.
fn positional(args: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut args = args.into_iter();
    let mut out = Vec::new();
    while let Some(arg) = args.next() {
        if OPTIONS_WITH_VALUE.contains(&arg.as_str()) {
            args.next();
        } else if !arg.starts_with('-') {
            out.push(arg);
        }
    }
    out
}

fn main() {
    let args = positional(std::env::args().skip(1));
    let probe = match args.as_slice() {
        [which, iterations] => iterations.parse::<u64>().ok().map(|n| (which.as_str(), n)),
        _ => None,
    };
    let cases: [(&str, &Case, bool); 4] = [
        ("verify-get", &GET, true),
        ("floor-get", &GET, false),
        ("verify-post_41b", &POST_41B, true),
        ("floor-post_41b", &POST_41B, false),
    ];
    let Some((case, verify, iterations)) = probe.and_then(|(which, iterations)| {
        cases
            .iter()
            .find(|(name, _, _)| *name == which)
            .map(|&(_, case, verify)| (case, verify, iterations))
    }) else {
        // Not a probe run: `cargo bench` (with or without criterion's options) lands here.
        // A closed stderr is no reason to fail.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "callgrind probe: nothing to do (run through scripts/callgrind.sh)"
        );
        return;
    };
    let result = if verify {
        let ok = probe_verify(case, iterations);
        assert_eq!(ok as u64, iterations, "every verification must succeed");
        ok
    } else {
        probe_floor(case, iterations)
    };
    black_box(result);
}
