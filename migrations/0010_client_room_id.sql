-- A create_room retried with the same client_room_id (its reply was lost) answers with the room
-- the first attempt created, as a send's client_msg_id does for messages.
ALTER TABLE chat_rooms ADD COLUMN client_room_id text;
CREATE UNIQUE INDEX chat_rooms_client_room_id ON chat_rooms (tenant_id, created_by, client_room_id)
    WHERE client_room_id IS NOT NULL;
