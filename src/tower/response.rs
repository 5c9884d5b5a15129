//! The layer's responses: the body types it hands on and answers with, and the JSON error
//! response of a refusal.

use std::convert::Infallible;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;

use crate::error::Error;
use crate::json::push_json_string;

/// The body the [`VerifyLayer`](super::VerifyLayer) hands to the inner service: the exact
/// bytes that were verified, in one piece.
///
/// ```
/// use http_body_util::BodyExt;
/// async fn handler(req: http::Request<jg_hmac::tower::VerifiedBody>) -> usize {
///     // The exact bytes that were verified.
///     req.into_body().collect().await.map(|b| b.to_bytes().len()).unwrap_or(0)
/// }
/// ```
#[derive(Debug, Default)]
pub struct VerifiedBody(Full<Bytes>);

impl VerifiedBody {
    pub(super) fn new(bytes: Bytes) -> Self {
        Self(Full::new(bytes))
    }
}

impl Body for VerifiedBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Pin::new(&mut self.get_mut().0).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.0.size_hint()
    }
}

pin_project_lite::pin_project! {
    /// The body of a response that passed through the crate's layers: the inner
    /// service's, or the layer's own JSON error body.
    ///
    /// ```
    /// fn is_body<B: http_body::Body>() {}
    /// is_body::<jg_hmac::tower::ResponseBody<String>>();
    /// ```
    pub struct ResponseBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project_lite::pin_project! {
    #[project = KindProj]
    enum Kind<B> {
        Inner { #[pin] body: B },
        Refusal { body: Full<Bytes> },
    }
}

impl<B> ResponseBody<B> {
    pub(super) fn inner(body: B) -> Self {
        Self {
            kind: Kind::Inner { body },
        }
    }

    fn refusal(body: String) -> Self {
        Self {
            kind: Kind::Refusal {
                body: Full::new(Bytes::from(body)),
            },
        }
    }
}

impl<B> fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            Kind::Inner { .. } => "inner",
            Kind::Refusal { .. } => "refusal",
        };
        f.debug_tuple("ResponseBody").field(&kind).finish()
    }
}

impl<B: Body<Data = Bytes>> Body for ResponseBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        match self.project().kind.project() {
            KindProj::Inner { body } => body.poll_frame(cx),
            KindProj::Refusal { body } => Pin::new(body)
                .poll_frame(cx)
                .map(|frame| frame.map(|f| f.map_err(|never| match never {}))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Inner { body } => body.is_end_stream(),
            Kind::Refusal { body } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Inner { body } => body.size_hint(),
            Kind::Refusal { body } => body.size_hint(),
        }
    }
}

/// What the sandbox diagnostics add to an `invalid_signature` body.
pub(super) struct Diagnostics {
    pub(super) string_to_sign: String,
    pub(super) hint: Option<&'static str>,
}

/// The refusal response: `error`'s status and the seed's JSON error body (plus
/// `stringToSign` and `hint` when diagnostics are given), `Content-Type:
/// application/json`, `Cache-Control: no-store` and `X-Request-Id`.
pub(super) fn refusal<B>(
    error: Error,
    request_id: &str,
    now: u64,
    diagnostics: Option<&Diagnostics>,
) -> Response<ResponseBody<B>> {
    let mut body = error.to_json_body(request_id, now);
    if let Some(d) = diagnostics {
        body.pop();
        body.push_str(",\"stringToSign\":");
        push_json_string(&mut body, &d.string_to_sign);
        if let Some(hint) = d.hint {
            body.push_str(",\"hint\":");
            push_json_string(&mut body, hint);
        }
        body.push('}');
    }
    let mut response = Response::new(ResponseBody::refusal(body));
    *response.status_mut() =
        StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(id) = HeaderValue::from_str(request_id) {
        headers.insert(super::audit::X_REQUEST_ID, id);
    }
    response
}
