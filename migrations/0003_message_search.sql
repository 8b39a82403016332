-- Full-text search over message content ('simple': no language-specific stemming, since
-- tenants write in any language).
ALTER TABLE chat_messages
    ADD COLUMN search_vector tsvector GENERATED ALWAYS AS (to_tsvector('simple', content)) STORED;
CREATE INDEX chat_messages_search ON chat_messages USING gin (search_vector);
