//! Sign, then verify, arbitrary requests; then change one byte and verify again.
//!
//! Input: 15 bytes of control, then `method, target, body, secret, client id` separated by
//! the control's first byte (so any byte can appear in a field). Control: `sep`, which
//! field to change (bit 7 keeps timestamps past 18 digits), the byte's position (u16 LE),
//! the XOR mask, the timestamp (u64 LE), the verifier's clock offset (i16 LE, ±300 s).
//!
//! Invariants, beyond "never panics":
//! - the signature is a one-shot HMAC (the `hmac` crate) of the string-to-sign, and the
//!   body hash a one-shot SHA-256;
//! - a signed request always verifies (`ok`), unless it is one the verifier must refuse
//!   whatever the signature: a timestamp of more than 18 digits, a query past the limits;
//! - with one byte changed anywhere (method, target, body, timestamp, signature, client
//!   id) the request verifies only if it is still the same request: the same
//!   string-to-sign, the same 32 signature bytes, the same client id. A changed body,
//!   timestamp or client id never verifies.
#![no_main]

use std::sync::Arc;

use hmac::{Hmac, KeyInit, Mac};
use jg_hmac::{
    CanonicalRequest, ContentHash, Credential, Error, HeaderKind, Limits, Secret, Signature,
    SignedRequest, Signer, Target, Verifier,
};
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};

const MAX_TIMESTAMP: u64 = 999_999_999_999_999_999;

fn hmac_oneshot(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap();
    mac.update(message);
    mac.finalize().into_bytes().into()
}

fn string_to_sign(method: &str, target: &[u8], timestamp: &str, body: &[u8]) -> Vec<u8> {
    CanonicalRequest::new(method, Target::parse_bytes(target))
        .string_to_sign_bytes(timestamp, &ContentHash::of(body))
}

#[derive(Clone)]
struct Request {
    method: Vec<u8>,
    target: Vec<u8>,
    body: Vec<u8>,
    timestamp: Vec<u8>,
    signature: Vec<u8>,
    client_id: Vec<u8>,
}

impl Request {
    fn method(&self) -> String {
        String::from_utf8_lossy(&self.method).into_owned()
    }

    fn verify(
        &self,
        verifier: &Verifier,
        secret: &[u8],
        client: &str,
        now: u64,
    ) -> Result<(), Error> {
        let cred = Arc::new(Credential::new(client).with_key(jg_hmac::SigningKey::new("0", &Secret::new(secret))));
        let lookup = move |id: &str| (id == cred.client_id()).then(|| cred.clone());
        let method = self.method();
        let request = SignedRequest::new(
            &method,
            Target::parse_bytes(&self.target),
            [
                (&b"X-Client-Id"[..], &self.client_id[..]),
                (b"X-Timestamp", &self.timestamp),
                (b"X-Signature", &self.signature),
            ],
        );
        let content = ContentHash::of(&self.body);
        verifier
            .verify(&lookup, &request, &content, now)
            .map(|_| ())
    }

    fn field(&mut self, which: u8) -> &mut Vec<u8> {
        match which % 6 {
            0 => &mut self.method,
            1 => &mut self.target,
            2 => &mut self.body,
            3 => &mut self.timestamp,
            4 => &mut self.signature,
            _ => &mut self.client_id,
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((control, rest)) = data.split_first_chunk::<15>() else {
        return;
    };
    let sep = control[0];
    let which = control[1];
    let position = usize::from(u16::from_le_bytes([control[2], control[3]]));
    let mask = if control[4] == 0 { 1 } else { control[4] };
    let mut timestamp = u64::from_le_bytes(control[5..13].try_into().unwrap());
    if which & 0x80 == 0 {
        timestamp %= MAX_TIMESTAMP + 1;
    }
    let offset = i64::from(i16::from_le_bytes([control[13], control[14]])) % 301;
    let now = timestamp.saturating_add_signed(offset);

    let mut fields = rest.split(|&b| b == sep);
    let method = String::from_utf8_lossy(fields.next().unwrap_or_default()).into_owned();
    let target = String::from_utf8_lossy(fields.next().unwrap_or_default()).into_owned();
    let body = fields.next().unwrap_or_default();
    let secret = fields.next().unwrap_or_default();
    let client_id = String::from_utf8_lossy(fields.next().unwrap_or_default()).into_owned();

    let signer = match Signer::new(client_id.clone(), &Secret::new(secret)) {
        Ok(signer) => signer,
        Err(e) => {
            assert_eq!(e, Error::MalformedHeader(HeaderKind::ClientId));
            let b = client_id.as_bytes();
            assert!(b.is_empty() || b.len() > 128 || b.iter().any(|c| !(0x21..=0x7e).contains(c)));
            Signer::new("jk_fuzz", &Secret::new(secret)).unwrap()
        }
    };
    let client = signer.client_id().to_owned();
    let signed = signer.sign(&method, &target, body, timestamp);
    assert_eq!(signed.timestamp(), timestamp.to_string());

    // The signature is the HMAC of the string-to-sign, computed independently.
    let sts = string_to_sign(&method, target.as_bytes(), signed.timestamp(), body);
    assert_eq!(&hmac_oneshot(secret, &sts), signed.signature().as_bytes());
    assert_eq!(
        ContentHash::of(body).as_bytes()[..],
        Sha256::digest(body)[..]
    );

    let original = Request {
        method: method.clone().into_bytes(),
        target: target.clone().into_bytes(),
        body: body.to_vec(),
        timestamp: signed.timestamp().as_bytes().to_vec(),
        signature: signed.signature().to_hex().into_bytes(),
        client_id: client.clone().into_bytes(),
    };
    let verifier = Verifier::new();
    let query = Target::parse(&target).query();
    let pairs = query
        .split(|&b| b == b'&')
        .filter(|s| !s.is_empty())
        .count();
    let limits = Limits::default();
    let expected = if timestamp > MAX_TIMESTAMP {
        Err(Error::MalformedHeader(HeaderKind::Timestamp))
    } else if query.len() > limits.max_query_len {
        Err(Error::TooLarge(jg_hmac::LimitKind::QueryLength))
    } else if pairs > limits.max_query_pairs {
        Err(Error::TooLarge(jg_hmac::LimitKind::QueryPairs))
    } else {
        Ok(())
    };
    assert_eq!(original.verify(&verifier, secret, &client, now), expected);
    if expected.is_err() {
        return;
    }

    // One byte changed: accepted only if it is still the same request.
    let mut changed = original.clone();
    let field = changed.field(which);
    if field.is_empty() {
        field.push(mask);
    } else {
        let i = position % field.len();
        field[i] ^= mask;
    }
    if changed.verify(&verifier, secret, &client, now).is_ok() {
        let which = which % 6;
        assert!(
            !matches!(which, 2 | 3 | 5),
            "a changed body, timestamp or client id verified (field {which})"
        );
        assert_eq!(changed.client_id, original.client_id);
        let changed_sts = string_to_sign(
            &changed.method(),
            &changed.target,
            std::str::from_utf8(&changed.timestamp).unwrap(),
            &changed.body,
        );
        assert_eq!(changed_sts, sts, "a different string-to-sign verified");
        let sig = Signature::from_hex(std::str::from_utf8(&changed.signature).unwrap()).unwrap();
        assert_eq!(&sig, signed.signature(), "a different signature verified");
    }
});
