-- A room's members by tenant and room, the way every statement asks for them. The primary key
-- (room_id, user_id) leaves the tenant to the heap, and the statement that stores a message
-- (which lists a small room's members) was then priced dearer as a generic plan than as a
-- custom one: Postgres planned it afresh on every message, 30% of its time in it, and for a
-- tenant newer than its statistics chose to read all the tenant's members.
CREATE INDEX chat_participants_room ON chat_room_participants (tenant_id, room_id, user_id);

-- A user's rooms by tenant and user, read from the index alone (contacts, on every connect and
-- disconnect, go from the user's rooms to their members).
CREATE INDEX chat_participants_user_room ON chat_room_participants (tenant_id, user_id, room_id);
DROP INDEX chat_participants_user;
