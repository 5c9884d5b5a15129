//! Heap allocations on the hot path, counted by a global allocator.
//!
//! `allocation-counter` installs a counting global allocator in this test binary only and
//! counts per thread, so tests running in parallel do not see each other's allocations.
//! Every measured closure covers the whole verification: headers, the canonical query,
//! the body hash of a body in memory, the credential lookup, the MAC and the
//! constant-time comparison.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;

use allocation_counter::{AllocationInfo, measure};
use jg_hmac::{
    ContentHash, Credential, Secret, SignedRequest, Signer, SigningKey, Target, Verifier,
};

const SECRET: &str = "s3cr3t_test_key_justgold";
const CLIENT_ID: &str = "jk_live_example";
const TS: u64 = 1_735_550_160;
/// Query pairs canonicalized without touching the heap (the crate's inline capacity).
const INLINE_PAIRS: usize = 32;

/// A request as a server holds it once read: target, headers and body in memory.
struct Request {
    method: &'static str,
    target: String,
    body: Vec<u8>,
    timestamp: String,
    signature: String,
}

impl Request {
    fn signed(method: &'static str, target: String, body: Vec<u8>) -> Self {
        let signer = Signer::new(CLIENT_ID, &Secret::from(SECRET)).unwrap();
        let signed = signer.sign(method, &target, &body, TS);
        Self {
            method,
            target,
            body,
            timestamp: signed.timestamp().to_owned(),
            signature: signed.signature().to_hex(),
        }
    }

    fn header_pairs(&self) -> [(&'static [u8], &[u8]); 3] {
        [
            (b"X-Client-Id", CLIENT_ID.as_bytes()),
            (b"X-Timestamp", self.timestamp.as_bytes()),
            (b"X-Signature", self.signature.as_bytes()),
        ]
    }

    fn http(&self) -> http::Request<Vec<u8>> {
        http::Request::builder()
            .method(self.method)
            .uri(&self.target)
            .header("x-client-id", CLIENT_ID)
            .header("x-timestamp", &self.timestamp)
            .header("x-signature", &self.signature)
            .header("content-type", "application/json")
            .body(self.body.clone())
            .unwrap()
    }
}

/// `n` query pairs, shuffled, with repeated keys and values that need re-encoding.
fn query(n: usize) -> String {
    (0..n)
        .map(|i| {
            let key = format!("k{:02}", (i * 7) % n.max(1));
            match i % 3 {
                0 => format!("{key}=v{i}"),
                1 => format!("{key}=a+b%2F{i}"),
                _ => format!("{key}=%c3%a9{i}"),
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn get(pairs: usize) -> Request {
    let target = if pairs == 0 {
        "/v1/ping".to_owned()
    } else {
        format!("/v1/ping?{}", query(pairs))
    };
    Request::signed("GET", target, Vec::new())
}

fn post(pairs: usize, body_len: usize) -> Request {
    let body = (0..body_len).map(|i| b'a' + (i % 26) as u8).collect();
    let target = if pairs == 0 {
        "/v1/transactions/buy".to_owned()
    } else {
        format!("/v1/transactions/buy?{}", query(pairs))
    };
    Request::signed("POST", target, body)
}

fn store() -> HashMap<String, Arc<Credential>> {
    let mut store = HashMap::new();
    store.insert(
        CLIENT_ID.to_owned(),
        Arc::new(Credential::new(CLIENT_ID).with_key(SigningKey::new("0", &Secret::from(SECRET)))),
    );
    store
}

/// `Verifier::verify` with the body hashed inside the measurement; returns what it
/// allocated and the result's error code (`None` for success).
fn measure_verify(
    verifier: &Verifier,
    store: &HashMap<String, Arc<Credential>>,
    req: &Request,
    now: u64,
) -> (AllocationInfo, Option<&'static str>) {
    let pairs = req.header_pairs();
    let mut outcome = None;
    let info = measure(|| {
        let headers = black_box(pairs);
        let result = verifier.verify(
            store,
            &SignedRequest::new(req.method, Target::parse(black_box(&req.target)), headers),
            &ContentHash::of(black_box(&req.body)),
            now,
        );
        outcome = Some(result.map(|ok| ok.key_id() == "0").map_err(|e| e.code()));
    });
    match outcome.unwrap() {
        Ok(matched_first_key) => {
            assert!(matched_first_key);
            (info, None)
        }
        Err(code) => (info, Some(code)),
    }
}

fn requests_up_to_inline() -> Vec<Request> {
    let mut requests = Vec::new();
    for pairs in [0, 1, 4, INLINE_PAIRS] {
        requests.push(get(pairs));
        for body_len in [41, 64 * 1024] {
            requests.push(post(pairs, body_len));
        }
    }
    requests
}

#[test]
fn the_counter_is_live() {
    // Guards against a vacuous pass: if the counting allocator were not installed, every
    // count below would be zero.
    let info = measure(|| {
        black_box(vec![1u8; 10]);
    });
    assert_eq!((info.count_total, info.bytes_total), (1, 10));
}

#[test]
fn the_32_pair_case_really_has_32_pairs() {
    let req = get(INLINE_PAIRS);
    let query = Target::parse(&req.target).query();
    let canonical = jg_hmac::CanonicalQuery::parse_bytes(query);
    assert_eq!(canonical.len(), INLINE_PAIRS);
}

#[test]
fn verify_allocates_nothing_up_to_32_pairs() {
    let (store, verifier) = (store(), Verifier::new());
    for req in requests_up_to_inline() {
        let (info, error) = measure_verify(&verifier, &store, &req, TS);
        assert_eq!(error, None, "{} {}", req.method, req.target);
        assert_eq!(
            info.count_total,
            0,
            "{} {} with a {}-byte body: {info:?}",
            req.method,
            req.target,
            req.body.len()
        );
    }
}

#[test]
fn rejections_allocate_nothing() {
    let (store, verifier) = (store(), Verifier::new());
    let good = get(4);

    let mut bad_signature = get(4);
    bad_signature.signature = "0".repeat(64);
    let (info, error) = measure_verify(&verifier, &store, &bad_signature, TS);
    assert_eq!(error, Some("invalid_signature"));
    assert_eq!(info.count_total, 0, "{info:?}");

    let (info, error) = measure_verify(&verifier, &store, &good, TS + 301);
    assert_eq!(error, Some("timestamp_out_of_range"));
    assert_eq!(info.count_total, 0, "{info:?}");

    let (info, error) = measure_verify(&verifier, &HashMap::new(), &good, TS);
    assert_eq!(error, Some("client_id"));
    assert_eq!(info.count_total, 0, "{info:?}");

    let hidden = Verifier::new().with_hidden_unknown_clients(true);
    let (info, error) = measure_verify(&hidden, &HashMap::new(), &good, TS);
    assert_eq!(error, Some("invalid_signature"));
    assert_eq!(info.count_total, 0, "{info:?}");
}

#[test]
fn verify_tries_every_key_without_allocating() {
    // Key rotation: the matching key is last, so every key's MAC is computed.
    let mut store = HashMap::new();
    store.insert(
        CLIENT_ID.to_owned(),
        Arc::new(
            Credential::new(CLIENT_ID)
                .with_key(SigningKey::new("old", &Secret::from("an older secret")))
                .with_key(SigningKey::new("0", &Secret::from(SECRET))),
        ),
    );
    let (info, error) = measure_verify(&Verifier::new(), &store, &get(4), TS);
    assert_eq!(error, None);
    assert_eq!(info.count_total, 0, "{info:?}");
}

#[test]
fn prepare_and_finish_allocate_nothing_up_to_32_pairs() {
    let verifier = Verifier::new();
    let credential = std::sync::Arc::new(
        Credential::new(CLIENT_ID).with_key(SigningKey::new("0", &Secret::from(SECRET))),
    );
    for req in requests_up_to_inline() {
        let pairs = req.header_pairs();
        let mut matched = None;
        let info = measure(|| {
            let headers = black_box(pairs);
            let prepared = verifier
                .prepare(
                    &SignedRequest::new(req.method, Target::parse(&req.target), headers),
                    TS,
                )
                .unwrap();
            let content = ContentHash::of(black_box(&req.body));
            matched = Some(
                verifier
                    .finish(&prepared, Some(credential.clone()), &content, TS)
                    .map(|verified| verified.key_id() == "0"),
            );
        });
        assert_eq!(matched, Some(Ok(true)), "{}", req.target);
        assert_eq!(info.count_total, 0, "{}: {info:?}", req.target);
    }
}

#[test]
fn verifying_an_http_request_allocates_nothing_up_to_32_pairs() {
    let (store, verifier) = (store(), Verifier::new());
    for req in requests_up_to_inline() {
        let request = req.http();
        let mut result = None;
        let info = measure(|| {
            result = Some(
                verifier
                    .verify(
                        &store,
                        &SignedRequest::from(black_box(&request)),
                        &ContentHash::of(request.body()),
                        TS,
                    )
                    .map(|_| ()),
            );
        });
        assert_eq!(result, Some(Ok(())), "{}", req.target);
        assert_eq!(info.count_total, 0, "{}: {info:?}", req.target);
    }
}

#[test]
fn more_than_32_pairs_allocate_once_and_in_proportion() {
    let (store, verifier) = (store(), Verifier::new());
    let pair_size = {
        // The bytes per pair the one allocation holds, learnt from the smallest overflow.
        let (info, error) = measure_verify(&verifier, &store, &get(INLINE_PAIRS + 1), TS);
        assert_eq!(error, None);
        assert_eq!(info.count_total, 1, "{info:?}");
        assert_eq!(info.bytes_total % (INLINE_PAIRS as u64 + 1), 0, "{info:?}");
        info.bytes_total / (INLINE_PAIRS as u64 + 1)
    };
    assert!(pair_size <= 64, "{pair_size} bytes per pair");
    for pairs in [INLINE_PAIRS + 1, 64, 200, 256] {
        let req = get(pairs);
        let (info, error) = measure_verify(&verifier, &store, &req, TS);
        assert_eq!(error, None, "{pairs} pairs");
        // One allocation, holding exactly one slot per pair: bounded by the number of
        // pairs (itself at most `Limits::max_query_pairs`), whatever the query's length.
        assert_eq!(info.count_total, 1, "{pairs} pairs: {info:?}");
        assert_eq!(info.bytes_total, pair_size * pairs as u64, "{pairs} pairs");
        assert_eq!(info.count_current, 0, "{pairs} pairs: freed");
    }
}

#[test]
fn too_many_pairs_are_refused_without_allocating() {
    let (store, verifier) = (store(), Verifier::new());
    let req = get(257);
    let (info, error) = measure_verify(&verifier, &store, &req, TS);
    assert_eq!(error, Some("request_too_large"));
    assert_eq!(info.count_total, 0, "{info:?}");
}

#[test]
fn sign_allocates_only_its_header_values() {
    let signer = Signer::new(CLIENT_ID, &Secret::from(SECRET)).unwrap();
    for req in [get(0), get(4), get(INLINE_PAIRS), post(0, 41)] {
        let mut out = None;
        let info = measure(|| {
            out = Some(signer.sign(req.method, black_box(&req.target), &req.body, TS));
        });
        let out = out.unwrap();
        // Two `String`s: the client id and the timestamp. The signature is 32 inline
        // bytes; nothing else is allocated, and nothing but the output outlives the call.
        assert_eq!(info.count_total, 2, "{}: {info:?}", req.target);
        assert_eq!(info.count_current, 2, "{}: {info:?}", req.target);
        assert!(
            info.bytes_total <= (out.client_id().len() + 2 * out.timestamp().len()) as u64,
            "{}: {info:?}",
            req.target
        );
    }
}
