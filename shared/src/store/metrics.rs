//! Read-only figures for a tenant's admins.

use schemars::JsonSchema;
use serde::Serialize;
use uuid::Uuid;

use super::messages::statements;
use super::{Store, StoreError};

#[derive(Debug, Serialize, JsonSchema)]
pub struct RoomMetrics {
    pub room_id: Uuid,
    pub name: String,
    pub room_type: String,
    /// Messages not deleted.
    pub messages: i64,
    pub participants: i64,
    /// Unread messages summed over the room's members, each member's count capped as clients see it.
    pub unread: i64,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct TenantMetrics {
    /// Users who sent a message or were seen online in the last 24 hours.
    pub active_users_24h: i64,
    pub rooms: Vec<RoomMetrics>,
}

impl Store {
    pub async fn tenant_metrics(&self, tenant_id: &str) -> Result<TenantMetrics, StoreError> {
        let client = self.client().await?;
        let rooms = client
            .query_cached(
                &format!(
                    "SELECT r.id, r.name, r.room_type,
                            (SELECT count(*) FROM chat_messages m
                             WHERE m.tenant_id = $1 AND m.room_id = r.id AND m.deleted_at IS NULL) AS messages,
                            count(p.user_id) AS participants,
                            COALESCE(sum(LEAST({unread}, {cap})), 0)::bigint AS unread
                     FROM chat_rooms r
                     LEFT JOIN chat_room_participants p ON p.tenant_id = r.tenant_id AND p.room_id = r.id
                     WHERE r.tenant_id = $1
                     GROUP BY r.id ORDER BY messages DESC, r.created_at",
                    unread = statements::unread_after("p.last_read_seq", "p.user_id"),
                    cap = crate::model::UNREAD_CAP,
                ),
                &[&tenant_id],
            )
            .await?;
        let active = client
            .query_one_cached(
                "SELECT count(*) FROM (
                     SELECT sender_id FROM chat_messages
                     WHERE tenant_id = $1 AND created_at > now() - interval '24 hours' AND message_type <> 'system'
                     UNION
                     SELECT user_id FROM chat_users WHERE tenant_id = $1 AND last_seen_at > now() - interval '24 hours'
                 ) AS active",
                &[&tenant_id],
            )
            .await?;
        Ok(TenantMetrics {
            active_users_24h: active.get(0),
            rooms: rooms
                .iter()
                .map(|r| RoomMetrics {
                    room_id: r.get(0),
                    name: r.get(1),
                    room_type: r.get(2),
                    messages: r.get(3),
                    participants: r.get(4),
                    unread: r.get(5),
                })
                .collect(),
        })
    }
}
