-- ssrelay schema, version 1.
-- SQLite holds only what the relay did and saw: Secret Server stays the source of truth.

-- The last snapshot of every access request the relay account could see.
CREATE TABLE access_requests (
    id                 INTEGER PRIMARY KEY,      -- SS secretAccessRequestId
    secret_id          INTEGER NOT NULL,
    secret_name        TEXT NOT NULL DEFAULT '',
    folder_id          INTEGER,
    folder_name        TEXT NOT NULL DEFAULT '',
    requester_id       INTEGER NOT NULL,
    requester_username TEXT NOT NULL DEFAULT '',
    status             TEXT NOT NULL,
    comment            TEXT NOT NULL DEFAULT '',
    ticket             TEXT NOT NULL DEFAULT '',
    requested_at       TEXT,
    start_at           TEXT,
    expires_at         TEXT,
    review_status      TEXT NOT NULL DEFAULT '',
    decided_by         TEXT NOT NULL DEFAULT '',
    response_comment   TEXT NOT NULL DEFAULT '',
    decided_at         TEXT,
    has_workflow       INTEGER NOT NULL DEFAULT 0,
    fingerprint        TEXT NOT NULL DEFAULT '',
    reviewers          TEXT NOT NULL DEFAULT '[]', -- JSON list of SS user ids of the current step
    gone               INTEGER NOT NULL DEFAULT 0, -- 1: unreadable to the relay (API_AccessDenied)
    first_seen         TEXT NOT NULL,
    updated_at         TEXT NOT NULL
);
CREATE INDEX access_requests_status ON access_requests(status, gone);
CREATE INDEX access_requests_requester ON access_requests(requester_id);

-- Notifications owed or sent. The unique key is the idempotency key.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id      INTEGER NOT NULL,
    event           TEXT NOT NULL,   -- approval_requested, canceled, approved, denied, review_closed, expired
    recipient       INTEGER NOT NULL, -- SS user id; mapped to Slack at delivery
    payload         TEXT NOT NULL,   -- JSON facts for the message builder
    state           TEXT NOT NULL DEFAULT 'pending', -- pending, sending, sent, dead, superseded
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_error      TEXT,
    slack_user      TEXT,
    created_at      TEXT NOT NULL,
    finished_at     TEXT,
    UNIQUE (request_id, event, recipient)
);
CREATE INDEX outbox_due ON outbox(state, next_attempt_at);
CREATE INDEX outbox_order ON outbox(request_id, recipient, state);

-- Persistent approval cards (DM mode): where each reviewer's card lives, for chat.update.
CREATE TABLE cards (
    request_id INTEGER NOT NULL,
    recipient  INTEGER NOT NULL,
    channel    TEXT NOT NULL,
    ts         TEXT NOT NULL,
    state      TEXT NOT NULL DEFAULT 'open',
    PRIMARY KEY (request_id, recipient)
);

-- SS users the relay has looked up (reviewers, requesters).
CREATE TABLE people (
    id           INTEGER PRIMARY KEY,
    username     TEXT NOT NULL,
    display_name TEXT NOT NULL DEFAULT '',
    email        TEXT NOT NULL DEFAULT '',
    fetched_at   TEXT NOT NULL
);

-- Slack user <-> SS user links made at sign-in (filled by the interactions work).
CREATE TABLE slack_links (
    slack_user  TEXT PRIMARY KEY,
    slack_team  TEXT NOT NULL DEFAULT '',
    ss_user_id  INTEGER NOT NULL UNIQUE,
    ss_username TEXT NOT NULL DEFAULT '',
    linked_at   TEXT NOT NULL
);

-- users.lookupByEmail results, including misses, with the time they were asked.
CREATE TABLE slack_directory (
    email       TEXT PRIMARY KEY,
    slack_user  TEXT,          -- NULL: Slack has no such user
    error       TEXT,
    looked_up_at TEXT NOT NULL
);

-- The app DM channel of each Slack user (conversations.open result).
CREATE TABLE dm_channels (
    slack_user TEXT PRIMARY KEY,
    channel    TEXT NOT NULL
);

-- Reviewers and requesters who could not be reached in Slack, with the reason.
CREATE TABLE unmapped_people (
    ss_user_id INTEGER PRIMARY KEY,
    username   TEXT NOT NULL DEFAULT '',
    reason     TEXT NOT NULL,
    seen_at    TEXT NOT NULL
);

-- Small facts about the relay itself (last successful poll, ...).
CREATE TABLE relay_state (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
