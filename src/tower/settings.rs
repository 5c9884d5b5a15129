//! What every service made by one [`VerifyLayer`](super::VerifyLayer) shares: the store,
//! the replay guard, the rate limiter, the verifier, the clock and the observers.

use std::fmt;
use std::time::Duration;

use crate::Environment;
use crate::clock::Clock;
use crate::rate_limit::RateLimit;
use crate::verifier::Verifier;

use super::observe::Observers;

/// The settings of one layer, shared (behind an `Arc`) by every route and connection it
/// wraps. Built by [`VerifyLayerBuilder`](super::VerifyLayerBuilder).
pub(super) struct Settings<S, R, L> {
    pub(super) store: S,
    pub(super) guard: R,
    /// Where the partners' rate budgets are kept.
    pub(super) limiter: L,
    /// The limit of a client whose credential has none (`None`: such a client is not
    /// limited).
    pub(super) default_limit: Option<RateLimit>,
    pub(super) verifier: Verifier,
    pub(super) clock: Box<dyn Clock>,
    pub(super) body_limit: usize,
    pub(super) environment: Option<Environment>,
    pub(super) diagnostics: bool,
    /// Above this absolute skew (seconds), an accepted request's response says so.
    pub(super) skew_warning: Option<u64>,
    /// How long a request may take from its head to the decision.
    pub(super) deadline: Duration,
    pub(super) observers: Observers,
}

impl<S, R, L> fmt::Debug for Settings<S, R, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("verifier", &self.verifier)
            .field("body_limit", &self.body_limit)
            .field("environment", &self.environment)
            .field("diagnostics", &self.diagnostics)
            .field("skew_warning", &self.skew_warning)
            .field("deadline", &self.deadline)
            .field("default_limit", &self.default_limit)
            .finish_non_exhaustive()
    }
}
