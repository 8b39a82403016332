//! Each tenant's webhook endpoint.

use super::{Store, StoreError};
use crate::webhooks::{Endpoint, Event};

impl Store {
    pub async fn webhook(&self, tenant_id: &str) -> Result<Option<Endpoint>, StoreError> {
        let row = self
            .client()
            .await?
            .query_opt_cached("SELECT url, secret, events FROM chat_webhooks WHERE tenant_id = $1", &[&tenant_id])
            .await?;
        Ok(row.map(|row| {
            let events: Vec<String> = row.get(2);
            Endpoint {
                url: row.get(0),
                secret: row.get(1),
                events: events.iter().filter_map(|e| Event::from_name(e)).collect(),
            }
        }))
    }

    pub async fn set_webhook(&self, tenant_id: &str, endpoint: &Endpoint) -> Result<(), StoreError> {
        self.client()
            .await?
            .execute_cached(
                "INSERT INTO chat_webhooks (tenant_id, url, secret, events) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (tenant_id) DO UPDATE
                   SET url = EXCLUDED.url, secret = EXCLUDED.secret, events = EXCLUDED.events, updated_at = now()",
                &[
                    &tenant_id,
                    &endpoint.url,
                    &endpoint.secret,
                    &endpoint.events.iter().map(|e| e.as_str()).collect::<Vec<_>>(),
                ],
            )
            .await?;
        Ok(())
    }

    /// Whether there was one.
    pub async fn delete_webhook(&self, tenant_id: &str) -> Result<bool, StoreError> {
        let deleted = self
            .client()
            .await?
            .execute_cached("DELETE FROM chat_webhooks WHERE tenant_id = $1", &[&tenant_id])
            .await?;
        Ok(deleted > 0)
    }
}
