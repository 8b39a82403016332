//! The archived months of rooms, where each archived message is, and taking archived messages
//! out of Postgres.

use std::future::Future;

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use super::messages::export_records;
use super::sql::{Conn, Typed};
use super::{Store, StoreError};

#[derive(Debug, Clone)]
pub struct ArchivedMonth {
    pub month: NaiveDate,
    pub object_key: String,
    pub messages: i32,
    pub min_seq: i64,
    pub max_seq: i64,
}

impl ArchivedMonth {
    /// Whether the seq is one of those the month's object holds as committed: an object written
    /// by a step whose commit then failed may also hold copies of messages still in Postgres.
    pub fn holds(&self, seq: i64) -> bool {
        (self.min_seq..=self.max_seq).contains(&seq)
    }
}

/// A month's object as an archive step wrote it, and which of the step's messages it holds.
pub struct MonthWritten {
    pub month: ArchivedMonth,
    pub seqs: Vec<i64>,
}

/// What one archive step moved.
pub struct ArchiveStep {
    pub last_seq: i64,
    pub messages: u64,
    pub months: usize,
}

/// Where an archived message is.
#[derive(Debug, Clone, Copy)]
pub struct ArchivedPlace {
    pub room_id: Uuid,
    pub seq: i64,
    pub month: NaiveDate,
}

const MONTHS: &str = "SELECT month, object_key, messages, min_seq, max_seq FROM chat_archived_months
                      WHERE tenant_id = $1 AND room_id = $2 ORDER BY month";

fn months_from_rows(rows: &[tokio_postgres::Row]) -> Vec<ArchivedMonth> {
    rows.iter()
        .map(|r| ArchivedMonth {
            month: r.get(0),
            object_key: r.get(1),
            messages: r.get(2),
            min_seq: r.get(3),
            max_seq: r.get(4),
        })
        .collect()
}

fn places_from_rows(rows: &[tokio_postgres::Row]) -> Vec<ArchivedPlace> {
    rows.iter().map(|r| ArchivedPlace { room_id: r.get(0), seq: r.get(1), month: r.get(2) }).collect()
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
        Ok(months_from_rows(&self.client().await?.query_cached(MONTHS, &[&tenant_id, &room_id]).await?))
    }

    /// Where the archived message is, if it is archived.
    pub async fn archived_place(&self, tenant_id: &str, id: Uuid) -> Result<Option<ArchivedPlace>, StoreError> {
        let rows = self
            .client()
            .await?
            .query_cached(
                "SELECT room_id, seq, month FROM chat_archived_messages WHERE tenant_id = $1 AND id = $2",
                &[&tenant_id, &id],
            )
            .await?;
        Ok(places_from_rows(&rows).pop())
    }

    /// Where the archived replies to a message after `after` are, oldest first, at most `limit`.
    pub async fn archived_replies(
        &self,
        tenant_id: &str,
        parent_id: Uuid,
        after: i64,
        limit: i64,
    ) -> Result<Vec<ArchivedPlace>, StoreError> {
        let rows = self
            .client()
            .await?
            .query_cached(
                "SELECT room_id, seq, month FROM chat_archived_messages
                 WHERE tenant_id = $1 AND reply_to = $2 AND seq > $3 ORDER BY seq LIMIT $4",
                &[&tenant_id, &parent_id, &after, &limit],
            )
            .await?;
        Ok(places_from_rows(&rows))
    }

    /// One archive step of a room, in one transaction: locks its oldest messages created before
    /// `cutoff` after seq `after` (at most `limit`), hands their export records and the room's
    /// archived months to `write` (which puts them into their months' objects), then records
    /// the months and where each message went, and deletes the messages (with their edits,
    /// reactions and mentions). The rows are locked from before they are read until they are
    /// gone, so an edit, reaction, deletion or reply touching one of them either committed
    /// before (and is in the records) or waits and then finds no message: nothing acknowledged
    /// is lost between the read and the delete. Steps of one room take turns (an advisory
    /// lock), so two runs never write one object at once. None when no message is left.
    pub async fn archive_step<E, W, F>(
        &self,
        tenant_id: &str,
        room_id: Uuid,
        after: i64,
        cutoff: DateTime<Utc>,
        limit: usize,
        write: W,
    ) -> Result<Option<ArchiveStep>, E>
    where
        E: From<StoreError>,
        W: FnOnce(Vec<(i64, String)>, Vec<ArchivedMonth>) -> F,
        F: Future<Output = Result<Vec<MonthWritten>, E>>,
    {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let records = lock_step(&tx, tenant_id, room_id, after, cutoff, limit).await?;
        let Some(&(last_seq, _)) = records.last() else { return Ok(None) };
        let months = months_from_rows(&tx.query_cached(MONTHS, &[&tenant_id, &room_id]).await?);
        let written = write(records, months).await?;
        let messages = move_to_archive(&tx, tenant_id, room_id, &written).await?;
        tx.commit().await?;
        Ok(Some(ArchiveStep { last_seq, messages, months: written.len() }))
    }
}

/// Takes the room's archive lock, locks the step's messages and reads their records.
async fn lock_step(
    tx: &Conn<impl Typed + Send + Sync>,
    tenant_id: &str,
    room_id: Uuid,
    after: i64,
    cutoff: DateTime<Utc>,
    limit: usize,
) -> Result<Vec<(i64, String)>, StoreError> {
    tx.execute_cached(
        "SELECT pg_advisory_xact_lock(hashtextextended($1 || ' ' || $2::uuid::text, 7253002))",
        &[&tenant_id, &room_id],
    )
    .await?;
    let locked = tx
        .query_cached(
            "SELECT seq FROM chat_messages
             WHERE tenant_id = $1 AND room_id = $2 AND seq > $3 AND created_at < $4
             ORDER BY seq LIMIT $5 FOR UPDATE",
            &[&tenant_id, &room_id, &after, &cutoff, &(limit as i64)],
        )
        .await?;
    // Read after the rows are locked (a statement of its own: a locking statement's other
    // reads see the rows as they were before it waited).
    let mut records = Vec::with_capacity(locked.len());
    let mut from = after;
    while records.len() < locked.len() {
        let rest = (locked.len() - records.len()) as i64;
        let page = export_records(tx, tenant_id, Some(room_id), from, Some(cutoff), rest).await?;
        let Some(&(last, _)) = page.last() else { break };
        from = last;
        records.extend(page);
    }
    Ok(records)
}

/// Records what the objects now hold and where each message went, then deletes the messages.
async fn move_to_archive(
    tx: &Conn<impl Typed + Send + Sync>,
    tenant_id: &str,
    room_id: Uuid,
    written: &[MonthWritten],
) -> Result<u64, StoreError> {
    let mut moved = 0;
    for MonthWritten { month, seqs } in written {
        tx.execute_cached(
            "INSERT INTO chat_archived_months (tenant_id, room_id, month, object_key, messages, min_seq, max_seq)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (tenant_id, room_id, month) DO UPDATE
             SET object_key = EXCLUDED.object_key, messages = EXCLUDED.messages, min_seq = EXCLUDED.min_seq,
                 max_seq = EXCLUDED.max_seq, archived_at = now()",
            &[&tenant_id, &room_id, &month.month, &month.object_key, &month.messages, &month.min_seq, &month.max_seq],
        )
        .await?;
        tx.execute_cached(
            "INSERT INTO chat_archived_messages (tenant_id, id, room_id, seq, month, reply_to)
             SELECT tenant_id, id, room_id, seq, $4, reply_to FROM chat_messages
             WHERE tenant_id = $1 AND room_id = $2 AND seq = ANY($3)",
            &[&tenant_id, &room_id, seqs, &month.month],
        )
        .await?;
        // Archived messages leave the unread and mention counts (they are counted in Postgres).
        tx.execute_cached(
            "DELETE FROM chat_mentions WHERE tenant_id = $1 AND room_id = $2 AND seq = ANY($3)",
            &[&tenant_id, &room_id, seqs],
        )
        .await?;
        moved += tx
            .execute_cached(
                "DELETE FROM chat_messages WHERE tenant_id = $1 AND room_id = $2 AND seq = ANY($3)",
                &[&tenant_id, &room_id, seqs],
            )
            .await?;
    }
    Ok(moved)
}
