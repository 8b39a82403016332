//! Messages, their edits, reactions and receipts, and the unread counters they move.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;
use uuid::Uuid;

use super::{Prepared, Store, StoreError};
use crate::model::{Caller, Edit, Message, MessageType, Reaction, Receipt, Unread};
use crate::protocol::Cursor;

pub struct NewMessage<'a> {
    pub room_id: Uuid,
    pub message_type: MessageType,
    pub content: &'a str,
    pub attachments: serde_json::Value,
    pub mentions: &'a [String],
    pub reply_to: Option<Uuid>,
    pub client_msg_id: Option<&'a str>,
}

pub enum Inserted {
    /// Stored; `recipients` are the other members with their unread state after it.
    New { message: Message, recipients: Vec<(String, Unread)> },
    /// The sender's `client_msg_id` was stored before: this is that message.
    Duplicate(Message),
    /// `reply_to` names no message of the room.
    ParentMissing,
}

pub struct ReadResult {
    /// The ids that were marked (ids of other rooms or unknown ids are dropped).
    pub message_ids: Vec<Uuid>,
    pub unread: Unread,
    pub read_at: DateTime<Utc>,
}

const MESSAGE_COLUMNS: &str = "id, seq, room_id, sender_id, sender_name, message_type, content, attachments, \
     mentions, reply_to, reply_count, client_msg_id, created_at, edited_at, deleted_at, deleted_by";

/// The statements whose plans matter at volume, public so the query-plan test
/// (`tests/tests/partitioning.rs`) EXPLAINs exactly what runs.
pub mod statements {
    use super::MESSAGE_COLUMNS;

    /// $1 tenant, $2 the scope's id, $3 < seq < $4, $5 rows; `scope` is `room_id = $2` or
    /// `reply_to = $2`.
    pub fn page(scope: &str, ascending: bool) -> String {
        let order = if ascending { "ASC" } else { "DESC" };
        format!(
            "SELECT {MESSAGE_COLUMNS} FROM chat_messages
             WHERE tenant_id = $1 AND {scope} AND seq > $3 AND seq < $4
             ORDER BY seq {order} LIMIT $5"
        )
    }

    /// $1 tenant, $2 query, $3 the searching user, $4 a room or NULL, $5 rows.
    pub fn search() -> String {
        format!(
            "SELECT {MESSAGE_COLUMNS} FROM chat_messages m, websearch_to_tsquery('simple', $2) q
             WHERE m.tenant_id = $1 AND m.search_vector @@ q AND m.deleted_at IS NULL
               AND m.room_id IN (SELECT p.room_id FROM chat_room_participants p
                                 WHERE p.tenant_id = $1 AND p.user_id = $3)
               AND ($4::uuid IS NULL OR m.room_id = $4)
             ORDER BY ts_rank(m.search_vector, q) DESC, m.seq DESC
             LIMIT $5"
        )
    }

    /// $1 tenant, $2 room, $3 reader, $4 their read position: recounts what they have not read.
    pub const UNREAD_RECOUNT: &str = "UPDATE chat_room_participants p
         SET unread_count = c.unread, mention_count = c.mentioned
         FROM (SELECT count(*)::int AS unread, count(*) FILTER (WHERE $3 = ANY(m.mentions))::int AS mentioned
               FROM chat_messages m
               WHERE m.tenant_id = $1 AND m.room_id = $2 AND m.seq > $4
                 AND m.sender_id <> $3 AND m.deleted_at IS NULL AND m.message_type <> 'system') c
         WHERE p.tenant_id = $1 AND p.room_id = $2 AND p.user_id = $3
         RETURNING p.unread_count, p.mention_count";
}

fn message_from_row(row: &Row) -> Result<Message, StoreError> {
    let kind: String = row.get("message_type");
    let attachments: serde_json::Value = row.get("attachments");
    Ok(Message {
        id: row.get("id"),
        seq: row.get("seq"),
        room_id: row.get("room_id"),
        sender_id: row.get("sender_id"),
        sender_name: row.get("sender_name"),
        message_type: MessageType::parse(&kind).ok_or_else(|| StoreError::Corrupt(format!("message_type {kind}")))?,
        content: row.get("content"),
        attachments: serde_json::from_value(attachments).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        mentions: row.get("mentions"),
        reply_to: row.get("reply_to"),
        reply_count: row.get("reply_count"),
        client_msg_id: row.get("client_msg_id"),
        created_at: row.get("created_at"),
        edited_at: row.get("edited_at"),
        deleted_at: row.get("deleted_at"),
        deleted_by: row.get("deleted_by"),
        reactions: Vec::new(),
    })
}

fn messages_from_rows(rows: &[Row]) -> Result<Vec<Message>, StoreError> {
    rows.iter().map(message_from_row).collect()
}

impl Store {
    /// Stores a message and, unless it is a system message, counts it unread (and mentioned)
    /// for the other members; a reply also counts on its parent, which must be in the same room.
    /// A `client_msg_id` the sender already used returns the stored message instead of a copy.
    pub async fn insert_message(&self, sender: &Caller, new: NewMessage<'_>) -> Result<Inserted, StoreError> {
        // One statement, so row locks are held for one round trip only. Concurrent senders in a
        // room lock the other members' rows in user-id order (locks are taken above the sort),
        // which rules out deadlocks between them.
        let row = self
            .client()
            .await?
            .query_one_cached(
                &format!(
                    "WITH m AS (
                         INSERT INTO chat_messages (id, tenant_id, room_id, sender_id, sender_name, message_type,
                                                    content, attachments, mentions, reply_to, client_msg_id)
                         SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11
                         WHERE $10::uuid IS NULL OR EXISTS (
                             SELECT 1 FROM chat_messages WHERE tenant_id = $2 AND room_id = $3 AND id = $10)
                         ON CONFLICT (tenant_id, sender_id, client_msg_id) WHERE client_msg_id IS NOT NULL DO NOTHING
                         RETURNING {MESSAGE_COLUMNS}),
                     parent AS (
                         UPDATE chat_messages SET reply_count = reply_count + 1
                         WHERE tenant_id = $2 AND id = $10 AND EXISTS (SELECT 1 FROM m)),
                     members AS (
                         SELECT user_id FROM chat_room_participants
                         WHERE tenant_id = $2 AND room_id = $3 AND user_id <> $4 AND EXISTS (SELECT 1 FROM m)
                         ORDER BY user_id FOR UPDATE),
                     counted AS (
                         UPDATE chat_room_participants p
                         SET unread_count = unread_count + $12,
                             mention_count = mention_count + CASE WHEN p.user_id = ANY($9) THEN $12 ELSE 0 END
                         FROM members
                         WHERE p.tenant_id = $2 AND p.room_id = $3 AND p.user_id = members.user_id
                         RETURNING p.user_id, p.unread_count, p.mention_count)
                     SELECT m.*,
                            (SELECT array_agg(user_id ORDER BY user_id) FROM counted) AS recipient_ids,
                            (SELECT array_agg(unread_count ORDER BY user_id) FROM counted) AS recipient_unread,
                            (SELECT array_agg(mention_count ORDER BY user_id) FROM counted) AS recipient_mentions
                     FROM (SELECT 1) one LEFT JOIN m ON true"
                ),
                &[
                    &Uuid::now_v7(),
                    &sender.tenant_id,
                    &new.room_id,
                    &sender.user_id,
                    &sender.display_name,
                    &new.message_type.as_str(),
                    &new.content,
                    &new.attachments,
                    &new.mentions,
                    &new.reply_to,
                    &new.client_msg_id,
                    &i32::from(new.message_type != MessageType::System),
                ],
            )
            .await?;
        if row.get::<_, Option<Uuid>>("id").is_none() {
            // Nothing inserted: a retried client_msg_id, or a reply to a message not in the room.
            let existing = self
                .client()
                .await?
                .query_opt_cached(
                    &format!(
                        "SELECT {MESSAGE_COLUMNS} FROM chat_messages
                         WHERE tenant_id = $1 AND sender_id = $2 AND client_msg_id = $3"
                    ),
                    &[&sender.tenant_id, &sender.user_id, &new.client_msg_id],
                )
                .await?;
            return Ok(match existing {
                Some(row) => Inserted::Duplicate(message_from_row(&row)?),
                None => Inserted::ParentMissing,
            });
        }
        let ids: Vec<String> = row.get::<_, Option<Vec<String>>>("recipient_ids").unwrap_or_default();
        let unread: Vec<i32> = row.get::<_, Option<Vec<i32>>>("recipient_unread").unwrap_or_default();
        let mentions: Vec<i32> = row.get::<_, Option<Vec<i32>>>("recipient_mentions").unwrap_or_default();
        let recipients = ids
            .into_iter()
            .zip(unread.into_iter().zip(mentions))
            .map(|(user, (unread_count, mention_count))| {
                (user, Unread { room_id: new.room_id, unread_count, mention_count })
            })
            .collect();
        Ok(Inserted::New { message: message_from_row(&row)?, recipients })
    }

    pub async fn message(&self, tenant_id: &str, message_id: Uuid) -> Result<Option<Message>, StoreError> {
        let row = self
            .client()
            .await?
            .query_opt_cached(
                &format!("SELECT {MESSAGE_COLUMNS} FROM chat_messages WHERE tenant_id = $1 AND id = $2"),
                &[&tenant_id, &message_id],
            )
            .await?;
        row.as_ref().map(message_from_row).transpose()
    }

    /// One page of a room's history in ascending order, and whether more lies beyond it.
    /// Without `after` the page ends at `before` (or the newest message) and walks backwards.
    pub async fn history(
        &self,
        tenant_id: &str,
        room_id: Uuid,
        before: Option<Cursor>,
        after: Option<Cursor>,
        limit: u32,
    ) -> Result<(Vec<Message>, bool), StoreError> {
        self.page("room_id = $2", tenant_id, &room_id, before, after, limit).await
    }

    /// One page of the replies to a message, oldest first.
    pub async fn thread(
        &self,
        tenant_id: &str,
        parent_id: Uuid,
        after: Option<Cursor>,
        limit: u32,
    ) -> Result<(Vec<Message>, bool), StoreError> {
        self.page("reply_to = $2", tenant_id, &parent_id, None, Some(after.unwrap_or(Cursor(0))), limit).await
    }

    async fn page(
        &self,
        scope: &str,
        tenant_id: &str,
        scope_id: &Uuid,
        before: Option<Cursor>,
        after: Option<Cursor>,
        limit: u32,
    ) -> Result<(Vec<Message>, bool), StoreError> {
        let fetch = i64::from(limit) + 1;
        let sql = statements::page(scope, after.is_some());
        let lower = after.map_or(0, |c| c.0);
        let upper = before.map_or(i64::MAX, |c| c.0);
        let rows = self.client().await?.query_cached(&sql, &[&tenant_id, scope_id, &lower, &upper, &fetch]).await?;
        let mut messages = messages_from_rows(&rows)?;
        let has_more = messages.len() as i64 == fetch;
        messages.truncate(limit as usize);
        if after.is_none() {
            messages.reverse();
        }
        Ok((messages, has_more))
    }

    /// Full-text search in the rooms the user belongs to (or one of them), best matches first;
    /// deleted messages are never found.
    pub async fn search(
        &self,
        searcher: &Caller,
        query: &str,
        room_id: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        let rows = self
            .client()
            .await?
            .query_cached(
                &statements::search(),
                &[&searcher.tenant_id, &query, &searcher.user_id, &room_id, &i64::from(limit)],
            )
            .await?;
        messages_from_rows(&rows)
    }

    /// Reactions of the messages, grouped per emoji in first-reaction order.
    pub async fn reactions(&self, tenant_id: &str, ids: &[Uuid]) -> Result<HashMap<Uuid, Vec<Reaction>>, StoreError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let rows = self
            .client()
            .await?
            .query_cached(
                "SELECT message_id, emoji, array_agg(user_id ORDER BY created_at, user_id)
                 FROM chat_message_reactions WHERE tenant_id = $1 AND message_id = ANY($2)
                 GROUP BY message_id, emoji ORDER BY message_id, min(created_at), emoji",
                &[&tenant_id, &ids],
            )
            .await?;
        let mut map: HashMap<Uuid, Vec<Reaction>> = HashMap::new();
        for row in rows {
            let users: Vec<String> = row.get(2);
            map.entry(row.get(0)).or_default().push(Reaction { emoji: row.get(1), count: users.len(), users });
        }
        Ok(map)
    }

    /// Adds (true) or removes (false) the user's reaction; returns whether anything changed.
    pub async fn set_reaction(
        &self,
        tenant_id: &str,
        message_id: Uuid,
        user_id: &str,
        emoji: &str,
        on: bool,
    ) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let n = if on {
            client
                .execute_cached(
                    "INSERT INTO chat_message_reactions (message_id, tenant_id, user_id, emoji)
                     VALUES ($2, $1, $3, $4) ON CONFLICT DO NOTHING",
                    &[&tenant_id, &message_id, &user_id, &emoji],
                )
                .await?
        } else {
            client
                .execute_cached(
                    "DELETE FROM chat_message_reactions
                     WHERE tenant_id = $1 AND message_id = $2 AND user_id = $3 AND emoji = $4",
                    &[&tenant_id, &message_id, &user_id, &emoji],
                )
                .await?
        };
        Ok(n == 1)
    }

    /// Replaces the content, keeping the previous one as a numbered version.
    pub async fn edit_message(&self, editor: &Caller, message_id: Uuid, content: &str) -> Result<Message, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute_cached(
            "INSERT INTO chat_message_edits (message_id, tenant_id, version, content, edited_by, edited_at)
             SELECT m.id, m.tenant_id,
                    1 + (SELECT count(*) FROM chat_message_edits e WHERE e.tenant_id = $1 AND e.message_id = m.id),
                    m.content, $3, COALESCE(m.edited_at, m.created_at)
             FROM chat_messages m WHERE m.tenant_id = $1 AND m.id = $2
             FOR UPDATE",
            &[&editor.tenant_id, &message_id, &editor.user_id],
        )
        .await?;
        let row = tx
            .query_one_cached(
                &format!(
                    "UPDATE chat_messages SET content = $3, edited_at = now()
                     WHERE tenant_id = $1 AND id = $2 RETURNING {MESSAGE_COLUMNS}"
                ),
                &[&editor.tenant_id, &message_id, &content],
            )
            .await?;
        tx.commit().await?;
        message_from_row(&row)
    }

    /// Earlier versions of a message, oldest first. Each holds the content as it was until the
    /// next edit, with who wrote that version and when.
    pub async fn edit_history(&self, tenant_id: &str, message_id: Uuid) -> Result<Vec<Edit>, StoreError> {
        let rows = self
            .client()
            .await?
            .query_cached(
                "SELECT version, content, edited_by, edited_at FROM chat_message_edits
                 WHERE tenant_id = $1 AND message_id = $2 ORDER BY version",
                &[&tenant_id, &message_id],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| Edit { version: r.get(0), content: r.get(1), edited_by: r.get(2), edited_at: r.get(3) })
            .collect())
    }

    /// Soft-deletes a message (the content stays for admins and the audit trail) and takes it
    /// out of the unread counts of those who had not read it; returns it with those members'
    /// unread state after it. None when it was already deleted.
    pub async fn delete_message(
        &self,
        by: &Caller,
        message_id: Uuid,
    ) -> Result<Option<(Message, Vec<(String, Unread)>)>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let row = tx
            .query_opt_cached(
                &format!(
                    "UPDATE chat_messages SET deleted_at = now(), deleted_by = $3
                     WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL RETURNING {MESSAGE_COLUMNS}"
                ),
                &[&by.tenant_id, &message_id, &by.user_id],
            )
            .await?;
        let Some(row) = row else { return Ok(None) };
        let message = message_from_row(&row)?;
        let mut changed = Vec::new();
        if message.message_type != MessageType::System {
            changed = tx
                .query_cached(
                    // Locks in user-id order, as insert_message does.
                    "UPDATE chat_room_participants p
                     SET unread_count = GREATEST(unread_count - 1, 0),
                         mention_count = GREATEST(mention_count - CASE WHEN p.user_id = ANY($5) THEN 1 ELSE 0 END, 0)
                     FROM (SELECT user_id FROM chat_room_participants
                           WHERE tenant_id = $1 AND room_id = $2 AND user_id <> $3 AND last_read_seq < $4
                           ORDER BY user_id FOR UPDATE) unread
                     WHERE p.tenant_id = $1 AND p.room_id = $2 AND p.user_id = unread.user_id
                     RETURNING p.user_id, p.unread_count, p.mention_count",
                    &[&by.tenant_id, &message.room_id, &message.sender_id, &message.seq, &message.mentions],
                )
                .await?
                .iter()
                .map(|r| {
                    let unread = Unread { room_id: message.room_id, unread_count: r.get(1), mention_count: r.get(2) };
                    (r.get(0), unread)
                })
                .collect();
        }
        tx.commit().await?;
        Ok(Some((message, changed)))
    }

    /// Records that the users' connections were handed the message. Receipts are advisory, so
    /// their commit does not wait for the disk (`synchronous_commit` off: a database crash may
    /// lose the last moments of receipts, never a message), and the transaction around it is
    /// sent in one pipelined flight: one round trip in all.
    pub async fn mark_delivered(&self, tenant_id: &str, message_id: Uuid, users: &[String]) -> Result<(), StoreError> {
        if users.is_empty() {
            return Ok(());
        }
        let client = self.client().await?;
        let insert = client
            .prepare_cached(
                "INSERT INTO chat_message_receipts (message_id, tenant_id, user_id, delivered_at)
                 SELECT $2, $1, u, now() FROM unnest($3::text[]) AS u
                 ON CONFLICT (tenant_id, message_id, user_id) DO UPDATE
                   SET delivered_at = COALESCE(chat_message_receipts.delivered_at, now())",
            )
            .await?;
        let params: [&(dyn ToSql + Sync); 3] = [&tenant_id, &message_id, &users];
        // Polled together, the three are queued in order on the first poll, COMMIT included.
        let (begun, inserted, committed) = tokio::join!(
            client.batch_execute("BEGIN; SET LOCAL synchronous_commit TO off"),
            client.execute(&insert, &params),
            client.batch_execute("COMMIT"),
        );
        begun?;
        inserted?;
        committed?;
        Ok(())
    }

    /// Who was delivered and who read the message. Reading up to a later message reads this one too.
    pub async fn receipts(
        &self,
        tenant_id: &str,
        message: &Message,
    ) -> Result<(Vec<Receipt>, Vec<Receipt>), StoreError> {
        let client = self.client().await?;
        let delivered = client
            .query_cached(
                "SELECT user_id, delivered_at FROM chat_message_receipts
                 WHERE tenant_id = $1 AND message_id = $2 AND delivered_at IS NOT NULL ORDER BY delivered_at, user_id",
                &[&tenant_id, &message.id],
            )
            .await?;
        let read = client
            .query_cached(
                // Members who joined after the message start with it read: their join time stands in.
                "SELECT p.user_id, COALESCE(r.read_at, p.last_read_at, p.joined_at) AS at
                 FROM chat_room_participants p
                 LEFT JOIN chat_message_receipts r
                   ON r.tenant_id = p.tenant_id AND r.message_id = $3 AND r.user_id = p.user_id
                 WHERE p.tenant_id = $1 AND p.room_id = $2 AND p.user_id <> $5
                   AND (p.last_read_seq >= $4 OR r.read_at IS NOT NULL)
                 ORDER BY at, p.user_id",
                &[&tenant_id, &message.room_id, &message.id, &message.seq, &message.sender_id],
            )
            .await?;
        let receipts = |rows: Vec<Row>| rows.iter().map(|r| Receipt { user_id: r.get(0), at: r.get(1) }).collect();
        Ok((receipts(delivered), receipts(read)))
    }

    /// Marks messages read for the user: a read receipt for each id named, and the room's read
    /// position moved up to the newest of them (or to the newest message when none is named);
    /// the unread counters are recounted from the new position.
    pub async fn mark_read(&self, reader: &Caller, room_id: Uuid, ids: &[Uuid]) -> Result<ReadResult, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let marked: Vec<Row> = tx
            .query_cached(
                "INSERT INTO chat_message_receipts (message_id, tenant_id, user_id, read_at)
                 SELECT id, tenant_id, $3, now() FROM chat_messages
                 WHERE tenant_id = $1 AND room_id = $2 AND id = ANY($4) AND sender_id <> $3
                 ON CONFLICT (tenant_id, message_id, user_id) DO UPDATE SET read_at = COALESCE(chat_message_receipts.read_at, now())
                 RETURNING message_id",
                &[&reader.tenant_id, &room_id, &reader.user_id, &ids],
            )
            .await?;
        let moved = tx
            .query_one_cached(
                "UPDATE chat_room_participants p
                 SET last_read_seq = GREATEST(p.last_read_seq, COALESCE(
                         (SELECT max(seq) FROM chat_messages m
                          WHERE m.tenant_id = $1 AND m.room_id = $2
                            AND (cardinality($4::uuid[]) = 0 OR m.id = ANY($4))),
                         0)),
                     last_read_at = now()
                 WHERE p.tenant_id = $1 AND p.room_id = $2 AND p.user_id = $3
                 RETURNING last_read_seq, last_read_at",
                &[&reader.tenant_id, &room_id, &reader.user_id, &ids],
            )
            .await?;
        let position: i64 = moved.get(0);
        let row = tx
            .query_one_cached(statements::UNREAD_RECOUNT, &[&reader.tenant_id, &room_id, &reader.user_id, &position])
            .await?;
        tx.commit().await?;
        Ok(ReadResult {
            message_ids: marked.iter().map(|r| r.get(0)).collect(),
            unread: Unread { room_id, unread_count: row.get(0), mention_count: row.get(1) },
            read_at: moved.get(1),
        })
    }

    /// How many messages an export of the tenant (or one room) after `after_seq` holds.
    pub async fn export_count(
        &self,
        tenant_id: &str,
        room_id: Option<Uuid>,
        after_seq: i64,
    ) -> Result<i64, StoreError> {
        let row = self
            .client()
            .await?
            .query_one_cached(
                "SELECT count(*) FROM chat_messages
                 WHERE tenant_id = $1 AND ($2::uuid IS NULL OR room_id = $2) AND seq > $3",
                &[&tenant_id, &room_id, &after_seq],
            )
            .await?;
        Ok(row.get(0))
    }

    /// The next messages of an export (or an archive run: those created before
    /// `created_before`) in `seq` order, each a JSON object with everything kept
    /// about it: deleted content (marked), edits, reactions, receipts and who has read it.
    pub async fn export_page(
        &self,
        tenant_id: &str,
        room_id: Option<Uuid>,
        after_seq: i64,
        created_before: Option<DateTime<Utc>>,
        limit: i64,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        let rows = self
            .client()
            .await?
            .query_cached(
                "SELECT m.seq, json_build_object(
                     'id', m.id, 'seq', m.seq, 'room_id', m.room_id, 'sender_id', m.sender_id,
                     'sender_name', m.sender_name, 'message_type', m.message_type, 'content', m.content,
                     'attachments', m.attachments, 'mentions', m.mentions, 'reply_to', m.reply_to,
                     'reply_count', m.reply_count, 'created_at', m.created_at, 'edited_at', m.edited_at,
                     'deleted', m.deleted_at IS NOT NULL, 'deleted_at', m.deleted_at, 'deleted_by', m.deleted_by,
                     'edits', COALESCE((
                         SELECT json_agg(json_build_object('version', e.version, 'content', e.content,
                                                           'edited_by', e.edited_by, 'edited_at', e.edited_at)
                                         ORDER BY e.version)
                         FROM chat_message_edits e WHERE e.tenant_id = $1 AND e.message_id = m.id), '[]'),
                     'reactions', COALESCE((
                         SELECT json_agg(json_build_object('user_id', r.user_id, 'emoji', r.emoji,
                                                           'created_at', r.created_at)
                                         ORDER BY r.created_at, r.user_id)
                         FROM chat_message_reactions r WHERE r.tenant_id = $1 AND r.message_id = m.id), '[]'),
                     'receipts', COALESCE((
                         SELECT json_agg(json_build_object('user_id', c.user_id, 'delivered_at', c.delivered_at,
                                                           'read_at', c.read_at)
                                         ORDER BY c.user_id)
                         FROM chat_message_receipts c WHERE c.tenant_id = $1 AND c.message_id = m.id), '[]'),
                     'read_by', COALESCE((
                         SELECT json_agg(p.user_id ORDER BY p.user_id) FROM chat_room_participants p
                         WHERE p.tenant_id = $1 AND p.room_id = m.room_id AND p.last_read_seq >= m.seq
                           AND p.user_id <> m.sender_id), '[]')
                 )::text
                 FROM chat_messages m
                 WHERE m.tenant_id = $1 AND ($2::uuid IS NULL OR m.room_id = $2) AND m.seq > $3
                   AND ($5::timestamptz IS NULL OR m.created_at < $5)
                 ORDER BY m.seq LIMIT $4",
                &[&tenant_id, &room_id, &after_seq, &limit, &created_before],
            )
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }
}
