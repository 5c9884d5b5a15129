#![allow(clippy::expect_used, clippy::unwrap_used)]
//! The verification hot path against its cryptographic floor and against aws-sigv4.
//!
//! ```text
//! cargo bench --bench hot_path              # every ID, then the ratio table
//! cargo bench --bench hot_path -- verify/   # a subset (the table shows only what ran)
//! ```
//!
//! IDs (stable, so runs of different versions can be compared):
//!
//! - `floor/*`: SHA-256 of the body plus HMAC-SHA256 of the same string-to-sign, computed
//!   beforehand, from a pre-keyed HMAC state cloned per iteration. Nothing else: the work no
//!   implementation of the scheme can avoid.
//! - `verify/*`: a full [`Verifier::verify`]: headers gathered with
//!   [`AuthHeaders::from_pairs`] from three `(name, value)` pairs, header and timestamp
//!   checks, the canonical query, a `HashMap<String, Arc<Credential>>` lookup, the body
//!   hashed with [`ContentHash::of`], the MAC and the constant-time comparison.
//! - `sign/get`: [`Signer::sign`] of the same GET (allocates its header values).
//! - `canonical_query/*`: parse, sort and encode a raw query, written through `Display`
//!   into a reused `String` (the verifier streams the same bytes into the MAC instead).
//! - `aws_sigv4/*`: aws-sigv4 signing the same method, path, query and body
//!   (`SigningSettings::default()`, fixed credentials and time).
//!
//! After the run the binary prints every median and its ratio to its baseline, read from
//! criterion's `estimates.json` files written during this run.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use criterion::Criterion;
use hmac::{Hmac, KeyInit};
use jg_hmac::{
    CanonicalQuery, CanonicalRequest, ContentHash, Credential, Secret, SignedRequest, Signer,
    SigningKey, Target, Verifier,
};
use sha2::Sha256;

mod common;
use common::{criterion_dir, floor, median_ns};

const SECRET: &str = "s3cr3t_test_key_justgold";
const CLIENT_ID: &str = "jk_live_example";
const HOST: &str = "api.justgold.me";

/// One request of the seed, with everything a verifier receives.
struct Case {
    method: &'static str,
    target: String,
    body: Vec<u8>,
    timestamp: u64,
    timestamp_raw: String,
    signature_hex: String,
}

impl Case {
    fn new(method: &'static str, target: &str, body: Vec<u8>, timestamp: u64) -> Self {
        let signer = Signer::new(CLIENT_ID, &Secret::from(SECRET)).expect("valid client id");
        let signed = signer.sign(method, target, &body, timestamp);
        Self {
            method,
            target: target.to_owned(),
            body,
            timestamp,
            timestamp_raw: signed.timestamp().to_owned(),
            signature_hex: signed.signature().to_hex(),
        }
    }

    fn string_to_sign(&self) -> Vec<u8> {
        CanonicalRequest::new(self.method, Target::parse(&self.target))
            .string_to_sign_bytes(&self.timestamp_raw, &ContentHash::of(&self.body))
    }

    fn header_pairs(&self) -> [(&'static [u8], &[u8]); 3] {
        [
            (b"X-Client-Id", CLIENT_ID.as_bytes()),
            (b"X-Timestamp", self.timestamp_raw.as_bytes()),
            (b"X-Signature", self.signature_hex.as_bytes()),
        ]
    }
}

fn get_case() -> Case {
    let case = Case::new(
        "GET",
        "/v1/ping?z=two&z=three&version=1&a=hello",
        Vec::new(),
        1_735_550_160,
    );
    // The seed's published signature: the bench measures the real vector.
    assert_eq!(
        case.signature_hex,
        "fa86029249a12a9531e269ef8986cba153a9839d741f6f38e457c6eb96bede76"
    );
    case
}

fn post_41b_case() -> Case {
    let body = br#"{"amount":"5000","transactionId":"12345"}"#.to_vec();
    assert_eq!(body.len(), 41);
    let case = Case::new("POST", "/v1/transactions/buy", body, 1_735_550_100);
    assert_eq!(
        case.signature_hex,
        "97b5a41c23cc09f798599e9475eb091c408e2fed941c54aef544c2a364ee76e7"
    );
    case
}

fn post_64k_case() -> Case {
    let body: Vec<u8> = (0..64 * 1024u32).map(|i| b'a' + (i % 26) as u8).collect();
    Case::new("POST", "/v1/transactions/buy", body, 1_735_550_100)
}

fn keyed() -> Hmac<Sha256> {
    Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("HMAC takes any key length")
}

fn store() -> HashMap<String, Arc<Credential>> {
    let mut store = HashMap::new();
    store.insert(
        CLIENT_ID.to_owned(),
        Arc::new(Credential::new(CLIENT_ID).with_key(SigningKey::new("0", &Secret::from(SECRET)))),
    );
    store
}

/// SHA-256 of the body and HMAC-SHA256 of a precomputed string-to-sign: the floor.
fn bench_floor(c: &mut Criterion, id: &str, case: &Case) {
    let mac = keyed();
    let string_to_sign = case.string_to_sign();
    c.bench_function(id, |b| {
        b.iter(|| floor(&mac, &string_to_sign, &case.body));
    });
}

fn bench_verify(c: &mut Criterion, id: &str, case: &Case) {
    let store = store();
    let verifier = Verifier::new();
    let pairs = case.header_pairs();
    let run = || {
        let headers = black_box(pairs);
        verifier.verify(
            &store,
            &SignedRequest::new(case.method, Target::parse(black_box(&case.target)), headers),
            &ContentHash::of(black_box(&case.body)),
            case.timestamp,
        )
    };
    // The bench measures a success, not an early rejection.
    assert!(run().is_ok(), "{id}: the case must verify");
    c.bench_function(id, |b| b.iter(run));
}

fn bench_sign(c: &mut Criterion, case: &Case) {
    let signer = Signer::new(CLIENT_ID, &Secret::from(SECRET)).expect("valid client id");
    c.bench_function("sign/get", |b| {
        b.iter(|| {
            signer.sign(
                case.method,
                black_box(&case.target),
                black_box(&case.body),
                case.timestamp,
            )
        });
    });
}

fn query_32_pairs() -> String {
    // Shuffled keys, repeated keys, and values that need decoding and re-encoding.
    let mut pairs = Vec::new();
    for i in 0..32u32 {
        let key = format!("k{:02}", (i * 7) % 32);
        let value = match i % 4 {
            0 => format!("v{i}"),
            1 => format!("a+b{i}"),
            2 => format!("%c3%a9{i}"),
            _ => format!("x%2Fy{i}"),
        };
        pairs.push(format!("{key}={value}"));
    }
    pairs.join("&")
}

fn bench_canonical_query(c: &mut Criterion) {
    let q32 = query_32_pairs();
    for (id, raw) in [
        ("canonical_query/4_pairs", "z=two&z=three&version=1&a=hello"),
        ("canonical_query/32_pairs", q32.as_str()),
    ] {
        let mut out = String::with_capacity(4 * raw.len());
        c.bench_function(id, |b| {
            b.iter(|| {
                out.clear();
                let query = CanonicalQuery::parse(black_box(raw));
                write!(out, "{query}").expect("writing to a String");
                black_box(out.len())
            });
        });
    }
}

fn bench_aws_sigv4(c: &mut Criterion, id: &str, case: &Case) {
    let identity = Credentials::new("AKIDEXAMPLE", SECRET, None, None, "jg-hmac benchmark").into();
    let time = UNIX_EPOCH + Duration::from_secs(case.timestamp);
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("execute-api")
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .expect("complete signing parameters")
        .into();
    let uri = format!("https://{HOST}{}", case.target);
    let content_type: &[(&str, &str)] = if case.body.is_empty() {
        &[]
    } else {
        &[("content-type", "application/json")]
    };
    let run = || {
        let headers = [("host", HOST)]
            .iter()
            .chain(content_type)
            .map(|&(n, v)| (n, v));
        let request = SignableRequest::new(
            case.method,
            black_box(uri.as_str()),
            headers,
            SignableBody::Bytes(black_box(&case.body)),
        )
        .expect("signable request");
        sign(request, &params).expect("signing succeeds")
    };
    let _ = run();
    c.bench_function(id, |b| b.iter(run));
}

fn print_table(since: SystemTime) {
    let dir = criterion_dir();
    let rows: [(&str, &str); 11] = [
        ("verify/get", "floor/get"),
        ("verify/post_41b", "floor/post_41b"),
        ("verify/post_64k", "floor/post_64k"),
        ("sign/get", "floor/get"),
        ("aws_sigv4/get", "verify/get"),
        ("aws_sigv4/post_41b", "verify/post_41b"),
        ("canonical_query/4_pairs", "floor/get"),
        ("canonical_query/32_pairs", "floor/get"),
        ("floor/get", "floor/get"),
        ("floor/post_41b", "floor/post_41b"),
        ("floor/post_64k", "floor/post_64k"),
    ];
    println!("\nMedians of this run (from {}):", dir.display());
    println!("{:<26} {:>12}  {:>8}  baseline", "id", "median", "ratio");
    for (id, base) in rows {
        let Some(median) = median_ns(&dir, id, since) else {
            continue;
        };
        let ratio = median_ns(&dir, base, since)
            .map_or_else(|| "-".to_owned(), |b| format!("{:.2}x", median / b));
        println!("{id:<26} {median:>9.0} ns  {ratio:>8}  {base}");
    }
}

fn main() {
    let started = SystemTime::now();
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();

    let get = get_case();
    let post_41b = post_41b_case();
    let post_64k = post_64k_case();

    bench_floor(&mut c, "floor/get", &get);
    bench_verify(&mut c, "verify/get", &get);
    bench_sign(&mut c, &get);
    bench_floor(&mut c, "floor/post_41b", &post_41b);
    bench_verify(&mut c, "verify/post_41b", &post_41b);
    bench_floor(&mut c, "floor/post_64k", &post_64k);
    bench_verify(&mut c, "verify/post_64k", &post_64k);
    bench_canonical_query(&mut c);
    bench_aws_sigv4(&mut c, "aws_sigv4/get", &get);
    bench_aws_sigv4(&mut c, "aws_sigv4/post_41b", &post_41b);

    c.final_summary();
    print_table(started);
}
