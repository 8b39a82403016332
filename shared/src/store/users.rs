//! Users as the chat has seen them: display name and last-seen time.

use chrono::{DateTime, Utc};

use super::{Store, StoreError};
use crate::model::Caller;

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

    /// Records when a user was last seen, without touching their name (a connection pruned
    /// without its registration has none to give).
    pub async fn last_seen_at(&self, tenant_id: &str, user_id: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.client()
            .await?
            .execute_cached(
                "INSERT INTO chat_users (tenant_id, user_id, last_seen_at) VALUES ($1, $2, $3)
                 ON CONFLICT (tenant_id, user_id) DO UPDATE SET last_seen_at = EXCLUDED.last_seen_at",
                &[&tenant_id, &user_id, &at],
            )
            .await?;
        Ok(())
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
