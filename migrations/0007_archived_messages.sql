-- Where each archived message is: its room, seq and month (so its object), and its parent.
-- get_thread, get_edit_history and get_receipts find an archived message, and an archived
-- parent's archived replies, by id without reading the room's objects.
CREATE TABLE chat_archived_messages (
    tenant_id text NOT NULL,
    id        uuid NOT NULL,
    room_id   uuid NOT NULL REFERENCES chat_rooms (id) ON DELETE CASCADE,
    seq       bigint NOT NULL,
    month     date NOT NULL,
    reply_to  uuid,
    PRIMARY KEY (tenant_id, id)
) PARTITION BY HASH (tenant_id);
DO $$
BEGIN
    FOR i IN 0..15 LOOP
        EXECUTE format('CREATE TABLE chat_archived_messages_p%s PARTITION OF chat_archived_messages
                        FOR VALUES WITH (MODULUS 16, REMAINDER %s)', i, i);
    END LOOP;
END $$;
CREATE INDEX chat_archived_messages_thread ON chat_archived_messages (tenant_id, reply_to, seq)
    WHERE reply_to IS NOT NULL;
