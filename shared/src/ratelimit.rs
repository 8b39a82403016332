//! Rate limits as token buckets in Redis, so they hold across gateway and Lambda instances.
//!
//! A bucket per limit and subject, `chat:rl:{kind:subject}` (the subject's ids escaped, `keys`),
//! refilled continuously at the configured rate up to its burst; one atomic script takes a token
//! or says how long to wait.

use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;

use crate::keys;
use crate::model::Caller;
use crate::redis_conn::RedisConn;
use redis::Script;

/// Whose bucket a token comes from.
#[derive(Clone, Copy, Debug)]
pub enum Subject<'a> {
    Ip(&'a str),
    User(&'a Caller),
}

impl Subject<'_> {
    fn key_part(self) -> String {
        match self {
            Subject::Ip(ip) => keys::id(ip).into_owned(),
            Subject::User(caller) => keys::user(&caller.tenant_id, &caller.user_id),
        }
    }
}

/// A sustained rate with a burst allowance, written `RATE/BURST` (per second), or `off`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    pub per_second: f64,
    pub burst: u32,
}

impl Rate {
    pub const OFF: Rate = Rate { per_second: 0.0, burst: 0 };

    pub const fn new(per_second: f64, burst: u32) -> Self {
        Self { per_second, burst }
    }

    pub fn is_off(&self) -> bool {
        self.per_second <= 0.0 || self.burst == 0
    }
}

impl FromStr for Rate {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("off") {
            return Ok(Rate::OFF);
        }
        let (rate, burst) = s.split_once('/').ok_or("expected RATE/BURST, e.g. 10/20, or off")?;
        let per_second: f64 = rate.trim().parse().map_err(|_| format!("bad rate {rate:?}"))?;
        let burst: u32 = burst.trim().parse().map_err(|_| format!("bad burst {burst:?}"))?;
        if !per_second.is_finite() || per_second < 0.0 {
            return Err("rate must be a positive number".into());
        }
        Ok(Rate { per_second, burst })
    }
}

/// What is limited, each with its own buckets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// Messages, edits and reactions per user.
    Messages,
    /// Typing frames per user.
    Typing,
    /// Any other frame per user.
    Frames,
    /// Connection attempts per user.
    ConnectsPerUser,
    /// Connection attempts per source IP.
    ConnectsPerIp,
    /// HTTP requests per user.
    Http,
    /// HTTP requests per source IP that carry no valid token (health, development tokens, bad
    /// tokens): the only way to hold back someone without an identity.
    HttpPerIp,
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Limit::Messages => "messages",
            Limit::Typing => "typing",
            Limit::Frames => "frames",
            Limit::ConnectsPerUser => "connects-user",
            Limit::ConnectsPerIp => "connects-ip",
            Limit::Http => "http",
            Limit::HttpPerIp => "http-ip",
        })
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct RateLimits {
    pub messages: Rate,
    pub typing: Rate,
    pub frames: Rate,
    pub connects_per_user: Rate,
    pub connects_per_ip: Rate,
    pub http: Rate,
    pub http_per_ip: Rate,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            messages: Rate::new(10.0, 20),
            typing: Rate::new(5.0, 10),
            frames: Rate::new(30.0, 60),
            connects_per_user: Rate::new(0.5, 20),
            connects_per_ip: Rate::new(5.0, 60),
            http: Rate::new(20.0, 60),
            http_per_ip: Rate::new(5.0, 60),
        }
    }
}

impl RateLimits {
    pub const OFF: RateLimits = RateLimits {
        messages: Rate::OFF,
        typing: Rate::OFF,
        frames: Rate::OFF,
        connects_per_user: Rate::OFF,
        connects_per_ip: Rate::OFF,
        http: Rate::OFF,
        http_per_ip: Rate::OFF,
    };

    fn rate(&self, limit: Limit) -> Rate {
        match limit {
            Limit::Messages => self.messages,
            Limit::Typing => self.typing,
            Limit::Frames => self.frames,
            Limit::ConnectsPerUser => self.connects_per_user,
            Limit::ConnectsPerIp => self.connects_per_ip,
            Limit::Http => self.http,
            Limit::HttpPerIp => self.http_per_ip,
        }
    }
}

/// KEYS: bucket · ARGV: tokens per millisecond, burst. Returns {allowed, milliseconds to wait}.
static TAKE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local bucket = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(bucket[1]) or burst
local ts = tonumber(bucket[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local allowed, wait = 0, 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  wait = math.ceil((1 - tokens) / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate) + 1000)
return {allowed, wait}
"#,
    )
});

#[derive(Clone)]
pub struct RateLimiter {
    redis: RedisConn,
    limits: RateLimits,
}

impl RateLimiter {
    pub fn new(redis: RedisConn, limits: RateLimits) -> Self {
        Self { redis, limits }
    }

    /// Takes a token for `subject` under `limit`: Ok, or how many milliseconds until one is free.
    pub async fn take(&self, limit: Limit, subject: Subject<'_>) -> redis::RedisResult<Result<(), u64>> {
        let rate = self.limits.rate(limit);
        if rate.is_off() {
            return Ok(Ok(()));
        }
        let (allowed, wait): (i64, i64) = TAKE
            .key(format!("chat:rl:{{{limit}:{}}}", subject.key_part()))
            .arg(rate.per_second / 1000.0)
            .arg(rate.burst)
            .invoke_async(&mut self.redis.clone())
            .await?;
        Ok(if allowed == 1 { Ok(()) } else { Err(wait.max(1) as u64) })
    }

    /// Slow mode: one message from the caller in the room per `interval`. Ok (and the interval
    /// starts), or how many milliseconds until the next is allowed.
    pub async fn slow_mode(
        &self,
        caller: &Caller,
        room_id: uuid::Uuid,
        interval: std::time::Duration,
    ) -> redis::RedisResult<Result<(), u64>> {
        let key = format!("chat:slow:{{{}}}:{room_id}", keys::user(&caller.tenant_id, &caller.user_id));
        let mut redis = self.redis.clone();
        let ms = interval.as_millis() as u64;
        let started: Option<String> =
            redis::cmd("SET").arg(&key).arg(1).arg("NX").arg("PX").arg(ms).query_async(&mut redis).await?;
        if started.is_some() {
            return Ok(Ok(()));
        }
        let left: i64 = redis::cmd("PTTL").arg(&key).query_async(&mut redis).await?;
        Ok(Err(left.max(1) as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse() {
        assert_eq!("10/20".parse::<Rate>().unwrap(), Rate::new(10.0, 20));
        assert_eq!("0.5 / 3".parse::<Rate>().unwrap(), Rate::new(0.5, 3));
        assert!("off".parse::<Rate>().unwrap().is_off());
        assert!("10".parse::<Rate>().is_err());
        assert!("-1/2".parse::<Rate>().is_err());
        assert!("x/2".parse::<Rate>().is_err());
    }
}
