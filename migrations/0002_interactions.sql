-- ssrelay schema, version 2: Slack interactions (sign-in, people's SS sessions, clicks, Home tab).

-- Sign-in links. Only the SHA-256 of the random state is stored; a state is bound to the Slack
-- team and user it was made for, valid 10 minutes, single use. `pending_action` remembers the
-- click that needed the sign-in (JSON), completed right after it.
CREATE TABLE signin_states (
    state_hash     TEXT PRIMARY KEY,
    slack_team     TEXT NOT NULL,
    slack_user     TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    expires_at     TEXT NOT NULL,
    used_at        TEXT,
    pending_action TEXT
);
CREATE INDEX signin_states_expiry ON signin_states(expires_at);

-- People's Secret Server sessions. Tokens are Fernet-encrypted with storage.encryption_key;
-- the password is never stored.
CREATE TABLE user_sessions (
    slack_user    TEXT PRIMARY KEY,
    ss_user_id    INTEGER NOT NULL,
    access_token  TEXT NOT NULL,     -- Fernet token
    refresh_token TEXT,              -- Fernet token, or NULL when SS gave none
    expires_at    TEXT NOT NULL,     -- of the access token
    updated_at    TEXT NOT NULL
);

-- Events API deliveries already handled (Slack retries carry the same event_id).
CREATE TABLE seen_events (
    event_id TEXT PRIMARY KEY,
    seen_at  TEXT NOT NULL
);

-- The claim taken before a decision is written to SS: one row per request while a click is
-- being acted on, so a double click or two reviewers clicking at once make one SS write.
-- Released (deleted) when the click wrote nothing or the request is still Pending after it
-- (a workflow moved to its next step); kept as a record when it decided the request.
CREATE TABLE action_claims (
    request_id INTEGER PRIMARY KEY,
    action     TEXT NOT NULL,        -- approve, deny, cancel
    slack_user TEXT NOT NULL,
    state      TEXT NOT NULL DEFAULT 'claimed',  -- claimed, done
    result     TEXT NOT NULL DEFAULT '',         -- SS status after the write
    claimed_at TEXT NOT NULL,
    done_at    TEXT
);

-- The last Home tab published to each person: skip publishing an identical view.
CREATE TABLE home_views (
    slack_user   TEXT PRIMARY KEY,
    slack_team   TEXT NOT NULL DEFAULT '',
    view_hash    TEXT NOT NULL,
    signed_in    INTEGER NOT NULL DEFAULT 0,
    published_at TEXT NOT NULL
);
