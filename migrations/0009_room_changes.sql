-- What the recent-message cache checks a page against, read with the caller's membership (a
-- query every history request already makes): the room's newest `room_seq` (`last_seq`) and
-- `changes`, a count of changes to its stored messages (edits, deletions, reply counts,
-- reactions). Triggers keep it, so no write path can forget it. A cached page is served only
-- while both match what the cache was built at, so a cache update lost to a Redis failure after
-- a commit can never serve a page without that message or change.
ALTER TABLE chat_rooms ADD COLUMN changes bigint NOT NULL DEFAULT 0;

CREATE FUNCTION chat_count_message_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE chat_rooms SET changes = changes + 1 WHERE tenant_id = NEW.tenant_id AND id = NEW.room_id;
    RETURN NULL;
END $$;
CREATE TRIGGER chat_message_changed AFTER UPDATE OF content, deleted_at, reply_count ON chat_messages
    FOR EACH ROW EXECUTE FUNCTION chat_count_message_change();

CREATE FUNCTION chat_count_reaction_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    reaction chat_message_reactions;
BEGIN
    IF TG_OP = 'DELETE' THEN reaction := OLD; ELSE reaction := NEW; END IF;
    UPDATE chat_rooms SET changes = changes + 1
    WHERE tenant_id = reaction.tenant_id
      AND id = (SELECT room_id FROM chat_messages WHERE tenant_id = reaction.tenant_id AND id = reaction.message_id);
    RETURN NULL;
END $$;
CREATE TRIGGER chat_reaction_changed AFTER INSERT OR DELETE ON chat_message_reactions
    FOR EACH ROW EXECUTE FUNCTION chat_count_reaction_change();
