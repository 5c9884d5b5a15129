//! Why bytes are not a request the parser accepts.

use core::fmt;

#[cfg(doc)]
use super::RawLimits;

/// Why raw bytes are not a request [`parse`](super::parse) accepts. The `Display` form is one line that
/// says what to fix.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RawError {
    /// The input is empty or holds only empty lines.
    Empty,
    /// The header section is larger than [`RawLimits::max_head`].
    HeadTooLarge {
        /// The limit.
        limit: usize,
    },
    /// More header fields than [`RawLimits::max_headers`].
    TooManyHeaders {
        /// The limit.
        limit: usize,
    },
    /// The input ends before the empty line that ends the header section.
    IncompleteHead,
    /// A carriage return that is not part of a CRLF line end.
    BareCr {
        /// The 1-based line number in the header section.
        line: usize,
    },
    /// The request line is not `METHOD SP request-target SP HTTP/1.x`.
    RequestLine(&'static str),
    /// A header field line is not `name: value`.
    Header {
        /// The 1-based line number in the header section (the request line is line 1).
        line: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// A `Content-Length` that is not digits, or copies that disagree.
    ContentLength(&'static str),
    /// Both `Content-Length` and `Transfer-Encoding`: servers disagree on which to use.
    LengthAndTransferEncoding,
    /// A transfer coding other than a single `chunked`.
    TransferEncoding,
    /// The body is larger than [`RawLimits::max_body`].
    BodyTooLarge {
        /// The limit.
        limit: usize,
    },
    /// Fewer body bytes than `Content-Length` says.
    Truncated {
        /// The `Content-Length`.
        expected: usize,
        /// The bytes present after the header section.
        received: usize,
    },
    /// Bytes after the body, other than CR and LF.
    ExtraBytes {
        /// How many bytes follow the body.
        count: usize,
    },
    /// Bytes after the header section of a request with neither `Content-Length` nor
    /// `Transfer-Encoding`, which has no body.
    BodyWithoutLength {
        /// How many bytes follow the header section.
        count: usize,
    },
    /// A malformed chunked body.
    Chunked(&'static str),
}

impl fmt::Display for RawError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("no request: the input is empty"),
            Self::HeadTooLarge { limit } => write!(f, "header section larger than {limit} bytes"),
            Self::TooManyHeaders { limit } => write!(f, "more than {limit} header fields"),
            Self::IncompleteHead => f.write_str("truncated: the header section does not end with an empty line"),
            Self::BareCr { line } => write!(f, "line {line}: carriage return (CR) not followed by LF"),
            Self::RequestLine(reason) => write!(f, "bad request line: {reason}"),
            Self::Header { line, reason } => write!(f, "line {line}: bad header field: {reason}"),
            Self::ContentLength(reason) => write!(f, "bad Content-Length: {reason}"),
            Self::LengthAndTransferEncoding => f.write_str("both Content-Length and Transfer-Encoding: a server may read the body either way; remove one"),
            Self::TransferEncoding => f.write_str("Transfer-Encoding other than `chunked` is not supported: decode the body first"),
            Self::BodyTooLarge { limit } => write!(f, "body larger than {limit} bytes"),
            Self::Truncated { expected, received } => write!(f, "truncated body: Content-Length is {expected} but only {received} bytes follow"),
            Self::ExtraBytes { count } => write!(f, "{count} bytes after the body: Content-Length (or the chunked framing) does not match the body"),
            Self::BodyWithoutLength { count } => write!(f, "{count} bytes follow the header section but there is no Content-Length: add `Content-Length: {count}` if they are the body"),
            Self::Chunked(reason) => write!(f, "bad chunked body: {reason}"),
        }
    }
}

impl std::error::Error for RawError {}
