//! The one outcome type of the crate: every code it answers with, its HTTP status and its
//! message, defined once.

use core::fmt;

use crate::json::push_json_string;

/// A header that takes part in JG-HMAC-SHA256 authentication.
///
/// Carried by [`Error::MissingHeader`] and [`Error::MalformedHeader`] so that a partner is
/// told *which* header is wrong, never *how* a secret-dependent check failed.
///
/// ```
/// use jg_hmac::HeaderKind;
/// assert_eq!(HeaderKind::Timestamp.name(), "X-Timestamp");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HeaderKind {
    /// `X-Client-Id` (or its alias `X-Access-Key`).
    ClientId,
    /// `X-Timestamp`.
    Timestamp,
    /// `X-Signature`.
    Signature,
    /// `Content-Type`, checked only when the verifier has an allow-list.
    ContentType,
}

impl HeaderKind {
    /// The canonical spelling of the header name, as sent by signers.
    ///
    /// ```
    /// assert_eq!(jg_hmac::HeaderKind::ClientId.name(), "X-Client-Id");
    /// ```
    pub const fn name(self) -> &'static str {
        match self {
            Self::ClientId => "X-Client-Id",
            Self::Timestamp => "X-Timestamp",
            Self::Signature => "X-Signature",
            Self::ContentType => "Content-Type",
        }
    }
}

/// Which size limit of [`Limits`](crate::Limits) a request went past.
///
/// ```
/// use jg_hmac::{Error, LimitKind};
/// let err = Error::TooLarge(LimitKind::Body);
/// assert_eq!(err.status(), 413);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LimitKind {
    /// The raw query string is longer than [`Limits::max_query_len`](crate::Limits).
    QueryLength,
    /// The query has more `&`-separated pairs than [`Limits::max_query_pairs`](crate::Limits).
    QueryPairs,
    /// The request body is larger than the limit of the component reading it.
    Body,
}

/// Why a request was refused: every code the crate answers with, defined here once.
///
/// Every variant has a stable wire code ([`Error::code`]), an HTTP status
/// ([`Error::status`]) and a message that is safe to return to a partner
/// ([`Error::message`], also the `Display` form); [`Error::ALL`] lists one value per
/// code. The JSON error body, the audit events and the metrics all read them from here.
/// No variant carries a secret, an expected signature, or where a signature differed.
///
/// The seed spec's four codes are spelled as it spells them (`invalid_signature`,
/// `timestamp_out_of_range`, `client_id`, `unsupported_content_type`); the crate adds
/// `missing_header`, `malformed_header`, `replayed_request` (SPEC.md §7),
/// `request_too_large`, `replay_guard_unavailable`, `replay_quota_exceeded`, and for
/// servers `credential_store_unavailable`, `malformed_body`, `insufficient_scope`,
/// `authentication_not_configured`, `request_timeout`, `rate_limited` and
/// `rate_limiter_unavailable`, and for the
/// gateway `upstream_unavailable` and `upstream_timeout` (SPEC.md §7).
///
/// ```
/// use jg_hmac::Error;
/// let err = Error::InvalidSignature;
/// assert_eq!(err.code(), "invalid_signature");
/// assert_eq!(err.status(), 401);
/// assert_eq!(err.to_string(), "Signature mismatch");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Error {
    /// A required header is absent. Wire code `missing_header`, status 401.
    MissingHeader(HeaderKind),
    /// A required header is present but empty, repeated, conflicting, not visible ASCII,
    /// or not of its syntax. Wire code `malformed_header`, status 400.
    MalformedHeader(HeaderKind),
    /// `X-Timestamp` is outside the accepted window around the verifier's clock.
    /// Wire code `timestamp_out_of_range`, status 401.
    TimestampOutOfRange,
    /// The client id is unknown, or every secret it has is revoked or not valid now.
    /// Wire code `client_id`, status 401.
    UnknownClient,
    /// The signature does not match any active secret of the client.
    /// Wire code `invalid_signature`, status 401.
    InvalidSignature,
    /// The request's content type is not in the verifier's allow-list.
    /// Wire code `unsupported_content_type`, status 415.
    UnsupportedContentType,
    /// A request with this signature was already accepted within the window.
    /// Wire code `replayed_request`, status 401.
    ReplayedRequest,
    /// The replay guard could not record the request (full, or its store unreachable), so
    /// the request is refused rather than risk accepting a replay.
    /// Wire code `replay_guard_unavailable`, status 503.
    ReplayGuardUnavailable,
    /// This client already has as many requests held by the replay guard as its share of
    /// the guard allows (see [`InMemoryReplayGuard`](crate::InMemoryReplayGuard)): one
    /// partner cannot fill the guard and lock every other partner out. The entries free
    /// themselves as their requests leave the window, so the partner may retry later.
    /// Wire code `replay_quota_exceeded`, status 429.
    ReplayQuotaExceeded,
    /// A part of the request is larger than a configured limit.
    /// Wire code `request_too_large`; status 414 for the query, 413 for the body.
    TooLarge(LimitKind),
    /// The credential store could not answer (unreachable, too slow), so the request is
    /// refused rather than guessed about. Wire code `credential_store_unavailable`,
    /// status 503.
    CredentialStoreUnavailable,
    /// The body could not be read (the connection broke, bad chunked encoding).
    /// Wire code `malformed_body`, status 400.
    MalformedBody,
    /// The verified client lacks the scope the route requires.
    /// Wire code `insufficient_scope`, status 403.
    InsufficientScope,
    /// The route asks for an authenticated client but no verifying layer covers it: a
    /// server misconfiguration, answered rather than running the handler
    /// unauthenticated. Wire code `authentication_not_configured`, status 500.
    NotConfigured,
    /// The request was not complete (its body read and its credential checked) within the
    /// verifying layer's deadline. Wire code `request_timeout`, status 408.
    RequestTimeout,
    /// The verified client is over its rate limit ([`RateLimit`](crate::RateLimit)); the
    /// answer carries `Retry-After`. Wire code `rate_limited`, status 429.
    RateLimited,
    /// The rate limiter could not decide (its store unreachable, too slow), so the
    /// request is refused rather than let through unlimited (a limiter that fails closed).
    /// Wire code `rate_limiter_unavailable`, status 503.
    RateLimiterUnavailable,
    /// The gateway could not reach the service behind it (connection refused or broken).
    /// Wire code `upstream_unavailable`, status 502.
    UpstreamUnavailable,
    /// The service behind the gateway did not answer within the gateway's timeout.
    /// Wire code `upstream_timeout`, status 504.
    UpstreamTimeout,
}

impl Error {
    /// One value per wire code: every code the crate answers with.
    ///
    /// ```
    /// let codes: Vec<&str> = jg_hmac::Error::ALL.iter().map(|e| e.code()).collect();
    /// assert!(codes.contains(&"invalid_signature") && codes.contains(&"insufficient_scope"));
    /// ```
    pub const ALL: &'static [Error] = &[
        Self::MissingHeader(HeaderKind::ClientId),
        Self::MalformedHeader(HeaderKind::ClientId),
        Self::TimestampOutOfRange,
        Self::UnknownClient,
        Self::InvalidSignature,
        Self::UnsupportedContentType,
        Self::ReplayedRequest,
        Self::ReplayGuardUnavailable,
        Self::ReplayQuotaExceeded,
        Self::TooLarge(LimitKind::Body),
        Self::CredentialStoreUnavailable,
        Self::MalformedBody,
        Self::InsufficientScope,
        Self::NotConfigured,
        Self::RequestTimeout,
        Self::RateLimited,
        Self::RateLimiterUnavailable,
        Self::UpstreamUnavailable,
        Self::UpstreamTimeout,
    ];

    /// The stable machine-readable code sent on the wire in the `error` field.
    ///
    /// ```
    /// assert_eq!(jg_hmac::Error::UnknownClient.code(), "client_id");
    /// ```
    pub const fn code(&self) -> &'static str {
        match self {
            Self::MissingHeader(_) => "missing_header",
            Self::MalformedHeader(_) => "malformed_header",
            Self::TimestampOutOfRange => "timestamp_out_of_range",
            Self::UnknownClient => "client_id",
            Self::InvalidSignature => "invalid_signature",
            Self::UnsupportedContentType => "unsupported_content_type",
            Self::ReplayedRequest => "replayed_request",
            Self::ReplayGuardUnavailable => "replay_guard_unavailable",
            Self::ReplayQuotaExceeded => "replay_quota_exceeded",
            Self::TooLarge(_) => "request_too_large",
            Self::CredentialStoreUnavailable => "credential_store_unavailable",
            Self::MalformedBody => "malformed_body",
            Self::InsufficientScope => "insufficient_scope",
            Self::NotConfigured => "authentication_not_configured",
            Self::RequestTimeout => "request_timeout",
            Self::RateLimited => "rate_limited",
            Self::RateLimiterUnavailable => "rate_limiter_unavailable",
            Self::UpstreamUnavailable => "upstream_unavailable",
            Self::UpstreamTimeout => "upstream_timeout",
        }
    }

    /// The HTTP status code to answer with.
    ///
    /// Authentication failures are `401`; a header or body that is there but unusable is
    /// `400`; a missing scope `403`; a request not complete within the layer's deadline
    /// `408`; the content-type allow-list answers `415`; size
    /// limits `413`/`414`; a client over its rate limit or its share of the replay guard
    /// `429`; a missing verifying layer `500`; an upstream the gateway cannot reach `502`,
    /// or that is too slow `504`; a replay guard or credential store that cannot answer
    /// `503`.
    ///
    /// ```
    /// use jg_hmac::{Error, HeaderKind};
    /// assert_eq!(Error::MalformedHeader(HeaderKind::Signature).status(), 400);
    /// ```
    pub const fn status(&self) -> u16 {
        match self {
            Self::MalformedHeader(_) | Self::MalformedBody => 400,
            Self::InsufficientScope => 403,
            Self::RequestTimeout => 408,
            Self::NotConfigured => 500,
            Self::CredentialStoreUnavailable => 503,
            Self::UnsupportedContentType => 415,
            Self::ReplayGuardUnavailable | Self::RateLimiterUnavailable => 503,
            Self::ReplayQuotaExceeded | Self::RateLimited => 429,
            Self::UpstreamUnavailable => 502,
            Self::UpstreamTimeout => 504,
            Self::TooLarge(LimitKind::Body) => 413,
            Self::TooLarge(_) => 414,
            Self::MissingHeader(_)
            | Self::TimestampOutOfRange
            | Self::UnknownClient
            | Self::InvalidSignature
            | Self::ReplayedRequest => 401,
        }
    }

    /// A one-line message that is safe to return to the partner.
    ///
    /// ```
    /// use jg_hmac::{Error, HeaderKind};
    /// assert_eq!(
    ///     Error::MissingHeader(HeaderKind::Timestamp).message(),
    ///     "Missing required header X-Timestamp"
    /// );
    /// ```
    pub const fn message(&self) -> &'static str {
        use HeaderKind as H;
        match self {
            Self::MissingHeader(H::ClientId) => "Missing required header X-Client-Id",
            Self::MissingHeader(H::Timestamp) => "Missing required header X-Timestamp",
            Self::MissingHeader(H::Signature) => "Missing required header X-Signature",
            Self::MissingHeader(H::ContentType) => "Missing required header Content-Type",
            Self::MalformedHeader(H::ClientId) => {
                "Malformed X-Client-Id: expected one value of visible ASCII"
            }
            Self::MalformedHeader(H::Timestamp) => {
                "Malformed X-Timestamp: expected UNIX time in seconds, 1 to 18 decimal digits"
            }
            Self::MalformedHeader(H::Signature) => {
                "Malformed X-Signature: expected 64 hexadecimal digits"
            }
            Self::MalformedHeader(H::ContentType) => "Malformed Content-Type",
            Self::TimestampOutOfRange => "Timestamp outside the allowed window",
            Self::UnknownClient => "Unknown or revoked client id",
            Self::InvalidSignature => "Signature mismatch",
            Self::UnsupportedContentType => "Content type not allowed for this endpoint",
            Self::ReplayedRequest => "Request already received",
            Self::ReplayGuardUnavailable => "Request cannot be checked for replay right now",
            Self::ReplayQuotaExceeded => {
                "Too many requests from this client within the replay window"
            }
            Self::TooLarge(LimitKind::QueryLength) => "Query string too long",
            Self::TooLarge(LimitKind::QueryPairs) => "Too many query parameters",
            Self::TooLarge(LimitKind::Body) => "Request body too large",
            Self::CredentialStoreUnavailable => "Credentials cannot be checked right now",
            Self::MalformedBody => "Request body could not be read",
            Self::InsufficientScope => "The client is not allowed to use this route",
            Self::NotConfigured => "Authentication is not configured for this route",
            Self::RequestTimeout => "Request not completed in time",
            Self::RateLimited => "Rate limit exceeded; retry after the time in Retry-After",
            Self::RateLimiterUnavailable => "Rate limit cannot be checked right now",
            Self::UpstreamUnavailable => "The service behind the gateway is unavailable",
            Self::UpstreamTimeout => "The service behind the gateway did not answer in time",
        }
    }

    /// The seed spec's JSON error body for this error.
    ///
    /// `request_id` is the caller's identifier for the request (escaped as a JSON string);
    /// `timestamp` is the server's UNIX time in seconds.
    ///
    /// ```
    /// let body = jg_hmac::Error::InvalidSignature.to_json_body("a1b2c3d4", 1735550105);
    /// assert_eq!(
    ///     body,
    ///     r#"{"status":401,"error":"invalid_signature","message":"Signature mismatch","requestId":"a1b2c3d4","timestamp":1735550105}"#
    /// );
    /// ```
    pub fn to_json_body(&self, request_id: &str, timestamp: u64) -> String {
        let mut out = String::with_capacity(128 + request_id.len());
        out.push_str("{\"status\":");
        push_display(&mut out, self.status());
        out.push_str(",\"error\":\"");
        out.push_str(self.code());
        out.push_str("\",\"message\":\"");
        out.push_str(self.message());
        out.push_str("\",\"requestId\":");
        push_json_string(&mut out, request_id);
        out.push_str(",\"timestamp\":");
        push_display(&mut out, timestamp);
        out.push('}');
        out
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for Error {}

fn push_display(out: &mut String, value: impl fmt::Display) {
    use fmt::Write;
    // Writing to a String cannot fail.
    let _ = write!(out, "{value}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_body_escapes_request_id() {
        let body = Error::UnknownClient.to_json_body("a\"b\\c\n\u{1}", 7);
        assert_eq!(
            body,
            r#"{"status":401,"error":"client_id","message":"Unknown or revoked client id","requestId":"a\"b\\c\n\u0001","timestamp":7}"#
        );
    }

    /// SPEC.md §7's table and this enum say the same: each code with its status and its
    /// message (messages with a header or limit in them are checked for one variant).
    #[test]
    fn the_spec_table_lists_every_code_as_defined_here() {
        let spec = include_str!("../SPEC.md");
        let rows: Vec<&str> = spec.lines().filter(|l| l.starts_with("| `")).collect();
        for e in Error::ALL {
            let row = format!("| `{}` | {} | ", e.code(), e.status());
            let found = rows.iter().find(|r| r.starts_with(&row));
            let found = found.unwrap_or_else(|| panic!("SPEC.md §7 lacks {row}"));
            assert!(found.contains(e.message()), "{found} / {}", e.message());
        }
    }

    #[test]
    fn every_code_is_distinct_and_snake_case() {
        let all = Error::ALL;
        let mut codes: Vec<_> = all.iter().map(Error::code).collect();
        assert!(
            codes
                .iter()
                .all(|c| c.bytes().all(|b| b == b'_' || b.is_ascii_lowercase()))
        );
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), all.len());
    }
}
