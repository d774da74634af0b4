-- Duplicate merging (并单): the reporters a merge copied onto the target remember their source,
-- so an unmerge takes exactly them back; suggestions wait for an agent's decision.
-- Keep in step with ../sqlite/20261202000003_merges.sql.

ALTER TABLE ticket_reporters ADD COLUMN merged_from BIGINT REFERENCES tickets (id);
CREATE INDEX tickets_merge_window ON tickets (created_at, status);

CREATE TABLE merge_suggestions (
    ticket_id    BIGINT NOT NULL REFERENCES tickets (id),
    candidate_id BIGINT NOT NULL REFERENCES tickets (id),
    score        DOUBLE PRECISION NOT NULL,
    created_at   BIGINT NOT NULL,
    decided_at   BIGINT,
    decision     TEXT,
    PRIMARY KEY (ticket_id, candidate_id)
);
