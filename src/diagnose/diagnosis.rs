//! [`Diagnosis`]: what the search found, its stable code and its sentence.

use core::fmt;

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
    /// Cannot tell: no single mistake tried reproduces the sent signature (another
    /// secret, several mistakes at once, or one not on the list), or the request has no
    /// single well-formed `X-Timestamp` and `X-Signature` to compare with.
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
    /// secret given here has them and the signer's did not). Only tried when
    /// [`diagnose`](super::diagnose()) is given the [`Secret`](crate::Secret) itself.
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
    /// Every diagnosis, one of each variant (with example field values), in the order
    /// [`diagnose`](super::diagnose()) tries the mistakes: `None` first, `Unknown` last.
    /// The one list of them: the codes are [`Diagnosis::code`] of these.
    ///
    /// ```
    /// use jg_hmac::diagnose::Diagnosis;
    /// let codes: Vec<&str> = Diagnosis::ALL.iter().map(Diagnosis::code).collect();
    /// assert_eq!(codes.first(), Some(&"none"));
    /// assert_eq!(codes.last(), Some(&"unknown"));
    /// assert!(codes.contains(&"query_unsorted"));
    /// ```
    pub const ALL: [Diagnosis; 17] = [
        Self::None,
        Self::MethodLowercase,
        Self::QueryMissing,
        Self::QueryUnsorted,
        Self::QueryLocaleOrder,
        Self::QueryNotEncoded,
        Self::PathDecoded,
        Self::PathTrailingSlash { added: true },
        Self::PathPrefix {
            segments: 1,
            prefix_len: 4,
        },
        Self::BodyHashEmpty,
        Self::BodyTrailingNewline { added: true },
        Self::CrlfNewlines,
        Self::IndentedLines,
        Self::StringTrailingNewline,
        Self::SecretWhitespace,
        Self::TimestampDiffers {
            signed: 1735550157,
            offset: -3,
        },
        Self::Unknown,
    ];

    /// The stable snake_case code, the same for every value of a variant.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_diagnosis_has_its_own_code_and_a_sentence() {
        let mut codes: Vec<&str> = Diagnosis::ALL.iter().map(Diagnosis::code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), Diagnosis::ALL.len());
        for d in Diagnosis::ALL {
            assert!(!d.to_string().is_empty(), "{}", d.code());
        }
    }
}
