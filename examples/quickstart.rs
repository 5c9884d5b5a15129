//! Signs the seed spec's GET request, shows what was signed, verifies it, and shows a
//! tampered copy being rejected.
//!
//! Run with `cargo run --example quickstart`.

use std::collections::HashMap;
use std::sync::Arc;

use jg_hmac::{
    CanonicalRequest, ContentHash, Credential, Secret, SignedRequest, Signer, SigningKey, Target,
    Verifier,
};

fn main() -> Result<(), jg_hmac::Error> {
    // The seed spec's GET example (SPEC.md §2, example 1).
    let client_id = "jk_live_example";
    let secret = Secret::from("s3cr3t_test_key_justgold");
    let timestamp = 1_735_550_160;
    let target = "/v1/ping?z=two&z=three&version=1&a=hello";

    // --- Partner side: sign. ---
    let signer = Signer::new(client_id, &secret)?;
    let mut request = http::Request::get(target)
        .header("Host", "api.sandbox.justgold.me")
        .body(Vec::<u8>::new())
        .map_err(|_| jg_hmac::Error::InvalidSignature)?;
    signer.sign_request(&mut request, timestamp);

    let canonical = CanonicalRequest::new("GET", Target::parse(target));
    let string_to_sign = canonical.string_to_sign(&timestamp.to_string(), &ContentHash::EMPTY);
    println!("GET {target}\n");
    println!("String-to-sign (newlines shown as \\n):");
    println!("{}\n", string_to_sign.replace('\n', "\\n\n"));
    println!("Headers to send:");
    for name in ["x-client-id", "x-timestamp", "x-signature"] {
        if let Some(value) = request.headers().get(name) {
            // The signature is marked sensitive; printing it here is the point of the demo.
            println!("  {name}: {}", value.to_str().unwrap_or("?"));
        }
    }

    // --- Server side: verify against a credential store. ---
    let store = HashMap::from([(
        client_id.to_owned(),
        Arc::new(Credential::new(client_id).with_key(SigningKey::new("k1", &secret))),
    )]);
    let verifier = Verifier::new();
    let now = timestamp + 2; // the server's clock, two seconds later
    let verify = |request: &http::Request<Vec<u8>>| {
        let content = ContentHash::of(request.body());
        verifier.verify(&store, &SignedRequest::from(request), &content, now)
    };
    let verified = verify(&request)?;
    println!(
        "\nVerified: client {} (key {}).",
        verified.client_id(),
        verified.key_id()
    );

    // --- A tampered copy: same headers, one query value changed. ---
    let mut tampered = request.clone();
    *tampered.uri_mut() = "/v1/ping?z=two&z=three&version=2&a=hello"
        .parse()
        .map_err(|_| jg_hmac::Error::InvalidSignature)?;
    match verify(&tampered) {
        Ok(_) => {
            println!("Tampered request was accepted: this must never happen.");
            std::process::exit(1);
        }
        Err(err) => {
            println!("Tampered request (version=2) rejected: {}", err.code());
            println!("Error body: {}", err.to_json_body("a1b2c3d4", now));
        }
    }
    Ok(())
}
