//! The canonical request and its string-to-sign.

use hmac::Mac;

use crate::query::CanonicalQuery;
use crate::secret::{KeyedMac, Secret};
use crate::signature::{ContentHash, Signature};
use crate::sink::{Flat, MacSink, Sink};
use crate::target::Target;

/// First line of every string-to-sign.
pub(crate) const ALGORITHM: &str = "JG-HMAC-SHA256";

/// What a JG-HMAC-SHA256 signature covers, apart from the timestamp and the body hash:
/// the method, the raw path and the canonical query.
///
/// The string-to-sign is
///
/// ```text
/// JG-HMAC-SHA256\n{timestamp}\n{METHOD}\n{path}\n{canonical_query}\n{content_sha256}
/// ```
///
/// with no trailing newline. The signing and verifying paths stream it into the MAC;
/// [`CanonicalRequest::string_to_sign`] builds it as a `String` for display and diffing.
///
/// ```
/// use jg_hmac::{CanonicalRequest, ContentHash, Secret, Target};
/// let req = CanonicalRequest::new("GET", Target::parse("/v1/ping?z=two&z=three&version=1&a=hello"));
/// assert_eq!(
///     req.string_to_sign("1735550160", &ContentHash::EMPTY),
///     "JG-HMAC-SHA256\n1735550160\nGET\n/v1/ping\na=hello&version=1&z=three&z=two\n\
///      e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
/// );
/// let sig = req.sign(&Secret::from("s3cr3t_test_key_justgold"), "1735550160", &ContentHash::EMPTY);
/// assert_eq!(sig.to_hex(), "fa86029249a12a9531e269ef8986cba153a9839d741f6f38e457c6eb96bede76");
/// ```
#[derive(Clone, Debug)]
pub struct CanonicalRequest<'a> {
    method: &'a str,
    path: &'a [u8],
    query: CanonicalQuery<'a>,
}

impl<'a> CanonicalRequest<'a> {
    /// From a method and a request-target; the query is canonicalized with no size limit.
    ///
    /// ```
    /// let req = jg_hmac::CanonicalRequest::new("post", jg_hmac::Target::parse("/v1/orders"));
    /// assert!(req.string_to_sign("1", &jg_hmac::ContentHash::EMPTY).contains("\nPOST\n"));
    /// ```
    pub fn new(method: &'a str, target: Target<'a>) -> Self {
        Self::from_parts(
            method,
            target.path(),
            CanonicalQuery::parse_bytes(target.query()),
        )
    }

    /// From a method, a raw path (see [`Target`]) and a canonical query built by the
    /// caller, for instance from pairs with [`CanonicalQuery::from_pairs`].
    ///
    /// ```
    /// use jg_hmac::{CanonicalQuery, CanonicalRequest};
    /// let q = CanonicalQuery::from_pairs([("a", "hello")]);
    /// let req = CanonicalRequest::from_parts("GET", b"/v1/ping", q);
    /// assert!(req.string_to_sign("1", &jg_hmac::ContentHash::EMPTY).contains("\na=hello\n"));
    /// ```
    pub fn from_parts(method: &'a str, path: &'a [u8], query: CanonicalQuery<'a>) -> Self {
        let path: &[u8] = if path.is_empty() { b"/" } else { path };
        Self {
            method,
            path,
            query,
        }
    }

    /// The canonical query.
    ///
    /// ```
    /// let req = jg_hmac::CanonicalRequest::new("GET", jg_hmac::Target::parse("/?b=1&a=2"));
    /// assert_eq!(req.query().to_string(), "a=2&b=1");
    /// ```
    pub fn query(&self) -> &CanonicalQuery<'a> {
        &self.query
    }

    /// The signed path.
    ///
    /// ```
    /// let req = jg_hmac::CanonicalRequest::new("GET", jg_hmac::Target::parse("/a%2Fb"));
    /// assert_eq!(req.path(), b"/a%2Fb");
    /// ```
    pub fn path(&self) -> &'a [u8] {
        self.path
    }

    /// Streams the string-to-sign into `sink`.
    pub(crate) fn write<S: Sink>(&self, sink: &mut S, timestamp: &[u8], content: &ContentHash) {
        sink.put(ALGORITHM.as_bytes());
        sink.put(b"\n");
        sink.put(timestamp);
        sink.put(b"\n");
        let method = self.method.as_bytes();
        if method.iter().any(u8::is_ascii_lowercase) {
            for b in method {
                sink.put(&[b.to_ascii_uppercase()]);
            }
        } else {
            sink.put(method);
        }
        sink.put(b"\n");
        sink.put(self.path);
        sink.put(b"\n");
        self.query.write(sink);
        sink.put(b"\n");
        sink.put(&content.hex());
    }

    /// The string-to-sign as bytes (the path or query may hold bytes that are not UTF-8
    /// only if the request-target did).
    ///
    /// ```
    /// let req = jg_hmac::CanonicalRequest::new("GET", jg_hmac::Target::parse("/"));
    /// assert!(req.string_to_sign_bytes("1", &jg_hmac::ContentHash::EMPTY).starts_with(b"JG-HMAC-SHA256\n1\nGET\n/\n\n"));
    /// ```
    pub fn string_to_sign_bytes(&self, timestamp: &str, content: &ContentHash) -> Vec<u8> {
        let mut out = Vec::with_capacity(128 + self.path.len());
        self.write(&mut out, timestamp.as_bytes(), content);
        out
    }

    /// The string-to-sign, for showing to a person or diffing against a partner's.
    /// Bytes that are not UTF-8 (possible only in a raw path) are replaced by U+FFFD here;
    /// use [`CanonicalRequest::string_to_sign_bytes`] for the exact bytes.
    ///
    /// ```
    /// let req = jg_hmac::CanonicalRequest::new("GET", jg_hmac::Target::parse("/"));
    /// assert_eq!(req.string_to_sign("1", &jg_hmac::ContentHash::EMPTY).lines().count(), 6);
    /// ```
    pub fn string_to_sign(&self, timestamp: &str, content: &ContentHash) -> String {
        String::from_utf8_lossy(&self.string_to_sign_bytes(timestamp, content)).into_owned()
    }

    /// Signs with a secret. `timestamp` is the exact `X-Timestamp` value.
    ///
    /// For repeated signing with the same secret, [`Signer`](crate::Signer) keys the MAC
    /// once instead of per call.
    ///
    /// ```
    /// use jg_hmac::{CanonicalRequest, ContentHash, Secret, Target};
    /// let req = CanonicalRequest::new("POST", Target::parse("/v1/orders"));
    /// let hash = ContentHash::from_hex("faaa1f00ee99cf6afdc2ee9ded75dcdeee2870f06e5ee23b9a886d73e1c6dfe8").unwrap();
    /// let sig = req.sign(&Secret::from("s3cr3t_test_key_justgold"), "1735550100", &hash);
    /// assert_eq!(sig.to_hex(), "e462fd8fae45c69a8eb9f73dcddeb949962ae89a5d6ff66ca33461a8e119ec89");
    /// ```
    pub fn sign(&self, secret: &Secret, timestamp: &str, content: &ContentHash) -> Signature {
        self.sign_with(&KeyedMac::new(secret), timestamp.as_bytes(), content)
    }

    #[inline]
    pub(crate) fn sign_with(
        &self,
        key: &KeyedMac,
        timestamp: &[u8],
        content: &ContentHash,
    ) -> Signature {
        StringToSign::new(self, timestamp, content).sign(key)
    }

    /// The whole string-to-sign written into `out`, when it fits and its query was parsed
    /// (not built from pairs); its length. `None` otherwise: the caller streams it
    /// with [`CanonicalRequest::write`].
    #[inline(always)]
    fn write_flat(&self, out: &mut [u8], timestamp: &[u8], content: &ContentHash) -> Option<usize> {
        // Constant pieces are joined so that each is a single fixed-size copy.
        const HEAD: &[u8] = b"JG-HMAC-SHA256\n";
        let method = self.method.as_bytes();
        if method.iter().any(u8::is_ascii_lowercase) {
            return None;
        }
        let mut out = Flat::new(out);
        out.put(HEAD)?;
        out.put(timestamp)?;
        out.put(b"\n")?;
        out.put(method)?;
        out.put(b"\n")?;
        out.put(self.path)?;
        out.put(b"\n")?;
        let query = self.query.write_flat(out.rest())?;
        out.advance(query);
        out.put(b"\n")?;
        out.put(&content.hex())?;
        Some(out.written().len())
    }
}

/// Longest string-to-sign assembled on the stack; a longer one is streamed.
const FLAT_LEN: usize = 256;

/// A string-to-sign ready to be signed with one key or several: assembled once on the
/// stack when it fits (see [`CanonicalRequest::write_flat`]), so that each key's MAC takes
/// it in a single update; streamed into each MAC otherwise.
pub(crate) struct StringToSign<'r, 'a> {
    request: &'r CanonicalRequest<'a>,
    timestamp: &'r [u8],
    content: &'r ContentHash,
    flat: [u8; FLAT_LEN],
    len: Option<usize>,
}

impl<'r, 'a> StringToSign<'r, 'a> {
    #[inline(always)]
    pub(crate) fn new(
        request: &'r CanonicalRequest<'a>,
        timestamp: &'r [u8],
        content: &'r ContentHash,
    ) -> Self {
        let mut flat = [0u8; FLAT_LEN];
        let len = request.write_flat(&mut flat, timestamp, content);
        Self {
            request,
            timestamp,
            content,
            flat,
            len,
        }
    }

    /// The MAC of the string-to-sign under `key`.
    #[inline]
    pub(crate) fn sign(&self, key: &KeyedMac) -> Signature {
        let mut mac = key.start();
        if let Some(flat) = self.len.and_then(|len| self.flat.get(..len)) {
            mac.update(flat);
        } else {
            let mut sink = MacSink::new(&mut mac);
            self.request.write(&mut sink, self.timestamp, self.content);
            sink.flush();
        }
        Signature::from_bytes(mac.finalize().into_bytes().into())
    }
}
