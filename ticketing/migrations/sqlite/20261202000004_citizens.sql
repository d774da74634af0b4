-- Citizens of the city app: accounts by phone, one-time login codes and bearer tokens (both kept
-- only as hashes), the points ledger (积分) and ratings (评价) of closed tickets.
-- Keep in step with ../postgres/20261202000004_citizens.sql.

CREATE TABLE citizens (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    phone         TEXT   NOT NULL UNIQUE,
    points        BIGINT NOT NULL DEFAULT 0,
    created_at    BIGINT NOT NULL,
    last_login_at BIGINT
);

-- One row per code sent; only a phone's latest code counts.
CREATE TABLE citizen_codes (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    phone      TEXT    NOT NULL,
    code_hash  TEXT    NOT NULL,
    sent_at    BIGINT  NOT NULL,
    expires_at BIGINT  NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    used_at    BIGINT
);
CREATE INDEX citizen_codes_phone ON citizen_codes (phone, sent_at);

CREATE TABLE citizen_tokens (
    token_hash TEXT   PRIMARY KEY,
    citizen_id BIGINT NOT NULL REFERENCES citizens (id),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX citizen_tokens_citizen ON citizen_tokens (citizen_id);

-- The points ledger: one award per citizen, ticket and reason, whatever replays the events.
CREATE TABLE citizen_points (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    citizen_id BIGINT NOT NULL REFERENCES citizens (id),
    ticket_id  BIGINT NOT NULL REFERENCES tickets (id),
    reason     TEXT   NOT NULL,
    points     BIGINT NOT NULL,
    day        TEXT   NOT NULL,
    event_id   BIGINT NOT NULL,
    awarded_at BIGINT NOT NULL,
    UNIQUE (citizen_id, ticket_id, reason)
);
CREATE INDEX citizen_points_day ON citizen_points (citizen_id, day);

-- 评价: a citizen rates a closed ticket once.
CREATE TABLE ticket_ratings (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id  BIGINT  NOT NULL REFERENCES tickets (id),
    citizen_id BIGINT  NOT NULL REFERENCES citizens (id),
    stars      INTEGER NOT NULL,
    comment    TEXT,
    rated_at   BIGINT  NOT NULL,
    UNIQUE (ticket_id, citizen_id)
);
