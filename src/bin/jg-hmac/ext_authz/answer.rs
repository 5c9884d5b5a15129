//! The `CheckResponse`s: OK with the identity for the upstream, or Denied with the
//! status, headers and JSON body the client gets.

use envoy_types::ext_authz::v3::pb::{
    CheckResponse, DeniedHttpResponse, HeaderAppendAction, HeaderValue as EnvoyHeader,
    HeaderValueOption, HttpResponse, HttpStatus, OkHttpResponse,
};
use envoy_types::pb::google::rpc;
use http::{HeaderMap, HeaderValue, StatusCode};
use jg_hmac::tower::Authenticated;
use jg_hmac::{Clock, Error, SystemClock};
use tonic::Code;

use super::identity::{IDENTITY_HEADERS, identity_headers};

/// OK for `who`: its identity headers set upstream (each replacing any copy the client
/// sent), the identity headers it has no value for removed, and the headers the layer
/// added to its answer (`X-JG-Clock-Skew`) added to the client's response.
///
/// Envoy applies `headers` before `headers_to_remove`, so a name that is set is never
/// also removed: overwriting is what drops the client's copy of it.
pub(super) fn allowed(who: &Authenticated, layer_headers: &HeaderMap) -> CheckResponse {
    let set = identity_headers(who);
    let headers_to_remove = IDENTITY_HEADERS
        .iter()
        .filter(|name| !set.iter().any(|(n, _)| n == *name))
        .map(|name| (*name).to_owned())
        .collect();
    let headers = set
        .iter()
        .map(|(name, value)| overwrite(name, value))
        .collect();
    let response_headers_to_add = layer_headers
        .iter()
        .map(|(name, value)| overwrite(name.as_str(), value))
        .collect();
    respond(
        Code::Ok,
        HttpResponse::OkResponse(OkHttpResponse {
            headers,
            headers_to_remove,
            response_headers_to_add,
            ..OkHttpResponse::default()
        }),
    )
}

/// Denied with the layer's answer: its status, its headers (`Content-Type`,
/// `Cache-Control`, `X-Request-Id`, …) and its JSON body.
pub(super) fn denied(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> CheckResponse {
    let code = match status.as_u16() {
        400 => Code::InvalidArgument,
        401 => Code::Unauthenticated,
        408 => Code::DeadlineExceeded,
        413 | 429 => Code::ResourceExhausted,
        503 => Code::Unavailable,
        _ => Code::PermissionDenied,
    };
    respond(
        code,
        HttpResponse::DeniedResponse(DeniedHttpResponse {
            status: Some(HttpStatus {
                code: i32::from(status.as_u16()),
            }),
            headers: headers
                .iter()
                .map(|(name, value)| overwrite(name.as_str(), value))
                .collect(),
            body: String::from_utf8_lossy(body).into_owned(),
        }),
    )
}

/// Denied before the layer ran, in the layer's shape: `error`'s status and JSON body,
/// `Content-Type: application/json`, `Cache-Control: no-store`, `X-Request-Id`.
pub(super) fn refused(error: Error, request_id: &str) -> CheckResponse {
    let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    if let Ok(id) = HeaderValue::from_str(request_id) {
        headers.insert("x-request-id", id);
    }
    let body = error.to_json_body(request_id, SystemClock.now());
    denied(status, &headers, body.as_bytes())
}

fn respond(code: Code, http_response: HttpResponse) -> CheckResponse {
    CheckResponse {
        status: Some(rpc::Status {
            code: code.into(),
            message: String::new(),
            details: Vec::new(),
        }),
        http_response: Some(http_response),
        ..CheckResponse::default()
    }
}

/// A header that replaces every value of its name (`OVERWRITE_IF_EXISTS_OR_ADD`; the
/// deprecated `append` left unset, which older Envoys read as "replace" too).
fn overwrite(name: &str, value: &HeaderValue) -> HeaderValueOption {
    HeaderValueOption {
        header: Some(EnvoyHeader {
            key: name.to_owned(),
            // Header values the layer makes are visible ASCII; a value that is not UTF-8
            // goes as raw bytes.
            value: value.to_str().map(str::to_owned).unwrap_or_default(),
            raw_value: match value.to_str() {
                Ok(_) => Vec::new(),
                Err(_) => value.as_bytes().to_vec(),
            },
        }),
        append_action: HeaderAppendAction::OverwriteIfExistsOrAdd.into(),
        ..HeaderValueOption::default()
    }
}
