//! The observers of the layer's events: the audit log always, the metrics with feature
//! `metrics`. The request path hands each request's [`Event`] here once.

use super::audit;
use super::event::Event;

/// Every observer of one layer.
#[derive(Default)]
pub(super) struct Observers {
    #[cfg(feature = "metrics")]
    metrics: super::metrics::LayerMetrics,
}

impl Observers {
    /// Whether any observer wants timings (so the request path reads the monotonic clock
    /// only then).
    pub(super) fn timed(&self) -> bool {
        cfg!(feature = "metrics") || audit::enabled()
    }

    /// Whether an observer wants to know whose signature a request refused on its head
    /// carries (the metrics name a client only by its signature; the audit log shows the
    /// key), worth a lookup and a body read.
    pub(super) fn attributes(&self) -> bool {
        self.timed()
    }

    /// Whether an observer wants the path as sent after the inner service took the
    /// request (the audit log, when something records it).
    pub(super) fn wants_path(&self) -> bool {
        audit::enabled()
    }

    /// Hands `event` to every observer.
    pub(super) fn observe(&self, event: &Event<'_>) {
        audit::record(event);
        #[cfg(feature = "metrics")]
        self.metrics.record(event);
    }
}
