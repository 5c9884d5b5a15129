//! The identity headers an accepted request carries to the upstream.

use http::HeaderValue;
use jg_hmac::tower::Authenticated;

/// Every identity header the upstream may trust, lower-case (as Envoy spells names): a
/// client's own copy of any of them never reaches the upstream.
pub(super) use jg_hmac::identity::HEADERS as IDENTITY_HEADERS;

/// The identity headers of `who`, name and value: the client id, the key id, the scopes
/// (space-separated; left out when there are none), the environment (`live`, `test`;
/// left out when the client id names none) and the request id the layer audited. A value
/// that is not a valid header value is left out (and so removed upstream).
pub(super) fn identity_headers(who: &Authenticated) -> Vec<(&'static str, HeaderValue)> {
    let scopes = who.credential().scopes().join(" ");
    let environment = who.environment().map(|e| e.to_string());
    let values = [
        ("x-jg-client-id", Some(who.client_id())),
        ("x-jg-key-id", Some(who.key_id())),
        (
            "x-jg-scopes",
            Some(scopes.as_str()).filter(|s| !s.is_empty()),
        ),
        ("x-jg-environment", environment.as_deref()),
        ("x-request-id", Some(who.request_id())),
    ];
    values
        .into_iter()
        .filter_map(|(name, value)| Some((name, HeaderValue::from_str(value?).ok()?)))
        .collect()
}
