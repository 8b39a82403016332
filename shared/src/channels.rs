//! Publishes every event on the Redis channels other services follow:
//! `room:{room_id}`, `user:{user_id}`, `typing:{room_id}` and `chat:global`.

use crate::redis_conn::RedisConn;
use chrono::Utc;
use schemars::JsonSchema;
use serde::Serialize;
use std::fmt;
use uuid::Uuid;

use crate::protocol::ServerFrame;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Channel {
    Room(Uuid),
    User(String),
    Typing(Uuid),
    Global,
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Channel::Room(id) => write!(f, "room:{id}"),
            Channel::User(id) => write!(f, "user:{id}"),
            Channel::Typing(id) => write!(f, "typing:{id}"),
            Channel::Global => f.write_str("chat:global"),
        }
    }
}

/// What a subscriber receives. User ids are only unique within a tenant, so the tenant rides along.
#[derive(Serialize, JsonSchema)]
pub struct Envelope<'a> {
    channel: String,
    tenant_id: &'a str,
    published_at: chrono::DateTime<Utc>,
    event: &'a ServerFrame,
}

/// Publishes the event on each channel in one round trip.
pub async fn publish(
    redis: &RedisConn,
    tenant_id: &str,
    channels: &[Channel],
    event: &ServerFrame,
) -> redis::RedisResult<()> {
    if channels.is_empty() {
        return Ok(());
    }
    let published_at = Utc::now();
    let mut pipe = redis::pipe();
    for channel in channels {
        let envelope = Envelope { channel: channel.to_string(), tenant_id, published_at, event };
        let json = serde_json::to_string(&envelope).expect("envelopes always serialize");
        pipe.publish(channel.to_string(), json).ignore();
    }
    pipe.query_async::<()>(&mut redis.clone()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_names_match_the_spec() {
        let id = Uuid::nil();
        assert_eq!(Channel::Room(id).to_string(), format!("room:{id}"));
        assert_eq!(Channel::User("u1".into()).to_string(), "user:u1");
        assert_eq!(Channel::Typing(id).to_string(), format!("typing:{id}"));
        assert_eq!(Channel::Global.to_string(), "chat:global");
    }
}
