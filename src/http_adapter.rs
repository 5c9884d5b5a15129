//! Adapter for the `http` crate (1.x): sign and verify `http::Request`s.

use http::header::{HeaderName, HeaderValue};
use http::{Request, Uri};

use crate::canonical::CanonicalRequest;
use crate::signature::ContentHash;
use crate::signer::{SignedHeaders, Signer};
use crate::target::Target;

impl<'a> Target<'a> {
    /// The path and raw query of an [`http::Uri`], as sent.
    ///
    /// ```
    /// let uri: http::Uri = "https://api.justgold.me/v1/ping?a=1".parse().unwrap();
    /// let t = jg_hmac::Target::from_uri(&uri);
    /// assert_eq!((t.path(), t.query()), (&b"/v1/ping"[..], &b"a=1"[..]));
    /// ```
    pub fn from_uri(uri: &'a Uri) -> Self {
        Self::new(
            uri.path().as_bytes(),
            uri.query().unwrap_or_default().as_bytes(),
        )
    }
}

impl SignedHeaders {
    /// Sets `X-Client-Id`, `X-Timestamp` and `X-Signature` on `headers`, replacing any
    /// present (and removing an `X-Access-Key`, which could conflict). The signature
    /// value is marked sensitive, so `http`'s `Debug` hides it.
    ///
    /// ```
    /// let signer = jg_hmac::Signer::new("jk_live_example", &"secret".into())?;
    /// let mut headers = http::HeaderMap::new();
    /// signer.sign("GET", "/", b"", 1).apply_to(&mut headers);
    /// assert!(headers["x-signature"].is_sensitive());
    /// # Ok::<(), jg_hmac::Error>(())
    /// ```
    pub fn apply_to(&self, headers: &mut http::HeaderMap) {
        headers.remove("x-access-key");
        for (name, value, sensitive) in [
            ("x-client-id", self.client_id().to_owned(), false),
            ("x-timestamp", self.timestamp().to_owned(), false),
            ("x-signature", self.signature().to_hex(), true),
        ] {
            // Client ids are checked to be visible ASCII by `Signer::new`; timestamps are
            // digits and signatures hex, so these conversions cannot fail.
            if let Ok(mut value) = HeaderValue::try_from(value) {
                value.set_sensitive(sensitive);
                headers.insert(HeaderName::from_static(name), value);
            }
        }
    }
}

impl Signer {
    /// Signs an [`http::Request`] whose body bytes are in memory, at `timestamp`, and
    /// sets the three headers on it.
    ///
    /// ```
    /// use jg_hmac::Signer;
    /// let signer = Signer::new("jk_live_example", &"s3cr3t_test_key_justgold".into())?;
    /// let mut request = http::Request::get("/v1/ping?z=two&z=three&version=1&a=hello").body(Vec::new()).unwrap();
    /// signer.sign_request(&mut request, 1735550160);
    /// assert_eq!(request.headers()["x-timestamp"], "1735550160");
    /// assert_eq!(
    ///     request.headers()["x-signature"],
    ///     "fa86029249a12a9531e269ef8986cba153a9839d741f6f38e457c6eb96bede76"
    /// );
    /// # Ok::<(), jg_hmac::Error>(())
    /// ```
    pub fn sign_request<B: AsRef<[u8]>>(&self, request: &mut Request<B>, timestamp: u64) {
        let content = ContentHash::of(request.body().as_ref());
        self.sign_request_hashed(request, &content, timestamp);
    }

    /// Signs an [`http::Request`] whose body hash is already known (a streamed body
    /// hashed with [`BodyHasher`](crate::BodyHasher)).
    ///
    /// ```
    /// use jg_hmac::{ContentHash, Signer};
    /// let signer = Signer::new("jk_live_example", &"secret".into())?;
    /// let mut request = http::Request::post("/v1/upload").body(()).unwrap();
    /// signer.sign_request_hashed(&mut request, &ContentHash::of(b"streamed"), 1);
    /// assert!(request.headers().contains_key("x-signature"));
    /// # Ok::<(), jg_hmac::Error>(())
    /// ```
    pub fn sign_request_hashed<B>(
        &self,
        request: &mut Request<B>,
        content: &ContentHash,
        timestamp: u64,
    ) {
        let canonical =
            CanonicalRequest::new(request.method().as_str(), Target::from_uri(request.uri()));
        let signed = self.sign_canonical(&canonical, content, timestamp);
        signed.apply_to(request.headers_mut());
    }
}
