//! Users as the chat has seen them: display name and last-seen time.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::rooms::CONTACTS;
use super::{Store, StoreError};
use crate::model::Caller;

/// What a user going offline ended, and whom to tell.
pub struct WentOffline {
    /// Rooms where they were typing.
    pub typing_in: Vec<Uuid>,
    pub contacts: Vec<String>,
}

/// In a statement over users `u(id)` with the tenant as `$1`: the name each was last seen with.
pub(super) const LAST_SEEN_NAME: &str =
    "(SELECT display_name FROM chat_users cu WHERE cu.tenant_id = $1 AND cu.user_id = u.id)";

impl Store {
    /// Records the user's name and that they were seen now (on connect and on going offline).
    /// Their memberships take the token's name too: rooms others added them to before they
    /// ever connected, and a name changed since.
    pub async fn seen(&self, caller: &Caller, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.client()
            .await?
            .execute_cached(
                "WITH seen AS (
                   INSERT INTO chat_users (tenant_id, user_id, display_name, last_seen_at) VALUES ($1, $2, $3, $4)
                   ON CONFLICT (tenant_id, user_id) DO UPDATE
                     SET display_name = EXCLUDED.display_name, last_seen_at = EXCLUDED.last_seen_at)
                 UPDATE chat_room_participants SET display_name = $3
                 WHERE tenant_id = $1 AND user_id = $2 AND display_name IS DISTINCT FROM $3",
                &[&caller.tenant_id, &caller.user_id, &caller.display_name, &at],
            )
            .await?;
        Ok(())
    }

    /// A user left without connections, in one statement: their typing indicators end (the
    /// rooms they were typing in come back), their last-seen time is stored (not their name: a
    /// connection pruned without its registration has none to give), and their contacts in
    /// rooms of at most `room_limit` members come back to be told.
    pub async fn went_offline(
        &self,
        tenant_id: &str,
        user_id: &str,
        at: DateTime<Utc>,
        room_limit: i64,
    ) -> Result<WentOffline, StoreError> {
        let row = self
            .client()
            .await?
            .query_one_cached(
                &format!(
                    "WITH stopped AS (
                       DELETE FROM chat_typing_indicators WHERE tenant_id = $1 AND user_id = $2 RETURNING room_id),
                     seen AS (
                       INSERT INTO chat_users (tenant_id, user_id, last_seen_at) VALUES ($1, $2, $4)
                       ON CONFLICT (tenant_id, user_id) DO UPDATE SET last_seen_at = EXCLUDED.last_seen_at)
                     SELECT ARRAY(SELECT room_id FROM stopped), {CONTACTS}"
                ),
                &[&tenant_id, &user_id, &room_limit, &at],
            )
            .await?;
        Ok(WentOffline { typing_in: row.get(0), contacts: row.get(1) })
    }

    /// Last-seen times of the users the chat has seen.
    pub async fn last_seen(
        &self,
        tenant_id: &str,
        users: &[String],
    ) -> Result<Vec<(String, DateTime<Utc>)>, StoreError> {
        let rows = self
            .client()
            .await?
            .query_cached(
                "SELECT user_id, last_seen_at FROM chat_users
                 WHERE tenant_id = $1 AND user_id = ANY($2) AND last_seen_at IS NOT NULL",
                &[&tenant_id, &users],
            )
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }
}
