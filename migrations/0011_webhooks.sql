-- Where a tenant's backend takes events (webhooks): one endpoint per tenant, the secret its
-- requests are signed with, and the events it wants.
CREATE TABLE chat_webhooks (
    tenant_id text PRIMARY KEY,
    url text NOT NULL,
    secret text NOT NULL,
    events text[] NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
