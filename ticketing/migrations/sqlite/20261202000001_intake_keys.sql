-- Idempotent intake: a channel's key for a submission (a WeChat MsgId, an app's Idempotency-Key)
-- is stored in the same transaction as the ticket or supplement it made, so a retried request
-- finds it and makes nothing new. Keep in step with ../postgres/20261202000001_intake_keys.sql.

CREATE TABLE intake_keys (
    key        TEXT   PRIMARY KEY,
    ticket_id  BIGINT NOT NULL REFERENCES tickets (id),
    created_at BIGINT NOT NULL
);
CREATE INDEX intake_keys_created ON intake_keys (created_at);

-- A citizen's conversation on a messaging channel (a WeChat follower's chat): the ticket their
-- messages add to while they keep writing within the window.
CREATE TABLE threads (
    channel   TEXT   NOT NULL,
    sender    TEXT   NOT NULL,
    ticket_id BIGINT NOT NULL REFERENCES tickets (id),
    last_at   BIGINT NOT NULL,
    PRIMARY KEY (channel, sender)
);

CREATE INDEX ticket_reporters_wechat ON ticket_reporters (wechat_openid);
CREATE INDEX ticket_reporters_app ON ticket_reporters (app_user);
