-- Tickets, their reporters, attachments and audit trail; users and sessions.
-- Timestamps are milliseconds since the Unix epoch (BIGINT) on both backends.
-- Keep in step with ../postgres/20261123000001_init.sql.

CREATE TABLE tickets (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    number      TEXT    NOT NULL UNIQUE,
    hotline     TEXT    NOT NULL,
    channel     TEXT    NOT NULL,
    status      TEXT    NOT NULL,
    priority    TEXT    NOT NULL,
    category    TEXT,
    department  TEXT,
    content     TEXT    NOT NULL,
    address     TEXT,
    lat         REAL,
    lon         REAL,
    grid_code   TEXT,
    work_state  TEXT    NOT NULL,
    current_due BIGINT,
    merged_into BIGINT REFERENCES tickets (id),
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL,
    version     BIGINT  NOT NULL DEFAULT 0
);
CREATE INDEX tickets_status_created ON tickets (status, created_at);
CREATE INDEX tickets_department_status ON tickets (department, status);
CREATE INDEX tickets_category ON tickets (category);
CREATE INDEX tickets_created ON tickets (created_at);
CREATE INDEX tickets_current_due ON tickets (current_due);

CREATE TABLE ticket_reporters (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id     BIGINT NOT NULL REFERENCES tickets (id),
    name          TEXT,
    phone         TEXT,
    wechat_openid TEXT,
    app_user      TEXT,
    reported_at   BIGINT NOT NULL
);
CREATE INDEX ticket_reporters_ticket ON ticket_reporters (ticket_id);
CREATE INDEX ticket_reporters_phone ON ticket_reporters (phone);

CREATE TABLE ticket_attachments (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id    BIGINT NOT NULL REFERENCES tickets (id),
    kind         TEXT   NOT NULL,
    uri          TEXT   NOT NULL,
    content_type TEXT,
    note         TEXT,
    added_at     BIGINT NOT NULL
);
CREATE INDEX ticket_attachments_ticket ON ticket_attachments (ticket_id);

CREATE TABLE ticket_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id   BIGINT NOT NULL REFERENCES tickets (id),
    at          BIGINT NOT NULL,
    actor_id    BIGINT NOT NULL,
    actor_name  TEXT   NOT NULL,
    role        TEXT   NOT NULL,
    action      TEXT   NOT NULL,
    from_status TEXT,
    to_status   TEXT   NOT NULL,
    note        TEXT,
    data        TEXT   NOT NULL
);
CREATE INDEX ticket_events_ticket ON ticket_events (ticket_id, id);

CREATE TABLE ticket_sequences (
    hotline TEXT   NOT NULL,
    day     TEXT   NOT NULL,
    last    BIGINT NOT NULL,
    PRIMARY KEY (hotline, day)
);

CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT   NOT NULL UNIQUE,
    display_name  TEXT   NOT NULL,
    role          TEXT   NOT NULL,
    department    TEXT,
    password_hash TEXT   NOT NULL,
    created_at    BIGINT NOT NULL,
    disabled_at   BIGINT
);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id    BIGINT NOT NULL REFERENCES users (id),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);
