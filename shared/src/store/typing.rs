//! Typing indicators: renewed by `typing_start`, swept once expired.

use std::time::Duration;
use uuid::Uuid;

use super::{Store, StoreError};
use crate::model::Caller;

pub struct ExpiredTyping {
    pub tenant_id: String,
    pub room_id: Uuid,
    pub user_id: String,
}

impl Store {
    /// Starts or renews the caller's indicator; true when it was not already running.
    pub async fn start_typing(&self, caller: &Caller, room_id: Uuid, ttl: Duration) -> Result<bool, StoreError> {
        let ttl_ms = ttl.as_millis() as f64;
        let row = self
            .client()
            .await?
            .query_one_cached(
                "INSERT INTO chat_typing_indicators (room_id, tenant_id, user_id, expires_at)
                 VALUES ($2, $1, $3, now() + make_interval(secs => $4::float8 / 1000.0))
                 ON CONFLICT (room_id, user_id) DO UPDATE
                   SET expires_at = EXCLUDED.expires_at,
                       started_at = CASE WHEN chat_typing_indicators.expires_at < now()
                                         THEN now() ELSE chat_typing_indicators.started_at END
                 WHERE chat_typing_indicators.tenant_id = $1
                 RETURNING started_at = now()",
                &[&caller.tenant_id, &room_id, &caller.user_id, &ttl_ms],
            )
            .await?;
        Ok(row.get(0))
    }

    /// Stops the caller's indicator; true when one was running.
    pub async fn stop_typing(&self, caller: &Caller, room_id: Uuid) -> Result<bool, StoreError> {
        let n = self
            .client()
            .await?
            .execute_cached(
                "DELETE FROM chat_typing_indicators WHERE tenant_id = $1 AND room_id = $2 AND user_id = $3",
                &[&caller.tenant_id, &room_id, &caller.user_id],
            )
            .await?;
        Ok(n == 1)
    }

    /// Removes all expired indicators across tenants: the scheduled sweep is the one system-wide query.
    pub async fn sweep_expired_typing(&self) -> Result<Vec<ExpiredTyping>, StoreError> {
        let rows = self
            .client()
            .await?
            .query_cached(
                "DELETE FROM chat_typing_indicators WHERE expires_at <= now() RETURNING tenant_id, room_id, user_id",
                &[],
            )
            .await?;
        Ok(rows.iter().map(|r| ExpiredTyping { tenant_id: r.get(0), room_id: r.get(1), user_id: r.get(2) }).collect())
    }
}
