//! The identity headers an accepted request carries to the upstream, and the signed
//! `X-JG-Identity` assertion over them (SPEC.md §13, `jg_hmac::identity`).

use http::HeaderMap;
use http::header::{HeaderName, HeaderValue};
use jg_hmac::tower::Authenticated;

const X_JG_CLIENT_ID: HeaderName = HeaderName::from_static("x-jg-client-id");
const X_JG_KEY_ID: HeaderName = HeaderName::from_static("x-jg-key-id");
const X_JG_SCOPES: HeaderName = HeaderName::from_static("x-jg-scopes");
const X_JG_ENVIRONMENT: HeaderName = HeaderName::from_static("x-jg-environment");
const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const X_JG_IDENTITY: HeaderName = HeaderName::from_static("x-jg-identity");

/// Every header only the gateway may set: removed from what the client sent, whatever
/// its case (header names compare without case).
pub use jg_hmac::identity::HEADERS;

/// Sets the identity of `who` on `headers` (already stripped of client copies), and with
/// a key the assertion over it, `method` and `target` at `now`.
pub fn add(
    headers: &mut HeaderMap,
    who: &Authenticated,
    method: &str,
    target: &str,
    key: Option<&[u8]>,
    now: u64,
) -> Result<(), String> {
    let environment = who
        .environment()
        .map_or_else(|| "none".to_owned(), |e| e.to_string());
    let scopes = who.credential().scopes().join(" ");
    for (name, value) in [
        (X_JG_CLIENT_ID, who.client_id()),
        (X_JG_KEY_ID, who.key_id()),
        (X_JG_SCOPES, scopes.as_str()),
        (X_JG_ENVIRONMENT, environment.as_str()),
        (X_REQUEST_ID, who.request_id()),
    ] {
        let value = HeaderValue::from_str(value)
            .map_err(|_| format!("{name} would not be a valid header value"))?;
        headers.insert(name, value);
    }
    if let Some(key) = key {
        let assertion = jg_hmac::identity::sign(key, method, target, headers, now)
            .map_err(|e| e.to_string())?;
        let value = HeaderValue::from_str(&assertion).map_err(|e| e.to_string())?;
        headers.insert(X_JG_IDENTITY, value);
    }
    Ok(())
}
