//! What verification yields: a request that passed the checks needing no secret
//! ([`Prepared`]), and an authenticated one ([`Verified`]).

use std::sync::Arc;

use crate::canonical::CanonicalRequest;
use crate::credential::{Credential, SigningKey};
use crate::signature::{ContentHash, Signature};

/// A request that passed every check needing no secret; the input to
/// [`Verifier::finish`](crate::Verifier::finish). Borrows from the request; allocation-free for up to 32 query
/// pairs.
///
/// ```
/// use jg_hmac::{ContentHash, SignedRequest, Target, Verifier};
/// let sig = "fa86029249a12a9531e269ef8986cba153a9839d741f6f38e457c6eb96bede76";
/// let request = SignedRequest::new("GET", Target::parse("/v1/health/secure"), [
///     ("X-Access-Key", &b"jk_live_example"[..]),
///     ("X-Timestamp", b"1735550160"),
///     ("X-Signature", sig.as_bytes()),
/// ]);
/// let prepared = Verifier::new().prepare(&request, 1735550160)?;
/// assert_eq!(prepared.client_id(), "jk_live_example");
/// assert_eq!(prepared.timestamp(), 1735550160);
/// // What the server signs, for diffing against the partner's string-to-sign:
/// assert!(prepared.string_to_sign(&ContentHash::EMPTY).contains("\n/v1/health/secure\n"));
/// # Ok::<(), jg_hmac::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Prepared<'a> {
    pub(crate) client_id: &'a str,
    pub(crate) timestamp_raw: &'a [u8],
    pub(crate) timestamp: u64,
    pub(crate) signature: Signature,
    pub(crate) request: CanonicalRequest<'a>,
    pub(crate) body_must_be_empty: bool,
}

impl<'a> Prepared<'a> {
    /// The client id to look the credential up by (not yet authenticated).
    ///
    /// ```
    /// fn show(p: &jg_hmac::Prepared<'_>) -> String {
    ///     p.client_id().to_owned()
    /// }
    /// ```
    pub fn client_id(&self) -> &'a str {
        self.client_id
    }

    /// The `X-Timestamp` value, in UNIX seconds.
    ///
    /// ```
    /// fn show(p: &jg_hmac::Prepared<'_>) -> String {
    ///     p.timestamp().to_string()
    /// }
    /// ```
    pub fn timestamp(&self) -> u64 {
        self.timestamp
    }

    /// The signature the request carries (not yet checked).
    ///
    /// ```
    /// fn show(p: &jg_hmac::Prepared<'_>) -> String {
    ///     p.signature().short_hex()
    /// }
    /// ```
    pub fn signature(&self) -> &Signature {
        &self.signature
    }

    /// The canonical request the verifier rebuilt.
    ///
    /// ```
    /// fn show(p: &jg_hmac::Prepared<'_>) -> String {
    ///     p.canonical_request().query().to_string()
    /// }
    /// ```
    pub fn canonical_request(&self) -> &CanonicalRequest<'a> {
        &self.request
    }

    /// The string-to-sign the verifier computed for this request and body hash. It holds
    /// no secret: show it to an operator after `invalid_signature` to diff against the
    /// partner's.
    ///
    /// ```
    /// fn show(p: &jg_hmac::Prepared<'_>) -> String {
    ///     p.string_to_sign(&jg_hmac::ContentHash::EMPTY)
    /// }
    /// ```
    pub fn string_to_sign(&self, content: &ContentHash) -> String {
        self.request.string_to_sign(self.timestamp_text(), content)
    }

    /// The `X-Timestamp` text as sent (digits only: it parsed).
    pub(crate) fn timestamp_text(&self) -> &'a str {
        core::str::from_utf8(self.timestamp_raw).unwrap_or_default()
    }
}

/// A verified request: the authenticated credential and which of its keys matched.
///
/// ```
/// use std::sync::Arc;
/// use jg_hmac::{ContentHash, Credential, SignedRequest, SigningKey, Signer, Target, Verifier};
/// let cred = Arc::new(Credential::new("jk_live_example")
///     .with_key(SigningKey::new("2025", &"old".into()))
///     .with_key(SigningKey::new("2026", &"new".into())));
/// let lookup = move |_: &str| Some(cred.clone());
/// let signed = Signer::new("jk_live_example", &"new".into())?.sign("GET", "/", b"", 100);
/// let sig = signed.signature().to_hex();
/// let request = SignedRequest::new("GET", Target::parse("/"), [
///     ("X-Client-Id", signed.client_id().as_bytes()),
///     ("X-Timestamp", signed.timestamp().as_bytes()),
///     ("X-Signature", sig.as_bytes()),
/// ]);
/// let ok = Verifier::new().verify(&lookup, &request, &ContentHash::EMPTY, 100)?;
/// assert_eq!((ok.client_id(), ok.key_id()), ("jk_live_example", "2026"));
/// # Ok::<(), jg_hmac::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Verified {
    credential: Arc<Credential>,
    key_index: usize,
    timestamp: u64,
    signature: Signature,
}

impl Verified {
    /// `key_index` is the position in `credential.keys()` of the key that matched.
    pub(crate) fn new(
        credential: Arc<Credential>,
        key_index: usize,
        timestamp: u64,
        signature: Signature,
    ) -> Self {
        Self {
            credential,
            key_index,
            timestamp,
            signature,
        }
    }

    /// The authenticated client id.
    ///
    /// ```
    /// fn show(v: &jg_hmac::Verified) -> String {
    ///     v.client_id().to_owned()
    /// }
    /// ```
    pub fn client_id(&self) -> &str {
        self.credential.client_id()
    }

    /// The id of the key that matched.
    ///
    /// ```
    /// fn show(v: &jg_hmac::Verified) -> String {
    ///     v.key_id().to_owned()
    /// }
    /// ```
    pub fn key_id(&self) -> &str {
        self.credential
            .keys()
            .get(self.key_index)
            .map_or("", SigningKey::id)
    }

    /// The credential, as the lookup returned it.
    ///
    /// ```
    /// fn show(v: &jg_hmac::Verified) -> String {
    ///     v.credential().scopes().join(",")
    /// }
    /// ```
    pub fn credential(&self) -> &Arc<Credential> {
        &self.credential
    }

    /// The request's timestamp (UNIX seconds).
    ///
    /// ```
    /// fn show(v: &jg_hmac::Verified) -> String {
    ///     v.timestamp().to_string()
    /// }
    /// ```
    pub fn timestamp(&self) -> u64 {
        self.timestamp
    }

    /// The request's signature, e.g. for a replay guard.
    ///
    /// ```
    /// fn show(v: &jg_hmac::Verified) -> String {
    ///     v.signature().short_hex()
    /// }
    /// ```
    pub fn signature(&self) -> &Signature {
        &self.signature
    }
}
