-- Work done after the answer (outbox): fetching media a channel only referenced
-- (`wechat-media:<id>` attachments) and notifying citizens of changes to their tickets.
-- Keep in step with ../postgres/20261202000002_outboxes.sql.

CREATE TABLE attachment_fetches (
    attachment_id BIGINT PRIMARY KEY REFERENCES ticket_attachments (id),
    attempts      INTEGER NOT NULL DEFAULT 0,
    next_at       BIGINT,
    last_error    TEXT,
    gave_up_at    BIGINT
);

-- How far a worker has read the ticket_events stream (one row per worker kind).
CREATE TABLE event_cursors (
    name     TEXT   PRIMARY KEY,
    event_id BIGINT NOT NULL
);
