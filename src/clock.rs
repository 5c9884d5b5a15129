//! Time, injected: the core never reads a clock itself.

use std::time::{SystemTime, UNIX_EPOCH};

/// A source of the current UNIX time in seconds.
///
/// Integrations take a `Clock` so that tests pin time; the core functions take `now`
/// as a plain argument. Closures returning `u64` are clocks too.
///
/// A clock stopped at one second, for tests or for replaying a captured request, is a
/// closure returning it:
///
/// ```
/// use jg_hmac::Clock;
/// let stopped = || 1_735_550_160u64;
/// assert_eq!(stopped.now(), 1_735_550_160);
/// ```
pub trait Clock: Send + Sync {
    /// Seconds since 1970-01-01T00:00:00Z.
    fn now(&self) -> u64;
}

/// The system's wall clock. A clock set before 1970 reads as `0`.
///
/// ```
/// use jg_hmac::{Clock, SystemClock};
/// assert!(SystemClock.now() > 1_700_000_000);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }
}

impl<F> Clock for F
where
    F: Fn() -> u64 + Send + Sync,
{
    fn now(&self) -> u64 {
        self()
    }
}
