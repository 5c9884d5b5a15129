//! Naming the mistake behind a signature mismatch: a support tool, never a verifier.
//!
//! [`diagnose`] takes a request whose `X-Signature` did not verify, and the client's
//! secret, and tries the typical mistakes of partner implementations one at a time (an
//! unsorted query, a decoded path, a lowercase method, CRLF line ends, a secret with a
//! trailing newline, another timestamp, ...). For each it rebuilds the string-to-sign the
//! way the mistaken signer would have, computes its HMAC and compares it in constant time
//! with the sent signature. The first mistake that reproduces the sent signature is the
//! [`Diagnosis`].
//!
//! It is pure (no I/O, no clock), its work is bounded (at most 601 HMACs for the timestamp
//! search, about 80 for everything else, and the query mistakes are only tried on a query
//! within the default limits of SPEC.md §10), and it decides nothing: a request that
//! does not verify stays refused whatever the diagnosis. It never runs in
//! [`Verifier`](crate::Verifier) or in the tower layer. Its result names a mistake; it
//! never holds the secret or the expected signature.
//!
//! ```
//! use jg_hmac::diagnose::{Diagnosis, Received, diagnose};
//! use jg_hmac::{CanonicalRequest, ContentHash, Secret, Target};
//!
//! let secret = Secret::from("s3cr3t_test_key_justgold");
//! // The partner signed the query in the order it was sent instead of sorting it.
//! let mistaken = "JG-HMAC-SHA256\n1735550160\nGET\n/v1/ping\nz=two&a=hello\n\
//!                 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
//! let sent = jg_hmac::diagnose::hmac(&secret, mistaken.as_bytes());
//!
//! let received = Received::new("GET", Target::parse("/v1/ping?z=two&a=hello"), "1735550160", b"");
//! let diagnosis = diagnose(&secret, &received, &sent);
//! assert_eq!(diagnosis, Diagnosis::QueryUnsorted);
//! assert_eq!(diagnosis.code(), "query_unsorted");
//! ```

use core::cmp::Ordering;
use core::fmt;

use hmac::Mac;

use crate::DEFAULT_WINDOW;
use crate::canonical::{ALGORITHM, CanonicalRequest};
use crate::credential::SigningKey;
use crate::secret::{KeyedMac, Secret};
use crate::signature::{BodyHasher, ContentHash, Signature};
use crate::target::Target;

/// The longest raw query whose mistakes are tried (SPEC.md §10's default limit).
const MAX_QUERY_LEN: usize = 8192;
/// The most query pairs whose mistakes are tried (SPEC.md §10's default limit).
const MAX_QUERY_PAIRS: usize = 256;
/// The most leading path segments dropped one after the other for `path_prefix`.
const MAX_PREFIX_SEGMENTS: usize = 32;

/// Every code [`Diagnosis::code`] can return, in the order the mistakes are tried
/// (after `none`; `unknown` last).
///
/// ```
/// assert!(jg_hmac::diagnose::CODES.contains(&"query_unsorted"));
/// assert_eq!(jg_hmac::diagnose::CODES.first(), Some(&"none"));
/// ```
pub const CODES: &[&str] = &[
    "none",
    "method_lowercase",
    "query_missing",
    "query_unsorted",
    "query_locale_order",
    "query_not_encoded",
    "path_decoded",
    "path_trailing_slash",
    "path_prefix",
    "body_hash_empty",
    "body_trailing_newline",
    "crlf_newlines",
    "indented_lines",
    "string_trailing_newline",
    "secret_whitespace",
    "timestamp_differs",
    "unknown",
];

/// A request as the verifier received it: what [`diagnose`] rebuilds the mistaken
/// strings-to-sign from.
///
/// ```
/// use jg_hmac::diagnose::Received;
/// use jg_hmac::Target;
/// let received = Received::new("POST", Target::parse("/v1/orders"), "1735550100", b"{}");
/// assert_eq!(received.timestamp(), "1735550100");
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Received<'a> {
    method: &'a str,
    target: Target<'a>,
    timestamp: &'a str,
    content: ContentHash,
    body: Option<&'a [u8]>,
}

impl<'a> Received<'a> {
    /// The request's method, request-target, `X-Timestamp` value (verbatim) and body.
    ///
    /// ```
    /// use jg_hmac::diagnose::Received;
    /// use jg_hmac::Target;
    /// let received = Received::new("GET", Target::parse("/v1/ping?a=1"), "1735550160", b"");
    /// assert_eq!(received.content_hash(), jg_hmac::ContentHash::EMPTY);
    /// ```
    pub fn new(method: &'a str, target: Target<'a>, timestamp: &'a str, body: &'a [u8]) -> Self {
        Self {
            method,
            target,
            timestamp,
            content: ContentHash::of(body),
            body: Some(body),
        }
    }

    /// A request whose body is not at hand, only its hash: the mistakes that need the
    /// body bytes (`body_trailing_newline`) are not tried.
    ///
    /// ```
    /// use jg_hmac::diagnose::Received;
    /// use jg_hmac::{ContentHash, Target};
    /// let hash = ContentHash::of(b"{}");
    /// let received = Received::with_content_hash("POST", Target::parse("/v1/orders"), "1735550100", hash);
    /// assert_eq!(received.content_hash(), hash);
    /// ```
    pub fn with_content_hash(
        method: &'a str,
        target: Target<'a>,
        timestamp: &'a str,
        content: ContentHash,
    ) -> Self {
        Self {
            method,
            target,
            timestamp,
            content,
            body: None,
        }
    }

    /// The `X-Timestamp` value, verbatim.
    ///
    /// ```
    /// let r = jg_hmac::diagnose::Received::new("GET", jg_hmac::Target::parse("/"), "017", b"");
    /// assert_eq!(r.timestamp(), "017");
    /// ```
    pub fn timestamp(&self) -> &'a str {
        self.timestamp
    }

    /// The body hash that is signed.
    ///
    /// ```
    /// let r = jg_hmac::diagnose::Received::new("GET", jg_hmac::Target::parse("/"), "1", b"");
    /// assert_eq!(r.content_hash(), jg_hmac::ContentHash::EMPTY);
    /// ```
    pub fn content_hash(&self) -> ContentHash {
        self.content
    }
}

/// Which typical mistake reproduces a sent signature. [`Diagnosis::code`] gives a stable
/// snake_case code; `Display` a sentence for people.
///
/// ```
/// use jg_hmac::diagnose::Diagnosis;
/// let d = Diagnosis::TimestampDiffers { signed: 1735550157, offset: -3 };
/// assert_eq!(d.code(), "timestamp_differs");
/// assert_eq!(
///     d.to_string(),
///     "signed with timestamp 1735550157, -3 s from the X-Timestamp sent: sign with the value you send"
/// );
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Diagnosis {
    /// The sent signature is the right one.
    None,
    /// No single mistake tried reproduces the sent signature (another secret, several
    /// mistakes at once, or one not on the list).
    Unknown,
    /// The method was signed in lowercase (line 3 is uppercased, SPEC.md §5.1).
    MethodLowercase,
    /// The query line was signed empty though the request has a query.
    QueryMissing,
    /// The query was signed in the order sent (canonically encoded, or as sent), not
    /// sorted.
    QueryUnsorted,
    /// The query was sorted case-insensitively, or by locale like JavaScript's
    /// `localeCompare` (SPEC.md §11 item 4), not byte by byte.
    QueryLocaleOrder,
    /// The query was signed with decoded keys and values, not percent-encoded ones.
    QueryNotEncoded,
    /// The path was signed percent-decoded.
    PathDecoded,
    /// The path was signed with a trailing slash more (`added`) or less than received.
    PathTrailingSlash {
        /// Whether the signed path had a `/` the received one lacks.
        added: bool,
    },
    /// The signed path lacks leading segments of the received one (a gateway or router
    /// base path).
    PathPrefix {
        /// How many leading segments were missing.
        segments: usize,
        /// How many bytes of the received path they are.
        prefix_len: usize,
    },
    /// The hash of an empty body was signed though the request has a body.
    BodyHashEmpty,
    /// The body was hashed with one trailing newline (LF or CRLF) more (`added`) or less
    /// than received.
    BodyTrailingNewline {
        /// Whether the signer's body had a newline the received one lacks.
        added: bool,
    },
    /// The string-to-sign's lines were joined with CRLF.
    CrlfNewlines,
    /// The string-to-sign was indented like the published GET example (SPEC.md §11
    /// item 1).
    IndentedLines,
    /// The string-to-sign ended with a newline.
    StringTrailingNewline,
    /// The secret was used with a trailing newline or surrounding spaces (or the
    /// secret given here has them and the signer's did not).
    SecretWhitespace,
    /// The signature is over another timestamp than the one sent, within the default
    /// window.
    TimestampDiffers {
        /// The timestamp that was signed.
        signed: u64,
        /// `signed` minus the `X-Timestamp` sent, in seconds.
        offset: i64,
    },
}

impl Diagnosis {
    /// The stable code: one of [`CODES`].
    ///
    /// ```
    /// assert_eq!(jg_hmac::diagnose::Diagnosis::CrlfNewlines.code(), "crlf_newlines");
    /// assert_eq!(jg_hmac::diagnose::Diagnosis::None.code(), "none");
    /// ```
    pub fn code(&self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Unknown => "unknown",
            Self::MethodLowercase => "method_lowercase",
            Self::QueryMissing => "query_missing",
            Self::QueryUnsorted => "query_unsorted",
            Self::QueryLocaleOrder => "query_locale_order",
            Self::QueryNotEncoded => "query_not_encoded",
            Self::PathDecoded => "path_decoded",
            Self::PathTrailingSlash { .. } => "path_trailing_slash",
            Self::PathPrefix { .. } => "path_prefix",
            Self::BodyHashEmpty => "body_hash_empty",
            Self::BodyTrailingNewline { .. } => "body_trailing_newline",
            Self::CrlfNewlines => "crlf_newlines",
            Self::IndentedLines => "indented_lines",
            Self::StringTrailingNewline => "string_trailing_newline",
            Self::SecretWhitespace => "secret_whitespace",
            Self::TimestampDiffers { .. } => "timestamp_differs",
        }
    }
}

impl fmt::Display for Diagnosis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::None => f.write_str("the sent signature matches"),
            Self::Unknown => f.write_str(
                "no single typical mistake reproduces the sent signature: check the secret, \
                 then diff the string-to-sign with the sender's",
            ),
            Self::MethodLowercase => {
                f.write_str("the method was signed in lowercase; line 3 is uppercase")
            }
            Self::QueryMissing => {
                f.write_str("the query line was signed empty, though the request has a query")
            }
            Self::QueryUnsorted => {
                f.write_str("the query was signed in the order sent, not sorted")
            }
            Self::QueryLocaleOrder => f.write_str(
                "the query was sorted case-insensitively or by locale (localeCompare), not \
                 byte by byte on the encoded keys and values",
            ),
            Self::QueryNotEncoded => f.write_str(
                "the query was signed with decoded keys and values; sign them percent-encoded",
            ),
            Self::PathDecoded => {
                f.write_str("the path was signed percent-decoded; sign it exactly as sent")
            }
            Self::PathTrailingSlash { added: true } => {
                f.write_str("the path was signed with a trailing slash the request does not have")
            }
            Self::PathTrailingSlash { added: false } => {
                f.write_str("the path was signed without the trailing slash the request has")
            }
            Self::PathPrefix { segments, .. } => write!(
                f,
                "the path was signed without its first {segments} segment{} (a gateway or \
                 base path?); sign the path the server receives",
                if segments == 1 { "" } else { "s" }
            ),
            Self::BodyHashEmpty => {
                f.write_str("the hash of an empty body was signed, though the request has a body")
            }
            Self::BodyTrailingNewline { added: true } => {
                f.write_str("the body was hashed with one trailing newline more than was sent")
            }
            Self::BodyTrailingNewline { added: false } => {
                f.write_str("the body was hashed with one trailing newline less than was sent")
            }
            Self::CrlfNewlines => {
                f.write_str("the string-to-sign lines were joined with CRLF; join them with LF")
            }
            Self::IndentedLines => f.write_str(
                "the string-to-sign was indented as printed in the published GET example \
                 (SPEC.md section 11, item 1); no line has leading spaces",
            ),
            Self::StringTrailingNewline => {
                f.write_str("the string-to-sign ended with a newline; there is none after line 6")
            }
            Self::SecretWhitespace => f.write_str(
                "the secret was used with a trailing newline or surrounding spaces; use its \
                 bytes exactly as issued",
            ),
            Self::TimestampDiffers { signed, offset } => write!(
                f,
                "signed with timestamp {signed}, {offset:+} s from the X-Timestamp sent: sign \
                 with the value you send"
            ),
        }
    }
}

/// The HMAC-SHA256 of `message` under `secret`: what a signer computes over its
/// string-to-sign, for building the signature of a mistaken string-to-sign in tests
/// and tools.
///
/// ```
/// use jg_hmac::{CanonicalRequest, ContentHash, Secret, Target};
/// let secret = Secret::from("s3cr3t_test_key_justgold");
/// let req = CanonicalRequest::new("GET", Target::parse("/v1/ping"));
/// let sts = req.string_to_sign_bytes("1735550160", &ContentHash::EMPTY);
/// assert_eq!(jg_hmac::diagnose::hmac(&secret, &sts), req.sign(&secret, "1735550160", &ContentHash::EMPTY));
/// ```
pub fn hmac(secret: &Secret, message: &[u8]) -> Signature {
    mac(&KeyedMac::new(secret), message)
}

fn mac(key: &KeyedMac, message: &[u8]) -> Signature {
    let mut mac = key.start();
    mac.update(message);
    Signature::from_bytes(mac.finalize().into_bytes().into())
}

/// Names the mistake that reproduces `sent`, trying each typical one in the order of
/// [`CODES`]: [`Diagnosis::None`] if `sent` is the right signature,
/// [`Diagnosis::Unknown`] if no mistake reproduces it. See the [module](self) docs.
///
/// ```
/// use jg_hmac::diagnose::{Diagnosis, Received, diagnose};
/// use jg_hmac::{CanonicalRequest, ContentHash, Secret, Target};
/// let secret = Secret::from("s3cr3t_test_key_justgold");
/// let target = Target::parse("/v1/ping?z=two&z=three&version=1&a=hello");
/// let right = CanonicalRequest::new("GET", target).sign(&secret, "1735550160", &ContentHash::EMPTY);
/// let received = Received::new("GET", target, "1735550160", b"");
/// assert_eq!(diagnose(&secret, &received, &right), Diagnosis::None);
///
/// // Signed ten seconds before the X-Timestamp it sends.
/// let early = CanonicalRequest::new("GET", target).sign(&secret, "1735550150", &ContentHash::EMPTY);
/// assert_eq!(
///     diagnose(&secret, &received, &early),
///     Diagnosis::TimestampDiffers { signed: 1735550150, offset: -10 }
/// );
///
/// // Another secret: no mistake explains it.
/// let other = CanonicalRequest::new("GET", target).sign(&Secret::from("x"), "1735550160", &ContentHash::EMPTY);
/// assert_eq!(diagnose(&secret, &received, &other), Diagnosis::Unknown);
/// ```
pub fn diagnose(secret: &Secret, received: &Received<'_>, sent: &Signature) -> Diagnosis {
    search(&KeyedMac::new(secret), Some(secret), received, sent)
}

/// [`diagnose`] for a verifier, which holds a [`SigningKey`] rather than the secret's
/// bytes: every mistake but `secret_whitespace` is tried. This is what the tower layer's
/// sandbox diagnostics use for the `hint` of an `invalid_signature` body.
///
/// ```
/// use jg_hmac::diagnose::{Diagnosis, Received};
/// use jg_hmac::{CanonicalRequest, ContentHash, Secret, SigningKey, Target};
/// let secret = Secret::from("s3cr3t_test_key_justgold");
/// let key = SigningKey::new("2026-11", &secret);
/// let received = Received::new("get", Target::parse("/v1/ping"), "1735550160", b"");
/// // The method was signed in lower case.
/// let mistaken = format!("JG-HMAC-SHA256\n1735550160\nget\n/v1/ping\n\n{}", ContentHash::EMPTY);
/// let lowercase = jg_hmac::diagnose::hmac(&secret, mistaken.as_bytes());
/// assert_eq!(jg_hmac::diagnose::diagnose_key(&key, &received, &lowercase), Diagnosis::MethodLowercase);
/// ```
pub fn diagnose_key(key: &SigningKey, received: &Received<'_>, sent: &Signature) -> Diagnosis {
    search(key.mac(), None, received, sent)
}

/// The search itself; the secret's whitespace variants need its bytes.
fn search(
    key: &KeyedMac,
    secret: Option<&Secret>,
    received: &Received<'_>,
    sent: &Signature,
) -> Diagnosis {
    let matches = |message: &[u8]| mac(key, message) == *sent;

    let canonical = CanonicalRequest::new(received.method, received.target);
    let ts = received.timestamp.as_bytes();
    let method = received.method.to_ascii_uppercase();
    let path = canonical.path();
    let query = canonical.query().to_string();
    let hash = received.content.to_string();
    let lines = Lines {
        timestamp: ts,
        method: method.as_bytes(),
        path,
        query: query.as_bytes(),
        hash: hash.as_bytes(),
    };
    let right = lines.join(b"\n");
    if matches(&right) {
        return Diagnosis::None;
    }
    // Tries a variant of one line; a variant equal to the right line cannot match.
    let differs_and_matches = |variant: &Lines<'_>, line: &[u8], right_line: &[u8]| {
        line != right_line && matches(&variant.join(b"\n"))
    };

    // Method.
    let lower = received.method.to_ascii_lowercase();
    if differs_and_matches(
        &Lines {
            method: lower.as_bytes(),
            ..lines
        },
        lower.as_bytes(),
        lines.method,
    ) {
        return Diagnosis::MethodLowercase;
    }

    // Query.
    let raw_query = received.target.query();
    if !query.is_empty()
        && matches(
            &Lines {
                query: b"",
                ..lines
            }
            .join(b"\n"),
        )
    {
        return Diagnosis::QueryMissing;
    }
    if raw_query.len() <= MAX_QUERY_LEN {
        let pairs = raw_pairs(raw_query);
        if pairs.len() <= MAX_QUERY_PAIRS
            && let Some(found) = diagnose_query(&pairs, raw_query, &lines, &differs_and_matches)
        {
            return found;
        }
    }

    // Path.
    let decoded = percent_decode(path);
    if differs_and_matches(
        &Lines {
            path: &decoded,
            ..lines
        },
        &decoded,
        path,
    ) {
        return Diagnosis::PathDecoded;
    }
    let with_slash = [path, b"/"].concat();
    if !path.ends_with(b"/")
        && matches(
            &Lines {
                path: &with_slash,
                ..lines
            }
            .join(b"\n"),
        )
    {
        return Diagnosis::PathTrailingSlash { added: true };
    }
    if let Some(without) = path.strip_suffix(b"/")
        && !without.is_empty()
        && matches(
            &Lines {
                path: without,
                ..lines
            }
            .join(b"\n"),
        )
    {
        return Diagnosis::PathTrailingSlash { added: false };
    }
    let slashes = path
        .iter()
        .enumerate()
        .skip(1)
        .filter(|&(_, &b)| b == b'/')
        .map(|(i, _)| i)
        .take(MAX_PREFIX_SEGMENTS);
    for (n, at) in slashes.enumerate() {
        let shorter = path.get(at..).unwrap_or_default();
        if matches(
            &Lines {
                path: shorter,
                ..lines
            }
            .join(b"\n"),
        ) {
            return Diagnosis::PathPrefix {
                segments: n + 1,
                prefix_len: at,
            };
        }
    }

    // Body.
    let empty = ContentHash::EMPTY.to_string();
    if received.content != ContentHash::EMPTY
        && matches(
            &Lines {
                hash: empty.as_bytes(),
                ..lines
            }
            .join(b"\n"),
        )
    {
        return Diagnosis::BodyHashEmpty;
    }
    if let Some(body) = received.body {
        for (variant, added) in body_newline_variants(body) {
            let hash = variant.to_string();
            if matches(
                &Lines {
                    hash: hash.as_bytes(),
                    ..lines
                }
                .join(b"\n"),
            ) {
                return Diagnosis::BodyTrailingNewline { added };
            }
        }
    }

    // The string-to-sign's layout.
    if matches(&lines.join(b"\r\n")) {
        return Diagnosis::CrlfNewlines;
    }
    let indented_query = [&b" "[..], lines.query].concat();
    let indented_hash = [&b" "[..], lines.hash].concat();
    let published = Lines {
        query: &indented_query,
        hash: &indented_hash,
        ..lines
    };
    if matches(&published.join(b"\n")) || matches(&lines.join(b"\n ")) {
        return Diagnosis::IndentedLines;
    }
    if matches(&[&right[..], b"\n"].concat()) || matches(&[&right[..], b"\r\n"].concat()) {
        return Diagnosis::StringTrailingNewline;
    }

    // The secret.
    let secrets = secret.map(|s| secret_variants(s.expose_secret()));
    for variant in secrets.into_iter().flatten() {
        if mac(&KeyedMac::new(&variant), &right) == *sent {
            return Diagnosis::SecretWhitespace;
        }
    }

    // The timestamp: the nearest first, within the default window; at most 601 HMACs.
    if let Some(sent_ts) = parse_timestamp(ts) {
        let reformatted = sent_ts.to_string();
        if reformatted.as_bytes() != ts
            && matches(
                &Lines {
                    timestamp: reformatted.as_bytes(),
                    ..lines
                }
                .join(b"\n"),
            )
        {
            return Diagnosis::TimestampDiffers {
                signed: sent_ts,
                offset: 0,
            };
        }
        for distance in 1..=DEFAULT_WINDOW {
            for signed in [sent_ts.checked_sub(distance), sent_ts.checked_add(distance)]
                .into_iter()
                .flatten()
            {
                let text = signed.to_string();
                if matches(
                    &Lines {
                        timestamp: text.as_bytes(),
                        ..lines
                    }
                    .join(b"\n"),
                ) {
                    let offset = i64::try_from(distance).unwrap_or(i64::MAX);
                    return Diagnosis::TimestampDiffers {
                        signed,
                        offset: if signed < sent_ts { -offset } else { offset },
                    };
                }
            }
        }
    }
    Diagnosis::Unknown
}

/// The five variable lines of a string-to-sign.
#[derive(Clone, Copy)]
struct Lines<'a> {
    timestamp: &'a [u8],
    method: &'a [u8],
    path: &'a [u8],
    query: &'a [u8],
    hash: &'a [u8],
}

impl Lines<'_> {
    fn join(&self, separator: &[u8]) -> Vec<u8> {
        let parts = [
            ALGORITHM.as_bytes(),
            self.timestamp,
            self.method,
            self.path,
            self.query,
            self.hash,
        ];
        let len = parts.iter().map(|p| p.len()).sum::<usize>() + 5 * separator.len();
        let mut out = Vec::with_capacity(len);
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(separator);
            }
            out.extend_from_slice(part);
        }
        out
    }
}

/// A raw query's pairs in the order sent: `&`-separated, empty segments dropped, cut at
/// the first `=` (SPEC.md §3.2 steps 2-3).
fn raw_pairs(raw: &[u8]) -> Vec<(&[u8], &[u8])> {
    raw.split(|&b| b == b'&')
        .filter(|s| !s.is_empty())
        .map(|segment| match segment.iter().position(|&b| b == b'=') {
            Some(eq) => (
                segment.get(..eq).unwrap_or_default(),
                segment.get(eq + 1..).unwrap_or_default(),
            ),
            None => (segment, &b""[..]),
        })
        .collect()
}

/// One pair decoded (`+` and `%XX`, SPEC.md §3.2 step 4) and re-encoded (step 5).
struct QueryPair {
    key: Vec<u8>,
    value: Vec<u8>,
    encoded_key: Vec<u8>,
    encoded_value: Vec<u8>,
}

fn join_pairs<'p>(pairs: impl Iterator<Item = (&'p [u8], &'p [u8])>) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, (key, value)) in pairs.enumerate() {
        if i > 0 {
            out.push(b'&');
        }
        out.extend_from_slice(key);
        out.push(b'=');
        out.extend_from_slice(value);
    }
    out
}

fn diagnose_query(
    raw: &[(&[u8], &[u8])],
    raw_query: &[u8],
    lines: &Lines<'_>,
    differs_and_matches: &impl Fn(&Lines<'_>, &[u8], &[u8]) -> bool,
) -> Option<Diagnosis> {
    if raw.is_empty() {
        return None;
    }
    let pairs: Vec<QueryPair> = raw
        .iter()
        .map(|&(k, v)| {
            let key = query_decode(k);
            let value = query_decode(v);
            QueryPair {
                encoded_key: query_encode(&key),
                encoded_value: query_encode(&value),
                key,
                value,
            }
        })
        .collect();
    let right = lines.query;
    let attempt = |query: &[u8]| differs_and_matches(&Lines { query, ..*lines }, query, right);
    fn encoded(p: &QueryPair) -> (&[u8], &[u8]) {
        (&p.encoded_key, &p.encoded_value)
    }
    fn decoded(p: &QueryPair) -> (&[u8], &[u8]) {
        (&p.key, &p.value)
    }

    // In the order sent: canonically encoded, or the raw query verbatim.
    if attempt(&join_pairs(pairs.iter().map(encoded))) || attempt(raw_query) {
        return Some(Diagnosis::QueryUnsorted);
    }

    // Case-insensitive ordinal order of the encoded pairs, then a locale-like collation
    // of the decoded ones (what `localeCompare` does, approximated: see `collation_key`).
    let mut order: Vec<&QueryPair> = pairs.iter().collect();
    order.sort_by(|a, b| {
        cmp_ignore_case(&a.encoded_key, &b.encoded_key)
            .then_with(|| cmp_ignore_case(&a.encoded_value, &b.encoded_value))
    });
    if attempt(&join_pairs(order.iter().map(|p| encoded(p)))) {
        return Some(Diagnosis::QueryLocaleOrder);
    }
    order.sort_by_cached_key(|p| (collation_key(&p.key), collation_key(&p.value)));
    if attempt(&join_pairs(order.iter().map(|p| encoded(p)))) {
        return Some(Diagnosis::QueryLocaleOrder);
    }

    // Decoded keys and values: in the canonical order, or sorted as decoded bytes.
    let mut order: Vec<&QueryPair> = pairs.iter().collect();
    order.sort_by(|a, b| {
        (&a.encoded_key, &a.encoded_value).cmp(&(&b.encoded_key, &b.encoded_value))
    });
    if attempt(&join_pairs(order.iter().map(|p| decoded(p)))) {
        return Some(Diagnosis::QueryNotEncoded);
    }
    order.sort_by(|a, b| (&a.key, &a.value).cmp(&(&b.key, &b.value)));
    if attempt(&join_pairs(order.iter().map(|p| decoded(p)))) {
        return Some(Diagnosis::QueryNotEncoded);
    }
    None
}

fn cmp_ignore_case(a: &[u8], b: &[u8]) -> Ordering {
    a.iter()
        .map(u8::to_ascii_lowercase)
        .cmp(b.iter().map(u8::to_ascii_lowercase))
}

/// An approximation of the Unicode root collation that `localeCompare` applies: spaces
/// and punctuation before digits before letters, letters compared without case first
/// (lowercase before uppercase only when that is the only difference), then by bytes.
fn collation_key(bytes: &[u8]) -> (Vec<(u8, u32)>, Vec<bool>, Vec<u8>) {
    let text = String::from_utf8_lossy(bytes);
    let mut primary = Vec::new();
    let mut case = Vec::new();
    for c in text.chars() {
        let class = if c.is_whitespace() {
            0
        } else if c.is_ascii_punctuation() {
            1
        } else if c.is_ascii_digit() {
            2
        } else if c.is_alphabetic() {
            3
        } else {
            4
        };
        let base = c.to_lowercase().next().unwrap_or(c);
        primary.push((class, u32::from(base)));
        case.push(c.is_uppercase());
    }
    (primary, case, bytes.to_vec())
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// `%XX` to its byte (a lone `%` stays); with `plus`, `+` to a space too.
fn decode(bytes: &[u8], plus: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%'
            && let (Some(hi), Some(lo)) = (
                bytes.get(i + 1).copied().and_then(hex_value),
                bytes.get(i + 2).copied().and_then(hex_value),
            )
        {
            out.push(hi << 4 | lo);
            i += 3;
            continue;
        }
        out.push(if plus && b == b'+' { b' ' } else { b });
        i += 1;
    }
    out
}

fn query_decode(bytes: &[u8]) -> Vec<u8> {
    decode(bytes, true)
}

fn percent_decode(path: &[u8]) -> Vec<u8> {
    decode(path, false)
}

fn query_encode(bytes: &[u8]) -> Vec<u8> {
    let digit = |n: u8| if n < 10 { b'0' + n } else { b'A' + n - 10 };
    let mut out = Vec::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'%', digit(b >> 4), digit(b & 15)]);
        }
    }
    out
}

/// The body hashes of one trailing newline more or less: `(hash, added)`.
fn body_newline_variants(body: &[u8]) -> Vec<(ContentHash, bool)> {
    let with = |suffix: &[u8]| {
        let mut hasher = BodyHasher::new();
        hasher.update(body);
        hasher.update(suffix);
        hasher.finish()
    };
    let mut out = vec![(with(b"\n"), true), (with(b"\r\n"), true)];
    if let Some(shorter) = body.strip_suffix(b"\n") {
        out.push((ContentHash::of(shorter), false));
        if let Some(shorter) = shorter.strip_suffix(b"\r") {
            out.push((ContentHash::of(shorter), false));
        }
    }
    out
}

/// The secret with a trailing newline, with surrounding spaces, or trimmed.
fn secret_variants(secret: &[u8]) -> Vec<Secret> {
    let around = |before: &[u8], after: &[u8]| Secret::from([before, secret, after].concat());
    let mut out = vec![
        around(b"", b"\n"),
        around(b"", b"\r\n"),
        around(b"", b" "),
        around(b" ", b""),
        around(b" ", b" "),
    ];
    let trimmed = secret.trim_ascii();
    if trimmed.len() != secret.len() && !trimmed.is_empty() {
        out.push(Secret::new(trimmed));
    }
    out
}

/// An `X-Timestamp` of 1 to 18 ASCII digits (SPEC.md §5.2).
fn parse_timestamp(ts: &[u8]) -> Option<u64> {
    if ts.is_empty()
        || ts.len() > crate::headers::MAX_TIMESTAMP_DIGITS
        || !ts.iter().all(u8::is_ascii_digit)
    {
        return None;
    }
    core::str::from_utf8(ts).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "s3cr3t_test_key_justgold";

    fn sign(sts: &str) -> Signature {
        hmac(&Secret::from(SECRET), sts.as_bytes())
    }

    #[test]
    fn the_timestamp_search_stops_at_the_window() {
        let received = Received::new("GET", Target::parse("/"), "1000", b"");
        let at = |ts: u64| {
            CanonicalRequest::new("GET", Target::parse("/")).sign(
                &Secret::from(SECRET),
                &ts.to_string(),
                &ContentHash::EMPTY,
            )
        };
        let secret = Secret::from(SECRET);
        assert_eq!(
            diagnose(&secret, &received, &at(1300)),
            Diagnosis::TimestampDiffers {
                signed: 1300,
                offset: 300
            }
        );
        assert_eq!(
            diagnose(&secret, &received, &at(700)),
            Diagnosis::TimestampDiffers {
                signed: 700,
                offset: -300
            }
        );
        assert_eq!(diagnose(&secret, &received, &at(1301)), Diagnosis::Unknown);
        // Near zero, no underflow.
        let received = Received::new("GET", Target::parse("/"), "3", b"");
        assert_eq!(
            diagnose(&secret, &received, &at(0)),
            Diagnosis::TimestampDiffers {
                signed: 0,
                offset: -3
            }
        );
        // Leading zeros dropped by the signer.
        let received = Received::new("GET", Target::parse("/"), "0042", b"");
        assert_eq!(
            diagnose(&secret, &received, &at(42)),
            Diagnosis::TimestampDiffers {
                signed: 42,
                offset: 0
            }
        );
    }

    #[test]
    fn locale_order_puts_lowercase_first() {
        let received = Received::new("GET", Target::parse("/?B=2&a=1&_x=3"), "1", b"");
        let hash = ContentHash::EMPTY.to_string();
        // localeCompare: punctuation first, then letters without case.
        let sent = sign(&format!("JG-HMAC-SHA256\n1\nGET\n/\n_x=3&a=1&B=2\n{hash}"));
        assert_eq!(
            diagnose(&Secret::from(SECRET), &received, &sent),
            Diagnosis::QueryLocaleOrder
        );
    }

    #[test]
    fn every_code_is_listed() {
        for d in [
            Diagnosis::None,
            Diagnosis::Unknown,
            Diagnosis::MethodLowercase,
            Diagnosis::QueryMissing,
            Diagnosis::QueryUnsorted,
            Diagnosis::QueryLocaleOrder,
            Diagnosis::QueryNotEncoded,
            Diagnosis::PathDecoded,
            Diagnosis::PathTrailingSlash { added: true },
            Diagnosis::PathPrefix {
                segments: 1,
                prefix_len: 4,
            },
            Diagnosis::BodyHashEmpty,
            Diagnosis::BodyTrailingNewline { added: false },
            Diagnosis::CrlfNewlines,
            Diagnosis::IndentedLines,
            Diagnosis::StringTrailingNewline,
            Diagnosis::SecretWhitespace,
            Diagnosis::TimestampDiffers {
                signed: 1,
                offset: 1,
            },
        ] {
            assert!(CODES.contains(&d.code()), "{}", d.code());
            assert!(!d.to_string().is_empty());
        }
    }

    #[test]
    fn oversized_queries_are_not_searched() {
        let query = "a=1&".repeat(MAX_QUERY_PAIRS + 1);
        let target = format!("/?{query}");
        let received = Received::new("GET", Target::parse(&target), "1", b"");
        let hash = ContentHash::EMPTY.to_string();
        let unsorted = format!(
            "JG-HMAC-SHA256\n1\nGET\n/\n{}\n{hash}",
            query.trim_end_matches('&')
        );
        // Unsorted here is the sorted order too: it is the right signature.
        assert_eq!(
            diagnose(&Secret::from(SECRET), &received, &sign(&unsorted)),
            Diagnosis::None
        );
        let missing = format!("JG-HMAC-SHA256\n1\nGET\n/\n\n{hash}");
        assert_eq!(
            diagnose(&Secret::from(SECRET), &received, &sign(&missing)),
            Diagnosis::QueryMissing
        );
    }
}
