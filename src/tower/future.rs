//! The response future of the verifying service, and what it does: authorize, call the
//! inner service, tell the observers.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use http::{HeaderName, HeaderValue, Request, Response, StatusCode};
use http_body::Body;
use tokio::time::timeout;
use tower_service::Service;

use crate::error::Error;
use crate::verified::Verified;

use super::audit;
use super::authorize::{BoxError, Facts, Refusal, authorize};
use super::event::Event;
use super::identity::Authenticated;
use super::limit::RateLimiter;
use super::replay::AsyncReplayGuard;
use super::response::{ResponseBody, VerifiedBody, refusal};
use super::settings::Settings;
use super::store::CredentialStore;
use super::target::sent_uri;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// The future of [`Verify`](super::Verify) and [`RequireScope`](super::RequireScope):
/// the boxed verification, then the inner service's call. Verification borrows the
/// request's head while it reads the body, so it lives in one boxed future (one
/// allocation per request).
///
/// ```
/// fn is_future<F: std::future::Future>() {}
/// is_future::<jg_hmac::tower::ResponseFuture<String, std::convert::Infallible>>();
/// ```
pub struct ResponseFuture<B, E> {
    future: BoxFuture<Result<Response<ResponseBody<B>>, E>>,
}

impl<B, E> ResponseFuture<B, E> {
    pub(super) fn new(future: BoxFuture<Result<Response<ResponseBody<B>>, E>>) -> Self {
        Self { future }
    }
}

impl<B, E> Future for ResponseFuture<B, E> {
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.future.as_mut().poll(cx)
    }
}

impl<B, E> fmt::Debug for ResponseFuture<B, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

/// The response header of the clock-skew early warning.
const X_JG_CLOCK_SKEW: HeaderName = HeaderName::from_static("x-jg-clock-skew");

/// One request through the layer: [`authorize`], then `inner` with the verified bytes
/// and an [`Authenticated`] (or the refusal), then one [`Event`] to the observers.
pub(super) async fn respond<S, R, L, I, B, ResBody>(
    settings: Arc<Settings<S, R, L>>,
    mut inner: I,
    request: Request<B>,
) -> Result<Response<ResponseBody<ResBody>>, I::Error>
where
    S: CredentialStore,
    R: AsyncReplayGuard,
    L: RateLimiter,
    I: Service<Request<VerifiedBody>, Response = Response<ResBody>>,
    B: Body,
    B::Error: Into<BoxError>,
{
    let started = settings.observers.timed().then(Instant::now);
    let (mut parts, body) = request.into_parts();
    let request_id = audit::request_id(parts.headers.get(&audit::X_REQUEST_ID));
    let mut facts = Facts::default();
    let decision = match timeout(
        settings.deadline,
        authorize(&settings, &parts, body, &mut facts),
    )
    .await
    {
        Ok(decision) => decision,
        // A refusal already decided on the head stands, whoever sent it.
        Err(_) => Err(match facts.refused {
            Some((error, now)) => Refusal {
                error,
                now,
                diagnostics: None,
                rate: None,
            },
            None => Refusal {
                error: Error::RequestTimeout,
                now: settings.clock.now(),
                diagnostics: None,
                rate: None,
            },
        }),
    };
    let decided_in = started.map(|t| t.elapsed());
    let accepted = match decision {
        Ok(accepted) => accepted,
        Err(refused) => {
            let mut response = refusal(
                refused.error,
                &request_id,
                refused.now,
                refused.diagnostics.as_ref(),
            );
            if let Some(rate) = refused.rate {
                rate.write(response.headers_mut());
            }
            settings.observers.observe(&Event {
                request_id: &request_id,
                method: parts.method.as_str(),
                path: sent_uri(&parts).path(),
                outcome: Err(refused.error),
                status: response.status().as_u16(),
                client_id: facts.client_id,
                key_id: facts.verified.as_ref().map(Verified::key_id),
                signature: facts.signature.as_ref(),
                skew: facts.timestamp.map(|ts| skew(refused.now, ts)),
                skew_warning: None,
                decided_in,
                latency: started.map(|t| t.elapsed()),
                lookup: facts.lookup,
                store_error: facts.store_error.as_ref().map(|e| e as &dyn fmt::Display),
            });
            return Ok(response);
        }
    };

    let skew = skew(accepted.now, accepted.verified.timestamp());
    let skew_warning = settings
        .skew_warning
        .is_some_and(|threshold| skew.unsigned_abs() > threshold)
        .then_some(skew);
    let lookup = facts.lookup;
    let rate = accepted.rate;
    let who = Authenticated::new(accepted.verified, request_id.clone());
    // The inner service takes the request: keep what the event needs of its head.
    let method = parts.method.clone();
    let sent = settings
        .observers
        .wants_path()
        .then(|| sent_uri(&parts).path_and_query().cloned())
        .flatten();
    parts.extensions.insert(who.clone());
    let result = inner
        .call(Request::from_parts(parts, VerifiedBody::new(accepted.body)))
        .await;
    let status = result
        .as_ref()
        .map_or(StatusCode::INTERNAL_SERVER_ERROR, Response::status);
    settings.observers.observe(&Event {
        request_id: &request_id,
        method: method.as_str(),
        path: sent.as_ref().map_or("", http::uri::PathAndQuery::path),
        outcome: Ok(()),
        status: status.as_u16(),
        client_id: Some(who.client_id()),
        key_id: Some(who.key_id()),
        signature: Some(who.verified().signature()),
        skew: Some(skew),
        skew_warning,
        decided_in,
        latency: started.map(|t| t.elapsed()),
        lookup,
        store_error: None,
    });
    result.map(|mut response| {
        if let Some(skew) = skew_warning {
            response
                .headers_mut()
                .insert(X_JG_CLOCK_SKEW, HeaderValue::from(skew));
        }
        if let Some(rate) = rate {
            rate.write(response.headers_mut());
        }
        response.map(ResponseBody::inner)
    })
}

/// Server time minus the request's timestamp, in seconds (positive: the client's clock is
/// behind), saturated at the ends of `i64`.
fn skew(now: u64, timestamp: u64) -> i64 {
    let difference = i128::from(now) - i128::from(timestamp);
    i64::try_from(difference).unwrap_or(if difference < 0 { i64::MIN } else { i64::MAX })
}
