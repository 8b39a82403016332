//! The archived months of rooms, and taking archived messages out of Postgres.

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use super::{Prepared, Store, StoreError};

#[derive(Debug, Clone)]
pub struct ArchivedMonth {
    pub month: NaiveDate,
    pub object_key: String,
    pub messages: i32,
    pub min_seq: i64,
    pub max_seq: i64,
}

impl Store {
    /// Rooms (of any tenant) holding messages created before `cutoff`: the archive run's work.
    /// Like the typing sweep, a system-wide query.
    pub async fn rooms_with_messages_before(&self, cutoff: DateTime<Utc>) -> Result<Vec<(String, Uuid)>, StoreError> {
        let rows = self
            .client()
            .await?
            .query_cached(
                "SELECT DISTINCT tenant_id, room_id FROM chat_messages WHERE created_at < $1 LIMIT 1000",
                &[&cutoff],
            )
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// The room's archived months, oldest first.
    pub async fn archived_months(&self, tenant_id: &str, room_id: Uuid) -> Result<Vec<ArchivedMonth>, StoreError> {
        let rows = self
            .client()
            .await?
            .query_cached(
                "SELECT month, object_key, messages, min_seq, max_seq FROM chat_archived_months
                 WHERE tenant_id = $1 AND room_id = $2 ORDER BY month",
                &[&tenant_id, &room_id],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| ArchivedMonth {
                month: r.get(0),
                object_key: r.get(1),
                messages: r.get(2),
                min_seq: r.get(3),
                max_seq: r.get(4),
            })
            .collect())
    }

    /// Records what an archive object now holds, then deletes those messages (with their edits
    /// and reactions, which the object keeps, and their mentions) from Postgres, in one transaction.
    pub async fn move_to_archive(
        &self,
        tenant_id: &str,
        room_id: Uuid,
        month: &ArchivedMonth,
        archived_seqs: &[i64],
    ) -> Result<u64, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute_cached(
            "INSERT INTO chat_archived_months (tenant_id, room_id, month, object_key, messages, min_seq, max_seq)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (tenant_id, room_id, month) DO UPDATE
             SET object_key = EXCLUDED.object_key, messages = EXCLUDED.messages, min_seq = EXCLUDED.min_seq,
                 max_seq = EXCLUDED.max_seq, archived_at = now()",
            &[&tenant_id, &room_id, &month.month, &month.object_key, &month.messages, &month.min_seq, &month.max_seq],
        )
        .await?;
        let deleted = tx
            .execute_cached(
                "DELETE FROM chat_messages WHERE tenant_id = $1 AND room_id = $2 AND seq = ANY($3)",
                &[&tenant_id, &room_id, &archived_seqs],
            )
            .await?;
        // Archived messages leave the unread and mention counts (they are counted in Postgres).
        tx.execute_cached(
            "DELETE FROM chat_mentions WHERE tenant_id = $1 AND room_id = $2 AND seq = ANY($3)",
            &[&tenant_id, &room_id, &archived_seqs],
        )
        .await?;
        tx.commit().await?;
        Ok(deleted)
    }
}
