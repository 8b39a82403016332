//! Pinned messages.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::messages::{join_message, joined_message};
use super::{Store, StoreError};
use crate::model::Message;

/// A pin as stored, with its message when that is still in Postgres.
pub struct StoredPin {
    pub message_id: Uuid,
    pub message: Option<Message>,
    pub pinned_by: String,
    pub pinned_at: DateTime<Utc>,
}

/// What pinning a message did.
#[derive(Debug, PartialEq)]
pub enum Pinned {
    /// Pinned now.
    Added(DateTime<Utc>),
    /// It was pinned already, at that time by that user.
    Kept(DateTime<Utc>, String),
    /// The room holds its most pins already.
    Full,
}

impl Store {
    /// Pins a message of the room unless the room holds `max` pins already.
    pub async fn pin(
        &self,
        tenant_id: &str,
        room_id: Uuid,
        message_id: Uuid,
        by: &str,
        max: i64,
    ) -> Result<Pinned, StoreError> {
        // The second subquery reads the snapshot before the insert: a pin that was there already.
        let row = self
            .client()
            .await?
            .query_one_cached(
                "WITH added AS (
                     INSERT INTO chat_pins (tenant_id, room_id, message_id, pinned_by)
                     SELECT $1, $2, $3, $4
                     WHERE (SELECT count(*) FROM chat_pins WHERE tenant_id = $1 AND room_id = $2) < $5
                     ON CONFLICT DO NOTHING RETURNING pinned_at)
                 SELECT (SELECT pinned_at FROM added), p.pinned_at, p.pinned_by
                 FROM (SELECT 1) one
                 LEFT JOIN chat_pins p ON p.tenant_id = $1 AND p.message_id = $3",
                &[&tenant_id, &room_id, &message_id, &by, &max],
            )
            .await?;
        Ok(match (row.get(0), row.get(1)) {
            (Some(at), _) => Pinned::Added(at),
            (None, Some(at)) => Pinned::Kept(at, row.get(2)),
            (None, None) => Pinned::Full,
        })
    }

    /// Whether it was pinned.
    pub async fn unpin(&self, tenant_id: &str, message_id: Uuid) -> Result<bool, StoreError> {
        let n = self
            .client()
            .await?
            .execute_cached(
                "DELETE FROM chat_pins WHERE tenant_id = $1 AND message_id = $2",
                &[&tenant_id, &message_id],
            )
            .await?;
        Ok(n == 1)
    }

    /// The room's pins, newest first: who pinned which message when, and the message as it is
    /// now when it is still in Postgres (an archived one is not).
    pub async fn pins(&self, tenant_id: &str, room_id: Uuid) -> Result<Vec<StoredPin>, StoreError> {
        let rows = self
            .client()
            .await?
            .query_cached(
                &format!(
                    "SELECT p.message_id AS pinned_id, p.pinned_by, p.pinned_at, m.*
                     FROM chat_pins p {}
                     WHERE p.tenant_id = $1 AND p.room_id = $2
                     ORDER BY p.pinned_at DESC",
                    join_message("p.message_id")
                ),
                &[&tenant_id, &room_id],
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok(StoredPin {
                    message_id: row.get("pinned_id"),
                    message: joined_message(row)?,
                    pinned_by: row.get("pinned_by"),
                    pinned_at: row.get("pinned_at"),
                })
            })
            .collect()
    }
}
