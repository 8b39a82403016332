//! Users blocking users.

use super::{Store, StoreError};
use crate::model::BlockedUser;

/// What blocking a user did.
#[derive(Debug, PartialEq)]
pub enum Blocked {
    /// Blocked now.
    Added(BlockedUser),
    /// Blocked before, at that time.
    Kept(BlockedUser),
    /// The caller blocks as many users as one may.
    Full,
}

impl Store {
    /// Blocks `blocked` for `blocker` unless they block `max` users already.
    pub async fn block(&self, tenant_id: &str, blocker: &str, blocked: &str, max: i64) -> Result<Blocked, StoreError> {
        // The second subquery reads the snapshot before the insert: a block that was there already.
        let row = self
            .client()
            .await?
            .query_one_cached(
                "WITH added AS (
                     INSERT INTO chat_blocks (tenant_id, blocker, blocked)
                     SELECT $1, $2, $3
                     WHERE (SELECT count(*) FROM chat_blocks WHERE tenant_id = $1 AND blocker = $2) < $4
                     ON CONFLICT DO NOTHING RETURNING blocked_at)
                 SELECT (SELECT blocked_at FROM added),
                        (SELECT blocked_at FROM chat_blocks WHERE tenant_id = $1 AND blocker = $2 AND blocked = $3)",
                &[&tenant_id, &blocker, &blocked, &max],
            )
            .await?;
        let user = |blocked_at| BlockedUser { user_id: blocked.to_string(), blocked_at };
        Ok(match (row.get(0), row.get(1)) {
            (Some(at), _) => Blocked::Added(user(at)),
            (None, Some(at)) => Blocked::Kept(user(at)),
            (None, None) => Blocked::Full,
        })
    }

    /// Whether there was a block to lift.
    pub async fn unblock(&self, tenant_id: &str, blocker: &str, blocked: &str) -> Result<bool, StoreError> {
        let n = self
            .client()
            .await?
            .execute_cached(
                "DELETE FROM chat_blocks WHERE tenant_id = $1 AND blocker = $2 AND blocked = $3",
                &[&tenant_id, &blocker, &blocked],
            )
            .await?;
        Ok(n == 1)
    }

    /// The users `blocker` blocked, most recent first.
    pub async fn blocked_by(&self, tenant_id: &str, blocker: &str) -> Result<Vec<BlockedUser>, StoreError> {
        let rows = self
            .client()
            .await?
            .query_cached(
                "SELECT blocked, blocked_at FROM chat_blocks WHERE tenant_id = $1 AND blocker = $2
                 ORDER BY blocked_at DESC, blocked",
                &[&tenant_id, &blocker],
            )
            .await?;
        Ok(rows.iter().map(|r| BlockedUser { user_id: r.get(0), blocked_at: r.get(1) }).collect())
    }

    /// Whether `blocker` blocked `blocked`.
    pub async fn is_blocked(&self, tenant_id: &str, blocker: &str, blocked: &str) -> Result<bool, StoreError> {
        let row = self
            .client()
            .await?
            .query_opt_cached(
                "SELECT 1 FROM chat_blocks WHERE tenant_id = $1 AND blocker = $2 AND blocked = $3",
                &[&tenant_id, &blocker, &blocked],
            )
            .await?;
        Ok(row.is_some())
    }
}
