//! Messages, their edits and reactions, read positions and the unread counts derived from them.
//!
//! A message writes its own row, its room's sequence counter and a row per mentioned member,
//! whatever the room's size: unread and mention counts are counted from each member's read
//! position (`last_read_seq`) when asked for, at most `model::UNREAD_CAP` per room.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use tokio_postgres::Row;
use uuid::Uuid;

use super::sql::{Conn, Typed};
use super::{Store, StoreError};
use crate::model::{Caller, Edit, Message, MessageType, Reaction, RoomHead, Unread};
use crate::protocol::Cursor;

pub struct NewMessage<'a> {
    pub room_id: Uuid,
    pub message_type: MessageType,
    pub content: &'a str,
    pub attachments: serde_json::Value,
    pub mentions: &'a [String],
    pub reply_to: Option<Uuid>,
    pub client_msg_id: Option<&'a str>,
    /// The room's members come back with the message when there are at most this many (the
    /// fan-out's list, read in the same statement).
    pub members_up_to: i64,
}

pub enum Inserted {
    /// Stored; `mentioned` are the members it mentions (the sender never); `members` the room's
    /// members when there are at most `members_up_to`.
    New { message: Message, mentioned: Vec<String>, members: Option<Vec<String>> },
    /// The sender's `client_msg_id` was stored before: this is that message.
    Duplicate(Message),
    /// `reply_to` names no message of the room.
    ParentMissing,
}

pub struct ReadResult {
    /// The ids that were marked (ids of other rooms, the reader's own and unknown ids are dropped).
    pub message_ids: Vec<Uuid>,
    pub unread: Unread,
    pub read_at: DateTime<Utc>,
    /// Whether the read position went forward (else nothing changed for anyone else).
    pub moved: bool,
}

/// What an edit did.
pub enum Edited {
    Done(Box<Message>),
    /// The message keeps the most earlier versions it may already.
    Full,
    /// The message is no longer in Postgres (archived).
    Gone,
}

/// A member's read position in a room, and when it last moved (their join time if never).
pub struct ReadPosition {
    pub user_id: String,
    pub seq: i64,
    pub at: DateTime<Utc>,
}

/// Bytes of records an export page holds at most (unless its one record is bigger): a page of
/// long messages with many versions would otherwise be hundreds of megabytes.
const EXPORT_PAGE_BYTES: i64 = 1024 * 1024;

pub(super) const MESSAGE_COLUMNS: &str =
    "id, seq, room_seq, room_id, sender_id, sender_name, message_type, content, attachments, \
     mentions, reply_to, reply_count, client_msg_id, created_at, edited_at, deleted_at, deleted_by";

/// The statements whose plans matter at volume, public so the query-plan test
/// (`tests/tests/partitioning.rs`) EXPLAINs exactly what runs.
pub mod statements {
    use super::MESSAGE_COLUMNS;

    /// The statement that stores a message: one statement, one round trip, with only the parts this
    /// message needs (each part costs on every insert: most messages are no reply, carry no
    /// mention, and many no `client_msg_id`). `next` locks the room's counter row until commit, and
    /// the message's `seq` is drawn after it (the insert reads its row from `next`): within a room,
    /// messages commit in `seq` order, so a reader who has seen `seq` n has seen every earlier one.
    /// A reply locks its parent, so an archive step holding the parent is waited for (and the parent
    /// is then gone) and one that comes later archives the new count. The room's members come back
    /// with it when they are few enough ($12), which spares the fan-out a round trip to list them.
    /// Every variant names all twelve parameters, so they bind alike.
    pub fn insert_message(reply: bool, client_msg_id: bool, mentions: bool) -> String {
        let parent_exists = if reply {
            "AND EXISTS (SELECT 1 FROM chat_messages WHERE tenant_id = $2 AND room_id = $3 AND id = $10 FOR KEY SHARE)"
        } else {
            ""
        };
        let (not_retried, on_conflict) = if client_msg_id {
            (
                "AND NOT EXISTS (SELECT 1 FROM chat_messages WHERE tenant_id = $2 AND sender_id = $4 AND client_msg_id = $11)",
                "ON CONFLICT (tenant_id, sender_id, client_msg_id) WHERE client_msg_id IS NOT NULL DO NOTHING",
            )
        } else {
            ("", "")
        };
        let parent = if reply {
            ", parent AS (UPDATE chat_messages SET reply_count = reply_count + 1
                          WHERE tenant_id = $2 AND id = $10 AND EXISTS (SELECT 1 FROM m))"
        } else {
            ""
        };
        let (mentioned, mentioned_ids) = if mentions {
            (
                ", mentioned AS (
                     INSERT INTO chat_mentions (tenant_id, room_id, user_id, seq, message_id)
                     SELECT $2, $3, p.user_id, m.seq, m.id FROM m
                     JOIN chat_room_participants p ON p.tenant_id = $2 AND p.room_id = $3 AND p.user_id = ANY($9)
                     WHERE p.user_id <> $4 AND m.message_type <> 'system'
                     RETURNING user_id)",
                "(SELECT array_agg(user_id) FROM mentioned)",
            )
        } else {
            ("", "NULL::text[]")
        };
        format!(
            "WITH next AS (
                 UPDATE chat_rooms SET last_seq = last_seq + 1
                 WHERE tenant_id = $2 AND id = $3 {parent_exists} {not_retried}
                 RETURNING last_seq, member_count),
             m AS (
                 INSERT INTO chat_messages (id, tenant_id, room_id, room_seq, sender_id, sender_name,
                                            message_type, content, attachments, mentions, reply_to,
                                            client_msg_id)
                 SELECT $1, $2, $3, next.last_seq, $4, $5, $6, $7, $8, $9, $10, $11 FROM next
                 {on_conflict}
                 RETURNING {MESSAGE_COLUMNS}) {parent} {mentioned}
             SELECT m.*, {mentioned_ids} AS mentioned_ids,
                    CASE WHEN (SELECT member_count FROM next) <= $12::bigint THEN ARRAY(
                        SELECT user_id FROM chat_room_participants WHERE tenant_id = $2 AND room_id = $3) END AS members
             FROM (SELECT 1) one LEFT JOIN m ON true"
        )
    }

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

    /// Messages of tenant $1 in room `p.room_id` after `position` that count as unread for
    /// `reader` (SQL expressions): not theirs, not deleted, not system; at most one more than the
    /// cap, so the count stays bounded (on the partial index `chat_messages_countable`) however
    /// far behind the reader is.
    pub fn unread_after(position: &str, reader: &str) -> String {
        format!(
            "(SELECT count(*)::int FROM (
                 SELECT 1 FROM chat_messages m
                 WHERE m.tenant_id = $1 AND m.room_id = p.room_id AND m.seq > {position}
                   AND m.sender_id <> {reader} AND m.deleted_at IS NULL AND m.message_type <> 'system'
                 LIMIT {limit}) c)",
            limit = crate::model::UNREAD_CAP + 1
        )
    }

    /// $1 tenant, $2 user, $3 a room or NULL for all theirs: each room's unread and mention
    /// counts from the user's read position (each at most one more than the cap), and the
    /// room's newest `seq` in the same snapshot (a room's messages commit in `seq` order).
    pub fn unread() -> String {
        format!(
            "SELECT p.room_id, {unread} AS unread,
                    (SELECT count(*)::int FROM (
                         SELECT 1 FROM chat_mentions k
                         WHERE k.tenant_id = $1 AND k.user_id = $2 AND k.room_id = p.room_id
                           AND k.seq > p.last_read_seq
                         LIMIT {limit}) c) AS mentions,
                    COALESCE(h.seq, 0), COALESCE(h.room_seq, 0)
             FROM chat_room_participants p
             LEFT JOIN LATERAL (SELECT m.seq, m.room_seq FROM chat_messages m
                                WHERE m.tenant_id = $1 AND m.room_id = p.room_id
                                ORDER BY m.seq DESC LIMIT 1) h ON true
             WHERE p.tenant_id = $1 AND p.user_id = $2 AND ($3::uuid IS NULL OR p.room_id = $3)
             ORDER BY p.room_id",
            unread = unread_after("p.last_read_seq", "$2"),
            limit = crate::model::UNREAD_CAP + 1
        )
    }
}

/// A join of the message (its columns as `m.*`) whose id is `id`, when it is still in Postgres.
pub(super) fn join_message(id: &str) -> String {
    format!(
        "LEFT JOIN LATERAL (SELECT {MESSAGE_COLUMNS} FROM chat_messages WHERE tenant_id = $1 AND id = {id}) m ON true"
    )
}

/// The message of a row with [`join_message`]'s columns: none when it was not there.
pub(super) fn joined_message(row: &Row) -> Result<Option<Message>, StoreError> {
    match row.get::<_, Option<i64>>("seq") {
        Some(_) => message_from_row(row).map(Some),
        None => Ok(None),
    }
}

pub(super) fn message_from_row(row: &Row) -> Result<Message, StoreError> {
    let kind: String = row.get("message_type");
    let attachments: serde_json::Value = row.get("attachments");
    Ok(Message {
        id: row.get("id"),
        seq: row.get("seq"),
        room_seq: row.get("room_seq"),
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
        sender_blocked: false,
    })
}

fn messages_from_rows(rows: &[Row]) -> Result<Vec<Message>, StoreError> {
    rows.iter().map(message_from_row).collect()
}

/// A change to one user's reaction on a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReactionChange {
    Add,
    Remove,
}

impl Store {
    /// The message the sender stored with this `client_msg_id`, if any.
    pub async fn sent_with(&self, sender: &Caller, client_msg_id: &str) -> Result<Option<Message>, StoreError> {
        let row = self
            .client()
            .await?
            .query_opt_cached(
                &format!(
                    "SELECT {MESSAGE_COLUMNS} FROM chat_messages
                     WHERE tenant_id = $1 AND sender_id = $2 AND client_msg_id = $3"
                ),
                &[&sender.tenant_id, &sender.user_id, &client_msg_id],
            )
            .await?;
        row.as_ref().map(message_from_row).transpose()
    }

    /// Stores a message as the next of its room's sequence; a reply also counts on its parent,
    /// which must be in the same room. Mentions of members are recorded for their mention counts.
    /// A `client_msg_id` the sender already used returns the stored message instead of a copy.
    pub async fn insert_message(&self, sender: &Caller, new: NewMessage<'_>) -> Result<Inserted, StoreError> {
        let row = self
            .client()
            .await?
            .query_one_cached(
                &statements::insert_message(
                    new.reply_to.is_some(),
                    new.client_msg_id.is_some(),
                    !new.mentions.is_empty(),
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
                    &new.members_up_to,
                ],
            )
            .await?;
        if row.get::<_, Option<Uuid>>("id").is_none() {
            // Nothing inserted: a retried client_msg_id, or a reply to a message not in the room.
            let existing = match new.client_msg_id {
                Some(id) => self.sent_with(sender, id).await?,
                None => None,
            };
            return Ok(existing.map_or(Inserted::ParentMissing, Inserted::Duplicate));
        }
        crate::metrics::count(crate::metrics::Counter::MessagesStored, 1);
        Ok(Inserted::New {
            message: message_from_row(&row)?,
            mentioned: row.get::<_, Option<Vec<String>>>("mentioned_ids").unwrap_or_default(),
            members: row.get("members"),
        })
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
    /// Whether a search query has a word the index can look up: one of excluded words alone
    /// (`-zzz`), or of none, would read every message of the searcher's rooms.
    pub async fn searchable(&self, query: &str) -> Result<bool, StoreError> {
        let row = self
            .client()
            .await?
            .query_one_cached("SELECT querytree(websearch_to_tsquery('simple', $1)) NOT IN ('T', '')", &[&query])
            .await?;
        Ok(row.get(0))
    }

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

    /// Adds or removes the user's reaction; returns whether anything changed,
    /// None when the message is no longer in Postgres (archived). Either way the message row is
    /// locked first, so an archive step that holds it is waited for.
    pub async fn set_reaction(
        &self,
        tenant_id: &str,
        message_id: Uuid,
        user_id: &str,
        emoji: &str,
        change: ReactionChange,
    ) -> Result<Option<bool>, StoreError> {
        let change = match change {
            ReactionChange::Add => {
                "INSERT INTO chat_message_reactions (message_id, tenant_id, user_id, emoji)
             SELECT id, $1, $3, $4 FROM m ON CONFLICT DO NOTHING RETURNING 1"
            }
            ReactionChange::Remove => {
                "DELETE FROM chat_message_reactions r USING m
             WHERE r.tenant_id = $1 AND r.message_id = m.id AND r.user_id = $3 AND r.emoji = $4 RETURNING 1"
            }
        };
        let row = self
            .client()
            .await?
            .query_one_cached(
                &format!(
                    "WITH m AS (SELECT id FROM chat_messages WHERE tenant_id = $1 AND id = $2 FOR KEY SHARE),
                     changed AS ({change})
                     SELECT EXISTS (SELECT 1 FROM m), EXISTS (SELECT 1 FROM changed)"
                ),
                &[&tenant_id, &message_id, &user_id, &emoji],
            )
            .await?;
        Ok(row.get::<_, bool>(0).then(|| row.get(1)))
    }

    /// Replaces the content, keeping the previous one as a numbered version.
    pub async fn edit_message(
        &self,
        editor: &Caller,
        message_id: Uuid,
        content: &str,
        max_versions: i64,
    ) -> Result<Edited, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let kept = tx
            .execute_cached(
                "INSERT INTO chat_message_edits (message_id, tenant_id, version, content, edited_by, edited_at)
                 SELECT m.id, m.tenant_id, 1 + v.n, m.content, $3, COALESCE(m.edited_at, m.created_at)
                 FROM chat_messages m,
                      LATERAL (SELECT count(*) AS n FROM chat_message_edits e
                               WHERE e.tenant_id = $1 AND e.message_id = m.id) v
                 WHERE m.tenant_id = $1 AND m.id = $2 AND v.n < $4
                 FOR UPDATE OF m",
                &[&editor.tenant_id, &message_id, &editor.user_id, &max_versions],
            )
            .await?;
        if kept == 0 {
            // Locked and counted, or not there: archived since the caller found it.
            let there = tx
                .query_opt_cached(
                    "SELECT 1 FROM chat_messages WHERE tenant_id = $1 AND id = $2",
                    &[&editor.tenant_id, &message_id],
                )
                .await?;
            return Ok(if there.is_some() { Edited::Full } else { Edited::Gone });
        }
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
        message_from_row(&row).map(|m| Edited::Done(Box::new(m)))
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

    /// Soft-deletes a message (the content stays for admins and the audit trail); unread counts
    /// leave it out from then on, and its mentions no longer count. None when it was already deleted.
    pub async fn delete_message(&self, by: &Caller, message_id: Uuid) -> Result<Option<Message>, StoreError> {
        let row = self
            .client()
            .await?
            .query_opt_cached(
                &format!(
                    "WITH d AS (
                         UPDATE chat_messages SET deleted_at = now(), deleted_by = $3
                         WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL RETURNING {MESSAGE_COLUMNS}),
                     unmentioned AS (
                         DELETE FROM chat_mentions k USING d
                         WHERE k.tenant_id = $1 AND k.room_id = d.room_id AND k.seq = d.seq)
                     SELECT * FROM d"
                ),
                &[&by.tenant_id, &message_id, &by.user_id],
            )
            .await?;
        row.as_ref().map(message_from_row).transpose()
    }

    /// Every member's read position in the room but the sender's (for receipts).
    pub async fn read_positions(&self, tenant_id: &str, message: &Message) -> Result<Vec<ReadPosition>, StoreError> {
        let rows = self
            .client()
            .await?
            .query_cached(
                "SELECT user_id, last_read_seq, COALESCE(last_read_at, joined_at) FROM chat_room_participants
                 WHERE tenant_id = $1 AND room_id = $2 AND user_id <> $3",
                &[&tenant_id, &message.room_id, &message.sender_id],
            )
            .await?;
        Ok(rows.iter().map(|r| ReadPosition { user_id: r.get(0), seq: r.get(1), at: r.get(2) }).collect())
    }

    /// The user's unread state in each of their rooms (or one), as `statements::unread` counts it.
    pub async fn unread(
        &self,
        tenant_id: &str,
        user_id: &str,
        room_id: Option<Uuid>,
    ) -> Result<Vec<Unread>, StoreError> {
        let rows = self.client().await?.query_cached(&statements::unread(), &[&tenant_id, &user_id, &room_id]).await?;
        Ok(rows
            .iter()
            .map(|r| {
                Unread::counted(r.get(0), r.get(1), r.get(2), RoomHead { last_seq: r.get(3), last_room_seq: r.get(4) })
            })
            .collect())
    }

    /// Moves the user's read position in the room up to the newest of the messages named (or to
    /// the newest message when none is named; it never moves back), and counts what is left unread.
    pub async fn mark_read(&self, reader: &Caller, room_id: Uuid, ids: &[Uuid]) -> Result<ReadResult, StoreError> {
        let row = self
            .client()
            .await?
            .query_one_cached(
                "WITH named AS (
                     SELECT id, seq FROM chat_messages
                     WHERE tenant_id = $1 AND room_id = $2 AND id = ANY($4) AND sender_id <> $3),
                 target AS (
                     SELECT COALESCE(CASE WHEN cardinality($4::uuid[]) = 0
                                          THEN (SELECT max(seq) FROM chat_messages WHERE tenant_id = $1 AND room_id = $2)
                                          ELSE (SELECT max(seq) FROM named) END, 0) AS seq),
                 old AS (
                     SELECT last_read_seq FROM chat_room_participants
                     WHERE tenant_id = $1 AND room_id = $2 AND user_id = $3),
                 moved AS (
                     UPDATE chat_room_participants p SET last_read_seq = target.seq, last_read_at = now()
                     FROM target
                     WHERE p.tenant_id = $1 AND p.room_id = $2 AND p.user_id = $3 AND p.last_read_seq < target.seq
                     RETURNING p.last_read_seq, p.last_read_at)
                 SELECT (SELECT array_agg(id) FROM named),
                        (SELECT last_read_seq FROM moved),
                        COALESCE((SELECT last_read_at FROM moved), now()),
                        COALESCE((SELECT last_read_seq FROM moved), (SELECT last_read_seq FROM old), 0)",
                &[&reader.tenant_id, &room_id, &reader.user_id, &ids],
            )
            .await?;
        let moved = row.get::<_, Option<i64>>(1).is_some();
        // Counted after the commit above: this statement's snapshot could not see its own update.
        let unread = self
            .unread(&reader.tenant_id, &reader.user_id, Some(room_id))
            .await?
            .pop()
            .unwrap_or(Unread::counted(room_id, 0, 0, RoomHead::default()));
        Ok(ReadResult {
            message_ids: row.get::<_, Option<Vec<Uuid>>>(0).unwrap_or_default(),
            unread,
            read_at: row.get(2),
            moved,
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

    /// The next messages of an export after `after_seq`, as [`export_records`] reads them.
    pub async fn export_page(
        &self,
        tenant_id: &str,
        room_id: Option<Uuid>,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        export_records(&self.client().await?, tenant_id, room_id, after_seq, None, limit).await
    }
}

/// The next messages of an export (or an archive step: those created before
/// `created_before`) in `seq` order, each a JSON object with everything kept
/// about it: deleted content (marked), edits, reactions, receipts and who has read it.
/// At most `limit` records and `EXPORT_PAGE_BYTES` of them, but always one: a page holding
/// nothing would not move the cursor.
pub(super) async fn export_records(
    client: &Conn<impl Typed + Send + Sync>,
    tenant_id: &str,
    room_id: Option<Uuid>,
    after_seq: i64,
    created_before: Option<DateTime<Utc>>,
    limit: i64,
) -> Result<Vec<(i64, String)>, StoreError> {
    let rows = client
        .query_cached(
            "SELECT seq, record FROM (
         SELECT seq, record, sum(octet_length(record)) OVER (ORDER BY seq) AS upto FROM (
         SELECT m.seq, json_build_object(
             'id', m.id, 'seq', m.seq, 'room_seq', m.room_seq, 'room_id', m.room_id, 'sender_id', m.sender_id,
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
             -- From read positions: a member who has read it has had it delivered. Export
             -- adds those whose delivery position alone reaches it (Redis).
             'receipts', COALESCE((
                 SELECT json_agg(json_build_object('user_id', p.user_id,
                                                   'delivered_at', COALESCE(p.last_read_at, p.joined_at),
                                                   'read_at', COALESCE(p.last_read_at, p.joined_at))
                                 ORDER BY p.user_id)
                 FROM chat_room_participants p
                 WHERE p.tenant_id = $1 AND p.room_id = m.room_id AND p.last_read_seq >= m.seq
                   AND p.user_id <> m.sender_id), '[]'),
             'read_by', COALESCE((
                 SELECT json_agg(p.user_id ORDER BY p.user_id) FROM chat_room_participants p
                 WHERE p.tenant_id = $1 AND p.room_id = m.room_id AND p.last_read_seq >= m.seq
                   AND p.user_id <> m.sender_id), '[]')
         )::text AS record
         FROM chat_messages m
         WHERE m.tenant_id = $1 AND ($2::uuid IS NULL OR m.room_id = $2) AND m.seq > $3
           AND ($5::timestamptz IS NULL OR m.created_at < $5)
         ORDER BY m.seq LIMIT $4) page) sized
         WHERE upto <= $6 OR upto = octet_length(record)
         ORDER BY seq",
            &[&tenant_id, &room_id, &after_seq, &limit, &created_before, &EXPORT_PAGE_BYTES],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}
