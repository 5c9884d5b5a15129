#![allow(clippy::expect_used, clippy::unwrap_used)]
//! Where the time of `verify/get` goes: each stage of a verification of the seed's GET,
//! measured alone, next to `floor/get`, in one run.
//!
//! ```text
//! cargo bench --bench stages
//! ```
//!
//! IDs:
//!
//! - `stage/headers`: [`AuthHeaders::from_pairs`] over the three authentication headers.
//! - `stage/target`: [`Target::parse`] of the request-target.
//! - `stage/prepare`: [`Verifier::prepare`] (which parses the target too): header syntax,
//!   timestamp, hex signature, window, query limits.
//! - `stage/lookup`: the bench's `HashMap<String, Arc<Credential>>` lookup (SipHash of the
//!   client id, an `Arc` clone and drop): the caller's cost, not the crate's.
//! - `stage/finish`: [`Verifier::finish`] with the credential at hand: the canonical
//!   query, the string-to-sign, the HMAC and the constant-time comparison.
//! - `stage/hmac`: the HMAC part of `floor/get` alone (a pre-keyed state cloned, the
//!   string-to-sign, finalized), so that `stage/finish` minus it is the crate's own
//!   work in that stage.
//! - `floor/get` and `verify/get` as in `benches/hot_path.rs`.
//!
//! After the run the binary prints every median as a share of `verify/get`.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use criterion::Criterion;
use hmac::{Hmac, KeyInit};
use jg_hmac::{
    CanonicalRequest, ContentHash, Credential, CredentialLookup, Secret, SignedRequest, SigningKey,
    Target, Verifier,
};
use sha2::Sha256;

mod common;
use common::{criterion_dir, floor, keyed_hmac, median_ns};

const SECRET: &str = "s3cr3t_test_key_justgold";
const CLIENT_ID: &str = "jk_live_example";
const TARGET: &str = "/v1/ping?z=two&z=three&version=1&a=hello";
const TIMESTAMP: &str = "1735550160";
const NOW: u64 = 1_735_550_160;
const SIGNATURE: &str = "fa86029249a12a9531e269ef8986cba153a9839d741f6f38e457c6eb96bede76";

fn main() {
    let started = SystemTime::now();
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(700))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();

    let pairs: [(&[u8], &[u8]); 3] = [
        (b"X-Client-Id", CLIENT_ID.as_bytes()),
        (b"X-Timestamp", TIMESTAMP.as_bytes()),
        (b"X-Signature", SIGNATURE.as_bytes()),
    ];
    let mut store: HashMap<String, Arc<Credential>> = HashMap::new();
    store.insert(
        CLIENT_ID.to_owned(),
        Arc::new(Credential::new(CLIENT_ID).with_key(SigningKey::new("0", &Secret::from(SECRET)))),
    );
    let verifier = Verifier::new();
    let headers = pairs;
    let prepared = verifier
        .prepare(
            &SignedRequest::new("GET", Target::parse(TARGET), headers),
            NOW,
        )
        .unwrap();
    let credential = store.lookup(CLIENT_ID).unwrap();
    let mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    let string_to_sign = CanonicalRequest::new("GET", Target::parse(TARGET))
        .string_to_sign_bytes(TIMESTAMP, &ContentHash::EMPTY);

    c.bench_function("floor/get", |b| {
        b.iter(|| floor(&mac, &string_to_sign, b""));
    });
    c.bench_function("verify/get", |b| {
        b.iter(|| {
            let headers = black_box(pairs);
            verifier
                .verify(
                    &store,
                    &SignedRequest::new("GET", Target::parse(black_box(TARGET)), headers),
                    &ContentHash::of(black_box(b"")),
                    NOW,
                )
                .is_ok()
        });
    });
    c.bench_function("stage/headers", |b| {
        b.iter(|| SignedRequest::new("GET", Target::parse(TARGET), black_box(pairs)));
    });
    c.bench_function("stage/target", |b| {
        b.iter(|| Target::parse(black_box(TARGET)));
    });
    c.bench_function("stage/prepare", |b| {
        b.iter(|| {
            verifier
                .prepare(
                    &SignedRequest::new("GET", Target::parse(black_box(TARGET)), headers),
                    NOW,
                )
                .is_ok()
        });
    });
    c.bench_function("stage/lookup", |b| {
        b.iter(|| store.lookup(black_box(CLIENT_ID)).is_some());
    });
    c.bench_function("stage/finish", |b| {
        b.iter(|| {
            verifier
                .finish(
                    black_box(&prepared),
                    Some(credential.clone()),
                    &ContentHash::EMPTY,
                    NOW,
                )
                .is_ok()
        });
    });
    c.bench_function("stage/hmac", |b| {
        b.iter(|| keyed_hmac(&mac, &string_to_sign));
    });
    c.final_summary();
    print_table(started);
}

fn print_table(since: SystemTime) {
    let dir = criterion_dir();
    let Some(verify) = median_ns(&dir, "verify/get", since) else {
        return;
    };
    println!("\nMedians of this run, as shares of verify/get ({verify:.0} ns):");
    for id in [
        "floor/get",
        "stage/headers",
        "stage/target",
        "stage/prepare",
        "stage/lookup",
        "stage/finish",
        "stage/hmac",
    ] {
        if let Some(median) = median_ns(&dir, id, since) {
            println!(
                "{id:<16} {median:>8.0} ns  {:>5.1}%",
                100.0 * median / verify
            );
        }
    }
}
