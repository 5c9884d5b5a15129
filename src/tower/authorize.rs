//! The request path: every decision about one request, in order, in one function.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::header;
use http::request::Parts;
use http_body::Body;

use crate::Environment;
use crate::credential::Credential;
use crate::diagnose::{Diagnosis, diagnose};
use crate::error::{Error, LimitKind};
use crate::request::SignedRequest;
use crate::signature::{ContentHash, Signature};
use crate::verified::{Prepared, Verified};

use super::body::{BodyError, read_to_limit};
use super::event::Lookup;
use super::limit::{Checked, RateLimiter};
use super::replay::AsyncReplayGuard;
use super::response::Diagnostics;
use super::settings::Settings;
use super::store::{CredentialStore, StoreError};
use super::target::sent_uri;

pub(super) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// An accepted request: who signed it, the bytes that were verified, and the time of the
/// decision.
pub(super) struct Accepted {
    pub(super) verified: Verified,
    pub(super) body: Bytes,
    pub(super) now: u64,
    /// The client's rate limit and the limiter's decision, when one applied.
    pub(super) rate: Option<Checked>,
}

/// A refused request: why, and when it was decided.
pub(super) struct Refusal {
    pub(super) error: Error,
    pub(super) now: u64,
    /// Sandbox diagnostics of an `invalid_signature`.
    pub(super) diagnostics: Option<Diagnostics>,
    /// A `rate_limited` refusal's limit and decision (its headers).
    pub(super) rate: Option<Checked>,
}

/// The request's facts, gathered once as the request path learns them, for the event
/// the observers are given (whatever the outcome).
#[derive(Default)]
pub(super) struct Facts<'a> {
    pub(super) client_id: Option<&'a str>,
    pub(super) timestamp: Option<u64>,
    pub(super) signature: Option<Signature>,
    /// The identity the signature verified under, whatever the outcome: the observers
    /// name a client only by it (the claimed `client_id` is anyone's to send).
    pub(super) verified: Option<Verified>,
    /// A refusal decided on the head, while the body is read to attribute it: the answer
    /// if the deadline ends that read.
    pub(super) refused: Option<(Error, u64)>,
    /// The credential store lookup, if one was made.
    pub(super) lookup: Option<Lookup>,
    pub(super) store_error: Option<StoreError>,
}

/// Every check of one request, in order (SPEC.md §6):
/// 1. the head against the clock read on arrival (headers, content type, window, query
///    limits), the client id's environment and a declared `Content-Length`;
/// 2. the credential lookup, and the client it names (unknown or revoked is refused
///    before the body is read);
/// 3. the body, up to the limit;
/// 4. once the body is complete, the clock and the credential are read again, and against
///    them: the window again, the keys' validity (a key revoked, disabled or ended by a
///    rotation while the body streamed is not used), the signature, and the replay guard;
/// 5. the client's rate limit (its credential's, else the layer's default), spent only
///    by a request that got this far.
///
/// A request refused for its window or content type is [attributed](attribute) all the
/// same: the answer stays the refusal.
pub(super) async fn authorize<'p, S, R, L, B>(
    settings: &Settings<S, R, L>,
    parts: &'p Parts,
    body: B,
    facts: &mut Facts<'p>,
) -> Result<Accepted, Refusal>
where
    S: CredentialStore,
    R: AsyncReplayGuard,
    L: RateLimiter,
    B: Body,
    B::Error: Into<BoxError>,
{
    let arrived = settings.clock.now();
    let refuse = |error, now| Refusal {
        error,
        now,
        diagnostics: None,
        rate: None,
    };
    let request = SignedRequest::from_http(&parts.method, sent_uri(parts), &parts.headers);
    let (prepared, refused) = match settings.verifier.prepare_attributable(&request, arrived) {
        Ok(prepared) => prepared,
        Err(e) => {
            facts.client_id = request.headers.claimed_client_id();
            facts.timestamp = request.headers.claimed_timestamp();
            return Err(refuse(e, arrived));
        }
    };
    facts.client_id = Some(prepared.client_id());
    facts.timestamp = Some(prepared.timestamp());
    facts.signature = Some(*prepared.signature());
    // Refused for its content type or window: the answer, once it is attributed.
    if let Some(e) = refused {
        if settings.observers.attributes() {
            facts.refused = Some((e, arrived));
            attribute(settings, parts, &prepared, body, facts, arrived).await;
        }
        return Err(refuse(e, arrived));
    }

    // A client id of another environment is answered like an unknown one, unlooked-up.
    let other_env = other_environment(settings, prepared.client_id());
    // On arrival, the credential decides only whether to read the body at all.
    let on_arrival = if other_env {
        None
    } else {
        if too_large(settings, parts) {
            return Err(refuse(Error::TooLarge(LimitKind::Body), arrived));
        }
        lookup(settings, prepared.client_id(), facts)
            .await
            .map_err(|()| refuse(Error::CredentialStoreUnavailable, arrived))?
    };
    settings
        .verifier
        .check_client(&prepared, on_arrival.as_deref(), arrived)
        .map_err(|e| refuse(e, arrived))?;
    drop(on_arrival);

    let bytes = read_to_limit(body, settings.body_limit)
        .await
        .map_err(|e| {
            let error = match e {
                BodyError::TooLarge => Error::TooLarge(LimitKind::Body),
                BodyError::Unreadable => Error::MalformedBody,
            };
            refuse(error, settings.clock.now())
        })?;

    // The request is complete: every decision from here is taken at this time, with the
    // credential as the store has it now.
    let now = settings.clock.now();
    let credential = if other_env {
        None
    } else {
        lookup(settings, prepared.client_id(), facts)
            .await
            .map_err(|()| refuse(Error::CredentialStoreUnavailable, now))?
    };
    let content = ContentHash::of(&bytes);
    let kept = settings.diagnostics.then(|| credential.clone()).flatten();
    // `Verifier::finish` in two: a request refused for its window or content type at this
    // point is attributed by its signature too.
    let complete = settings.verifier.check_complete(&prepared, &content, now);
    let signed = settings
        .verifier
        .check_signature(&prepared, credential, &content, now);
    if let Err(error) = complete {
        facts.verified = signed.ok();
        return Err(refuse(error, now));
    }
    let verified = signed.map_err(|error| Refusal {
        diagnostics: (settings.diagnostics && error == Error::InvalidSignature).then(|| {
            Diagnostics {
                string_to_sign: prepared.string_to_sign(&content),
                hint: kept.as_deref().and_then(|c| hint(c, &request, &bytes, now)),
            }
        }),
        ..refuse(error, now)
    })?;
    let expires_at = prepared
        .timestamp()
        .saturating_add(settings.verifier.replay_horizon());
    // Only now, verified and not a replay, may the request spend its client's budget.
    let limit = verified
        .credential()
        .rate_limit()
        .or(settings.default_limit);
    let decision = match settings
        .limiter
        .check_and_acquire(
            &settings.guard,
            prepared.client_id(),
            prepared.signature(),
            expires_at,
            now,
            limit,
        )
        .await
    {
        Ok(decision) => decision,
        Err(e) => {
            facts.verified = Some(verified);
            return Err(refuse(e, now));
        }
    };
    let rate = limit
        .zip(decision)
        .map(|(limit, decision)| Checked { limit, decision });
    if let Some(checked) = rate.filter(|c| !c.decision.is_allowed()) {
        facts.verified = Some(verified);
        return Err(Refusal {
            rate: Some(checked),
            ..refuse(Error::RateLimited, now)
        });
    }
    Ok(Accepted {
        verified,
        body: bytes,
        now,
        rate,
    })
}

/// For a request refused on its head alone (out of the window, a content type not
/// allowed): whether its signature verifies all the same, under a key of the client it
/// names. Only then do the observers count it under that client (a partner's drifting
/// clock shows in its own series), else as `unknown` (an impostor who knows a client id
/// moves none of that client's series). Never changes the answer.
///
/// Bounded like an accepted request: the store is asked (an unknown id, unless unknown
/// ids are hidden, ends it there), a body is read only within the layer's limit, and
/// all of it within the request deadline, past which the refusal is answered as is.
async fn attribute<S, R, L, B>(
    settings: &Settings<S, R, L>,
    parts: &Parts,
    prepared: &Prepared<'_>,
    body: B,
    facts: &mut Facts<'_>,
    now: u64,
) where
    S: CredentialStore,
    B: Body,
{
    if other_environment(settings, prepared.client_id()) || too_large(settings, parts) {
        return;
    }
    let Ok(credential) = lookup(settings, prepared.client_id(), facts).await else {
        return;
    };
    // A hidden unknown id costs what a known one does, so that timing does not tell them
    // apart.
    if credential.is_none() && !settings.verifier.hides_unknown_clients() {
        return;
    }
    let Ok(bytes) = read_to_limit(body, settings.body_limit).await else {
        return;
    };
    let content = ContentHash::of(&bytes);
    facts.verified = settings
        .verifier
        .check_signature(prepared, credential, &content, now)
        .ok();
}

/// Whether `client_id` is of another environment than the layer's: answered like an
/// unknown id, without a lookup.
fn other_environment<S, R, L>(settings: &Settings<S, R, L>, client_id: &str) -> bool {
    settings
        .environment
        .is_some_and(|env| Environment::of(client_id) != Some(env))
}

/// Whether the declared `Content-Length` is above the body limit.
fn too_large<S, R, L>(settings: &Settings<S, R, L>, parts: &Parts) -> bool {
    declared_length(parts).is_some_and(|len| len > settings.body_limit as u64)
}

/// The credential store's answer for `client_id`, recorded in `facts` (timed when an
/// observer wants timings; a request's lookups add up). `Err` when the store failed.
async fn lookup<S: CredentialStore, R, L>(
    settings: &Settings<S, R, L>,
    client_id: &str,
    facts: &mut Facts<'_>,
) -> Result<Option<Arc<Credential>>, ()> {
    let started = settings.observers.timed().then(Instant::now);
    let found = settings.store.get(client_id).await;
    let before = facts.lookup.take();
    let elapsed = started.map(|t| t.elapsed());
    facts.lookup = Some(Lookup {
        elapsed: match (before.and_then(|b| b.elapsed), elapsed) {
            (Some(a), Some(b)) => Some(a.saturating_add(b)),
            (a, b) => a.or(b),
        },
        failed: found.is_err() || before.is_some_and(|b| b.failed),
    });
    found.map_err(|e| facts.store_error = Some(e))
}

/// The code of the typical partner mistake that reproduces the sent signature under the
/// first key active at `now` (sandbox diagnostics only; never part of the decision).
fn hint(
    credential: &Credential,
    request: &SignedRequest<'_>,
    body: &[u8],
    now: u64,
) -> Option<&'static str> {
    let key = credential.keys().iter().find(|k| k.is_active_at(now))?;
    match diagnose(key, request, body) {
        Diagnosis::None | Diagnosis::Unknown => None,
        found => Some(found.code()),
    }
}

/// `Content-Length` as declared, when it is one number.
fn declared_length(parts: &Parts) -> Option<u64> {
    let mut values = parts.headers.get_all(header::CONTENT_LENGTH).iter();
    let first = values.next()?;
    if values.next().is_some() {
        return None;
    }
    first.to_str().ok()?.trim().parse().ok()
}
