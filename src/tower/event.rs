//! One request's event: everything the observers (the audit log, the metrics) are told
//! about it, gathered once by the request path.

use std::fmt;
use std::time::Duration;

use crate::error::Error;
use crate::signature::Signature;

/// What happened to one request. Built once, after the response head is ready, and
/// handed to every observer. (Without feature `metrics`, the audit log reads only some of
/// the fields.)
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
pub(crate) struct Event<'a> {
    pub(crate) request_id: &'a str,
    pub(crate) method: &'a str,
    /// The path as sent (no query).
    pub(crate) path: &'a str,
    /// `Ok` when accepted, else why it was refused.
    pub(crate) outcome: Result<(), Error>,
    /// The status answered: the inner service's for an accepted request.
    pub(crate) status: u16,
    /// The client id the request claimed, if it could be read: verified only when
    /// `key_id` is set.
    pub(crate) client_id: Option<&'a str>,
    /// The key of `client_id` the signature verified under, whatever the outcome: for an
    /// accepted request, and for one refused all the same (replayed; out of the window or
    /// of a content type not allowed, checked only to attribute it). `None`: no signature
    /// of that client's was shown, and the metrics count the request as `unknown`.
    pub(crate) key_id: Option<&'a str>,
    /// The signature the request carried, if it parsed.
    pub(crate) signature: Option<&'a Signature>,
    /// Server time minus `X-Timestamp`, if the timestamp parsed.
    pub(crate) skew: Option<i64>,
    /// The skew, when past the layer's warning threshold (an accepted request's response
    /// then carries `X-JG-Clock-Skew`).
    pub(crate) skew_warning: Option<i64>,
    /// The layer's own time, from the head to the decision (when something is timed).
    pub(crate) decided_in: Option<Duration>,
    /// From the head until the response head was ready, inner service included.
    pub(crate) latency: Option<Duration>,
    /// The credential store lookup, if one was made: its time (when timed) and whether it
    /// failed.
    pub(crate) lookup: Option<Lookup>,
    /// A store's error, for the audit log only (never sent to the partner).
    pub(crate) store_error: Option<&'a dyn fmt::Display>,
}

/// One credential store lookup.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
pub(crate) struct Lookup {
    pub(crate) elapsed: Option<Duration>,
    pub(crate) failed: bool,
}

impl Event<'_> {
    /// `accepted`, or the refusal's wire code.
    pub(crate) fn outcome_code(&self) -> &'static str {
        match self.outcome {
            Ok(()) => "accepted",
            Err(e) => e.code(),
        }
    }
}
