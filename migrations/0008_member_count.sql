-- A room's member count, kept by the database itself: the send path reads it with the room's
-- sequence counter (the row it already locks) to choose how to find the members to deliver to
-- without listing every member of a big room.
ALTER TABLE chat_rooms ADD COLUMN member_count integer NOT NULL DEFAULT 0;
UPDATE chat_rooms r
SET member_count = (SELECT count(*) FROM chat_room_participants p WHERE p.room_id = r.id);

CREATE FUNCTION chat_count_members() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE chat_rooms r SET member_count = r.member_count + d.n
        FROM (SELECT room_id, count(*) AS n FROM changed GROUP BY room_id) d WHERE r.id = d.room_id;
    ELSE
        UPDATE chat_rooms r SET member_count = r.member_count - d.n
        FROM (SELECT room_id, count(*) AS n FROM changed GROUP BY room_id) d WHERE r.id = d.room_id;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER chat_members_added AFTER INSERT ON chat_room_participants
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION chat_count_members();
CREATE TRIGGER chat_members_removed AFTER DELETE ON chat_room_participants
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION chat_count_members();
