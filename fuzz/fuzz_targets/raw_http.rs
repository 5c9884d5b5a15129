//! The CLI's raw HTTP/1.x parser (`src/bin/jg-hmac/raw/`, `raw::parse`) on arbitrary bytes,
//! then the verifier on whatever it accepts.
//!
//! Invariants, beyond "never panics":
//! - an accepted request respects the limits it was parsed with (header section, header
//!   count, body size), under the default limits and under tiny ones;
//! - the method is a token, the target has no space or control byte, header values have no
//!   CR, LF or surrounding spaces, and a `Content-Length` body has exactly that length;
//! - re-serializing it (`to_bytes_replacing(&[], &[])`) and parsing again gives the same
//!   request;
//! - an error's message is one line;
//! - the verifier never accepts a parsed request without the right secret, and accepts one
//!   only if its signature is a one-shot HMAC of the string-to-sign.
#![no_main]

use std::sync::Arc;

use hmac::{Hmac, KeyInit, Mac};
use jg_hmac::{Credential, Error, Secret, SignedRequest, Verifier};
use libfuzzer_sys::fuzz_target;
use sha2::Sha256;

// The parser is the binary's, not part of the library's API.
#[allow(dead_code)]
#[path = "../../src/bin/jg-hmac/raw/mod.rs"]
mod raw;
use raw::{Framing, RawLimits, RawRequest, parse};

const SEED_SECRET: &[u8] = b"s3cr3t_test_key_justgold";
/// Appears in no seed and no vector: the fuzzer cannot sign with it.
const UNGUESSABLE: &[u8] = b"\x7f\x06\xbe\xca\x39\xc6\x92\x8a\x3d\x55\x9e\x2c\xc3\x97\xc9\x7a\
\x72\xe7\xe0\x47\x80\xc4\xc0\xd0\x27\x41\x8d\x45\x43\xf2\x86\xbb";
const NOW: u64 = 1_735_550_160;

fn hmac_oneshot(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap();
    mac.update(message);
    mac.finalize().into_bytes().into()
}

fn summary<'a>(
    r: &RawRequest<'a>,
) -> (
    &'a str,
    &'a [u8],
    &'a str,
    Vec<(&'a str, &'a [u8])>,
    Vec<u8>,
) {
    let headers = r.headers().iter().map(|h| (h.name(), h.value())).collect();
    (
        r.method(),
        r.target(),
        r.version(),
        headers,
        r.body().to_vec(),
    )
}

fn check_accepted(input: &[u8], r: &RawRequest<'_>, limits: &RawLimits) {
    assert!(r.headers().len() <= limits.max_headers);
    assert!(r.wire_body().len() <= limits.max_body);
    assert!(
        r.body().len() <= r.wire_body().len(),
        "decoding never grows the body"
    );
    let head: usize =
        r.request_line().len() + r.headers().iter().map(|h| h.line().len()).sum::<usize>();
    assert!(head <= limits.max_head, "{head} > {}", limits.max_head);
    assert!(r.wire_body().len() <= input.len());
    assert!(!r.method().is_empty() && r.method().bytes().all(|b| b.is_ascii_graphic()));
    assert!(!r.target().is_empty() && r.target().iter().all(|&b| b > 0x20 && b != 0x7f));
    for h in r.headers() {
        let v = h.value();
        assert!(!v.contains(&b'\r') && !v.contains(&b'\n'), "{h:?}");
        assert!(!v.starts_with(b" ") && !v.ends_with(b" "), "{h:?}");
        assert!(!v.starts_with(b"\t") && !v.ends_with(b"\t"), "{h:?}");
        assert!(!h.name().is_empty());
    }
    if let Framing::ContentLength(n) = r.framing() {
        assert_eq!(r.body().len(), n);
    }
    assert_eq!(r.content_hash(), jg_hmac::ContentHash::of(r.body()));
    let again = r.to_bytes_replacing(&[], &[]);
    let reparsed = parse(&again, limits).unwrap_or_else(|e| {
        panic!(
            "re-serialized request refused: {e}: {:?}",
            String::from_utf8_lossy(&again)
        )
    });
    assert_eq!(
        summary(&reparsed),
        summary(r),
        "round trip changed the request"
    );
}

fuzz_target!(|data: &[u8]| {
    let mut tiny = RawLimits::default();
    tiny.max_head = 96;
    tiny.max_body = 16;
    tiny.max_headers = 3;
    for limits in [RawLimits::default(), tiny] {
        match parse(data, &limits) {
            Ok(r) => check_accepted(data, &r, &limits),
            Err(e) => assert!(!e.to_string().contains('\n'), "{e:?}"),
        }
    }

    let Ok(request) = parse(data, &RawLimits::default()) else {
        return;
    };
    let verifier = Verifier::new();
    let (signed, content) = (SignedRequest::from(&request), request.content_hash());
    let with = |secret: &'static [u8]| {
        move |id: &str| {
            Some(Arc::new(
                Credential::new(id).with_key(jg_hmac::SigningKey::new("0", &Secret::new(secret))),
            ))
        }
    };
    let unguessable = verifier.verify(&with(UNGUESSABLE), &signed, &content, NOW);
    assert!(unguessable.is_err(), "accepted without the right secret");
    let known = verifier.verify(&with(SEED_SECRET), &signed, &content, NOW);
    if known.is_ok() {
        let prepared = verifier.prepare(&signed, NOW).unwrap();
        let timestamp = request.header_values("x-timestamp").next().unwrap();
        let sts = prepared
            .canonical_request()
            .string_to_sign_bytes(std::str::from_utf8(timestamp).unwrap(), &content);
        assert_eq!(
            &hmac_oneshot(SEED_SECRET, &sts),
            prepared.signature().as_bytes()
        );
    } else {
        let _ = known.map_err(|e: Error| e.to_json_body("fuzz", NOW));
    }
});
