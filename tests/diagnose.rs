//! The diagnosis vectors of `test-vectors/diagnose.json`: for each typical partner mistake,
//! a request signed with it (the signatures computed by Python, checked by
//! `test-vectors/reference.py`) and the diagnosis that names it; and every diagnosis has a
//! vector.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeSet;
use std::path::Path;

use jg_hmac::diagnose::{Diagnosis, diagnose};
use jg_hmac::{Secret, SignedRequest, SigningKey, Target};
use serde_json::Value;

fn vectors() -> Vec<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("test-vectors/diagnose.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    doc["diagnosis"].as_array().unwrap().clone()
}

fn text<'v>(v: &'v Value, field: &str) -> &'v str {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("{}: no {field}", v["name"]))
}

#[test]
fn every_vector_gets_its_diagnosis() {
    let vectors = vectors();
    for v in &vectors {
        let name = text(v, "name");
        let secret = Secret::from(text(v, "secret"));
        let request = SignedRequest::new(
            text(v, "method"),
            Target::parse(text(v, "target")),
            [
                ("X-Client-Id", &b"jk_live_example"[..]),
                ("X-Timestamp", text(v, "timestamp").as_bytes()),
                ("X-Signature", text(v, "signature").as_bytes()),
            ],
        );
        let body = v
            .get("body")
            .and_then(Value::as_str)
            .unwrap_or("")
            .as_bytes();
        let expected = text(v, "expected");

        let found = diagnose(&secret, &request, body);
        assert_eq!(found.code(), expected, "{name}: {found}");
        if let Some(says) = v.get("explanation_contains").and_then(Value::as_str) {
            assert!(found.to_string().contains(says), "{name}: {found}");
        }
        // A verifier's key, which keeps no secret bytes, finds the same but the secret's
        // whitespace.
        let by_key = diagnose(&SigningKey::new("k", &secret), &request, body);
        if expected == "secret_whitespace" {
            assert_eq!(by_key, Diagnosis::Unknown, "{name}");
        } else {
            assert_eq!(by_key, found, "{name}");
        }
    }
}

#[test]
fn every_diagnosis_has_a_vector() {
    let covered: BTreeSet<String> = vectors()
        .iter()
        .map(|v| text(v, "expected").to_owned())
        .collect();
    for d in Diagnosis::ALL {
        assert!(covered.contains(d.code()), "no vector for {}", d.code());
    }
    let known: BTreeSet<&str> = Diagnosis::ALL.iter().map(Diagnosis::code).collect();
    for code in &covered {
        assert!(known.contains(code.as_str()), "unknown code {code}");
    }
}
