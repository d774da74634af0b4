-- Callback tasks ("leave your number"): made by the ACD when a queued caller overflows to a
-- callback, one per call; closed by the agent attempt whose outcome needs no other try.
-- Timestamps are milliseconds since the Unix epoch. Keep in step with ../postgres/20261201000001_callbacks.sql.

CREATE TABLE callback_tasks (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    call_id         TEXT    NOT NULL UNIQUE,
    hotline         TEXT    NOT NULL,
    queue           TEXT    NOT NULL,
    caller_number   TEXT    NOT NULL,
    language        TEXT,
    requested_at    BIGINT  NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_outcome    TEXT,
    last_attempt_at BIGINT,
    last_agent      TEXT,
    closed_at       BIGINT
);
CREATE INDEX callback_tasks_open ON callback_tasks (requested_at) WHERE closed_at IS NULL;
