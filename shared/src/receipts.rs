//! Delivery receipts as positions: per room, each member's highest `seq` handed to one of their
//! connections, and when it last moved. One Redis command per fan-out, whatever the room's size,
//! where a row per member per message once went to Postgres.
//!
//! `chat:delivered:{tenant/room}` hash user → `seq:unix_ms`; `chat:fanned:{tenant/message}` set
//! once a sent message's fan-out ran to the end. A position only moves forward
//! (fan-outs of one room may finish in any order). Receipts are advisory: the hash lives 30 days
//! after its last move, and a member's read position in Postgres is the floor under it (what
//! was read was delivered).

use std::collections::HashMap;
use std::sync::LazyLock;

use chrono::{DateTime, TimeZone, Utc};
use redis::{AsyncCommands, Script};
use uuid::Uuid;

use crate::keys;
use crate::redis_conn::RedisConn;

const TTL_SECS: i64 = 30 * 86_400;

fn key(tenant_id: &str, room_id: Uuid) -> String {
    format!("chat:delivered:{{{}/{room_id}}}", keys::id(tenant_id))
}

/// How long a finished fan-out is remembered: longer than any client retries a send.
const FANNED_TTL_SECS: u64 = 86_400;

fn fanned_key(tenant_id: &str, message_id: Uuid) -> String {
    format!("chat:fanned:{{{}/{message_id}}}", keys::id(tenant_id))
}

/// KEYS: the room's hash · ARGV: seq, now (ms), ttl, then the users.
static ADVANCE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local seq = tonumber(ARGV[1])
for i = 4, #ARGV do
  local held = redis.call('HGET', KEYS[1], ARGV[i])
  if not held or tonumber(string.match(held, '^(%d+)')) < seq then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[1] .. ':' .. ARGV[2])
  end
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 0
"#,
    )
});

/// A member's delivery position and when it last moved.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Position {
    pub seq: i64,
    pub at: DateTime<Utc>,
}

fn parse(stored: &str) -> Option<Position> {
    let (seq, ms) = stored.split_once(':')?;
    Some(Position { seq: seq.parse().ok()?, at: Utc.timestamp_millis_opt(ms.parse().ok()?).single()? })
}

#[derive(Clone)]
pub struct Receipts {
    redis: RedisConn,
}

impl Receipts {
    pub fn new(redis: RedisConn) -> Self {
        Self { redis }
    }

    /// Records that `users` were handed the message at `seq` of the room.
    pub async fn delivered(
        &self,
        tenant_id: &str,
        room_id: Uuid,
        seq: i64,
        users: &[String],
    ) -> redis::RedisResult<()> {
        if users.is_empty() {
            return Ok(());
        }
        let mut invocation = ADVANCE.key(key(tenant_id, room_id));
        invocation.arg(seq).arg(Utc::now().timestamp_millis()).arg(TTL_SECS);
        for user in users {
            invocation.arg(user);
        }
        invocation.invoke_async::<i64>(&mut self.redis.clone()).await.map(drop)
    }

    /// Records that a message's fan-out ran to the end (for a day): a retry of its send with
    /// the same `client_msg_id` need not fan it out again.
    pub async fn fanned_out(&self, tenant_id: &str, message_id: Uuid) -> redis::RedisResult<()> {
        self.redis.clone().set_ex(fanned_key(tenant_id, message_id), 1, FANNED_TTL_SECS).await
    }

    /// Whether the message's fan-out is known to have run; an error counts as not.
    pub async fn was_fanned_out(&self, tenant_id: &str, message_id: Uuid) -> bool {
        let known = self.redis.clone().exists::<_, bool>(fanned_key(tenant_id, message_id)).await;
        known.unwrap_or_else(|err| {
            tracing::warn!(error = %err, "fan-out record unavailable: the retry fans out again");
            false
        })
    }

    /// Every member's delivery position in the room (those never delivered anything are absent).
    pub async fn positions(&self, tenant_id: &str, room_id: Uuid) -> redis::RedisResult<HashMap<String, Position>> {
        let stored: HashMap<String, String> = self.redis.clone().hgetall(key(tenant_id, room_id)).await?;
        Ok(stored.into_iter().filter_map(|(user, value)| Some((user, parse(&value)?))).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_parse() {
        let position = parse("42:1700000000123").unwrap();
        assert_eq!(position.seq, 42);
        assert_eq!(position.at.timestamp_millis(), 1_700_000_000_123);
        assert_eq!(serde_json::json!(position.at), "2023-11-14T22:13:20.123Z");
        assert_eq!(parse("garbage"), None);
    }

    #[test]
    fn keys_keep_tenants_apart() {
        let room = Uuid::nil();
        assert_ne!(key("a/b", room), key("a", room));
        assert!(key("acme", room).starts_with("chat:delivered:{acme/"));
    }
}
