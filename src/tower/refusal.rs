//! Refusals: why the layer refused a request, what its audit event says, and the
//! response (the seed's JSON error body).

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::Full;

use crate::error::{Error, json_error_body, push_json_string};
use crate::signature::Signature;

use super::store::StoreError;

/// Why a request was refused, with what the audit event says about it.
pub(super) struct Refusal<'a> {
    pub(super) failure: RefusalCause,
    /// The server's clock when the refusal was decided: the JSON body's `timestamp`.
    pub(super) now: u64,
    pub(super) client_id: Option<&'a str>,
    /// Whether the credential store was asked about `client_id`, and knew it.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(super) known: Option<bool>,
    /// The request's `X-Timestamp`, if it parsed.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(super) timestamp: Option<u64>,
    pub(super) sig: Option<Signature>,
    /// Sandbox diagnostics of an `invalid_signature`: the string-to-sign the server
    /// computed and, when a typical mistake reproduces the sent signature, its code.
    pub(super) diagnostics: Option<Diagnostics>,
    pub(super) store_error: Option<StoreError>,
}

impl Refusal<'_> {
    pub(super) fn new(failure: RefusalCause, now: u64) -> Self {
        Self {
            failure,
            now,
            client_id: None,
            known: None,
            timestamp: None,
            sig: None,
            diagnostics: None,
            store_error: None,
        }
    }
}

/// What the sandbox diagnostics add to an `invalid_signature` body.
pub(super) struct Diagnostics {
    pub(super) string_to_sign: String,
    pub(super) hint: Option<&'static str>,
}

/// Every reason the layer refuses a request: the cause of a [`Refusal`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RefusalCause {
    /// The core's verdict.
    Auth(Error),
    /// The credential store failed: 503.
    StoreUnavailable,
    /// The body could not be read (the connection broke, bad chunked encoding): 400.
    BodyUnreadable,
    /// The extractor ran without the layer: 500.
    #[cfg_attr(not(feature = "axum"), allow(dead_code))]
    NotConfigured,
}

impl RefusalCause {
    pub(super) fn code(self) -> &'static str {
        match self {
            Self::Auth(e) => e.code(),
            Self::StoreUnavailable => "credential_store_unavailable",
            Self::BodyUnreadable => "malformed_body",
            Self::NotConfigured => "authentication_not_configured",
        }
    }

    fn status(self) -> u16 {
        match self {
            Self::Auth(e) => e.status(),
            Self::StoreUnavailable => 503,
            Self::BodyUnreadable => 400,
            Self::NotConfigured => 500,
        }
    }

    fn message(self) -> &'static str {
        match self {
            Self::Auth(e) => e.message(),
            Self::StoreUnavailable => "Credentials cannot be checked right now",
            Self::BodyUnreadable => "Request body could not be read",
            Self::NotConfigured => "Authentication is not configured for this route",
        }
    }

    /// The JSON error body, as [`Error::to_json_body`] writes it, plus `stringToSign` and
    /// `hint` when given.
    fn json_body(
        self,
        request_id: &str,
        timestamp: u64,
        diagnostics: Option<&Diagnostics>,
    ) -> String {
        let mut out = match self {
            Self::Auth(e) => e.to_json_body(request_id, timestamp),
            _ => json_error_body(
                self.status(),
                self.code(),
                self.message(),
                request_id,
                timestamp,
            ),
        };
        if let Some(d) = diagnostics {
            out.pop();
            out.push_str(",\"stringToSign\":");
            push_json_string(&mut out, &d.string_to_sign);
            if let Some(hint) = d.hint {
                out.push_str(",\"hint\":");
                push_json_string(&mut out, hint);
            }
            out.push('}');
        }
        out
    }

    pub(crate) fn response(
        self,
        request_id: &str,
        timestamp: u64,
        diagnostics: Option<&Diagnostics>,
    ) -> Response<Full<Bytes>> {
        let body = self.json_body(request_id, timestamp, diagnostics);
        json_response(self.status(), body, request_id)
    }
}

/// A JSON error response: `status`, `body`, `Content-Type: application/json`,
/// `Cache-Control: no-store` and the request id.
pub(super) fn json_response(status: u16, body: String, request_id: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(id) = HeaderValue::from_str(request_id) {
        headers.insert("x-request-id", id);
    }
    response
}
