-- Unread and mention counters per member, kept by the statements that change them, so a
-- message's fan-out learns every recipient's counts from the same UPDATE that bumps them.
ALTER TABLE chat_room_participants
    ADD COLUMN unread_count  integer NOT NULL DEFAULT 0,
    ADD COLUMN mention_count integer NOT NULL DEFAULT 0;

-- Users as seen by the chat: display name and last-seen time, kept across Redis restarts.
CREATE TABLE chat_users (
    tenant_id    text NOT NULL,
    user_id      text NOT NULL,
    display_name text,
    last_seen_at timestamptz,
    PRIMARY KEY (tenant_id, user_id)
);

CREATE INDEX chat_reactions_message ON chat_message_reactions (tenant_id, message_id);
CREATE INDEX chat_edits_message ON chat_message_edits (tenant_id, message_id);
