-- Transcription (outbox): one job per recording — a finished call (stereo: caller left, hotline
-- right) or an IVR voicemail (mono; it opened a ticket) — claimed by a worker for a lease; and the
-- transcripts it makes, with their segments and a full-text index that finds Chinese words.
-- Timestamps are milliseconds since the Unix epoch.
-- Keep in step with ../postgres/20261202000005_transcripts.sql.

CREATE TABLE transcription_jobs (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    -- NULL for a recording imported without a call record.
    call_id        BIGINT REFERENCES calls (id),
    -- A voicemail's ticket.
    ticket_id      BIGINT REFERENCES tickets (id),
    -- 'call' | 'message'
    kind           TEXT    NOT NULL,
    -- Relative to the data directory; queueing the same file again is a no-op.
    recording_path TEXT    NOT NULL UNIQUE,
    -- 'queued' | 'running' | 'done' | 'failed'
    state          TEXT    NOT NULL,
    -- Claims so far; a claim's number fences the worker holding it.
    attempts       INTEGER NOT NULL DEFAULT 0,
    -- When it is due: the next try while queued, the end of the lease (= lease_until) while
    -- running, so one index finds both what to start and what a dead worker left.
    next_at        BIGINT  NOT NULL,
    claimed_by     TEXT,
    lease_until    BIGINT,
    last_error     TEXT,
    created_at     BIGINT  NOT NULL,
    finished_at    BIGINT
);
-- Claiming: the due jobs in due order.
CREATE INDEX transcription_jobs_due ON transcription_jobs (next_at, id)
    WHERE state IN ('queued', 'running');
CREATE INDEX transcription_jobs_state ON transcription_jobs (state, next_at);
CREATE INDEX transcription_jobs_call ON transcription_jobs (call_id);
CREATE INDEX transcription_jobs_ticket ON transcription_jobs (ticket_id);

-- One per recording: transcribing it again replaces the row in place (same id).
CREATE TABLE transcripts (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id         BIGINT REFERENCES transcription_jobs (id),
    call_id        BIGINT REFERENCES calls (id),
    ticket_id      BIGINT REFERENCES tickets (id),
    recording_path TEXT   NOT NULL UNIQUE,
    model          TEXT   NOT NULL,
    language       TEXT   NOT NULL,
    duration_ms    BIGINT NOT NULL,
    processing_ms  BIGINT NOT NULL,
    -- Every segment's text, one per line: what is searched.
    text           TEXT   NOT NULL,
    created_at     BIGINT NOT NULL
);
CREATE INDEX transcripts_call ON transcripts (call_id);
CREATE INDEX transcripts_ticket ON transcripts (ticket_id);

CREATE TABLE transcript_segments (
    transcript_id BIGINT  NOT NULL REFERENCES transcripts (id) ON DELETE CASCADE,
    seq           INTEGER NOT NULL,
    -- 'caller' | 'hotline'
    speaker       TEXT    NOT NULL,
    start_ms      BIGINT  NOT NULL,
    end_ms        BIGINT  NOT NULL,
    text          TEXT    NOT NULL,
    PRIMARY KEY (transcript_id, seq)
);

-- Full-text search over transcripts.text: trigrams, so Chinese (no spaces between words) is
-- found as well as English. An external-content index kept in step by the triggers below;
-- queries shorter than three characters cannot use trigrams and scan transcripts instead.
CREATE VIRTUAL TABLE transcripts_fts USING fts5 (
    text,
    content = 'transcripts',
    content_rowid = 'id',
    tokenize = 'trigram'
);
CREATE TRIGGER transcripts_fts_insert AFTER INSERT ON transcripts BEGIN
    INSERT INTO transcripts_fts (rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER transcripts_fts_delete AFTER DELETE ON transcripts BEGIN
    INSERT INTO transcripts_fts (transcripts_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;
CREATE TRIGGER transcripts_fts_update AFTER UPDATE OF text ON transcripts BEGIN
    INSERT INTO transcripts_fts (transcripts_fts, rowid, text) VALUES ('delete', old.id, old.text);
    INSERT INTO transcripts_fts (rowid, text) VALUES (new.id, new.text);
END;
