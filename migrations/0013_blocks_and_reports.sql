-- Blocking: a blocked user cannot open or write in a direct room with the blocker, and the
-- blocker's clients get the blocked user's messages in other rooms flagged.
CREATE TABLE chat_blocks (
    tenant_id text NOT NULL,
    blocker text NOT NULL,
    blocked text NOT NULL,
    blocked_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, blocker, blocked)
);
-- Who blocked a sender, read with every membership check.
CREATE INDEX chat_blocks_blocked ON chat_blocks (tenant_id, blocked);

-- Reports of messages, seen by the room's moderators and admins and by tenant admins.
CREATE TABLE chat_reports (
    tenant_id text NOT NULL,
    id uuid NOT NULL,
    room_id uuid NOT NULL,
    message_id uuid NOT NULL,
    reporter text NOT NULL,
    reason text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    status text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'dismissed', 'deleted')),
    resolved_by text,
    resolved_at timestamptz,
    PRIMARY KEY (tenant_id, id),
    -- One report of a message by a member: reporting again answers with the first.
    UNIQUE (tenant_id, message_id, reporter)
);
CREATE INDEX chat_reports_room ON chat_reports (tenant_id, room_id, status, created_at);
CREATE INDEX chat_reports_open ON chat_reports (tenant_id, created_at) WHERE status = 'open';
