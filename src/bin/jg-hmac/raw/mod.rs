//! A captured HTTP/1.1 request, parsed from its raw bytes, for tools that sign, verify or
//! explain requests pasted by a person (the `jg-hmac` command-line tool uses it).
//!
//! [`parse`] is a pure function: bytes in, a [`RawRequest`] borrowing from them or a
//! [`RawError`] out. It does no I/O, never panics, and checks the [`RawLimits`] before
//! doing work proportional to the input.
//!
//! What it accepts:
//! - Line ends: CRLF or a bare LF, line by line. A CR anywhere else in the header
//!   section is refused (a classic request-smuggling ingredient).
//! - Empty lines before the request line are skipped (RFC 9112 §2.2).
//! - The request line `METHOD SP request-target SP HTTP/1.x`. The target is kept as raw
//!   bytes: non-ASCII bytes are allowed (the signature covers them as sent), spaces and
//!   control bytes are not, and an empty target is refused.
//! - Header fields `name: value`. The name must be a token with no space before the
//!   colon; the value is trimmed of spaces and tabs and otherwise kept as bytes, so that
//!   a verifier can judge it. Folded lines (obs-fold) are refused.
//! - The body: `Content-Length` (every copy equal), or `Transfer-Encoding: chunked`
//!   (decoded; chunk extensions ignored; trailer fields refused), or neither (no body).
//!   Both at once, or another transfer coding, are refused. Bytes after the body other
//!   than CR and LF (a pasted request often ends with an extra empty line) are refused,
//!   so a `Content-Length` that disagrees with the body is reported instead of silently
//!   cutting the body.

mod body;
mod error;
mod head;

use std::borrow::Cow;

use jg_hmac::{ContentHash, SignedRequest, Target};

pub use error::RawError;

use body::{decode_chunked, framing};
use head::{Lines, parse_header, parse_request_line};

/// Size limits for [`parse`].
///
/// `#[non_exhaustive]`: start from `RawLimits::default()` and set fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RawLimits {
    /// Most bytes in the header section: empty lines before the request line, the
    /// request line, the header fields and the empty line that ends them.
    /// Defaults to `65536` (64 KiB).
    pub max_head: usize,
    /// Most bytes of the body as framed on the wire (chunk-size lines included for a
    /// chunked body). Defaults to `10485760` (10 MiB).
    pub max_body: usize,
    /// Most header fields. Defaults to `256`.
    pub max_headers: usize,
}

impl Default for RawLimits {
    fn default() -> Self {
        Self {
            max_head: 64 * 1024,
            max_body: 10 * 1024 * 1024,
            max_headers: 256,
        }
    }
}

impl RawLimits {
    /// The most input bytes that [`parse`] can accept with these limits, plus one: read at
    /// most this many bytes, and anything longer is refused as too large without
    /// buffering it all.
    pub fn max_input(&self) -> usize {
        // Slack for CR/LF after the body, which is tolerated.
        self.max_head
            .saturating_add(self.max_body)
            .saturating_add(1024)
    }
}

/// How a line of the header section ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineEnding {
    /// `\r\n`, as HTTP/1.1 requires on the wire.
    Crlf,
    /// A bare `\n`, as in a request typed or pasted into a terminal.
    Lf,
}

impl LineEnding {
    /// The line end's bytes.
    pub const fn as_bytes(self) -> &'static [u8] {
        match self {
            Self::Crlf => b"\r\n",
            Self::Lf => b"\n",
        }
    }
}

/// How the body was framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// Neither `Content-Length` nor `Transfer-Encoding`: no body.
    None,
    /// `Content-Length` with this value.
    ContentLength(usize),
    /// `Transfer-Encoding: chunked`; [`RawRequest::body`] is the decoded body.
    Chunked,
}

/// One header field line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawHeader<'a> {
    line: &'a [u8],
    name: &'a str,
    value: &'a [u8],
    ending: LineEnding,
}

impl<'a> RawHeader<'a> {
    /// The field name, as sent (case kept).
    pub fn name(&self) -> &'a str {
        self.name
    }

    /// The field value, without the spaces and tabs around it.
    pub fn value(&self) -> &'a [u8] {
        self.value
    }

    /// The whole line as sent, without its line end.
    pub fn line(&self) -> &'a [u8] {
        self.line
    }

    /// Whether the field name is `name`, ASCII-case-insensitively.
    pub fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
    }
}

/// A parsed request; borrows from the input except for a decoded chunked body.
///
/// `Debug` shows the method, target, header names and body length, never header values
/// or the body (a captured request may carry credentials).
#[derive(Clone)]
pub struct RawRequest<'a> {
    request_line: &'a [u8],
    method: &'a str,
    target: &'a [u8],
    version: &'a str,
    line_ending: LineEnding,
    headers: Vec<RawHeader<'a>>,
    /// How the empty line that ends the header section ended.
    blank_line_ending: LineEnding,
    framing: Framing,
    wire_body: &'a [u8],
    body: Cow<'a, [u8]>,
}

impl core::fmt::Debug for RawRequest<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|h| h.name).collect();
        f.debug_struct("RawRequest")
            .field("method", &self.method)
            .field("target", &String::from_utf8_lossy(self.target))
            .field("version", &self.version)
            .field("headers", &names)
            .field("framing", &self.framing)
            .field("body_len", &self.body.len())
            .finish()
    }
}

impl<'a> RawRequest<'a> {
    /// The request line as sent, without its line end.
    pub fn request_line(&self) -> &'a [u8] {
        self.request_line
    }

    /// The method, as sent (a token: ASCII, case kept).
    pub fn method(&self) -> &'a str {
        self.method
    }

    /// The request-target, as raw bytes.
    pub fn target(&self) -> &'a [u8] {
        self.target
    }

    /// The request-target split into the signed path and the raw query.
    pub fn target_parts(&self) -> Target<'a> {
        Target::parse_bytes(self.target)
    }

    /// `HTTP/1.1` or `HTTP/1.0`.
    pub fn version(&self) -> &'a str {
        self.version
    }

    /// The request line's line end.
    pub fn line_ending(&self) -> LineEnding {
        self.line_ending
    }

    /// The header fields, in order, repeats included.
    pub fn headers(&self) -> &[RawHeader<'a>] {
        &self.headers
    }

    /// Every value of the header `name` (case-insensitive), in order.
    pub fn header_values<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'a [u8]> + 's {
        self.headers
            .iter()
            .filter(move |h| h.is(name))
            .map(|h| h.value)
    }

    /// How the body was framed.
    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// The body bytes: what is hashed (decoded, for a chunked body).
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The body as framed on the wire (chunk-size lines included for a chunked body).
    pub fn wire_body(&self) -> &'a [u8] {
        self.wire_body
    }

    /// SHA-256 of [`RawRequest::body`].
    pub fn content_hash(&self) -> ContentHash {
        ContentHash::of(&self.body)
    }

    /// The request re-serialized: the request line and every header line as sent (each
    /// with its own line end), minus the fields named in `remove` (case-insensitive), then
    /// the `add` fields (ending like the request line), the empty line and the body as
    /// framed on the wire. With nothing removed or added, this is the input without the
    /// empty lines before the request line and the CR/LF after the body.
    pub fn to_bytes_replacing(&self, remove: &[&str], add: &[(&str, &[u8])]) -> Vec<u8> {
        let eol = self.line_ending.as_bytes();
        let mut out = Vec::with_capacity(
            self.request_line.len() + 64 * (self.headers.len() + add.len()) + self.wire_body.len(),
        );
        out.extend_from_slice(self.request_line);
        out.extend_from_slice(eol);
        for header in &self.headers {
            if !remove.iter().any(|name| header.is(name)) {
                out.extend_from_slice(header.line);
                out.extend_from_slice(header.ending.as_bytes());
            }
        }
        for (name, value) in add {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(eol);
        }
        out.extend_from_slice(self.blank_line_ending.as_bytes());
        out.extend_from_slice(self.wire_body);
        out
    }
}

/// Parses one raw HTTP/1.x request (see the [module docs](self) for what is accepted).
///
/// # Errors
/// A [`RawError`] saying what is wrong and, for the header section, on which line.
pub fn parse<'a>(input: &'a [u8], limits: &RawLimits) -> Result<RawRequest<'a>, RawError> {
    let mut lines = Lines {
        input,
        pos: 0,
        limit: limits.max_head.min(input.len()),
        number: 0,
    };

    // Empty lines before the request line are skipped.
    let (request_line, line_ending) = loop {
        match lines.next_line() {
            Ok(([], _)) => continue,
            Ok(found) => break found,
            Err(RawError::IncompleteHead) if lines.rest_is_blank() => {
                return Err(if input.len() > limits.max_head {
                    RawError::HeadTooLarge {
                        limit: limits.max_head,
                    }
                } else {
                    RawError::Empty
                });
            }
            Err(e) => return Err(lines.or_too_large(e, limits)),
        }
    };
    let (method, target, version) = parse_request_line(request_line)?;

    let mut headers = Vec::new();
    let blank_line_ending = loop {
        let (line, ending) = lines
            .next_line()
            .map_err(|e| lines.or_too_large(e, limits))?;
        if line.is_empty() {
            break ending;
        }
        if headers.len() >= limits.max_headers {
            return Err(RawError::TooManyHeaders {
                limit: limits.max_headers,
            });
        }
        headers.push(parse_header(line, ending, lines.number)?);
    };

    let rest = input.get(lines.pos..).unwrap_or_default();
    let framing = framing(&headers, limits)?;
    let (wire_body, body, after) = match framing {
        Framing::None => (&b""[..], Cow::Borrowed(&b""[..]), rest),
        Framing::ContentLength(n) => {
            let body = rest.get(..n).ok_or(RawError::Truncated {
                expected: n,
                received: rest.len(),
            })?;
            (body, Cow::Borrowed(body), rest.get(n..).unwrap_or_default())
        }
        Framing::Chunked => {
            let (decoded, used) = decode_chunked(rest, limits.max_body)?;
            let (wire, after) = rest.split_at_checked(used).unwrap_or((rest, b""));
            (wire, Cow::Owned(decoded), after)
        }
    };
    if !is_blank(after) {
        return Err(if framing == Framing::None {
            RawError::BodyWithoutLength { count: after.len() }
        } else {
            RawError::ExtraBytes { count: after.len() }
        });
    }

    Ok(RawRequest {
        request_line,
        method,
        target,
        version,
        line_ending,
        headers,
        blank_line_ending,
        framing,
        wire_body,
        body,
    })
}

/// Only CR and LF (or nothing).
fn is_blank(bytes: &[u8]) -> bool {
    bytes.iter().all(|&b| b == b'\r' || b == b'\n')
}

impl<'a> From<&RawRequest<'a>> for SignedRequest<'a> {
    /// The method, the request-target and the header lines of a parsed request.
    fn from(request: &RawRequest<'a>) -> Self {
        SignedRequest::new(
            request.method(),
            request.target_parts(),
            request.headers().iter().map(|h| (h.name, h.value)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(super) fn p(input: &[u8]) -> Result<RawRequest<'_>, RawError> {
        parse(input, &RawLimits::default())
    }

    #[test]
    fn a_post_request_and_its_body_hash() {
        let raw = b"POST /v1/transactions/buy HTTP/1.1\nHost: api.justgold.me\n\
                    Content-Length: 41\n\n{\"amount\":\"5000\",\"transactionId\":\"12345\"}";
        let request = p(raw).unwrap();
        assert_eq!(request.method(), "POST");
        assert_eq!(request.target(), b"/v1/transactions/buy");
        assert_eq!(request.body().len(), 41);
        assert_eq!(
            request.content_hash().to_string(),
            "62950c2bd265b88926052417cc0df8accf5535079c3aa59e2bf2918eb3b5873d"
        );
        let signed = SignedRequest::from(&request);
        assert_eq!(signed.method(), "POST");
        assert_eq!(signed.target().path(), b"/v1/transactions/buy");
    }

    #[test]
    fn replacing_headers_keeps_the_line_ends() {
        let req = p(b"GET / HTTP/1.1\nX-Timestamp: 1\nAccept: */*\n\n").unwrap();
        let out = req.to_bytes_replacing(&["x-timestamp"], &[("X-Timestamp", b"2")]);
        assert_eq!(out, b"GET / HTTP/1.1\nAccept: */*\nX-Timestamp: 2\n\n");
        let limits = RawLimits::default();
        assert!(limits.max_input() > limits.max_head + limits.max_body);
    }

    #[test]
    fn limits() {
        let limits = RawLimits {
            max_head: 32,
            ..RawLimits::default()
        };
        let long = [&b"GET / HTTP/1.1\nA: "[..], &[b'a'; 40], b"\n\n"].concat();
        assert_eq!(
            parse(&long, &limits).unwrap_err(),
            RawError::HeadTooLarge { limit: 32 }
        );
        let blank = [b'\n'; 40];
        assert_eq!(
            parse(&blank, &limits).unwrap_err(),
            RawError::HeadTooLarge { limit: 32 }
        );
        let mut limits = RawLimits {
            max_headers: 2,
            ..RawLimits::default()
        };
        assert_eq!(
            parse(b"GET / HTTP/1.1\nA: 1\nB: 2\nC: 3\n\n", &limits).unwrap_err(),
            RawError::TooManyHeaders { limit: 2 }
        );
        limits.max_body = 3;
        assert_eq!(
            parse(b"POST / HTTP/1.1\nContent-Length: 4\n\nabcd", &limits).unwrap_err(),
            RawError::BodyTooLarge { limit: 3 }
        );
    }

    #[test]
    fn debug_hides_values_and_body() {
        let req =
            p(b"POST / HTTP/1.1\nX-Signature: deadbeefcafe\nContent-Length: 6\n\nsecret").unwrap();
        let shown = format!("{req:?}");
        assert!(
            !shown.contains("deadbeef") && !shown.contains("secret"),
            "{shown}"
        );
        assert!(shown.contains("X-Signature"));
    }

    proptest! {
        #[test]
        fn never_panics(input in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = p(&input);
        }

        #[test]
        fn never_panics_on_near_valid(
            head in "(GET|POST) /[a-z?=&%\\xff]{0,12} HTTP/1\\.[01]",
            fields in proptest::collection::vec("[A-Za-z-]{1,8}: ?[ -~]{0,10}", 0..4),
            te in any::<bool>(),
            body in proptest::collection::vec(any::<u8>(), 0..40),
            crlf in any::<bool>(),
        ) {
            let eol: &[u8] = if crlf { b"\r\n" } else { b"\n" };
            let mut raw = head.into_bytes();
            raw.extend_from_slice(eol);
            for f in fields {
                raw.extend_from_slice(f.as_bytes());
                raw.extend_from_slice(eol);
            }
            if te {
                raw.extend_from_slice(b"Transfer-Encoding: chunked");
                raw.extend_from_slice(eol);
            }
            raw.extend_from_slice(eol);
            raw.extend_from_slice(&body);
            if let Ok(req) = p(&raw) {
                // Re-serialized, it parses back to the same request.
                let again = req.to_bytes_replacing(&[], &[]);
                let back = p(&again).unwrap();
                prop_assert_eq!(back.request_line(), req.request_line());
                prop_assert_eq!(back.headers(), req.headers());
                prop_assert_eq!(back.body(), req.body());
                prop_assert!(again.len() <= raw.len());
            }
        }

        #[test]
        fn content_length_round_trip(
            body in proptest::collection::vec(any::<u8>(), 0..200),
            crlf in any::<bool>(),
        ) {
            let eol = if crlf { "\r\n" } else { "\n" };
            let mut raw = format!("PUT /u HTTP/1.1{eol}Content-Length: {}{eol}{eol}", body.len()).into_bytes();
            raw.extend_from_slice(&body);
            let req = p(&raw).unwrap();
            prop_assert_eq!(req.body(), &body[..]);
            prop_assert_eq!(req.to_bytes_replacing(&[], &[]), raw.clone());
        }

        #[test]
        fn mixed_line_ends_round_trip_exactly(
            endings in proptest::collection::vec(any::<bool>(), 4),
            body in proptest::collection::vec(any::<u8>(), 0..20),
        ) {
            let eol = |crlf: bool| if crlf { "\r\n" } else { "\n" };
            let mut raw = format!(
                "POST /m HTTP/1.1{}A: 1{}Content-Length: {}{}{}",
                eol(endings[0]), eol(endings[1]), body.len(), eol(endings[2]), eol(endings[3])
            ).into_bytes();
            raw.extend_from_slice(&body);
            let req = p(&raw).unwrap();
            prop_assert_eq!(req.to_bytes_replacing(&[], &[]), raw.clone());
        }

        #[test]
        fn chunked_round_trip(
            chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..30), 0..5),
        ) {
            let mut raw = b"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            for c in &chunks {
                raw.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
                raw.extend_from_slice(c);
                raw.extend_from_slice(b"\r\n");
            }
            raw.extend_from_slice(b"0\r\n\r\n");
            let req = p(&raw).unwrap();
            prop_assert_eq!(req.body(), &chunks.concat()[..]);
        }
    }
}
