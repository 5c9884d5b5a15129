//! A partner's rate limit: how many requests per period, and how many at once.

use core::fmt;
use core::str::FromStr;
use core::time::Duration;

/// A per-client rate limit: `requests` per `period`, with bursts of up to `burst` requests.
///
/// Limiters read it as a GCRA (generic cell rate algorithm): a request is allowed when
/// the client's *theoretical arrival time* is at most `(burst - 1) × interval` ahead of
/// now, where `interval = period / requests`; each allowed request moves it forward by one
/// `interval`. A client that has been idle may therefore send `burst` requests at once,
/// then one per `interval`. Only requests that verified spend it.
///
/// The text form, used by `jg-hmac keys limit`, `JG_RATE_LIMIT` and the gateway's
/// credentials file, is `N/s:B` (`N/min:B`, `N/h:B`); without `:B` the burst is `N`.
///
/// ```
/// use jg_hmac::RateLimit;
/// let limit: RateLimit = "100/s:200".parse().unwrap();
/// assert_eq!(limit, RateLimit::per_second(100, 200).unwrap());
/// assert_eq!(limit.interval(), std::time::Duration::from_millis(10));
/// assert_eq!(limit.to_string(), "100/s:200");
/// assert!("0/s".parse::<RateLimit>().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RateLimit {
    requests: u32,
    period: Period,
    burst: u32,
}

/// The period a rate is counted over, as written in the text form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Period {
    Second,
    Minute,
    Hour,
}

impl Period {
    const fn seconds(self) -> u64 {
        match self {
            Self::Second => 1,
            Self::Minute => 60,
            Self::Hour => 3600,
        }
    }

    const fn suffix(self) -> &'static str {
        match self {
            Self::Second => "s",
            Self::Minute => "min",
            Self::Hour => "h",
        }
    }
}

/// The largest burst a limit may have.
const MAX_BURST: u32 = 1_000_000;
/// The largest number of requests per period (so that the interval is at least 1 ns).
const MAX_REQUESTS: u32 = 1_000_000_000;

impl RateLimit {
    /// `requests` per second with bursts of `burst`; `None` when either is 0, `requests`
    /// is over 1,000,000,000 or `burst` over 1,000,000.
    ///
    /// ```
    /// let limit = jg_hmac::RateLimit::per_second(5, 10).unwrap();
    /// assert_eq!((limit.requests(), limit.burst()), (5, 10));
    /// assert!(jg_hmac::RateLimit::per_second(5, 0).is_none());
    /// ```
    pub const fn per_second(requests: u32, burst: u32) -> Option<Self> {
        Self::new(requests, Period::Second, burst)
    }

    /// `requests` per minute with bursts of `burst`; `None` as for
    /// [`per_second`](Self::per_second).
    ///
    /// ```
    /// let limit = jg_hmac::RateLimit::per_minute(60, 5).unwrap();
    /// assert_eq!(limit.interval(), std::time::Duration::from_secs(1));
    /// ```
    pub const fn per_minute(requests: u32, burst: u32) -> Option<Self> {
        Self::new(requests, Period::Minute, burst)
    }

    const fn new(requests: u32, period: Period, burst: u32) -> Option<Self> {
        if requests == 0 || requests > MAX_REQUESTS || burst == 0 || burst > MAX_BURST {
            return None;
        }
        Some(Self {
            requests,
            period,
            burst,
        })
    }

    /// The number of requests per period.
    ///
    /// ```
    /// assert_eq!("30/min".parse::<jg_hmac::RateLimit>().unwrap().requests(), 30);
    /// ```
    pub const fn requests(&self) -> u32 {
        self.requests
    }

    /// The period `requests` are counted over (1 s, 60 s or 3600 s).
    ///
    /// ```
    /// let limit: jg_hmac::RateLimit = "30/min".parse().unwrap();
    /// assert_eq!(limit.period(), std::time::Duration::from_secs(60));
    /// ```
    pub const fn period(&self) -> Duration {
        Duration::from_secs(self.period.seconds())
    }

    /// How many requests an idle client may send at once.
    ///
    /// ```
    /// assert_eq!("10/s".parse::<jg_hmac::RateLimit>().unwrap().burst(), 10);
    /// ```
    pub const fn burst(&self) -> u32 {
        self.burst
    }

    /// The GCRA emission interval, `period / requests` (nanosecond precision).
    ///
    /// ```
    /// let limit = jg_hmac::RateLimit::per_second(3, 1).unwrap();
    /// assert_eq!(limit.interval().as_nanos(), 333_333_333);
    /// ```
    pub const fn interval(&self) -> Duration {
        Duration::from_nanos(self.period.seconds() * 1_000_000_000 / self.requests as u64)
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}:{}",
            self.requests,
            self.period.suffix(),
            self.burst
        )
    }
}

/// The error of parsing a [`RateLimit`]: the text is not `N/s[:B]`, `N/min[:B]` or
/// `N/h[:B]` with `N` in 1..=4294967295 and `B` in 1..=1000000.
///
/// ```
/// let err = "fast".parse::<jg_hmac::RateLimit>().unwrap_err();
/// assert!(err.to_string().contains("N/s:B"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidRateLimit(());

impl fmt::Display for InvalidRateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "a rate limit is N/s:B, N/min:B or N/h:B (N requests per period, 1 to 1000000000; \
             bursts of B, 1 to 1000000; without :B the burst is N, at most 1000000)",
        )
    }
}

impl std::error::Error for InvalidRateLimit {}

impl FromStr for RateLimit {
    type Err = InvalidRateLimit;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = InvalidRateLimit(());
        let (rate, burst) = match text.split_once(':') {
            Some((rate, burst)) => (rate, Some(burst)),
            None => (text, None),
        };
        let (requests, period) = rate.split_once('/').ok_or(invalid.clone())?;
        let requests = parse_count(requests).ok_or(invalid.clone())?;
        let period = match period {
            "s" => Period::Second,
            "min" => Period::Minute,
            "h" => Period::Hour,
            _ => return Err(invalid),
        };
        let burst = match burst {
            Some(burst) => parse_count(burst).ok_or(invalid.clone())?,
            None => requests.min(MAX_BURST),
        };
        Self::new(requests, period, burst).ok_or(invalid)
    }
}

/// A decimal count: ASCII digits only (no sign, no spaces), in `u32`.
fn parse_count(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_form_round_trips() {
        for text in [
            "1/s:1",
            "100/s:200",
            "30/min:5",
            "7/h:7",
            "1000000000/s:1000000",
        ] {
            let limit: RateLimit = text.parse().unwrap();
            assert_eq!(limit.to_string(), text);
        }
        assert_eq!(
            "10/min".parse::<RateLimit>().unwrap().to_string(),
            "10/min:10"
        );
    }

    #[test]
    fn bad_text_is_refused() {
        for text in [
            "",
            "/s",
            "1/",
            "1/d",
            "0/s",
            "1/s:0",
            "1/s:1000001",
            "-1/s",
            "+1/s",
            " 1/s",
            "1/s:",
            "1/s:2:3",
            "99999999999/s",
            "1.5/s",
            "1/s:١",
        ] {
            assert!(text.parse::<RateLimit>().is_err(), "{text:?}");
        }
    }

    #[test]
    fn interval_never_rounds_to_zero() {
        let limit: RateLimit = "1000000000/s".parse().unwrap();
        assert_eq!(limit.interval().as_nanos(), 1);
        assert!("1000000001/s".parse::<RateLimit>().is_err());
        let slow: RateLimit = "1/h".parse().unwrap();
        assert_eq!(slow.interval(), Duration::from_secs(3600));
    }
}
