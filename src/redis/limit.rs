//! [`RedisReplayGuard`] as the layer's rate limiter: a GCRA per client in Redis, one Lua
//! script per check, on Redis time; and, when the same guard is also the layer's replay
//! guard, the replay check in the same script (one round trip per request).

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use ::redis::{Script, Value};

use crate::error::Error;
use crate::rate_limit::RateLimit;
use crate::signature::Signature;
use crate::tower::audit::AUDIT_TARGET;
use crate::tower::{AsyncReplayGuard, RateDecision, RateLimiter};

use super::{LOG_TARGET, NoAnswer, RedisReplayGuard, client_key};

/// The replay check (when asked) and the GCRA step, atomically.
///
/// - `KEYS[1]`: the request's replay key; `KEYS[2]`: the client's rate key. Both carry
///   the client's hash tag, so they are in one Cluster slot.
/// - `ARGV[1]`: the replay key's TTL in seconds, `0` for no replay check; `ARGV[2]`: the
///   limit's interval in µs; `ARGV[3]`: its burst.
/// - Returns `{-1, 0, 0}` for a replay, `{0, 0, wait µs}` when over the limit, else
///   `{1, remaining, µs until one more}`.
///
/// Time is the Redis server's (`TIME`, µs), so instances with skewed clocks agree. The
/// rate key holds the client's theoretical arrival time and expires when it passes (the
/// client is then back to a full burst, as if never seen): memory stays bounded.
const SCRIPT: &str = r"
if ARGV[1] ~= '0' then
  if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
    return {-1, 0, 0}
  end
end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local interval = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local tolerance = (burst - 1) * interval
local tat = tonumber(redis.call('GET', KEYS[2])) or now
if tat < now then tat = now end
if tat - now > tolerance then
  return {0, 0, tat - now - tolerance}
end
local next = tat + interval
redis.call('SET', KEYS[2], string.format('%.0f', next), 'PX', math.ceil((next - now) / 1000))
local left = burst * interval - (next - now)
return {1, math.floor(left / interval), interval - left % interval}
";

static GCRA: LazyLock<Script> = LazyLock::new(|| Script::new(SCRIPT));

/// What the script answered.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    Replayed,
    Decided(RateDecision),
}

impl RedisReplayGuard {
    /// The key of `client_id`'s rate budget: `{prefix}{{len}:{client_id}}:rate`.
    fn rate_key(&self, client_id: &str) -> String {
        client_key(&self.prefix, client_id, "rate")
    }

    /// Whether `self` and `other` are clones of one guard (one connection).
    fn same_connection(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.id, &other.id)
    }

    /// Runs the script: with `replay` = (key, TTL) the replay check first.
    async fn run(
        &self,
        client_id: &str,
        replay: Option<(String, u64)>,
        limit: RateLimit,
    ) -> Result<Answer, NoAnswer> {
        let rate_key = self.rate_key(client_id);
        let (replay_key, ttl) = replay.unwrap_or_else(|| (rate_key.clone(), 0));
        // Redis time is in µs: a limit's interval is kept to µs (at least 1).
        let interval = u64::try_from(limit.interval().as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        let mut invocation = GCRA.prepare_invoke();
        invocation
            .key(replay_key)
            .key(rate_key)
            .arg(ttl)
            .arg(interval)
            .arg(limit.burst());
        let mut connection = self.connection.clone();
        let reply = tokio::time::timeout(
            self.timeout,
            invocation.invoke_async::<Value>(&mut connection),
        )
        .await;
        let reply = match reply {
            Ok(Ok(value)) => value,
            Ok(Err(e)) => return Err(NoAnswer::Redis(e)),
            Err(_) => return Err(NoAnswer::Timeout(self.timeout)),
        };
        parse(&reply).ok_or(NoAnswer::Unexpected(reply))
    }

    /// The limiter alone could not decide: refuse (closed) or let through unlimited (open).
    fn limiter_unavailable(
        &self,
        client_id: &str,
        cause: &dyn fmt::Display,
    ) -> Result<Option<RateDecision>, Error> {
        match self.fail_mode {
            super::FailMode::Closed => {
                tracing::warn!(
                    target: LOG_TARGET,
                    client_id,
                    cause = %cause,
                    "redis rate limiter unavailable: request refused (fail closed)"
                );
                Err(Error::RateLimiterUnavailable)
            }
            super::FailMode::Open => {
                tracing::warn!(
                    target: AUDIT_TARGET,
                    outcome = "rate_limit_skipped",
                    client_id,
                    cause = %cause,
                    "redis rate limiter unavailable: request accepted without rate limit (fail open)"
                );
                Ok(None)
            }
        }
    }
}

/// `{status, remaining, µs}` as the script returns it.
fn parse(reply: &Value) -> Option<Answer> {
    let Value::Array(items) = reply else {
        return None;
    };
    let [status, remaining, wait] = items.as_slice() else {
        return None;
    };
    let int = |v: &Value| match v {
        Value::Int(n) => Some(*n),
        _ => None,
    };
    let wait = Duration::from_micros(u64::try_from(int(wait)?).ok()?);
    let remaining = u32::try_from(int(remaining)?).ok()?;
    match int(status)? {
        -1 => Some(Answer::Replayed),
        0 => Some(Answer::Decided(RateDecision::limited(wait))),
        1 => Some(Answer::Decided(RateDecision::allowed(remaining, wait))),
        _ => None,
    }
}

/// A [`RedisReplayGuard`] keeps the partners' rate budgets in its Redis too, shared by
/// every instance that uses it: give it to
/// [`VerifyLayerBuilder::rate_limiter`](crate::tower::VerifyLayerBuilder::rate_limiter).
///
/// Each check is one Lua script (`EVALSHA`): a GCRA on the key
/// `{prefix}{{len}:{client_id}}:rate`, on the Redis server's clock (`TIME`), so instances
/// whose clocks differ still agree; the key expires once the client is back to a full
/// burst. When the layer's replay guard is a clone of the same guard, the same script
/// also does the replay check (`SET NX` on the request's key, in the same hash slot):
/// one round trip per request for both. Timeout and [`FailMode`](super::FailMode) are
/// the guard's: when Redis cannot answer, fail closed refuses (`503
/// replay_guard_unavailable` when the script did both, `503 rate_limiter_unavailable`
/// when it only limited), fail open lets the request through without a limit (a `warn`
/// audit event, `replay_check_skipped` or `rate_limit_skipped`).
impl RateLimiter for RedisReplayGuard {
    async fn acquire(
        &self,
        client_id: &str,
        limit: RateLimit,
    ) -> Result<Option<RateDecision>, Error> {
        match self.run(client_id, None, limit).await {
            Ok(Answer::Decided(decision)) => Ok(Some(decision)),
            Ok(Answer::Replayed) => self.limiter_unavailable(client_id, &"no replay was asked"),
            Err(failure) => self.limiter_unavailable(client_id, &failure),
        }
    }

    fn check_and_acquire<G: AsyncReplayGuard>(
        &self,
        guard: &G,
        client_id: &str,
        signature: &Signature,
        expires_at: u64,
        now: u64,
        limit: Option<RateLimit>,
    ) -> impl Future<Output = Result<Option<RateDecision>, Error>> + Send {
        let same = (guard as &dyn Any)
            .downcast_ref::<Self>()
            .filter(|g| g.same_connection(self));
        async move {
            let (Some(same), Some(limit)) = (same, limit) else {
                guard
                    .check_and_record(client_id, signature, expires_at, now)
                    .await?;
                return match limit {
                    Some(limit) => self.acquire(client_id, limit).await,
                    None => Ok(None),
                };
            };
            let replay = (same.key(client_id, signature), same.ttl(expires_at, now));
            match self.run(client_id, Some(replay), limit).await {
                Ok(Answer::Decided(decision)) => Ok(Some(decision)),
                Ok(Answer::Replayed) => Err(Error::ReplayedRequest),
                Err(failure) => same
                    .unavailable(client_id, signature, &failure)
                    .map(|()| None),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_read_strictly() {
        let reply = |a: i64, b: i64, c: i64| {
            Value::Array(vec![Value::Int(a), Value::Int(b), Value::Int(c)])
        };
        assert_eq!(parse(&reply(-1, 0, 0)), Some(Answer::Replayed));
        assert_eq!(
            parse(&reply(1, 4, 10_000)),
            Some(Answer::Decided(RateDecision::allowed(
                4,
                Duration::from_millis(10)
            )))
        );
        assert_eq!(
            parse(&reply(0, 0, 1_500_000)),
            Some(Answer::Decided(RateDecision::limited(
                Duration::from_millis(1_500)
            )))
        );
        assert_eq!(parse(&reply(2, 0, 0)), None);
        assert_eq!(parse(&reply(1, -1, 0)), None);
        assert_eq!(parse(&Value::Nil), None);
        assert_eq!(parse(&Value::Array(vec![Value::Int(1)])), None);
    }

    #[test]
    fn a_clients_keys_share_one_hash_tag() {
        let sig = Signature::from_bytes([3; 32]);
        let replay = super::super::replay_key("jg:replay:", "jk_live_a}b", &sig);
        let rate = client_key("jg:replay:", "jk_live_a}b", "rate");
        // Redis hashes what is between the first `{` and the first `}` after it.
        let tag = |k: &str| {
            let open = k.find('{').unwrap();
            let close = open + k[open..].find('}').unwrap();
            k[open + 1..close].to_owned()
        };
        assert_eq!(tag(&replay), tag(&rate));
        assert_eq!(tag(&rate), "11:jk_live_a");
        assert_eq!(rate, "jg:replay:{11:jk_live_a}b}:rate");
    }
}
