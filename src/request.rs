//! The request a verifier reads: one borrowed value, whatever the request came from.

use http::request::Parts;

use crate::headers::AuthHeaders;
use crate::target::Target;

/// A received request as JG-HMAC-SHA256 verification reads it: the method, the
/// request-target as sent, and the authentication headers (`X-Client-Id` or
/// `X-Access-Key`, `X-Timestamp`, `X-Signature`, `Content-Type`). It borrows from the
/// request and copies nothing; the body is given to the verifier separately, as its
/// [`ContentHash`](crate::ContentHash), because it may not have arrived yet.
///
/// Build it from what you have:
/// - an [`http::Request`] or its [`Parts`]: `SignedRequest::from(&request)`;
/// - anything else: [`SignedRequest::new`] with the method, the target and the header
///   lines as `(name, value)` pairs.
///
/// Header names match case-insensitively; every occurrence counts, so a repeated
/// authentication header is refused rather than one copy silently picked. Other headers
/// are ignored. `Debug` says which headers are present, never their values.
///
/// ```
/// use jg_hmac::{ContentHash, Credential, SignedRequest, Signer, SigningKey, Target, Verifier};
/// let secret: jg_hmac::Secret = "s3cr3t_test_key_justgold".into();
/// let store = move |id: &str| {
///     Some(std::sync::Arc::new(Credential::new(id).with_key(SigningKey::new("k1", &secret))))
/// };
/// let signer = Signer::new("jk_live_example", &"s3cr3t_test_key_justgold".into())?;
/// let sent = signer.sign("GET", "/v1/health/secure", b"", 1735550160);
/// let signature = sent.signature().to_hex();
/// let request = SignedRequest::new("GET", Target::parse("/v1/health/secure"), [
///     ("X-Client-Id", sent.client_id().as_bytes()),
///     ("X-Timestamp", sent.timestamp().as_bytes()),
///     ("X-Signature", signature.as_bytes()),
/// ]);
/// let verified = Verifier::new().verify(&store, &request, &ContentHash::EMPTY, 1735550160)?;
/// assert_eq!(verified.client_id(), "jk_live_example");
///
/// // The same from an http::Request:
/// let mut http_request = http::Request::get("/v1/health/secure").body(Vec::<u8>::new()).unwrap();
/// sent.apply_to(http_request.headers_mut());
/// let request = SignedRequest::from(&http_request);
/// assert!(Verifier::new().verify(&store, &request, &ContentHash::EMPTY, 1735550160).is_ok());
/// # Ok::<(), jg_hmac::Error>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct SignedRequest<'a> {
    method: &'a str,
    target: Target<'a>,
    pub(crate) headers: AuthHeaders<'a>,
}

impl<'a> SignedRequest<'a> {
    /// A request from its method, its request-target as sent, and its header lines.
    ///
    /// ```
    /// use jg_hmac::{SignedRequest, Target};
    /// let request = SignedRequest::new("GET", Target::parse("/v1/ping?a=1"), [
    ///     (&b"x-client-id"[..], &b"jk_live_example"[..]),
    ///     (b"Accept", b"*/*"),
    /// ]);
    /// assert_eq!(request.method(), "GET");
    /// assert_eq!(request.target().query(), b"a=1");
    /// ```
    pub fn new<I, N>(method: &'a str, target: Target<'a>, headers: I) -> Self
    where
        I: IntoIterator<Item = (N, &'a [u8])>,
        N: AsRef<[u8]>,
    {
        let mut collected = AuthHeaders::default();
        for (name, value) in headers {
            collected.push(name.as_ref(), value);
        }
        Self {
            method,
            target,
            headers: collected,
        }
    }

    /// The request method, as sent.
    ///
    /// ```
    /// let request = jg_hmac::SignedRequest::new("PUT", jg_hmac::Target::parse("/"), [("a", &b""[..])]);
    /// assert_eq!(request.method(), "PUT");
    /// ```
    pub fn method(&self) -> &'a str {
        self.method
    }

    /// The request-target, as sent: the path and raw query that were signed.
    ///
    /// ```
    /// let request = jg_hmac::SignedRequest::new("GET", jg_hmac::Target::parse("/a?b"), [("a", &b""[..])]);
    /// assert_eq!(request.target().path(), b"/a");
    /// ```
    pub fn target(&self) -> Target<'a> {
        self.target
    }
}

impl<'a> From<&'a Parts> for SignedRequest<'a> {
    /// The method, the URI's path and query, and the headers of `parts` (before its body
    /// is read).
    fn from(parts: &'a Parts) -> Self {
        Self::from_http(&parts.method, &parts.uri, &parts.headers)
    }
}

impl<'a, B> From<&'a http::Request<B>> for SignedRequest<'a> {
    fn from(request: &'a http::Request<B>) -> Self {
        Self::from_http(request.method(), request.uri(), request.headers())
    }
}

impl<'a> SignedRequest<'a> {
    /// From the `http` crate's pieces; the target may come from another URI than the
    /// request's own (the verifying layer's path as sent).
    pub(crate) fn from_http(
        method: &'a http::Method,
        uri: &'a http::Uri,
        headers: &'a http::HeaderMap,
    ) -> Self {
        Self::new(
            method.as_str(),
            Target::from_uri(uri),
            headers
                .iter()
                .map(|(name, value)| (name.as_str().as_bytes(), value.as_bytes())),
        )
    }
}
