//! Signing: a client id and a secret turned into the three header values.

use core::fmt;

use crate::canonical::CanonicalRequest;
use crate::error::{Error, HeaderKind};
use crate::secret::{KeyedMac, Secret};
use crate::signature::{ContentHash, Signature};
use crate::target::Target;

/// Signs requests for one client: holds the client id and the pre-keyed secret.
///
/// ```
/// use jg_hmac::{Secret, Signer};
/// let signer = Signer::new("jk_live_example", &Secret::from("s3cr3t_test_key_justgold"))?;
/// let headers = signer.sign("GET", "/v1/ping?z=two&z=three&version=1&a=hello", b"", 1735550160);
/// assert_eq!(headers.client_id(), "jk_live_example");
/// assert_eq!(headers.timestamp(), "1735550160");
/// assert_eq!(
///     headers.signature().to_hex(),
///     "fa86029249a12a9531e269ef8986cba153a9839d741f6f38e457c6eb96bede76"
/// );
/// # Ok::<(), jg_hmac::Error>(())
/// ```
#[derive(Clone)]
pub struct Signer {
    client_id: String,
    key: KeyedMac,
}

impl Signer {
    /// A signer for `client_id` with `secret`.
    ///
    /// # Errors
    /// [`Error::MalformedHeader`] when the client id could not be sent as a header that a
    /// verifier accepts: empty, longer than 128 bytes, or not visible ASCII.
    ///
    /// ```
    /// assert!(jg_hmac::Signer::new("has space", &"s".into()).is_err());
    /// ```
    pub fn new(client_id: impl Into<String>, secret: &Secret) -> Result<Self, Error> {
        let client_id = client_id.into();
        let bytes = client_id.as_bytes();
        if !crate::client_id::is_well_formed(bytes, crate::client_id::MAX_LEN) {
            return Err(Error::MalformedHeader(HeaderKind::ClientId));
        }
        Ok(Self {
            client_id,
            key: KeyedMac::new(secret),
        })
    }

    /// The client id sent in `X-Client-Id`.
    ///
    /// ```
    /// let signer = jg_hmac::Signer::new("jk_test_1", &"s".into())?;
    /// assert_eq!(signer.client_id(), "jk_test_1");
    /// # Ok::<(), jg_hmac::Error>(())
    /// ```
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// Signs `method` + `target` (path and optional raw query, as on the request line)
    /// + `body` (the exact bytes that will be sent) at `timestamp` (UNIX seconds).
    ///
    /// ```
    /// let signer = jg_hmac::Signer::new("jk_live_example", &"s3cr3t_test_key_justgold".into())?;
    /// let body = br#"{"amount":"5000","transactionId":"12345"}"#;
    /// let headers = signer.sign("POST", "/v1/transactions/buy", body, 1735550100);
    /// assert_eq!(
    ///     headers.signature().to_hex(),
    ///     "97b5a41c23cc09f798599e9475eb091c408e2fed941c54aef544c2a364ee76e7"
    /// );
    /// # Ok::<(), jg_hmac::Error>(())
    /// ```
    pub fn sign(&self, method: &str, target: &str, body: &[u8], timestamp: u64) -> SignedHeaders {
        let request = CanonicalRequest::new(method, Target::parse(target));
        self.sign_canonical(&request, &ContentHash::of(body), timestamp)
    }

    /// Signs a canonical request whose body hash is already known (streamed bodies, see
    /// [`BodyHasher`](crate::BodyHasher)).
    ///
    /// ```
    /// use jg_hmac::{CanonicalQuery, CanonicalRequest, ContentHash, Signer};
    /// let signer = Signer::new("jk_live_example", &"s3cr3t_test_key_justgold".into())?;
    /// let query = CanonicalQuery::from_pairs([("a", "hello"), ("version", "1"), ("z", "two"), ("z", "three")]);
    /// let request = CanonicalRequest::from_parts("GET", b"/v1/ping", query);
    /// let headers = signer.sign_canonical(&request, &ContentHash::EMPTY, 1735550160);
    /// assert!(headers.signature().to_hex().starts_with("fa860292"));
    /// # Ok::<(), jg_hmac::Error>(())
    /// ```
    pub fn sign_canonical(
        &self,
        request: &CanonicalRequest<'_>,
        content: &ContentHash,
        timestamp: u64,
    ) -> SignedHeaders {
        let timestamp = timestamp.to_string();
        let signature = request.sign_with(&self.key, timestamp.as_bytes(), content);
        SignedHeaders {
            client_id: self.client_id.clone(),
            timestamp,
            signature,
        }
    }
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("client_id", &self.client_id)
            .field("secret", &"[redacted]")
            .finish()
    }
}

/// The three header values that authenticate a request.
///
/// `Debug` shows the signature's first 8 hex digits only.
///
/// ```
/// let signer = jg_hmac::Signer::new("jk_live_example", &"secret".into())?;
/// let headers = signer.sign("GET", "/", b"", 1);
/// let shown = format!("{headers:?}");
/// assert!(!shown.contains(&headers.signature().to_hex()));
/// # Ok::<(), jg_hmac::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedHeaders {
    client_id: String,
    timestamp: String,
    signature: Signature,
}

impl SignedHeaders {
    /// The `X-Client-Id` value.
    ///
    /// ```
    /// # let h = jg_hmac::Signer::new("c", &"s".into())?.sign("GET", "/", b"", 1);
    /// assert_eq!(h.client_id(), "c");
    /// # Ok::<(), jg_hmac::Error>(())
    /// ```
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The `X-Timestamp` value (decimal UNIX seconds).
    ///
    /// ```
    /// # let h = jg_hmac::Signer::new("c", &"s".into())?.sign("GET", "/", b"", 42);
    /// assert_eq!(h.timestamp(), "42");
    /// # Ok::<(), jg_hmac::Error>(())
    /// ```
    pub fn timestamp(&self) -> &str {
        &self.timestamp
    }

    /// The signature; its [`Signature::to_hex`] is the `X-Signature` value.
    ///
    /// ```
    /// # let h = jg_hmac::Signer::new("c", &"s".into())?.sign("GET", "/", b"", 1);
    /// assert_eq!(h.signature().to_hex().len(), 64);
    /// # Ok::<(), jg_hmac::Error>(())
    /// ```
    pub fn signature(&self) -> &Signature {
        &self.signature
    }
}
