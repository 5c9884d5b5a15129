//! Runs every `*.json` file in `test-vectors/` (loaded at run time, so a file dropped in is
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! run without a code change). Each failure names its file and vector.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use jg_hmac::{
    CanonicalRequest, ContentHash, Credential, Error, InMemoryReplayGuard, ReplayGuard, Secret,
    SignedRequest, Signer, SigningKey, Target, Verifier,
};
use serde_json::Value;

fn vector_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("test-vectors");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

fn str_field<'v>(v: &'v Value, key: &str) -> Result<&'v str, String> {
    v.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("missing string field `{key}`"))
}

fn hex_field(v: &Value, key: &str) -> Result<Option<Vec<u8>>, String> {
    match v.get(key) {
        None => Ok(None),
        Some(h) => {
            let h = h
                .as_str()
                .ok_or_else(|| format!("`{key}` is not a string"))?;
            hex::decode(h)
                .map(Some)
                .map_err(|e| format!("`{key}`: {e}"))
        }
    }
}

/// `body` (UTF-8) or `body_hex`; empty when neither.
fn body_of(v: &Value) -> Result<Vec<u8>, String> {
    if let Some(bytes) = hex_field(v, "body_hex")? {
        return Ok(bytes);
    }
    Ok(v.get("body")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .as_bytes()
        .to_vec())
}

fn secret_of(v: &Value) -> Result<Secret, String> {
    if let Some(bytes) = hex_field(v, "secret_hex")? {
        return Ok(Secret::from(bytes));
    }
    Ok(Secret::from(str_field(v, "secret")?))
}

fn run_signing(v: &Value) -> Result<(), String> {
    let secret = secret_of(v)?;
    let timestamp = str_field(v, "timestamp")?;
    let method = str_field(v, "method")?;
    let target = str_field(v, "target")?;
    let expected = v.get("expected").ok_or("missing `expected`")?;
    let content = match v.get("content_sha256") {
        Some(given) => ContentHash::from_hex(given.as_str().unwrap_or_default())
            .ok_or("`content_sha256` is not 64 hex digits")?,
        None => ContentHash::of(&body_of(v)?),
    };
    let request = CanonicalRequest::new(method, Target::parse_bytes(target.as_bytes()));
    let string_to_sign = request.string_to_sign_bytes(timestamp, &content);
    let signature = request.sign(&secret, timestamp, &content).to_hex();
    let checks = [
        ("canonical_query", request.query().to_string()),
        ("content_sha256", content.to_string()),
        (
            "string_to_sign",
            String::from_utf8(string_to_sign).map_err(|_| "string-to-sign is not UTF-8")?,
        ),
        ("signature", signature.clone()),
    ];
    for (field, got) in checks {
        let want = str_field(expected, field)?;
        if got != want {
            return Err(format!("{field}: got {got:?}, want {want:?}"));
        }
    }
    // The client-facing signer gives the same signature where the timestamp is a plain
    // number (it formats timestamps itself) and the body is known.
    if let (Ok(ts), None) = (timestamp.parse::<u64>(), v.get("content_sha256"))
        && ts.to_string() == timestamp
    {
        let signer = Signer::new("jk_live_example", &secret).map_err(|e| e.to_string())?;
        let via_signer = signer
            .sign(method, target, &body_of(v)?, ts)
            .signature()
            .to_hex();
        if via_signer != signature {
            return Err(format!("Signer::sign gave {via_signer}"));
        }
    }
    Ok(())
}

struct Header {
    name: String,
    value: Vec<u8>,
}

fn headers_of(request: &Value) -> Result<Vec<Header>, String> {
    let list = request
        .get("headers")
        .and_then(Value::as_array)
        .ok_or("missing `request.headers`")?;
    list.iter()
        .map(|entry| {
            let parts = entry.as_array().ok_or("header entry is not an array")?;
            let text = |i: usize| parts.get(i).and_then(Value::as_str);
            let name = text(0).ok_or("header name")?.to_owned();
            let raw = text(1).ok_or("header value")?;
            let value = match (parts.len(), text(2)) {
                (2, None) => raw.as_bytes().to_vec(),
                (3, Some("hex")) => hex::decode(raw).map_err(|e| format!("header hex: {e}"))?,
                _ => return Err(format!("bad header entry {entry}")),
            };
            Ok(Header { name, value })
        })
        .collect()
}

fn store_of(v: &Value) -> Result<HashMap<String, Arc<Credential>>, String> {
    let secrets = v
        .get("secrets")
        .and_then(Value::as_object)
        .ok_or("missing `secrets`")?;
    let mut store = HashMap::new();
    for (client_id, list) in secrets {
        let mut credential = Credential::new(client_id.clone());
        for secret in list.as_array().ok_or("secret list")? {
            credential = credential.with_key(SigningKey::new(
                "0",
                &Secret::from(secret.as_str().ok_or("secret")?),
            ));
        }
        store.insert(client_id.clone(), Arc::new(credential));
    }
    Ok(store)
}

fn verifier_of(v: &Value) -> Verifier {
    let mut verifier = Verifier::new();
    if let Some(window) = v.get("window").and_then(Value::as_u64) {
        verifier = verifier.with_window(window);
    }
    if let Some(alias) = v.get("alias").and_then(Value::as_bool) {
        verifier = verifier.with_access_key_alias(alias);
    }
    if let Some(types) = v.get("content_types").and_then(Value::as_array) {
        verifier = verifier.with_content_types(types.iter().filter_map(Value::as_str));
    }
    verifier
}

fn outcome(result: Result<(), Error>) -> String {
    match result {
        Ok(()) => "ok".to_owned(),
        Err(e) => e.code().to_owned(),
    }
}

fn run_verification(v: &Value) -> Result<(), String> {
    let store = store_of(v)?;
    let verifier = verifier_of(v);
    let now = v
        .get("now")
        .and_then(Value::as_u64)
        .ok_or("missing `now`")?;
    let request = v.get("request").ok_or("missing `request`")?;
    let method = str_field(request, "method")?;
    let target = str_field(request, "target")?;
    let headers = headers_of(request)?;
    let body = body_of(request)?;
    let expected = str_field(v, "expected")?;
    let replay = v.get("replay").and_then(Value::as_bool).unwrap_or(false);

    let request = SignedRequest::new(
        method,
        Target::parse_bytes(target.as_bytes()),
        headers.iter().map(|h| (h.name.as_bytes(), &h.value[..])),
    );
    let content = ContentHash::of(&body);
    let guard = InMemoryReplayGuard::new(16);
    let submit = || {
        let verified = verifier.verify(&store, &request, &content, now)?;
        if replay {
            let expires_at = verified.timestamp() + verifier.replay_horizon();
            guard.check_and_record(verified.client_id(), verified.signature(), expires_at, now)?;
        }
        Ok(())
    };
    let got = if replay {
        let first = outcome(submit());
        if first != "ok" {
            return Err(format!("first submission of a replay vector gave {first}"));
        }
        outcome(submit())
    } else {
        outcome(submit())
    };
    if got != expected {
        return Err(format!("core verifier: got {got}, want {expected}"));
    }

    // The same request through the `http` adapter, where `http` can represent it.
    if !replay && let Some(http_request) = http_request_of(method, target, &headers, &body) {
        let got = outcome(
            verifier
                .verify(
                    &store,
                    &SignedRequest::from(&http_request),
                    &ContentHash::of(http_request.body()),
                    now,
                )
                .map(|_| ()),
        );
        if got != expected {
            return Err(format!("http adapter: got {got}, want {expected}"));
        }
    }
    Ok(())
}

fn http_request_of(
    method: &str,
    target: &str,
    headers: &[Header],
    body: &[u8],
) -> Option<http::Request<Vec<u8>>> {
    let mut builder = http::Request::builder()
        .method(http::Method::from_bytes(method.as_bytes()).ok()?)
        .uri(target);
    for h in headers {
        builder = builder.header(
            http::HeaderName::from_bytes(h.name.as_bytes()).ok()?,
            http::HeaderValue::from_bytes(&h.value).ok()?,
        );
    }
    builder.body(body.to_vec()).ok()
}

#[test]
fn every_vector_file_passes() {
    let files = vector_files();
    assert!(!files.is_empty(), "no vector files found");
    let mut failures = Vec::new();
    let mut ran = 0usize;
    for file in &files {
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{name}: {e}"));
        let doc: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        for field in ["description", "source"] {
            if doc.get(field).and_then(Value::as_str).is_none() {
                failures.push(format!("{name}: missing `{field}`"));
            }
        }
        for (kind, run) in [
            ("signing", run_signing as fn(&Value) -> Result<(), String>),
            ("verification", run_verification),
        ] {
            let Some(list) = doc.get(kind).and_then(Value::as_array) else {
                failures.push(format!("{name}: missing `{kind}` list"));
                continue;
            };
            for (i, vector) in list.iter().enumerate() {
                ran += 1;
                let vname = vector.get("name").and_then(Value::as_str).unwrap_or("?");
                if let Err(why) = run(vector) {
                    failures.push(format!("{name}: {kind} #{i} '{vname}': {why}"));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {ran} vectors failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(ran >= 200, "only {ran} vectors ran");
    println!("{ran} vectors passed from {} files", files.len());
}

/// The identity vectors (`identity` group of identity.json) through `jg_hmac::identity`:
/// the value the gateway signs, and the upstream's verdict.
#[test]
fn identity_vectors_pass() {
    use jg_hmac::identity::{IdentityError, sign, verify};
    let path = vector_files()
        .into_iter()
        .find(|p| p.ends_with("identity.json"))
        .expect("test-vectors/identity.json");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let vectors = doc["identity"].as_array().unwrap();
    assert!(vectors.len() >= 15);
    for v in vectors {
        let name = v["name"].as_str().unwrap();
        let text = |f: &str| v[f].as_str().unwrap();
        let mut headers = http::HeaderMap::new();
        for h in v["headers"].as_array().unwrap() {
            headers.append(
                http::HeaderName::from_bytes(h[0].as_str().unwrap().as_bytes()).unwrap(),
                http::HeaderValue::from_str(h[1].as_str().unwrap()).unwrap(),
            );
        }
        let key = text("key").as_bytes();
        if let Some(t) = v["timestamp"].as_u64() {
            let mut unsigned = headers.clone();
            unsigned.remove("x-jg-identity");
            let value = sign(key, text("method"), text("target"), &unsigned, t).unwrap();
            assert_eq!(value, text("expected_identity"), "{name}");
        }
        let got = verify(
            key,
            text("method"),
            text("target"),
            &headers,
            v["now"].as_u64().unwrap(),
            v["max_age"].as_u64().unwrap(),
        );
        let got = match got {
            Ok(()) => "ok",
            Err(IdentityError::Expired) => "expired",
            Err(IdentityError::Mismatch) => "mismatch",
            Err(IdentityError::Missing(_)) => "missing",
            Err(IdentityError::Malformed) => "malformed",
            Err(_) => "other",
        };
        assert_eq!(got, text("expected"), "{name}");
    }
}
