//! The Redis cache of each room's recent messages (one hour), in front of Postgres.
//!
//! Per room: `chat:recent:{room}` a sorted set of message JSON by `seq`, `chat:recent:{room}:gen`
//! a generation counter, `chat:recent:{room}:complete` set when the cache reaches the room's
//! first message, and `chat:recent:{room}:changes` the room's change count it was built at. Every
//! write bumps the generation after Postgres has committed; a reader fills the cache only if the
//! generation it saw before reading Postgres is unchanged, so a page read before an edit, a
//! deletion or a new reaction can never be cached after it. Deleted messages are cached whole and
//! redacted per viewer when served.
//!
//! A cache update can be lost (Redis failing after the commit), so a page is served only when the
//! cache provably holds it: its messages run without a gap in `room_seq` (an append that does not
//! follow the newest cached message empties the cache instead), the newest is the room's newest,
//! and the room's change count is the one the cache was built at (both read from Postgres with
//! the caller's membership; see `RoomVersion`).

use crate::redis_conn::RedisConn;
use redis::Script;
use std::sync::LazyLock;
use uuid::Uuid;

use crate::model::Message;
use crate::store::RoomVersion;

const TTL_SECS: i64 = 3600;
/// Messages kept per room: enough for the first pages a client opens.
const KEEP: usize = 200;

fn keys(room_id: Uuid) -> [String; 4] {
    let base = format!("chat:recent:{{{room_id}}}");
    [base.clone(), format!("{base}:gen"), format!("{base}:complete"), format!("{base}:changes")]
}

static FILL: LazyLock<Script> = LazyLock::new(|| Script::new(FILL_LUA));
static APPEND: LazyLock<Script> = LazyLock::new(|| Script::new(APPEND_LUA));

/// KEYS: set, gen, complete, changes · ARGV: expected generation, complete flag, ttl, changes,
/// then seq/json pairs.
const FILL_LUA: &str = r#"
local gen = redis.call('GET', KEYS[2]) or '0'
if gen ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1], KEYS[3])
for i = 5, #ARGV, 2 do redis.call('ZADD', KEYS[1], ARGV[i], ARGV[i + 1]) end
if ARGV[2] == '1' then redis.call('SET', KEYS[3], '1', 'EX', ARGV[3]) end
redis.call('SET', KEYS[4], ARGV[4], 'EX', ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[3])
return 1
"#;

/// KEYS: set, gen, complete, changes · ARGV: seq, json, keep, ttl, room_seq. Appends only to a
/// cache that exists and whose newest message is the one before; otherwise empties it.
const APPEND_LUA: &str = r#"
redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[4])
local newest = redis.call('ZRANGE', KEYS[1], -1, -1)[1]
if not newest then return 0 end
if cjson.decode(newest)['room_seq'] ~= tonumber(ARGV[5]) - 1 then
  redis.call('DEL', KEYS[1], KEYS[3], KEYS[4])
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
local extra = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[3])
if extra > 0 then
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, extra - 1)
  redis.call('DEL', KEYS[3])
end
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('EXPIRE', KEYS[4], ARGV[4])
return 1
"#;

#[derive(Clone)]
pub struct RecentCache {
    redis: RedisConn,
}

/// A page served from the cache: messages oldest first, and whether older ones exist.
pub type Page = (Vec<Message>, bool);

impl RecentCache {
    pub fn new(redis: RedisConn) -> Self {
        Self { redis }
    }

    /// The newest `limit` messages before `before` (exclusive), when the cache holds that page
    /// and is up to date with the room at `version`.
    pub async fn page(
        &self,
        room_id: Uuid,
        version: RoomVersion,
        before: Option<i64>,
        limit: usize,
    ) -> redis::RedisResult<Option<Page>> {
        let [set, _, complete, changes] = keys(room_id);
        let max = before.map_or("+inf".to_string(), |b| format!("({b}"));
        let (items, complete, newest, changes): (Vec<String>, bool, Vec<String>, Option<i64>) = redis::pipe()
            .cmd("ZRANGE")
            .arg(&set)
            .arg(&max)
            .arg("-inf")
            .arg("BYSCORE")
            .arg("REV")
            .arg("LIMIT")
            .arg(0)
            .arg(limit + 1)
            .exists(&complete)
            .zrange(&set, -1, -1)
            .get(&changes)
            .query_async(&mut self.redis.clone())
            .await?;
        let newest: Option<Message> = newest.first().and_then(|json| serde_json::from_str(json).ok());
        let current = newest.is_some_and(|m| m.room_seq == version.last_seq) && changes == Some(version.changes);
        let has_more = items.len() > limit;
        if !current || (!has_more && !complete) {
            return Ok(None);
        }
        let mut messages = Vec::with_capacity(limit);
        for json in items.iter().take(limit) {
            match serde_json::from_str(json) {
                Ok(message) => messages.push(message),
                Err(_) => return Ok(None),
            }
        }
        messages.reverse();
        Ok(Some((messages, has_more)))
    }

    pub async fn generation(&self, room_id: Uuid) -> redis::RedisResult<i64> {
        let [_, gen, _, _] = keys(room_id);
        let value: Option<i64> = redis::cmd("GET").arg(gen).query_async(&mut self.redis.clone()).await?;
        Ok(value.unwrap_or(0))
    }

    /// Caches the room's newest page, read from Postgres while the generation was `generation`
    /// and the room's change count at least `changes` (an older count only costs a refill).
    pub async fn fill(
        &self,
        room_id: Uuid,
        generation: i64,
        changes: i64,
        messages: &[Message],
        complete: bool,
    ) -> redis::RedisResult<()> {
        let mut invocation = FILL.prepare_invoke();
        for key in keys(room_id) {
            invocation.key(key);
        }
        invocation.arg(generation).arg(if complete { "1" } else { "0" }).arg(TTL_SECS).arg(changes);
        for message in messages.iter().rev().take(KEEP) {
            invocation.arg(message.seq).arg(serde_json::to_string(message).expect("messages serialize"));
        }
        invocation.invoke_async::<i64>(&mut self.redis.clone()).await.map(drop)
    }

    /// A new message, after it is stored.
    pub async fn append(&self, message: &Message) -> redis::RedisResult<()> {
        let mut invocation = APPEND.prepare_invoke();
        for key in keys(message.room_id) {
            invocation.key(key);
        }
        invocation
            .arg(message.seq)
            .arg(serde_json::to_string(message).expect("messages serialize"))
            .arg(KEEP)
            .arg(TTL_SECS)
            .arg(message.room_seq);
        invocation.invoke_async::<i64>(&mut self.redis.clone()).await.map(drop)
    }

    /// A message of the room changed (edit, deletion, reaction, reply count), after it is stored.
    pub async fn invalidate(&self, room_id: Uuid) -> redis::RedisResult<()> {
        let [set, gen, complete, changes] = keys(room_id);
        redis::pipe()
            .incr(&gen, 1)
            .ignore()
            .expire(&gen, TTL_SECS)
            .ignore()
            .del(&[set, complete, changes])
            .ignore()
            .query_async(&mut self.redis.clone())
            .await
    }
}
