-- Room moderation: a frozen room takes posts, edits, reactions and typing from its admins only;
-- slow mode spaces one member's messages (0: off); pinned messages, at most a bounded number a room.
ALTER TABLE chat_rooms
    ADD COLUMN frozen boolean NOT NULL DEFAULT false,
    ADD COLUMN slow_mode_seconds integer NOT NULL DEFAULT 0;
CREATE TABLE chat_pins (
    tenant_id text NOT NULL,
    room_id uuid NOT NULL,
    message_id uuid NOT NULL,
    pinned_by text NOT NULL,
    pinned_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, message_id)
);
CREATE INDEX chat_pins_room ON chat_pins (tenant_id, room_id, pinned_at);
