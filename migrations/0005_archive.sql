-- Months of a room's history moved to cold storage (S3): which object holds them and which
-- seqs, so history reads know where to look.
CREATE TABLE chat_archived_months (
    tenant_id   text NOT NULL,
    room_id     uuid NOT NULL REFERENCES chat_rooms (id) ON DELETE CASCADE,
    month       date NOT NULL,
    object_key  text NOT NULL,
    messages    integer NOT NULL,
    min_seq     bigint NOT NULL,
    max_seq     bigint NOT NULL,
    archived_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, room_id, month)
);
CREATE INDEX chat_archived_months_seq ON chat_archived_months (tenant_id, room_id, max_seq);

-- A reply may stay in Postgres while its parent moves to the archive: the insert checks that a
-- parent is in the room, and an archived parent is found in the archive.
ALTER TABLE chat_messages DROP CONSTRAINT chat_messages_tenant_id_reply_to_fkey;
