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
//!
//! ```
//! use jg_hmac::raw::{RawLimits, parse};
//! let raw = b"POST /v1/transactions/buy HTTP/1.1\nHost: api.justgold.me\n\
//!             Content-Length: 41\n\n{\"amount\":\"5000\",\"transactionId\":\"12345\"}";
//! let request = parse(raw, &RawLimits::default())?;
//! assert_eq!(request.method(), "POST");
//! assert_eq!(request.target(), b"/v1/transactions/buy");
//! assert_eq!(request.body().len(), 41);
//! assert_eq!(
//!     request.content_hash().to_string(),
//!     "62950c2bd265b88926052417cc0df8accf5535079c3aa59e2bf2918eb3b5873d"
//! );
//! # Ok::<(), jg_hmac::raw::RawError>(())
//! ```

use std::borrow::Cow;

use crate::request::SignedRequest;
use crate::signature::ContentHash;
use crate::target::Target;

/// Size limits for [`parse`].
///
/// `#[non_exhaustive]`: start from `RawLimits::default()` and set fields.
///
/// ```
/// let mut limits = jg_hmac::raw::RawLimits::default();
/// limits.max_body = 1024;
/// assert_eq!(limits.max_head, 64 * 1024);
/// ```
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
    ///
    /// ```
    /// let limits = jg_hmac::raw::RawLimits::default();
    /// assert!(limits.max_input() > limits.max_head + limits.max_body);
    /// ```
    pub fn max_input(&self) -> usize {
        // Slack for CR/LF after the body, which is tolerated.
        self.max_head
            .saturating_add(self.max_body)
            .saturating_add(1024)
    }
}

/// Why raw bytes are not a request [`parse`] accepts. The `Display` form is one line that
/// says what to fix.
///
/// ```
/// use jg_hmac::raw::{RawError, RawLimits, parse};
/// let err = parse(b"GET / HTTP/1.1\r\nHost: x\r\n", &RawLimits::default()).unwrap_err();
/// assert_eq!(err, RawError::IncompleteHead);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RawError {
    /// The input is empty or holds only empty lines.
    #[error("no request: the input is empty")]
    Empty,
    /// The header section is larger than [`RawLimits::max_head`].
    #[error("header section larger than {limit} bytes")]
    HeadTooLarge {
        /// The limit.
        limit: usize,
    },
    /// More header fields than [`RawLimits::max_headers`].
    #[error("more than {limit} header fields")]
    TooManyHeaders {
        /// The limit.
        limit: usize,
    },
    /// The input ends before the empty line that ends the header section.
    #[error("truncated: the header section does not end with an empty line")]
    IncompleteHead,
    /// A carriage return that is not part of a CRLF line end.
    #[error("line {line}: carriage return (CR) not followed by LF")]
    BareCr {
        /// The 1-based line number in the header section.
        line: usize,
    },
    /// The request line is not `METHOD SP request-target SP HTTP/1.x`.
    #[error("bad request line: {0}")]
    RequestLine(&'static str),
    /// A header field line is not `name: value`.
    #[error("line {line}: bad header field: {reason}")]
    Header {
        /// The 1-based line number in the header section (the request line is line 1).
        line: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// A `Content-Length` that is not digits, or copies that disagree.
    #[error("bad Content-Length: {0}")]
    ContentLength(&'static str),
    /// Both `Content-Length` and `Transfer-Encoding`: servers disagree on which to use.
    #[error(
        "both Content-Length and Transfer-Encoding: a server may read the body either way; remove one"
    )]
    LengthAndTransferEncoding,
    /// A transfer coding other than a single `chunked`.
    #[error("Transfer-Encoding other than `chunked` is not supported: decode the body first")]
    TransferEncoding,
    /// The body is larger than [`RawLimits::max_body`].
    #[error("body larger than {limit} bytes")]
    BodyTooLarge {
        /// The limit.
        limit: usize,
    },
    /// Fewer body bytes than `Content-Length` says.
    #[error("truncated body: Content-Length is {expected} but only {received} bytes follow")]
    Truncated {
        /// The `Content-Length`.
        expected: usize,
        /// The bytes present after the header section.
        received: usize,
    },
    /// Bytes after the body, other than CR and LF.
    #[error(
        "{count} bytes after the body: Content-Length (or the chunked framing) does not match the body"
    )]
    ExtraBytes {
        /// How many bytes follow the body.
        count: usize,
    },
    /// Bytes after the header section of a request with neither `Content-Length` nor
    /// `Transfer-Encoding`, which has no body.
    #[error(
        "{count} bytes follow the header section but there is no Content-Length: add `Content-Length: {count}` if they are the body"
    )]
    BodyWithoutLength {
        /// How many bytes follow the header section.
        count: usize,
    },
    /// A malformed chunked body.
    #[error("bad chunked body: {0}")]
    Chunked(&'static str),
}

/// How a line of the header section ended.
///
/// ```
/// use jg_hmac::raw::{LineEnding, RawLimits, parse};
/// let req = parse(b"GET / HTTP/1.1\n\n", &RawLimits::default())?;
/// assert_eq!(req.line_ending(), LineEnding::Lf);
/// assert_eq!(LineEnding::Crlf.as_bytes(), b"\r\n");
/// # Ok::<(), jg_hmac::raw::RawError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineEnding {
    /// `\r\n`, as HTTP/1.1 requires on the wire.
    Crlf,
    /// A bare `\n`, as in a request typed or pasted into a terminal.
    Lf,
}

impl LineEnding {
    /// The line end's bytes.
    ///
    /// ```
    /// assert_eq!(jg_hmac::raw::LineEnding::Lf.as_bytes(), b"\n");
    /// ```
    pub const fn as_bytes(self) -> &'static [u8] {
        match self {
            Self::Crlf => b"\r\n",
            Self::Lf => b"\n",
        }
    }
}

/// How the body was framed.
///
/// ```
/// use jg_hmac::raw::{Framing, RawLimits, parse};
/// let req = parse(b"GET / HTTP/1.1\r\n\r\n", &RawLimits::default())?;
/// assert_eq!(req.framing(), Framing::None);
/// # Ok::<(), jg_hmac::raw::RawError>(())
/// ```
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
///
/// ```
/// use jg_hmac::raw::{RawLimits, parse};
/// let req = parse(b"GET / HTTP/1.1\r\nAccept:  */* \r\n\r\n", &RawLimits::default())?;
/// let h = &req.headers()[0];
/// assert_eq!((h.name(), h.value()), ("Accept", &b"*/*"[..]));
/// assert_eq!(h.line(), b"Accept:  */* ");
/// # Ok::<(), jg_hmac::raw::RawError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawHeader<'a> {
    line: &'a [u8],
    name: &'a str,
    value: &'a [u8],
    ending: LineEnding,
}

impl<'a> RawHeader<'a> {
    /// The field name, as sent (case kept).
    ///
    /// ```
    /// # let req = jg_hmac::raw::parse(b"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", &Default::default())?;
    /// assert_eq!(req.headers()[0].name(), "Accept");
    /// # Ok::<(), jg_hmac::raw::RawError>(())
    /// ```
    pub fn name(&self) -> &'a str {
        self.name
    }

    /// The field value, without the spaces and tabs around it.
    ///
    /// ```
    /// # let req = jg_hmac::raw::parse(b"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", &Default::default())?;
    /// assert_eq!(req.headers()[0].value(), b"*/*");
    /// # Ok::<(), jg_hmac::raw::RawError>(())
    /// ```
    pub fn value(&self) -> &'a [u8] {
        self.value
    }

    /// The whole line as sent, without its line end.
    ///
    /// ```
    /// # let req = jg_hmac::raw::parse(b"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", &Default::default())?;
    /// assert_eq!(req.headers()[0].line(), b"Accept: */*");
    /// # Ok::<(), jg_hmac::raw::RawError>(())
    /// ```
    pub fn line(&self) -> &'a [u8] {
        self.line
    }

    /// Whether the field name is `name`, ASCII-case-insensitively.
    ///
    /// ```
    /// # let req = jg_hmac::raw::parse(b"GET / HTTP/1.1\nx-timestamp: 1\n\n", &Default::default())?;
    /// assert!(req.headers()[0].is("X-Timestamp"));
    /// # Ok::<(), jg_hmac::raw::RawError>(())
    /// ```
    pub fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
    }
}

/// A parsed request; borrows from the input except for a decoded chunked body.
///
/// `Debug` shows the method, target, header names and body length, never header values
/// or the body (a captured request may carry credentials).
///
/// ```
/// use jg_hmac::raw::{RawLimits, parse};
/// let raw = b"GET /v1/ping?z=two&a=hello HTTP/1.1\r\nX-Timestamp: 1735550160\r\n\r\n";
/// let req = parse(raw, &RawLimits::default())?;
/// assert_eq!(req.target_parts().query(), b"z=two&a=hello");
/// assert_eq!(req.header_values("x-timestamp").collect::<Vec<_>>(), [&b"1735550160"[..]]);
/// # Ok::<(), jg_hmac::raw::RawError>(())
/// ```
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
    ///
    /// ```
    /// # let req = jg_hmac::raw::parse(b"POST /v1/orders?b=1 HTTP/1.1\r\nX-Timestamp: 1\r\nContent-Length: 2\r\n\r\nhi", &Default::default())?;
    /// assert_eq!(req.request_line(), b"POST /v1/orders?b=1 HTTP/1.1");
    /// # Ok::<(), jg_hmac::raw::RawError>(())
    /// ```
    pub fn request_line(&self) -> &'a [u8] {
        self.request_line
    }

    /// The method, as sent (a token: ASCII, case kept).
    ///
    /// ```
    /// # let req = jg_hmac::raw::parse(b"POST /v1/orders?b=1 HTTP/1.1\r\nX-Timestamp: 1\r\nContent-Length: 2\r\n\r\nhi", &Default::default())?;
    /// assert_eq!(req.method(), "POST");
    /// # Ok::<(), jg_hmac::raw::RawError>(())
    /// ```
    pub fn method(&self) -> &'a str {
        self.method
    }

    /// The request-target, as raw bytes.
    ///
    /// ```
    /// # let req = jg_hmac::raw::parse(b"POST /v1/orders?b=1 HTTP/1.1\r\nX-Timestamp: 1\r\nContent-Length: 2\r\n\r\nhi", &Default::default())?;
    /// assert_eq!(req.target(), b"/v1/orders?b=1");
    /// # Ok::<(), jg_hmac::raw::RawError>(())
    /// ```
    pub fn target(&self) -> &'a [u8] {
        self.target
    }

    /// The request-target split into the signed path and the raw query.
    ///
    /// ```
    /// # let req = jg_hmac::raw::parse(b"POST /v1/orders?b=1 HTTP/1.1\r\nX-Timestamp: 1\r\nContent-Length: 2\r\n\r\nhi", &Default::default())?;
    /// assert_eq!(req.target_parts().path(), b"/v1/orders");
    /// # Ok::<(), jg_hmac::raw::RawError>(())
    /// ```
    pub fn target_parts(&self) -> Target<'a> {
        Target::parse_bytes(self.target)
    }

    /// `HTTP/1.1` or `HTTP/1.0`.
    ///
    /// ```
    /// # let req = jg_hmac::raw::parse(b"POST /v1/orders?b=1 HTTP/1.1\r\nX-Timestamp: 1\r\nContent-Length: 2\r\n\r\nhi", &Default::default())?;
    /// assert_eq!(req.version(), "HTTP/1.1");
    /// # Ok::<(), jg_hmac::raw::RawError>(())
    /// ```
    pub fn version(&self) -> &'a str {
        self.version
    }

    /// The request line's line end.
    ///
    /// ```
    /// # let req = jg_hmac::raw::parse(b"POST /v1/orders?b=1 HTTP/1.1\r\nX-Timestamp: 1\r\nContent-Length: 2\r\n\r\nhi", &Default::default())?;
    /// assert_eq!(req.line_ending(), jg_hmac::raw::LineEnding::Crlf);
    /// # Ok::<(), jg_hmac::raw::RawError>(())
    /// ```
    pub fn line_ending(&self) -> LineEnding {
        self.line_ending
    }

    /// The header fields, in order, repeats included.
    ///
    /// ```
    /// # let req = jg_hmac::raw::parse(b"POST /v1/orders?b=1 HTTP/1.1\r\nX-Timestamp: 1\r\nContent-Length: 2\r\n\r\nhi", &Default::default())?;
    /// assert_eq!(req.headers()[0].name(), "X-Timestamp");
    /// # Ok::<(), jg_hmac::raw::RawError>(())
    /// ```
    pub fn headers(&self) -> &[RawHeader<'a>] {
        &self.headers
    }

    /// Every value of the header `name` (case-insensitive), in order.
    ///
    /// ```
    /// # let req = jg_hmac::raw::parse(b"POST /v1/orders?b=1 HTTP/1.1\r\nX-Timestamp: 1\r\nContent-Length: 2\r\n\r\nhi", &Default::default())?;
    /// assert_eq!(req.header_values("content-length").next(), Some(&b"2"[..]));
    /// # Ok::<(), jg_hmac::raw::RawError>(())
    /// ```
    pub fn header_values<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'a [u8]> + 's {
        self.headers
            .iter()
            .filter(move |h| h.is(name))
            .map(|h| h.value)
    }

    /// How the body was framed.
    ///
    /// ```
    /// # let req = jg_hmac::raw::parse(b"POST /v1/orders?b=1 HTTP/1.1\r\nX-Timestamp: 1\r\nContent-Length: 2\r\n\r\nhi", &Default::default())?;
    /// assert_eq!(req.framing(), jg_hmac::raw::Framing::ContentLength(2));
    /// # Ok::<(), jg_hmac::raw::RawError>(())
    /// ```
    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// The body bytes: what is hashed (decoded, for a chunked body).
    ///
    /// ```
    /// # let req = jg_hmac::raw::parse(b"POST /v1/orders?b=1 HTTP/1.1\r\nX-Timestamp: 1\r\nContent-Length: 2\r\n\r\nhi", &Default::default())?;
    /// assert_eq!(req.body(), b"hi");
    /// # Ok::<(), jg_hmac::raw::RawError>(())
    /// ```
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The body as framed on the wire (chunk-size lines included for a chunked body).
    ///
    /// ```
    /// # let req = jg_hmac::raw::parse(b"POST /v1/orders?b=1 HTTP/1.1\r\nX-Timestamp: 1\r\nContent-Length: 2\r\n\r\nhi", &Default::default())?;
    /// assert_eq!(req.wire_body(), b"hi");
    /// # Ok::<(), jg_hmac::raw::RawError>(())
    /// ```
    pub fn wire_body(&self) -> &'a [u8] {
        self.wire_body
    }

    /// SHA-256 of [`RawRequest::body`].
    ///
    /// ```
    /// # let req = jg_hmac::raw::parse(b"POST /v1/orders?b=1 HTTP/1.1\r\nX-Timestamp: 1\r\nContent-Length: 2\r\n\r\nhi", &Default::default())?;
    /// assert_eq!(req.content_hash(), jg_hmac::ContentHash::of(b"hi"));
    /// # Ok::<(), jg_hmac::raw::RawError>(())
    /// ```
    pub fn content_hash(&self) -> ContentHash {
        ContentHash::of(&self.body)
    }

    /// The request re-serialized: the request line and every header line as sent (each
    /// with its own line end), minus the fields named in `remove` (case-insensitive), then
    /// the `add` fields (ending like the request line), the empty line and the body as
    /// framed on the wire. With nothing removed or added, this is the input without the
    /// empty lines before the request line and the CR/LF after the body.
    ///
    /// ```
    /// use jg_hmac::raw::parse;
    /// let req = parse(b"GET / HTTP/1.1\nX-Timestamp: 1\nAccept: */*\n\n", &Default::default())?;
    /// let out = req.to_bytes_replacing(&["x-timestamp"], &[("X-Timestamp", b"2")]);
    /// assert_eq!(out, b"GET / HTTP/1.1\nAccept: */*\nX-Timestamp: 2\n\n");
    /// # Ok::<(), jg_hmac::raw::RawError>(())
    /// ```
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
///
/// ```
/// use jg_hmac::raw::{RawError, RawLimits, parse};
/// let limits = RawLimits::default();
/// assert!(parse(b"GET /v1/ping HTTP/1.1\r\n\r\n", &limits).is_ok());
/// assert_eq!(
///     parse(b"POST / HTTP/1.1\nContent-Length: 5\n\nab", &limits).unwrap_err(),
///     RawError::Truncated { expected: 5, received: 2 }
/// );
/// ```
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

struct Lines<'a> {
    input: &'a [u8],
    pos: usize,
    /// End of the header section's allowed bytes.
    limit: usize,
    number: usize,
}

impl<'a> Lines<'a> {
    /// The next line without its end, and how it ended.
    fn next_line(&mut self) -> Result<(&'a [u8], LineEnding), RawError> {
        let window = self.input.get(self.pos..self.limit).unwrap_or_default();
        let newline = window
            .iter()
            .position(|&b| b == b'\n')
            .ok_or(RawError::IncompleteHead)?;
        self.number += 1;
        let raw = window.get(..newline).unwrap_or_default();
        self.pos += newline + 1;
        let (line, ending) = match raw.strip_suffix(b"\r") {
            Some(line) => (line, LineEnding::Crlf),
            None => (raw, LineEnding::Lf),
        };
        if line.contains(&b'\r') {
            return Err(RawError::BareCr { line: self.number });
        }
        Ok((line, ending))
    }

    fn rest_is_blank(&self) -> bool {
        is_blank(self.input.get(self.pos..).unwrap_or_default())
    }

    /// An incomplete head that stopped at the size limit is a head too large.
    fn or_too_large(&self, e: RawError, limits: &RawLimits) -> RawError {
        if e == RawError::IncompleteHead && self.input.len() > limits.max_head {
            RawError::HeadTooLarge {
                limit: limits.max_head,
            }
        } else {
            e
        }
    }
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

fn token(bytes: &[u8]) -> Option<&str> {
    if bytes.is_empty() || !bytes.iter().all(|&b| is_tchar(b)) {
        return None;
    }
    core::str::from_utf8(bytes).ok()
}

fn parse_request_line(line: &[u8]) -> Result<(&str, &[u8], &str), RawError> {
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(RawError::RequestLine(
            "expected `METHOD SP request-target SP HTTP/1.1`, separated by single spaces",
        ));
    };
    let method = token(method).ok_or(RawError::RequestLine(
        "the method is not a token (letters, digits, !#$%&'*+-.^_`|~)",
    ))?;
    if target.is_empty() {
        return Err(RawError::RequestLine("empty request-target"));
    }
    if target.iter().any(|&b| b < 0x21 || b == 0x7f) {
        return Err(RawError::RequestLine(
            "the request-target contains a control byte or a tab",
        ));
    }
    let version = match version {
        b"HTTP/1.1" => "HTTP/1.1",
        b"HTTP/1.0" => "HTTP/1.0",
        _ => {
            return Err(RawError::RequestLine(
                "the version is not HTTP/1.1 or HTTP/1.0 (convert HTTP/2 captures to HTTP/1.1 form)",
            ));
        }
    };
    Ok((method, target, version))
}

fn parse_header(line: &[u8], ending: LineEnding, number: usize) -> Result<RawHeader<'_>, RawError> {
    if line.first().is_some_and(|&b| b == b' ' || b == b'\t') {
        return Err(RawError::Header {
            line: number,
            reason: "starts with whitespace (folded header lines are not supported)",
        });
    }
    let Some(colon) = line.iter().position(|&b| b == b':') else {
        return Err(RawError::Header {
            line: number,
            reason: "no colon",
        });
    };
    let (name, value) = line.split_at_checked(colon).unwrap_or((line, b""));
    let name = token(name).ok_or(RawError::Header {
        line: number,
        reason: "the name is empty, has a space before the colon, or is not a token",
    })?;
    let value = value.get(1..).unwrap_or_default();
    let value = trim_ows(value);
    Ok(RawHeader {
        line,
        name,
        value,
        ending,
    })
}

fn trim_ows(mut value: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = value {
        value = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = value {
        value = rest;
    }
    value
}

fn framing(headers: &[RawHeader<'_>], limits: &RawLimits) -> Result<Framing, RawError> {
    let mut length: Option<usize> = None;
    let mut chunked = false;
    let mut has_te = false;
    for header in headers {
        if header.is("content-length") {
            let n = parse_length(header.value)?;
            if length.is_some_and(|m| m != n) {
                return Err(RawError::ContentLength("copies with different values"));
            }
            length = Some(n);
        } else if header.is("transfer-encoding") {
            has_te = true;
            for coding in header.value.split(|&b| b == b',') {
                let coding = trim_ows(coding);
                if coding.is_empty() {
                    continue;
                }
                if chunked || !coding.eq_ignore_ascii_case(b"chunked") {
                    return Err(RawError::TransferEncoding);
                }
                chunked = true;
            }
        }
    }
    match (length, has_te) {
        (Some(_), true) => Err(RawError::LengthAndTransferEncoding),
        (None, true) if chunked => Ok(Framing::Chunked),
        (None, true) => Err(RawError::TransferEncoding),
        (Some(n), false) if n > limits.max_body => Err(RawError::BodyTooLarge {
            limit: limits.max_body,
        }),
        (Some(n), false) => Ok(Framing::ContentLength(n)),
        (None, false) => Ok(Framing::None),
    }
}

fn parse_length(value: &[u8]) -> Result<usize, RawError> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return Err(RawError::ContentLength("expected decimal digits"));
    }
    value.iter().try_fold(0usize, |acc, d| {
        acc.checked_mul(10)
            .and_then(|acc| acc.checked_add(usize::from(d - b'0')))
            .ok_or(RawError::ContentLength("too large"))
    })
}

/// Decodes a chunked body; returns the body and how many input bytes it took.
fn decode_chunked(input: &[u8], max_body: usize) -> Result<(Vec<u8>, usize), RawError> {
    let too_large = RawError::BodyTooLarge { limit: max_body };
    let mut body = Vec::new();
    let mut pos = 0usize;
    loop {
        if pos > max_body {
            return Err(too_large);
        }
        let line = chunk_line(input, &mut pos)?;
        let size_field = line.split(|&b| b == b';').next().unwrap_or_default();
        let size = parse_chunk_size(trim_ows(size_field))?;
        if size == 0 {
            break;
        }
        if pos.saturating_add(size) > max_body {
            return Err(too_large);
        }
        let end = pos
            .checked_add(size)
            .ok_or(RawError::Chunked("chunk size too large"))?;
        let data = input
            .get(pos..end)
            .ok_or(RawError::Chunked("truncated chunk data"))?;
        body.extend_from_slice(data);
        pos = end;
        if !chunk_line(input, &mut pos)?.is_empty() {
            return Err(RawError::Chunked(
                "chunk data longer than its size (no line end after it)",
            ));
        }
    }
    // Trailer section: only the empty line that ends it is accepted.
    if !chunk_line(input, &mut pos)?.is_empty() {
        return Err(RawError::Chunked("trailer fields are not supported"));
    }
    if pos > max_body {
        return Err(too_large);
    }
    Ok((body, pos))
}

fn chunk_line<'a>(input: &'a [u8], pos: &mut usize) -> Result<&'a [u8], RawError> {
    let rest = input.get(*pos..).unwrap_or_default();
    let newline = rest
        .iter()
        .position(|&b| b == b'\n')
        .ok_or(RawError::Chunked("truncated: a chunk line has no line end"))?;
    let raw = rest.get(..newline).unwrap_or_default();
    *pos += newline + 1;
    let line = raw.strip_suffix(b"\r").unwrap_or(raw);
    if line.contains(&b'\r') {
        return Err(RawError::Chunked("carriage return (CR) not followed by LF"));
    }
    Ok(line)
}

fn parse_chunk_size(digits: &[u8]) -> Result<usize, RawError> {
    if digits.is_empty() || digits.len() > 15 || !digits.iter().all(u8::is_ascii_hexdigit) {
        return Err(RawError::Chunked("invalid chunk size"));
    }
    let mut size = 0usize;
    for &d in digits {
        let v = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            _ => d.wrapping_sub(b'A').wrapping_add(10),
        };
        size = size
            .checked_mul(16)
            .and_then(|s| s.checked_add(usize::from(v)))
            .ok_or(RawError::Chunked("chunk size too large"))?;
    }
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(input: &[u8]) -> Result<RawRequest<'_>, RawError> {
        parse(input, &RawLimits::default())
    }

    #[test]
    fn crlf_and_lf_requests() {
        for raw in [
            &b"GET /v1/ping?a=1 HTTP/1.1\r\nHost: x\r\nX-Timestamp:1\r\n\r\n"[..],
            b"GET /v1/ping?a=1 HTTP/1.1\nHost: x\nX-Timestamp:1\n\n",
            b"\r\n\nGET /v1/ping?a=1 HTTP/1.1\nHost: x\nX-Timestamp:1\n\n\r\n\n",
        ] {
            let req = p(raw).unwrap();
            assert_eq!(req.method(), "GET");
            assert_eq!(req.target(), b"/v1/ping?a=1");
            assert_eq!(req.version(), "HTTP/1.1");
            assert_eq!(req.headers().len(), 2);
            assert_eq!(req.header_values("X-TIMESTAMP").next(), Some(&b"1"[..]));
            assert_eq!(req.body(), b"");
            assert_eq!(req.framing(), Framing::None);
        }
    }

    #[test]
    fn content_length_body() {
        let req =
            p(b"POST /x HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello").unwrap();
        assert_eq!(req.body(), b"hello");
        assert_eq!(req.framing(), Framing::ContentLength(5));
        // A body may hold CR, LF and any byte.
        let req = p(b"POST /x HTTP/1.1\nContent-Length: 4\n\n\r\n\x00\xff").unwrap();
        assert_eq!(req.body(), b"\r\n\x00\xff");
    }

    #[test]
    fn content_length_mismatches_are_reported() {
        assert_eq!(
            p(b"POST /x HTTP/1.1\nContent-Length: 5\n\nabc").unwrap_err(),
            RawError::Truncated {
                expected: 5,
                received: 3
            }
        );
        assert_eq!(
            p(b"POST /x HTTP/1.1\nContent-Length: 2\n\nabc").unwrap_err(),
            RawError::ExtraBytes { count: 1 }
        );
        assert_eq!(
            p(b"POST /x HTTP/1.1\n\nabc").unwrap_err(),
            RawError::BodyWithoutLength { count: 3 }
        );
        assert!(p(b"POST /x HTTP/1.1\nContent-Length: 3\n\nabc\r\n").is_ok());
        for bad in [&b"-1"[..], b"1 2", b"0x10", b"", b"99999999999999999999999"] {
            let mut raw = b"POST /x HTTP/1.1\nContent-Length: ".to_vec();
            raw.extend_from_slice(bad);
            raw.extend_from_slice(b"\n\n");
            assert!(
                matches!(p(&raw).unwrap_err(), RawError::ContentLength(_)),
                "{bad:?}"
            );
        }
        assert_eq!(
            p(b"POST /x HTTP/1.1\nContent-Length: 1\nContent-Length: 2\n\na").unwrap_err(),
            RawError::ContentLength("copies with different values")
        );
    }

    #[test]
    fn chunked_is_decoded() {
        let raw = b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n1\r\n!\r\n0\r\n\r\n";
        let req = p(raw).unwrap();
        assert_eq!(req.body(), b"hello!");
        assert_eq!(req.framing(), Framing::Chunked);
        assert!(req.wire_body().ends_with(b"0\r\n\r\n"));
        assert_eq!(
            req.to_bytes_replacing(&[], &[]),
            raw.to_vec(),
            "re-serializes byte for byte"
        );
        let lf =
            p(b"POST /x HTTP/1.1\nTransfer-Encoding: Chunked\n\nA\n0123456789\n0\n\n").unwrap();
        assert_eq!(lf.body(), b"0123456789");
    }

    #[test]
    fn chunked_errors() {
        let head = b"POST /x HTTP/1.1\nTransfer-Encoding: chunked\n\n";
        for (body, want) in [
            (&b"5\nhel"[..], "truncated chunk data"),
            (
                b"5\nhelloX\n0\n\n",
                "chunk data longer than its size (no line end after it)",
            ),
            (b"z\n", "invalid chunk size"),
            (b"ffffffffffffffff\n", "invalid chunk size"),
            (
                b"0\nX-Signature: 00\n\n",
                "trailer fields are not supported",
            ),
            (b"0\n", "truncated: a chunk line has no line end"),
        ] {
            let raw = [&head[..], body].concat();
            assert_eq!(p(&raw).unwrap_err(), RawError::Chunked(want), "{body:?}");
        }
        assert_eq!(
            p(b"POST /x HTTP/1.1\nTransfer-Encoding: gzip, chunked\n\n").unwrap_err(),
            RawError::TransferEncoding
        );
        assert_eq!(
            p(b"POST /x HTTP/1.1\nTransfer-Encoding: chunked\nContent-Length: 0\n\n0\n\n")
                .unwrap_err(),
            RawError::LengthAndTransferEncoding
        );
        let limits = RawLimits {
            max_body: 8,
            ..RawLimits::default()
        };
        let raw = [&head[..], b"9\n123456789\n0\n\n"].concat();
        assert_eq!(
            parse(&raw, &limits).unwrap_err(),
            RawError::BodyTooLarge { limit: 8 }
        );
    }

    #[test]
    fn request_line_and_header_errors() {
        for raw in [
            &b"GET /  HTTP/1.1\n\n"[..],
            b"GET  HTTP/1.1\n\n",
            b"GET /x\n\n",
            b"GET /x HTTP/2\n\n",
            b"G(T /x HTTP/1.1\n\n",
            b"GET /a\x01b HTTP/1.1\n\n",
            b"GET /x HTTP/1.1 extra\n\n",
        ] {
            assert!(
                matches!(p(raw).unwrap_err(), RawError::RequestLine(_)),
                "{raw:?}"
            );
        }
        for (raw, line) in [
            (&b"GET / HTTP/1.1\nNoColon\n\n"[..], 2),
            (b"GET / HTTP/1.1\nA: 1\nName : v\n\n", 3),
            (b"GET / HTTP/1.1\nA: 1\n folded\n\n", 3),
            (b"GET / HTTP/1.1\n: v\n\n", 2),
        ] {
            assert!(
                matches!(p(raw).unwrap_err(), RawError::Header { line: l, .. } if l == line),
                "{raw:?}"
            );
        }
        assert_eq!(
            p(b"GET / HTTP/1.1\nA: x\ry\n\n").unwrap_err(),
            RawError::BareCr { line: 2 }
        );
        assert_eq!(p(b"").unwrap_err(), RawError::Empty);
        assert_eq!(p(b"\r\n\n").unwrap_err(), RawError::Empty);
        assert_eq!(p(b"GET / HTTP/1.1").unwrap_err(), RawError::IncompleteHead);
        assert_eq!(
            p(b"GET / HTTP/1.1\nA: 1\n").unwrap_err(),
            RawError::IncompleteHead
        );
    }

    #[test]
    fn raw_non_ascii_target_and_values_are_bytes() {
        let req =
            p("GET /v1/café?name=José HTTP/1.1\nX-Client-Id: jk\u{ff}\n\n".as_bytes()).unwrap();
        assert_eq!(req.target(), "/v1/café?name=José".as_bytes());
        assert_eq!(req.headers()[0].value(), "jk\u{ff}".as_bytes());
        let req = p(b"GET /\xff HTTP/1.1\nX: \x00\x7f\n\n").unwrap();
        assert_eq!(req.target(), b"/\xff");
        assert_eq!(req.headers()[0].value(), b"\x00\x7f");
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
