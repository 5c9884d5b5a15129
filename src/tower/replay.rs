//! Replay protection for the layer: an async guard trait that shared stores can
//! implement, fed by the crate's synchronous guards.

use std::future::{Future, ready};
use std::sync::Arc;

use crate::error::Error;
use crate::replay::ReplayGuard;
use crate::signature::Signature;

/// The layer's replay guard: accepts a given (client id, signature) once until it
/// expires. Async so that a guard shared by many instances (Redis `SET NX EX`, a
/// database unique key) fits.
///
/// Every synchronous [`ReplayGuard`] (such as [`InMemoryReplayGuard`]) is one, and so is
/// an `Arc` of a guard (keep a handle, e.g. to watch its size).
///
/// The layer calls it only for requests whose signature verified, with
/// `expires_at` = the request's timestamp + [`Verifier::replay_horizon`]: after that the
/// window refuses the request anyway, so the entry may go.
///
/// A shared implementation must make check-and-record one atomic step (two instances
/// receiving the same request at once must not both accept it), and must fail closed:
/// when the store cannot answer, return [`Error::ReplayGuardUnavailable`] (503), never
/// `Ok`.
///
/// ```
/// use jg_hmac::{Error, Signature};
/// use jg_hmac::tower::AsyncReplayGuard;
///
/// struct SharedGuard; // stands for a Redis client
///
/// impl AsyncReplayGuard for SharedGuard {
///     async fn check_and_record(
///         &self, client_id: &str, signature: &Signature, expires_at: u64, now: u64,
///     ) -> Result<(), Error> {
///         // SET jg:replay:{client_id}:{signature hex} 1 NX EXAT {expires_at}
///         // -> Ok(()) if set, Err(ReplayedRequest) if it existed,
///         //    Err(ReplayGuardUnavailable) on any store error.
///         # let _ = (client_id, signature, expires_at, now);
///         Ok(())
///     }
/// }
/// ```
///
/// [`InMemoryReplayGuard`]: crate::InMemoryReplayGuard
/// [`Verifier::replay_horizon`]: crate::Verifier::replay_horizon
pub trait AsyncReplayGuard: Send + Sync + 'static {
    /// Records (`client_id`, `signature`) until `expires_at`; refuses one already
    /// recorded.
    ///
    /// # Errors
    /// [`Error::ReplayedRequest`] for a request seen before;
    /// [`Error::ReplayGuardUnavailable`] when the guard cannot vouch for the request.
    fn check_and_record(
        &self,
        client_id: &str,
        signature: &Signature,
        expires_at: u64,
        now: u64,
    ) -> impl Future<Output = Result<(), Error>> + Send;
}

impl<G: ReplayGuard + Send + Sync + 'static> AsyncReplayGuard for G {
    fn check_and_record(
        &self,
        client_id: &str,
        signature: &Signature,
        expires_at: u64,
        now: u64,
    ) -> impl Future<Output = Result<(), Error>> + Send {
        ready(ReplayGuard::check_and_record(
            self, client_id, signature, expires_at, now,
        ))
    }
}

impl<G: AsyncReplayGuard + ?Sized> AsyncReplayGuard for Arc<G> {
    fn check_and_record(
        &self,
        client_id: &str,
        signature: &Signature,
        expires_at: u64,
        now: u64,
    ) -> impl Future<Output = Result<(), Error>> + Send {
        (**self).check_and_record(client_id, signature, expires_at, now)
    }
}

/// No replay protection: every verified request is accepted, however often it is sent.
/// The layer's default, because a useful guard must be sized for the traffic (see
/// [`InMemoryReplayGuard`](crate::InMemoryReplayGuard)); choose one with
/// [`VerifyLayerBuilder::replay_guard`](super::VerifyLayerBuilder::replay_guard).
///
/// ```
/// use jg_hmac::{ReplayGuard, Signature};
/// let sig = Signature::from_bytes([0; 32]);
/// let guard = jg_hmac::tower::NoReplayGuard;
/// assert!(guard.check_and_record("c", &sig, 1, 0).is_ok());
/// assert!(guard.check_and_record("c", &sig, 1, 0).is_ok());
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct NoReplayGuard;

impl ReplayGuard for NoReplayGuard {
    fn check_and_record(&self, _: &str, _: &Signature, _: u64, _: u64) -> Result<(), Error> {
        Ok(())
    }
}
