//! The authenticated identity the layer puts in request extensions.

use std::fmt;
use std::sync::Arc;

use crate::credential::Credential;
use crate::verified::Verified;

use super::audit::RequestId;
use crate::Environment;

/// Who signed a request that the [`VerifyLayer`](super::VerifyLayer) accepted: put in the
/// request's extensions for the handler.
///
/// It carries the whole [`Credential`] as the store returned it, so whatever the store
/// attached (scopes, typed extensions such as a tenant) reaches the handler. With the
/// `axum` feature it is an extractor; otherwise read it with
/// `request.extensions().get::<Authenticated>()`.
///
/// ```
/// # #[cfg(feature = "axum")] {
/// use jg_hmac::tower::Authenticated;
///
/// async fn buy(who: Authenticated) -> String {
///     if !who.credential().has_scope("transactions:write") {
///         return "forbidden".into();
///     }
///     format!("hello {} (key {})", who.client_id(), who.key_id())
/// }
/// # let _ = buy;
/// # }
/// ```
#[derive(Clone)]
pub struct Authenticated {
    verified: Verified,
    request_id: RequestId,
}

impl Authenticated {
    pub(crate) fn new(verified: Verified, request_id: RequestId) -> Self {
        Self {
            verified,
            request_id,
        }
    }

    /// The core's verification result this identity was built from.
    ///
    /// ```
    /// fn handle(auth: &jg_hmac::tower::Authenticated) -> String {
    ///     auth.verified().signature().short_hex()
    /// }
    /// ```
    pub fn verified(&self) -> &Verified {
        &self.verified
    }

    /// The authenticated client id.
    ///
    /// ```
    /// fn handle(auth: &jg_hmac::tower::Authenticated) -> String {
    ///     auth.client_id().to_owned()
    /// }
    /// ```
    pub fn client_id(&self) -> &str {
        self.verified.client_id()
    }

    /// The id of the secret that matched (during a rotation overlap, tells which one the
    /// partner uses).
    ///
    /// ```
    /// fn handle(auth: &jg_hmac::tower::Authenticated) -> String {
    ///     format!("{} signed with key {}", auth.client_id(), auth.key_id())
    /// }
    /// ```
    pub fn key_id(&self) -> &str {
        self.verified.key_id()
    }

    /// The credential, with its scopes and extensions.
    ///
    /// ```
    /// fn handle(auth: &jg_hmac::tower::Authenticated) -> String {
    ///     auth.credential().scopes().join(",")
    /// }
    /// ```
    pub fn credential(&self) -> &Arc<Credential> {
        self.verified.credential()
    }

    /// The environment the client id names (`jk_live_…`, `jk_test_…`), if any.
    ///
    /// ```
    /// fn handle(auth: &jg_hmac::tower::Authenticated) -> String {
    ///     format!("{:?}", auth.environment())
    /// }
    /// ```
    pub fn environment(&self) -> Option<Environment> {
        Environment::of(self.client_id())
    }

    /// The request's `X-Timestamp` (UNIX seconds).
    ///
    /// ```
    /// fn handle(auth: &jg_hmac::tower::Authenticated) -> String {
    ///     auth.timestamp().to_string()
    /// }
    /// ```
    pub fn timestamp(&self) -> u64 {
        self.verified.timestamp()
    }

    /// The request id the layer used in its audit event (the incoming `X-Request-Id` if
    /// it was sane, else a generated one).
    ///
    /// ```
    /// fn handle(auth: &jg_hmac::tower::Authenticated) -> String {
    ///     auth.request_id().to_owned()
    /// }
    /// ```
    pub fn request_id(&self) -> &str {
        &self.request_id
    }
}

impl fmt::Debug for Authenticated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticated")
            .field("client_id", &self.client_id())
            .field("key_id", &self.key_id())
            .field("scopes", &self.credential().scopes())
            .field("timestamp", &self.timestamp())
            .field("request_id", &self.request_id)
            .finish()
    }
}

#[cfg(feature = "axum")]
mod extract {
    use axum_core::extract::{FromRequestParts, OptionalFromRequestParts};
    use axum_core::response::{IntoResponse, Response};
    use http::request::Parts;

    use bytes::Bytes;
    use http_body_util::Empty;

    use super::Authenticated;
    use crate::clock::{Clock, SystemClock};
    use crate::error::Error;
    use crate::tower::response::ResponseBody;

    /// The rejection of the [`Authenticated`] extractor is [`Error::NotConfigured`]: the
    /// request did not pass through a [`VerifyLayer`](crate::tower::VerifyLayer), a server
    /// misconfiguration. It answers `500` with the JSON error body (code
    /// `authentication_not_configured`) rather than run the handler unauthenticated; any
    /// other [`Error`] answers its own status and body the same way.
    ///
    /// ```
    /// use axum_core::response::IntoResponse;
    /// let response = jg_hmac::Error::NotConfigured.into_response();
    /// assert_eq!(response.status(), 500);
    /// assert_eq!(response.headers()["content-type"], "application/json");
    /// ```
    impl IntoResponse for Error {
        fn into_response(self) -> Response {
            let request_id = crate::tower::audit::new_request_id();
            crate::tower::response::refusal(self, &request_id, SystemClock.now(), None)
                .map(axum_core::body::Body::new::<ResponseBody<Empty<Bytes>>>)
        }
    }

    impl<S: Send + Sync> FromRequestParts<S> for Authenticated {
        type Rejection = Error;

        async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
            parts
                .extensions
                .get::<Authenticated>()
                .cloned()
                .ok_or(Error::NotConfigured)
        }
    }

    impl<S: Send + Sync> OptionalFromRequestParts<S> for Authenticated {
        type Rejection = std::convert::Infallible;

        async fn from_request_parts(
            parts: &mut Parts,
            _: &S,
        ) -> Result<Option<Self>, Self::Rejection> {
            Ok(parts.extensions.get::<Authenticated>().cloned())
        }
    }
}
