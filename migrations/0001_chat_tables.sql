-- Chat schema. Every table carries tenant_id and every query filters on it.
-- User and tenant ids come from the JWT and are the product team's own ids, so they are text.

CREATE TABLE chat_rooms (
    id          uuid PRIMARY KEY,
    tenant_id   text NOT NULL,
    name        text NOT NULL,
    description text,
    room_type   text NOT NULL CHECK (room_type IN ('direct', 'group', 'support', 'broadcast')),
    is_private  boolean NOT NULL DEFAULT false,
    -- For direct rooms: the sorted pair of user ids, so a pair gets one room.
    direct_key  text,
    settings    jsonb NOT NULL DEFAULT '{}',
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX chat_rooms_tenant ON chat_rooms (tenant_id, room_type);
CREATE UNIQUE INDEX chat_rooms_direct_pair ON chat_rooms (tenant_id, direct_key) WHERE direct_key IS NOT NULL;

CREATE TABLE chat_room_participants (
    room_id       uuid NOT NULL REFERENCES chat_rooms (id) ON DELETE CASCADE,
    tenant_id     text NOT NULL,
    user_id       text NOT NULL,
    display_name  text,
    role          text NOT NULL DEFAULT 'member' CHECK (role IN ('admin', 'moderator', 'member')),
    joined_at     timestamptz NOT NULL DEFAULT now(),
    last_read_seq bigint NOT NULL DEFAULT 0,
    last_read_at  timestamptz,
    muted_until   timestamptz,
    PRIMARY KEY (room_id, user_id)
);
CREATE INDEX chat_participants_user ON chat_room_participants (tenant_id, user_id);

-- A ban outlives membership: the banned user is removed and cannot rejoin.
CREATE TABLE chat_room_bans (
    room_id    uuid NOT NULL REFERENCES chat_rooms (id) ON DELETE CASCADE,
    tenant_id  text NOT NULL,
    user_id    text NOT NULL,
    banned_by  text NOT NULL,
    reason     text,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (room_id, user_id)
);

CREATE TABLE chat_messages (
    id            uuid PRIMARY KEY,
    -- Monotonic order for cursors and unread counts; ids alone are not ordered by commit.
    seq           bigint GENERATED ALWAYS AS IDENTITY,
    tenant_id     text NOT NULL,
    room_id       uuid NOT NULL REFERENCES chat_rooms (id) ON DELETE CASCADE,
    sender_id     text NOT NULL,
    sender_name   text,
    message_type  text NOT NULL CHECK (message_type IN ('text', 'image', 'file', 'system')),
    content       text NOT NULL,
    attachments   jsonb NOT NULL DEFAULT '[]',
    mentions      text[] NOT NULL DEFAULT '{}',
    reply_to      uuid REFERENCES chat_messages (id),
    reply_count   integer NOT NULL DEFAULT 0,
    -- The client's own id for the message: a retried send is stored once.
    client_msg_id text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    edited_at     timestamptz,
    deleted_at    timestamptz,
    deleted_by    text
);
CREATE UNIQUE INDEX chat_messages_seq ON chat_messages (seq);
CREATE INDEX chat_messages_room_seq ON chat_messages (tenant_id, room_id, seq);
CREATE INDEX chat_messages_thread ON chat_messages (tenant_id, reply_to, seq) WHERE reply_to IS NOT NULL;
CREATE UNIQUE INDEX chat_messages_client_id ON chat_messages (tenant_id, sender_id, client_msg_id) WHERE client_msg_id IS NOT NULL;

CREATE TABLE chat_message_edits (
    message_id uuid NOT NULL REFERENCES chat_messages (id) ON DELETE CASCADE,
    tenant_id  text NOT NULL,
    version    integer NOT NULL,
    content    text NOT NULL,
    edited_by  text NOT NULL,
    edited_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (message_id, version)
);

CREATE TABLE chat_message_reactions (
    message_id uuid NOT NULL REFERENCES chat_messages (id) ON DELETE CASCADE,
    tenant_id  text NOT NULL,
    user_id    text NOT NULL,
    emoji      text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (message_id, user_id, emoji)
);

CREATE TABLE chat_message_receipts (
    message_id   uuid NOT NULL REFERENCES chat_messages (id) ON DELETE CASCADE,
    tenant_id    text NOT NULL,
    user_id      text NOT NULL,
    delivered_at timestamptz,
    read_at      timestamptz,
    PRIMARY KEY (message_id, user_id)
);
CREATE INDEX chat_receipts_user ON chat_message_receipts (tenant_id, user_id);

CREATE TABLE chat_typing_indicators (
    room_id    uuid NOT NULL REFERENCES chat_rooms (id) ON DELETE CASCADE,
    tenant_id  text NOT NULL,
    user_id    text NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (room_id, user_id)
);
CREATE INDEX chat_typing_expiry ON chat_typing_indicators (expires_at);
