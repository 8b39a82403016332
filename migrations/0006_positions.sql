-- A message writes rows independent of the room's size: its own row, its room's sequence
-- counter, and a row per mentioned member. Unread counts are derived from each member's read
-- position (last_read_seq) instead of a counter per member bumped by every message, and
-- delivery receipts are positions kept in Redis instead of a row per member per message.

-- The room's sequence: the counter row is locked by each insert until it commits, so messages of
-- a room commit in `seq` order and `room_seq` runs 1, 2, 3, ... without gaps a reader could miss.
ALTER TABLE chat_rooms ADD COLUMN last_seq bigint NOT NULL DEFAULT 0;
ALTER TABLE chat_messages ADD COLUMN room_seq bigint NOT NULL DEFAULT 0;

-- Existing messages are numbered after their room's archived ones, in `seq` order.
UPDATE chat_messages m
SET room_seq = n.room_seq
FROM (SELECT c.tenant_id, c.id,
             row_number() OVER (PARTITION BY c.tenant_id, c.room_id ORDER BY c.seq)
             + COALESCE((SELECT sum(a.messages) FROM chat_archived_months a
                         WHERE a.tenant_id = c.tenant_id AND a.room_id = c.room_id), 0) AS room_seq
      FROM chat_messages c) n
WHERE m.tenant_id = n.tenant_id AND m.id = n.id;
UPDATE chat_rooms r
SET last_seq = GREATEST(
        COALESCE((SELECT max(m.room_seq) FROM chat_messages m WHERE m.tenant_id = r.tenant_id AND m.room_id = r.id), 0),
        COALESCE((SELECT sum(a.messages) FROM chat_archived_months a WHERE a.tenant_id = r.tenant_id AND a.room_id = r.id), 0));

-- Unread counts read this index only: messages after a position that count (not deleted, not
-- system), with the sender to leave out the reader's own.
CREATE INDEX chat_messages_countable ON chat_messages (tenant_id, room_id, seq) INCLUDE (sender_id)
    WHERE deleted_at IS NULL AND message_type <> 'system';

-- Mentions of members, for mention counts after a read position.
CREATE TABLE chat_mentions (
    tenant_id  text NOT NULL,
    room_id    uuid NOT NULL REFERENCES chat_rooms (id) ON DELETE CASCADE,
    user_id    text NOT NULL,
    seq        bigint NOT NULL,
    message_id uuid NOT NULL,
    PRIMARY KEY (tenant_id, user_id, room_id, seq)
) PARTITION BY HASH (tenant_id);
DO $$
BEGIN
    FOR i IN 0..15 LOOP
        EXECUTE format('CREATE TABLE chat_mentions_p%s PARTITION OF chat_mentions
                        FOR VALUES WITH (MODULUS 16, REMAINDER %s)', i, i);
    END LOOP;
END $$;
CREATE INDEX chat_mentions_message ON chat_mentions (tenant_id, room_id, seq);

INSERT INTO chat_mentions (tenant_id, room_id, user_id, seq, message_id)
SELECT m.tenant_id, m.room_id, p.user_id, m.seq, m.id
FROM chat_messages m
JOIN chat_room_participants p ON p.tenant_id = m.tenant_id AND p.room_id = m.room_id
WHERE p.user_id = ANY (m.mentions) AND p.user_id <> m.sender_id
  AND m.deleted_at IS NULL AND m.message_type <> 'system'
ON CONFLICT DO NOTHING;

ALTER TABLE chat_room_participants DROP COLUMN unread_count, DROP COLUMN mention_count;
-- Receipts are positions now (read: last_read_seq; delivered: Redis, README "Receipts").
DROP TABLE chat_message_receipts;
