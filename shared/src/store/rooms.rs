//! Rooms, participants and bans.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use tokio_postgres::Row;
use uuid::Uuid;

use super::users::LAST_SEEN_NAME;
use super::{Store, StoreError};
use crate::model::{Caller, Participant, Role, Room, RoomHead, RoomSummary, RoomType, Unread};

pub struct NewRoom<'a> {
    pub name: &'a str,
    pub description: Option<&'a str>,
    pub room_type: RoomType,
    pub is_private: bool,
    /// Other users added at creation, as members.
    pub members: &'a [String],
    /// The client's id for this creation (a retry answers with the room it created).
    pub client_room_id: Option<&'a str>,
}

/// A room's members as a fan-out starts from them: listed for a small room, counted for a big one.
#[derive(Debug, Clone, PartialEq)]
pub enum Members {
    Listed(Vec<String>),
    Counted(i64),
}

/// The caller's standing in a room.
#[derive(Debug, Clone)]
pub struct Membership {
    pub role: Role,
    pub muted_until: Option<DateTime<Utc>>,
    pub room_type: RoomType,
    pub frozen: bool,
    pub slow_mode_seconds: i32,
    /// The room's members who blocked this one.
    pub blocked_by: Vec<String>,
    /// The users this member blocked (anywhere in the tenant).
    pub blocks: Vec<String>,
    /// The room's messages as of this read, for the recent-message cache's check.
    pub version: RoomVersion,
}

/// Where a room's stored messages stand: its newest `room_seq`, and how many changes (edits,
/// deletions, reply counts, reactions) they have had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoomVersion {
    pub last_seq: i64,
    pub changes: i64,
}

const ROOM_COLUMNS: &str =
    "id, name, description, room_type, is_private, created_by, created_at, frozen, slow_mode_seconds";
const PARTICIPANT_COLUMNS: &str = "user_id, display_name, role, joined_at";

fn room_type_of(text: &str) -> Result<RoomType, StoreError> {
    RoomType::parse(text).ok_or_else(|| StoreError::Corrupt(format!("room_type {text}")))
}

fn room_from_row(row: &Row) -> Result<Room, StoreError> {
    Ok(Room {
        id: row.get("id"),
        name: row.get("name"),
        description: row.get("description"),
        room_type: room_type_of(row.get("room_type"))?,
        is_private: row.get("is_private"),
        created_by: row.get("created_by"),
        created_at: row.get("created_at"),
        frozen: row.get("frozen"),
        slow_mode_seconds: row.get("slow_mode_seconds"),
    })
}

fn role_of(text: &str) -> Result<Role, StoreError> {
    Role::parse(text).ok_or_else(|| StoreError::Corrupt(format!("role {text}")))
}

fn participant_from_row(row: &Row) -> Result<Participant, StoreError> {
    Ok(Participant {
        user_id: row.get("user_id"),
        display_name: row.get("display_name"),
        role: role_of(row.get("role"))?,
        joined_at: row.get("joined_at"),
    })
}

/// The one key a pair of users' direct room has, whoever creates it.
fn direct_key(a: &str, b: &str) -> String {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    format!("{}:{lo}{hi}", lo.len())
}

/// With the tenant as `$1`, the user as `$2` and a room size as `$3`: the user's contacts, the
/// other members of their rooms of at most that many members (the room's kept count, so a room
/// of thousands costs one row, not a count of its members, on every connect and disconnect).
/// Each room's members are a subquery of their own, reached through the user's rooms: joined
/// flat, a tenant newer than the statistics looked empty to the planner, which then read every
/// member of the tenant for each of the user's rooms (2.7 s for one disconnect in a tenant of
/// 10 000 members; the limit, which a room within `$3` never reaches, keeps the subquery apart).
pub(super) const CONTACTS: &str = "ARRAY(
    SELECT DISTINCT o.user_id FROM chat_room_participants me
    CROSS JOIN LATERAL (
        SELECT other.user_id FROM chat_rooms r
        JOIN chat_room_participants other ON other.tenant_id = r.tenant_id AND other.room_id = r.id
        WHERE r.tenant_id = $1 AND r.id = me.room_id AND r.member_count <= $3::bigint AND other.user_id <> $2
        LIMIT $3::bigint) o
    WHERE me.tenant_id = $1 AND me.user_id = $2)";

/// The statements whose plans matter at volume, public so the query-plan tests
/// (`tests/tests/partitioning.rs`) EXPLAIN exactly what runs.
pub mod statements {
    /// $1 tenant, $2 user, $3 the largest room whose members count as contacts.
    pub fn contacts() -> String {
        format!("SELECT {}", super::CONTACTS)
    }
}

impl Store {
    /// Creates a room with the creator as admin. For a direct room that already exists for the
    /// pair, returns that room instead; the flag says whether a room was created.
    pub async fn create_room(&self, creator: &Caller, new: NewRoom<'_>) -> Result<(Room, bool), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let key = match (new.room_type, new.members) {
            (RoomType::Direct, [other]) => Some(direct_key(&creator.user_id, other)),
            _ => None,
        };
        let inserted = tx
            .query_opt_cached(
                &format!(
                    "INSERT INTO chat_rooms (id, tenant_id, name, description, room_type, is_private, direct_key, created_by,
                                             client_room_id)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                     ON CONFLICT DO NOTHING
                     RETURNING {ROOM_COLUMNS}"
                ),
                &[
                    &Uuid::now_v7(),
                    &creator.tenant_id,
                    &new.name,
                    &new.description,
                    &new.room_type.as_str(),
                    &new.is_private,
                    &key,
                    &creator.user_id,
                    &new.client_room_id,
                ],
            )
            .await?;
        // Not inserted: the pair's direct room, or the room a retried client_room_id created.
        let Some(row) = inserted else {
            let row = tx
                .query_one_cached(
                    &format!(
                        "SELECT {ROOM_COLUMNS} FROM chat_rooms
                         WHERE tenant_id = $1 AND (direct_key = $2 OR (created_by = $3 AND client_room_id = $4))
                         ORDER BY direct_key = $2 DESC NULLS LAST LIMIT 1"
                    ),
                    &[&creator.tenant_id, &key, &creator.user_id, &new.client_room_id],
                )
                .await?;
            return Ok((room_from_row(&row)?, false));
        };
        let room = room_from_row(&row)?;
        // A direct room has no admin; a support room's creator is the customer, the agents moderate.
        let creator_role = match new.room_type {
            RoomType::Direct | RoomType::Support => Role::Member,
            RoomType::Group | RoomType::Broadcast => Role::Admin,
        };
        tx.execute_cached(
            "INSERT INTO chat_room_participants (room_id, tenant_id, user_id, display_name, role)
             VALUES ($1, $2, $3, $4, $5)",
            &[&room.id, &creator.tenant_id, &creator.user_id, &creator.display_name, &creator_role.as_str()],
        )
        .await?;
        tx.execute_cached(
            &format!(
                "INSERT INTO chat_room_participants (room_id, tenant_id, user_id, display_name, role)
                 SELECT $2, $1, u.id, {LAST_SEEN_NAME}, 'member' FROM unnest($3::text[]) AS u(id)
                 ON CONFLICT DO NOTHING"
            ),
            &[&creator.tenant_id, &room.id, &new.members],
        )
        .await?;
        tx.commit().await?;
        Ok((room, true))
    }

    pub async fn room(&self, tenant_id: &str, room_id: Uuid) -> Result<Option<Room>, StoreError> {
        let row = self
            .client()
            .await?
            .query_opt_cached(
                &format!("SELECT {ROOM_COLUMNS} FROM chat_rooms WHERE tenant_id = $1 AND id = $2"),
                &[&tenant_id, &room_id],
            )
            .await?;
        row.as_ref().map(room_from_row).transpose()
    }

    pub async fn membership(
        &self,
        tenant_id: &str,
        room_id: Uuid,
        user_id: &str,
    ) -> Result<Option<Membership>, StoreError> {
        let row = self
            .client()
            .await?
            .query_opt_cached(
                "SELECT p.role, p.muted_until, r.room_type, r.last_seq, r.changes, r.frozen, r.slow_mode_seconds,
                        ARRAY(SELECT b.blocker FROM chat_blocks b
                              JOIN chat_room_participants o
                                ON o.tenant_id = $1 AND o.room_id = $2 AND o.user_id = b.blocker
                              WHERE b.tenant_id = $1 AND b.blocked = $3),
                        ARRAY(SELECT blocked FROM chat_blocks WHERE tenant_id = $1 AND blocker = $3)
                 FROM chat_room_participants p JOIN chat_rooms r ON r.tenant_id = p.tenant_id AND r.id = p.room_id
                 WHERE p.tenant_id = $1 AND p.room_id = $2 AND p.user_id = $3",
                &[&tenant_id, &room_id, &user_id],
            )
            .await?;
        row.map(|r| {
            Ok(Membership {
                role: role_of(r.get(0))?,
                muted_until: r.get(1),
                room_type: room_type_of(r.get(2))?,
                version: RoomVersion { last_seq: r.get(3), changes: r.get(4) },
                frozen: r.get(5),
                slow_mode_seconds: r.get(6),
                blocked_by: r.get(7),
                blocks: r.get(8),
            })
        })
        .transpose()
    }

    pub async fn participants(&self, tenant_id: &str, room_id: Uuid) -> Result<Vec<Participant>, StoreError> {
        let rows = self
            .client()
            .await?
            .query_cached(
                &format!(
                    "SELECT {PARTICIPANT_COLUMNS} FROM chat_room_participants
                     WHERE tenant_id = $1 AND room_id = $2 ORDER BY joined_at, user_id"
                ),
                &[&tenant_id, &room_id],
            )
            .await?;
        rows.iter().map(participant_from_row).collect()
    }

    /// The room's members when there are at most `list_max`, else their number.
    pub async fn members(&self, tenant_id: &str, room_id: Uuid, list_max: i64) -> Result<Members, StoreError> {
        let row = self
            .client()
            .await?
            .query_opt_cached(
                "SELECT member_count::bigint,
                        CASE WHEN member_count <= $3::bigint THEN ARRAY(
                            SELECT user_id FROM chat_room_participants WHERE tenant_id = $1 AND room_id = $2) END
                 FROM chat_rooms WHERE tenant_id = $1 AND id = $2",
                &[&tenant_id, &room_id, &list_max],
            )
            .await?;
        Ok(match row {
            None => Members::Listed(Vec::new()),
            Some(row) => match row.get::<_, Option<Vec<String>>>(1) {
                Some(ids) => Members::Listed(ids),
                None => Members::Counted(row.get(0)),
            },
        })
    }

    /// Those of `user_ids` who are members of the room.
    pub async fn members_among(
        &self,
        tenant_id: &str,
        room_id: Uuid,
        user_ids: &[String],
    ) -> Result<Vec<String>, StoreError> {
        let rows = self
            .client()
            .await?
            .query_cached(
                "SELECT user_id FROM chat_room_participants
                 WHERE tenant_id = $1 AND room_id = $2 AND user_id = ANY($3)",
                &[&tenant_id, &room_id, &user_ids],
            )
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    pub async fn member_ids(&self, tenant_id: &str, room_id: Uuid) -> Result<Vec<String>, StoreError> {
        let rows = self
            .client()
            .await?
            .query_cached(
                "SELECT user_id FROM chat_room_participants WHERE tenant_id = $1 AND room_id = $2",
                &[&tenant_id, &room_id],
            )
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// The room's moderators and admins.
    pub async fn moderators(&self, tenant_id: &str, room_id: Uuid) -> Result<Vec<String>, StoreError> {
        let rows = self
            .client()
            .await?
            .query_cached(
                "SELECT user_id FROM chat_room_participants
                 WHERE tenant_id = $1 AND room_id = $2 AND role IN ('moderator', 'admin')",
                &[&tenant_id, &room_id],
            )
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Everyone who shares a room of at most `room_limit` members with `user_id`, the user excluded.
    pub async fn contacts(&self, tenant_id: &str, user_id: &str, room_limit: i64) -> Result<Vec<String>, StoreError> {
        let row = self
            .client()
            .await?
            .query_one_cached(&statements::contacts(), &[&tenant_id, &user_id, &room_limit])
            .await?;
        Ok(row.get(0))
    }

    /// Adds users as members, named as given or as last seen (never-seen users stay unnamed
    /// until they connect).
    /// Returns those who were not members already. New members start with everything read.
    pub async fn add_participants(
        &self,
        tenant_id: &str,
        room_id: Uuid,
        users: &[(String, Option<String>)],
        role: Role,
    ) -> Result<Vec<String>, StoreError> {
        let (ids, names): (Vec<&str>, Vec<Option<&str>>) =
            users.iter().map(|(u, n)| (u.as_str(), n.as_deref())).unzip();
        let rows = self
            .client()
            .await?
            .query_cached(
                &format!(
                    "INSERT INTO chat_room_participants (room_id, tenant_id, user_id, display_name, role, last_read_seq)
                 SELECT r.id, r.tenant_id, u.id, COALESCE(u.name, {LAST_SEEN_NAME}), $5,
                        COALESCE((SELECT max(seq) FROM chat_messages m WHERE m.tenant_id = $1 AND m.room_id = $2), 0)
                 FROM chat_rooms r, unnest($3::text[], $4::text[]) AS u(id, name)
                 WHERE r.tenant_id = $1 AND r.id = $2
                 ON CONFLICT (room_id, user_id) DO NOTHING
                 RETURNING user_id"
                ),
                &[&tenant_id, &room_id, &ids, &names, &role.as_str()],
            )
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Adds the caller as a member; false when they already were one.
    pub async fn add_participant(&self, caller: &Caller, room_id: Uuid, role: Role) -> Result<bool, StoreError> {
        let user = [(caller.user_id.clone(), Some(caller.display_name.clone()))];
        Ok(!self.add_participants(&caller.tenant_id, room_id, &user, role).await?.is_empty())
    }

    pub async fn set_role(
        &self,
        tenant_id: &str,
        room_id: Uuid,
        user_id: &str,
        role: Role,
    ) -> Result<bool, StoreError> {
        let n = self
            .client()
            .await?
            .execute_cached(
                "UPDATE chat_room_participants SET role = $4 WHERE tenant_id = $1 AND room_id = $2 AND user_id = $3",
                &[&tenant_id, &room_id, &user_id, &role.as_str()],
            )
            .await?;
        Ok(n == 1)
    }

    pub async fn admin_count(&self, tenant_id: &str, room_id: Uuid) -> Result<i64, StoreError> {
        let row = self
            .client()
            .await?
            .query_one_cached(
                "SELECT count(*) FROM chat_room_participants WHERE tenant_id = $1 AND room_id = $2 AND role = 'admin'",
                &[&tenant_id, &room_id],
            )
            .await?;
        Ok(row.get(0))
    }

    /// Mutes the member until the given time, or unmutes with None; false when not a member.
    /// Freezes the room (true) or thaws it; whether it changed.
    pub async fn set_frozen(&self, tenant_id: &str, room_id: Uuid, frozen: bool) -> Result<bool, StoreError> {
        let n = self
            .client()
            .await?
            .execute_cached(
                "UPDATE chat_rooms SET frozen = $3 WHERE tenant_id = $1 AND id = $2 AND frozen <> $3",
                &[&tenant_id, &room_id, &frozen],
            )
            .await?;
        Ok(n == 1)
    }

    pub async fn set_slow_mode(&self, tenant_id: &str, room_id: Uuid, seconds: i32) -> Result<(), StoreError> {
        self.client()
            .await?
            .execute_cached(
                "UPDATE chat_rooms SET slow_mode_seconds = $3 WHERE tenant_id = $1 AND id = $2",
                &[&tenant_id, &room_id, &seconds],
            )
            .await?;
        Ok(())
    }

    pub async fn set_muted_until(
        &self,
        tenant_id: &str,
        room_id: Uuid,
        user_id: &str,
        until: Option<DateTime<Utc>>,
    ) -> Result<bool, StoreError> {
        let n = self
            .client()
            .await?
            .execute_cached(
                "UPDATE chat_room_participants SET muted_until = $4 WHERE tenant_id = $1 AND room_id = $2 AND user_id = $3",
                &[&tenant_id, &room_id, &user_id, &until],
            )
            .await?;
        Ok(n == 1)
    }

    /// Removes the member and records the ban, so they cannot rejoin.
    pub async fn ban(&self, by: &Caller, room_id: Uuid, user_id: &str, reason: Option<&str>) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute_cached(
            "DELETE FROM chat_room_participants WHERE tenant_id = $1 AND room_id = $2 AND user_id = $3",
            &[&by.tenant_id, &room_id, &user_id],
        )
        .await?;
        tx.execute_cached(
            "INSERT INTO chat_room_bans (room_id, tenant_id, user_id, banned_by, reason)
             SELECT id, tenant_id, $3, $4, $5 FROM chat_rooms WHERE tenant_id = $1 AND id = $2
             ON CONFLICT (room_id, user_id) DO UPDATE SET banned_by = EXCLUDED.banned_by, reason = EXCLUDED.reason",
            &[&by.tenant_id, &room_id, &user_id, &by.user_id, &reason],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn unban(&self, tenant_id: &str, room_id: Uuid, user_id: &str) -> Result<bool, StoreError> {
        let n = self
            .client()
            .await?
            .execute_cached(
                "DELETE FROM chat_room_bans WHERE tenant_id = $1 AND room_id = $2 AND user_id = $3",
                &[&tenant_id, &room_id, &user_id],
            )
            .await?;
        Ok(n == 1)
    }

    /// Changes the given settings of a room and returns it as it now is.
    pub async fn update_room(
        &self,
        tenant_id: &str,
        room_id: Uuid,
        name: Option<&str>,
        description: Option<&str>,
        is_private: Option<bool>,
    ) -> Result<Option<Room>, StoreError> {
        let row = self
            .client()
            .await?
            .query_opt_cached(
                &format!(
                    "UPDATE chat_rooms SET name = COALESCE($3, name), description = COALESCE($4, description),
                            is_private = COALESCE($5, is_private), updated_at = now()
                     WHERE tenant_id = $1 AND id = $2 RETURNING {ROOM_COLUMNS}"
                ),
                &[&tenant_id, &room_id, &name, &description, &is_private],
            )
            .await?;
        row.as_ref().map(room_from_row).transpose()
    }

    /// The user's rooms (optionally of one type) with their role and unread state, newest first.
    /// With `all_support`, every support room of the tenant is listed too (for support agents).
    pub async fn rooms_of(
        &self,
        tenant_id: &str,
        user_id: &str,
        room_type: Option<RoomType>,
        all_support: bool,
    ) -> Result<Vec<RoomSummary>, StoreError> {
        let rows = self
            .client()
            .await?
            .query_cached(
                &format!(
                    "SELECT {ROOM_COLUMNS}, p.role,
                            (SELECT count(*) FROM chat_room_participants c WHERE c.tenant_id = $1 AND c.room_id = r.id) AS members
                     FROM chat_rooms r
                     LEFT JOIN chat_room_participants p ON p.tenant_id = r.tenant_id AND p.room_id = r.id AND p.user_id = $2
                     WHERE r.tenant_id = $1 AND ($3::text IS NULL OR r.room_type = $3)
                       AND (p.user_id IS NOT NULL OR ($4 AND r.room_type = 'support'))
                     ORDER BY r.created_at DESC"
                ),
                &[&tenant_id, &user_id, &room_type.map(RoomType::as_str), &all_support],
            )
            .await?;
        let mut unread: HashMap<Uuid, Unread> =
            self.unread(tenant_id, user_id, None).await?.into_iter().map(|u| (u.room_id, u)).collect();
        rows.iter()
            .map(|row| {
                let room = room_from_row(row)?;
                Ok(RoomSummary {
                    unread: unread.remove(&room.id).unwrap_or(Unread::counted(room.id, 0, 0, RoomHead::default())),
                    room,
                    role: row.get::<_, Option<&str>>("role").map(role_of).transpose()?,
                    participant_count: row.get("members"),
                })
            })
            .collect()
    }

    /// The rooms where the user has something unread or a mention.
    pub async fn unread_summary(&self, tenant_id: &str, user_id: &str) -> Result<Vec<Unread>, StoreError> {
        Ok(self.unread(tenant_id, user_id, None).await?.into_iter().filter(|u| !u.is_empty()).collect())
    }

    pub async fn remove_participant(&self, tenant_id: &str, room_id: Uuid, user_id: &str) -> Result<bool, StoreError> {
        let n = self
            .client()
            .await?
            .execute_cached(
                "DELETE FROM chat_room_participants WHERE tenant_id = $1 AND room_id = $2 AND user_id = $3",
                &[&tenant_id, &room_id, &user_id],
            )
            .await?;
        Ok(n == 1)
    }

    pub async fn is_banned(&self, tenant_id: &str, room_id: Uuid, user_id: &str) -> Result<bool, StoreError> {
        let row = self
            .client()
            .await?
            .query_one_cached(
                "SELECT EXISTS (SELECT 1 FROM chat_room_bans WHERE tenant_id = $1 AND room_id = $2 AND user_id = $3)",
                &[&tenant_id, &room_id, &user_id],
            )
            .await?;
        Ok(row.get(0))
    }
}

#[cfg(test)]
mod tests {
    use super::direct_key;

    #[test]
    fn direct_key_is_symmetric_and_unambiguous() {
        assert_eq!(direct_key("a", "b"), direct_key("b", "a"));
        assert_ne!(direct_key("ab", "c"), direct_key("a", "bc"));
    }
}
