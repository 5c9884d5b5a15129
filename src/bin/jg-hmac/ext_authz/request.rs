//! From Envoy's `CheckRequest` to the `http::Request` the `VerifyLayer` checks: the
//! method, the request-target as sent, the headers and the exact body bytes.

use bytes::Bytes;
use envoy_types::pb::envoy::service::auth::v3::CheckRequest;
use envoy_types::pb::envoy::service::auth::v3::attribute_context::HttpRequest;
use http::header::CONTENT_LENGTH;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri};
use http_body_util::Full;
use jg_hmac::{Error, HeaderKind};

/// The header Envoy adds to every `CheckRequest` it buffers a body for: `true` when the
/// body was cut at `max_request_bytes` (`allow_partial_message: true`).
const PARTIAL_BODY: &str = "x-envoy-auth-partial-body";

/// The request the layer verifies: Envoy's description of it, as an `http::Request`.
pub(super) type Checked = Request<Full<Bytes>>;

/// Why a `CheckRequest` is answered without reaching the layer.
#[derive(Debug)]
pub(super) enum Refused {
    /// A refusal for the client, in the layer's JSON shape: `error`, the request id to
    /// answer with, and what the operator's log says.
    Deny {
        error: Error,
        request_id: String,
        method: String,
        path: String,
        why: &'static str,
    },
    /// Not a request a conforming Envoy sends (an unreadable method or request-target,
    /// more headers than a header map holds): the RPC fails and Envoy, with
    /// `failure_mode_allow: false`, refuses the request itself.
    Invalid(&'static str),
}

/// The request Envoy describes in `check`, or why it is refused.
///
/// Headers come from `header_map` (raw bytes, Envoy's `encode_raw_headers: true`) when it
/// is set, else from `headers`; pseudo-headers (`:path`, `:authority`, …) are left out,
/// the method and request-target come from their own fields. The body is `raw_body`
/// (Envoy's `pack_as_bytes: true`) and nothing else: the `body` string may have been
/// altered to be UTF-8, and a body the upstream receives must be the one that was hashed.
pub(super) fn to_http(check: CheckRequest) -> Result<Checked, Refused> {
    let Some(http) = check
        .attributes
        .and_then(|attributes| attributes.request)
        .and_then(|request| request.http)
    else {
        // No request at all: answered as a request without credentials would be.
        return Err(deny(
            Error::MissingHeader(HeaderKind::ClientId),
            &HeaderMap::new(),
            None,
            "",
            "",
            "the CheckRequest has no attributes.request.http",
        ));
    };
    let headers = headers(&http)?;
    let deny_with = |error, why| {
        deny(
            error,
            &headers,
            Some(&http.id),
            &http.method,
            &http.path,
            why,
        )
    };
    if headers
        .get(PARTIAL_BODY)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"))
    {
        return Err(deny_with(
            Error::TooLarge(jg_hmac::LimitKind::Body),
            "Envoy sent a partial body (allow_partial_message: true); never verified",
        ));
    }
    if http.raw_body.is_empty() && !http.body.is_empty() {
        return Err(deny_with(
            Error::NotConfigured,
            "the body came as a string: set with_request_body.pack_as_bytes: true",
        ));
    }
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| u64::try_from(http.raw_body.len()).ok() != Some(n)) {
        return Err(deny_with(
            Error::NotConfigured,
            "Content-Length differs from the body Envoy sent: configure with_request_body",
        ));
    }
    let method = Method::from_bytes(http.method.as_bytes())
        .map_err(|_| Refused::Invalid("the method is not an HTTP token"))?;
    let uri = Uri::try_from(http.path.as_str())
        .map_err(|_| Refused::Invalid("the request-target is not a URI path"))?;
    let mut request = Request::new(Full::new(Bytes::from(http.raw_body)));
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.headers_mut() = headers;
    Ok(request)
}

/// The request's headers: Envoy lower-cases names; a name or value `http` cannot hold is
/// left out (the layer then finds an auth header missing, never a different one).
fn headers(http: &HttpRequest) -> Result<HeaderMap, Refused> {
    let mut map = HeaderMap::new();
    let mut add = |name: &str, value: &[u8]| {
        if name.starts_with(':') {
            return Ok(());
        }
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(value),
        ) else {
            return Ok(());
        };
        map.try_append(name, value)
            .map(drop)
            .map_err(|_| Refused::Invalid("more headers than a header map holds"))
    };
    match &http.header_map {
        Some(raw) if !raw.headers.is_empty() => {
            for h in &raw.headers {
                let value = if h.raw_value.is_empty() {
                    h.value.as_bytes()
                } else {
                    &h.raw_value
                };
                add(&h.key, value)?;
            }
        }
        _ => {
            for (name, value) in &http.headers {
                add(name, value.as_bytes())?;
            }
        }
    }
    Ok(map)
}

/// A refusal before the layer: the request id is the request's `X-Request-Id` when sane
/// (as the layer takes it), else Envoy's stream id, else `-`.
fn deny(
    error: Error,
    headers: &HeaderMap,
    stream_id: Option<&str>,
    method: &str,
    path: &str,
    why: &'static str,
) -> Refused {
    let sane = |id: &str| (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic());
    let request_id = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|id| sane(id))
        .or(stream_id.filter(|id| sane(id)))
        .unwrap_or("-")
        .to_owned();
    Refused::Deny {
        error,
        request_id,
        method: method.to_owned(),
        path: path.to_owned(),
        why,
    }
}
