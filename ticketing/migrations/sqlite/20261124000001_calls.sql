-- Call detail records (one row per SIP call, written by the gateway as the call goes) and the
-- general audit log (who did what to which thing: listening to a recording, say). ticket_events
-- stays the per-ticket trail. Timestamps are milliseconds since the Unix epoch.
-- Keep in step with ../postgres/20261124000001_calls.sql.

CREATE TABLE calls (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    call_id         TEXT    NOT NULL UNIQUE,
    hotline         TEXT,
    from_number     TEXT,
    from_uri        TEXT,
    to_number       TEXT,
    source          TEXT,
    trunk           TEXT,
    started_at      BIGINT  NOT NULL,
    answered_at     BIGINT,
    ended_at        BIGINT,
    ended_by        TEXT,
    end_code        INTEGER,
    end_reason      TEXT,
    duration_ms     BIGINT,
    recording_path  TEXT,
    recording_bytes BIGINT,
    node            TEXT,
    ticket_id       BIGINT REFERENCES tickets (id)
);
CREATE INDEX calls_started ON calls (started_at);
CREATE INDEX calls_from_number ON calls (from_number);
CREATE INDEX calls_hotline_started ON calls (hotline, started_at);
CREATE INDEX calls_ticket ON calls (ticket_id);
-- Calls still running, per node: what a restart has to close.
CREATE INDEX calls_open ON calls (node) WHERE ended_at IS NULL;

CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         BIGINT NOT NULL,
    actor_id   BIGINT,
    actor_name TEXT   NOT NULL,
    role       TEXT,
    action     TEXT   NOT NULL,
    target     TEXT   NOT NULL,
    detail     TEXT   NOT NULL,
    address    TEXT
);
CREATE INDEX audit_log_target ON audit_log (target, id);
CREATE INDEX audit_log_at ON audit_log (at);
