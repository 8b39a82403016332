-- Messages and receipts, the two tables that grow with traffic, partitioned by hash of the
-- tenant: every query filters on one tenant, so it is planned against one partition, and a
-- partition stays a size Postgres vacuums and indexes comfortably. Keys and foreign keys now
-- carry the tenant, as a partitioned table's unique keys must contain its partition key.
-- Existing rows are copied over; the identity sequence continues where it was.

ALTER TABLE chat_messages RENAME TO chat_messages_unpartitioned;
ALTER TABLE chat_message_receipts RENAME TO chat_message_receipts_unpartitioned;

CREATE TABLE chat_messages (
    id            uuid NOT NULL,
    seq           bigint GENERATED ALWAYS AS IDENTITY,
    tenant_id     text NOT NULL,
    room_id       uuid NOT NULL REFERENCES chat_rooms (id) ON DELETE CASCADE,
    sender_id     text NOT NULL,
    sender_name   text,
    message_type  text NOT NULL CHECK (message_type IN ('text', 'image', 'file', 'system')),
    content       text NOT NULL,
    attachments   jsonb NOT NULL DEFAULT '[]',
    mentions      text[] NOT NULL DEFAULT '{}',
    reply_to      uuid,
    reply_count   integer NOT NULL DEFAULT 0,
    client_msg_id text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    edited_at     timestamptz,
    deleted_at    timestamptz,
    deleted_by    text,
    search_vector tsvector GENERATED ALWAYS AS (to_tsvector('simple', content)) STORED,
    PRIMARY KEY (tenant_id, id)
) PARTITION BY HASH (tenant_id);

CREATE TABLE chat_message_receipts (
    message_id   uuid NOT NULL,
    tenant_id    text NOT NULL,
    user_id      text NOT NULL,
    delivered_at timestamptz,
    read_at      timestamptz,
    PRIMARY KEY (tenant_id, message_id, user_id)
) PARTITION BY HASH (tenant_id);

DO $$
BEGIN
    FOR i IN 0..15 LOOP
        EXECUTE format('CREATE TABLE chat_messages_p%s PARTITION OF chat_messages
                        FOR VALUES WITH (MODULUS 16, REMAINDER %s)', i, i);
        EXECUTE format('CREATE TABLE chat_message_receipts_p%s PARTITION OF chat_message_receipts
                        FOR VALUES WITH (MODULUS 16, REMAINDER %s)', i, i);
    END LOOP;
END $$;

INSERT INTO chat_messages (id, seq, tenant_id, room_id, sender_id, sender_name, message_type, content,
                           attachments, mentions, reply_to, reply_count, client_msg_id, created_at,
                           edited_at, deleted_at, deleted_by)
OVERRIDING SYSTEM VALUE
SELECT id, seq, tenant_id, room_id, sender_id, sender_name, message_type, content, attachments, mentions,
       reply_to, reply_count, client_msg_id, created_at, edited_at, deleted_at, deleted_by
FROM chat_messages_unpartitioned;
SELECT setval(pg_get_serial_sequence('chat_messages', 'seq'),
              COALESCE((SELECT max(seq) FROM chat_messages), 0) + 1, false);

INSERT INTO chat_message_receipts SELECT message_id, tenant_id, user_id, delivered_at, read_at
FROM chat_message_receipts_unpartitioned;

-- Takes the old tables' indexes and the foreign keys that pointed at them.
DROP TABLE chat_message_receipts_unpartitioned, chat_messages_unpartitioned CASCADE;

CREATE UNIQUE INDEX chat_messages_seq ON chat_messages (tenant_id, seq);
CREATE INDEX chat_messages_room_seq ON chat_messages (tenant_id, room_id, seq);
CREATE INDEX chat_messages_thread ON chat_messages (tenant_id, reply_to, seq) WHERE reply_to IS NOT NULL;
CREATE UNIQUE INDEX chat_messages_client_id ON chat_messages (tenant_id, sender_id, client_msg_id)
    WHERE client_msg_id IS NOT NULL;
CREATE INDEX chat_messages_search ON chat_messages USING gin (search_vector);
CREATE INDEX chat_receipts_user ON chat_message_receipts (tenant_id, user_id);

ALTER TABLE chat_messages ADD FOREIGN KEY (tenant_id, reply_to) REFERENCES chat_messages (tenant_id, id);
ALTER TABLE chat_message_receipts
    ADD FOREIGN KEY (tenant_id, message_id) REFERENCES chat_messages (tenant_id, id) ON DELETE CASCADE;
ALTER TABLE chat_message_edits
    ADD FOREIGN KEY (tenant_id, message_id) REFERENCES chat_messages (tenant_id, id) ON DELETE CASCADE;
ALTER TABLE chat_message_reactions
    ADD FOREIGN KEY (tenant_id, message_id) REFERENCES chat_messages (tenant_id, id) ON DELETE CASCADE;
