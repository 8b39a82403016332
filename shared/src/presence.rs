//! The connection registry and presence, in Redis.
//!
//! Keys carry hash tags so that each multi-key step touches one cluster slot, and escape the ids
//! they join (`keys`): `chat:conn:{cid}` hash (user, tenant, name, roles as a JSON list,
//! connected_at, expires_at: the token's `exp`) · `chat:user:{tenant/user}:conns` set of connection ids ·
//! `chat:tenant:{tenant}:conns` set · `chat:presence:{tenant}` hash user → last change ·
//! `chat:connections` set of all · `chat:owners` hash connection id → `endpoint tenant/user`
//! (ids escaped), which the sweep walks to find connections that ended unnoticed.

use crate::redis_conn::RedisConn;
use chrono::{DateTime, TimeZone, Utc};
use redis::{AsyncCommands, Script};
use std::sync::LazyLock;

use crate::keys;
use crate::model::Caller;

/// API Gateway closes a WebSocket after two hours; registry entries outlive that a little.
const CONN_TTL_SECS: i64 = 3 * 3600;
const ALL_CONNECTIONS: &str = "chat:connections";
const OWNERS: &str = "chat:owners";

fn conn_key(connection_id: &str) -> String {
    format!("chat:conn:{{{connection_id}}}")
}

fn user_conns_key(tenant_id: &str, user_id: &str) -> String {
    format!("chat:user:{{{}}}:conns", keys::user(tenant_id, user_id))
}

fn tenant_conns_key(tenant_id: &str) -> String {
    format!("chat:tenant:{{{}}}:conns", keys::id(tenant_id))
}

fn presence_key(tenant_id: &str) -> String {
    format!("chat:presence:{{{}}}", keys::id(tenant_id))
}

/// Whose a connection is, in the registry's walk: its management API and its user.
fn owner(endpoint: &str, tenant_id: &str, user_id: &str) -> String {
    format!("{endpoint} {}", keys::user(tenant_id, user_id))
}

/// Adds to `pipe` the steps that take a connection id out of the registry's sets beyond its
/// user's (each answer ignored).
fn leave_registry<'a>(pipe: &'a mut redis::Pipeline, tenant_id: &str, connection_id: &str) -> &'a mut redis::Pipeline {
    pipe.srem(ALL_CONNECTIONS, connection_id)
        .ignore()
        .srem(tenant_conns_key(tenant_id), connection_id)
        .ignore()
        .hdel(OWNERS, connection_id)
        .ignore()
}

/// A registered connection as the registry's walk finds it.
pub struct Owned {
    pub connection_id: String,
    pub endpoint: String,
    pub tenant_id: String,
    pub user_id: String,
}

/// A JSON list. A registration made before roles were a list holds one joined string: it is taken
/// whole, never split, so at worst such a connection has fewer roles until it reconnects.
fn parse_roles(stored: &str) -> Vec<String> {
    serde_json::from_str(stored).unwrap_or_else(
        |_| {
            if stored.is_empty() {
                Vec::new()
            } else {
                vec![stored.to_string()]
            }
        },
    )
}

/// A registered connection, when it was registered, and when its token expires (None for a
/// registration made before expiries were recorded).
#[derive(Debug, Clone)]
pub struct Registered {
    pub caller: Caller,
    pub connected_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// KEYS: the connection's hash · ARGV: name, roles, expires_at. Only an existing registration
/// changes: a refresh racing `$disconnect` must not leave a partial hash behind.
static REFRESH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'name', ARGV[1], 'roles', ARGV[2], 'expires_at', ARGV[3])
return 1
"#,
    )
});

#[derive(Clone)]
pub struct Presence {
    redis: RedisConn,
}

impl Presence {
    pub fn new(redis: RedisConn) -> Self {
        Self { redis }
    }

    pub fn redis(&self) -> &RedisConn {
        &self.redis
    }

    /// Records who the connection is, until when its token holds, and the management API it is
    /// reached through (at `$connect`). It receives fan-out only once activated.
    pub async fn register(
        &self,
        caller: &Caller,
        expires_at: DateTime<Utc>,
        endpoint: Option<&str>,
    ) -> redis::RedisResult<()> {
        let conn = conn_key(&caller.connection_id);
        // A list, never a joined string: a role claim holding the separator must not become two roles.
        let roles = serde_json::to_string(&caller.roles).expect("strings serialize");
        redis::pipe()
            .hset_multiple(
                &conn,
                &[
                    ("tenant_id", caller.tenant_id.as_str()),
                    ("user_id", caller.user_id.as_str()),
                    ("name", caller.display_name.as_str()),
                    ("roles", &roles),
                    ("connected_at", &Utc::now().timestamp_millis().to_string()),
                    ("expires_at", &expires_at.timestamp().to_string()),
                ],
            )
            .ignore()
            .expire(&conn, CONN_TTL_SECS)
            .ignore()
            .hset(
                OWNERS,
                &caller.connection_id,
                owner(endpoint.unwrap_or_default(), &caller.tenant_id, &caller.user_id),
            )
            .ignore()
            .query_async(&mut self.redis.clone())
            .await
    }

    /// Replaces a registered connection's name, roles and expiry (a fresh token on the same
    /// connection); false when the connection is no longer registered.
    pub async fn refresh(&self, caller: &Caller, expires_at: DateTime<Utc>) -> redis::RedisResult<bool> {
        let roles = serde_json::to_string(&caller.roles).expect("strings serialize");
        REFRESH
            .key(conn_key(&caller.connection_id))
            .arg(&caller.display_name)
            .arg(roles)
            .arg(expires_at.timestamp())
            .invoke_async(&mut self.redis.clone())
            .await
    }

    /// How many live connections the user holds. Only when that reaches `cap` are the members
    /// of their set checked: one whose registration expired (it ended without `$disconnect`)
    /// is dropped, so stale entries cannot lock a user out.
    pub async fn live_connections(&self, tenant_id: &str, user_id: &str, cap: usize) -> redis::RedisResult<usize> {
        let user = user_conns_key(tenant_id, user_id);
        let ids: Vec<String> = self.redis.clone().smembers(&user).await?;
        if ids.len() < cap {
            return Ok(ids.len());
        }
        let mut pipe = redis::pipe();
        for id in &ids {
            pipe.exists(conn_key(id));
        }
        let alive: Vec<bool> = pipe.query_async(&mut self.redis.clone()).await?;
        let stale: Vec<&String> = ids.iter().zip(&alive).filter(|(_, alive)| !**alive).map(|(id, _)| id).collect();
        if !stale.is_empty() {
            self.redis.clone().srem::<_, _, ()>(&user, stale).await?;
        }
        Ok(alive.iter().filter(|a| **a).count())
    }

    /// Adds the connection to its user's set, which fan-out reads; true when it is the user's
    /// first (they just came online).
    pub async fn activate(&self, caller: &Caller) -> redis::RedisResult<bool> {
        let user = user_conns_key(&caller.tenant_id, &caller.user_id);
        let (count,): (i64,) = redis::pipe()
            .sadd(&user, &caller.connection_id)
            .ignore()
            .scard(&user)
            .expire(&user, CONN_TTL_SECS)
            .ignore()
            .sadd(ALL_CONNECTIONS, &caller.connection_id)
            .ignore()
            .sadd(tenant_conns_key(&caller.tenant_id), &caller.connection_id)
            .ignore()
            .query_async(&mut self.redis.clone())
            .await?;
        // A disconnect that ran meanwhile deleted the registration before removing the id from
        // the sets: checked after adding, either order leaves no ghost (the sets live in other
        // cluster slots than the registration, so one script cannot do both).
        if !self.redis.clone().exists::<_, bool>(conn_key(&caller.connection_id)).await? {
            self.forget(&caller.tenant_id, &caller.user_id, &caller.connection_id).await?;
            return Ok(false);
        }
        Ok(count == 1)
    }

    /// Takes a connection id out of every set, whether or not its registration is still there;
    /// true when this took its user's last connection (not when a `$disconnect` running at the
    /// same time had taken it already: that one tells the user's contacts, once).
    pub async fn forget(&self, tenant_id: &str, user_id: &str, connection_id: &str) -> redis::RedisResult<bool> {
        let user = user_conns_key(tenant_id, user_id);
        let mut pipe = redis::pipe();
        pipe.srem(&user, connection_id);
        let (removed, remaining): (i64, i64) = leave_registry(&mut pipe, tenant_id, connection_id)
            .scard(&user)
            .query_async(&mut self.redis.clone())
            .await?;
        Ok(removed == 1 && remaining == 0)
    }

    pub async fn lookup(&self, connection_id: &str) -> redis::RedisResult<Option<Registered>> {
        let mut redis = self.redis.clone();
        let fields: std::collections::HashMap<String, String> = redis.hgetall(conn_key(connection_id)).await?;
        let field = |k: &str| fields.get(k).cloned();
        let (Some(tenant_id), Some(user_id)) = (field("tenant_id"), field("user_id")) else {
            return Ok(None);
        };
        let connected_ms = field("connected_at").and_then(|v| v.parse().ok()).unwrap_or(0);
        let expires_at =
            field("expires_at").and_then(|v| v.parse().ok()).and_then(|s| Utc.timestamp_opt(s, 0).single());
        Ok(Some(Registered {
            caller: Caller {
                connection_id: connection_id.to_string(),
                display_name: field("name").unwrap_or_else(|| user_id.clone()),
                roles: field("roles").map(|r| parse_roles(&r)).unwrap_or_default(),
                tenant_id,
                user_id,
            },
            connected_at: Utc.timestamp_millis_opt(connected_ms).single().unwrap_or_default(),
            expires_at,
        }))
    }

    /// Forgets the connection. Returns who it was and whether it was the user's last active one,
    /// or None when it was already gone (another disconnect or prune got there first).
    pub async fn unregister(&self, connection_id: &str) -> redis::RedisResult<Option<(Caller, bool)>> {
        let Some(registered) = self.lookup(connection_id).await? else {
            return Ok(None);
        };
        let caller = registered.caller;
        let mut redis = self.redis.clone();
        let user = user_conns_key(&caller.tenant_id, &caller.user_id);
        let mut pipe = redis::pipe();
        pipe.del(conn_key(connection_id)).srem(&user, connection_id);
        let (deleted, was_active, remaining): (i64, i64, i64) =
            leave_registry(&mut pipe, &caller.tenant_id, connection_id).scard(&user).query_async(&mut redis).await?;
        Ok((deleted == 1).then_some((caller, was_active == 1 && remaining == 0)))
    }

    /// The live connections of each of the users, in one round trip.
    pub async fn connections_by_user(
        &self,
        tenant_id: &str,
        user_ids: &[String],
    ) -> redis::RedisResult<Vec<Vec<String>>> {
        if user_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for user in user_ids {
            pipe.smembers(user_conns_key(tenant_id, user));
        }
        pipe.query_async(&mut self.redis.clone()).await
    }

    /// How many live connections the tenant has (fan-out, tenant metrics).
    pub async fn tenant_connection_count(&self, tenant_id: &str) -> redis::RedisResult<i64> {
        self.redis.clone().scard(tenant_conns_key(tenant_id)).await
    }

    /// The tenant's live connections with their users, in two round trips (a big room's
    /// fan-out, announcements). Ids whose
    /// registration is gone (ended without `$disconnect`) leave the tenant's set on the way.
    pub async fn tenant_connections(&self, tenant_id: &str) -> redis::RedisResult<Vec<(String, String)>> {
        let tenant = tenant_conns_key(tenant_id);
        let ids: Vec<String> = self.redis.clone().smembers(&tenant).await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for id in &ids {
            pipe.hget(conn_key(id), "user_id");
        }
        let owners: Vec<Option<String>> = pipe.query_async(&mut self.redis.clone()).await?;
        let (live, gone): (Vec<_>, Vec<_>) = ids.into_iter().zip(owners).partition(|(_, owner)| owner.is_some());
        if !gone.is_empty() {
            let gone: Vec<String> = gone.into_iter().map(|(id, _)| id).collect();
            self.redis.clone().srem::<_, _, ()>(&tenant, gone).await?;
        }
        Ok(live.into_iter().filter_map(|(id, owner)| Some((owner?, id))).collect())
    }

    /// Whether each of the users has a live connection, in one round trip.
    pub async fn online(&self, tenant_id: &str, user_ids: &[String]) -> redis::RedisResult<Vec<bool>> {
        let mut pipe = redis::pipe();
        for user in user_ids {
            pipe.exists(user_conns_key(tenant_id, user));
        }
        pipe.query_async(&mut self.redis.clone()).await
    }

    /// Records the user's status and when it changed (their last-seen time when offline).
    pub async fn set_status(
        &self,
        tenant_id: &str,
        user_id: &str,
        online: bool,
        at: DateTime<Utc>,
    ) -> redis::RedisResult<()> {
        let value = serde_json::json!({ "online": online, "at": at }).to_string();
        self.redis.clone().hset(presence_key(tenant_id), user_id, value).await
    }

    /// Whether Redis answers.
    pub async fn ping(&self) -> redis::RedisResult<()> {
        redis::cmd("PING").query_async::<String>(&mut self.redis.clone()).await.map(drop)
    }

    /// One step of a walk over every registered connection: up to about `count` of them, and
    /// the cursor to go on from (0 when the walk is over).
    pub async fn registry_step(&self, cursor: u64, count: usize) -> redis::RedisResult<(u64, Vec<Owned>)> {
        let (next, pairs): (u64, Vec<(String, String)>) = redis::cmd("HSCAN")
            .arg(OWNERS)
            .arg(cursor)
            .arg("COUNT")
            .arg(count)
            .query_async(&mut self.redis.clone())
            .await?;
        let owned = pairs
            .into_iter()
            .filter_map(|(connection_id, owner)| {
                let (endpoint, user) = owner.split_once(' ')?;
                let (tenant_id, user_id) = keys::split_user(user)?;
                Some(Owned { connection_id, endpoint: endpoint.to_string(), tenant_id, user_id })
            })
            .collect();
        Ok((next, owned))
    }

    pub async fn active_connections(&self) -> redis::RedisResult<i64> {
        self.redis.clone().scard(ALL_CONNECTIONS).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_a_list_and_old_joined_strings_are_never_split() {
        assert_eq!(parse_roles(r#"["x,admin"]"#), ["x,admin"]);
        assert_eq!(parse_roles(r#"["admin","support_agent"]"#), ["admin", "support_agent"]);
        assert_eq!(parse_roles("x,admin"), ["x,admin"]);
        assert_eq!(parse_roles("admin"), ["admin"]);
        assert!(parse_roles("").is_empty());
    }

    #[test]
    fn user_keys_of_colliding_ids_differ() {
        assert_ne!(user_conns_key("X", "b/c"), user_conns_key("X/b", "c"));
        assert_eq!(user_conns_key("acme", "alice"), "chat:user:{acme/alice}:conns");
    }
}
