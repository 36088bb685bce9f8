-- Sign-in guards: which links are proven to join one person, and failed sign-in attempts.

-- When the SS account's e-mail was seen to equal the Slack profile's e-mail for this link.
-- NULL: not proven (a link made before this check, or with users.signin_requires_email_match
-- off); such a link is checked again the next time it is used.
ALTER TABLE slack_links ADD COLUMN email_verified_at TEXT;

-- Failed sign-in attempts that reached Secret Server (never the password). Counted per sign-in
-- state, per Slack user and per SS username over a sliding window to bound guessing; kept in
-- the database so a restart does not reset the count.
CREATE TABLE signin_failures (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    failed_at    TEXT NOT NULL,
    state_hash   TEXT NOT NULL,
    slack_user   TEXT NOT NULL,
    ss_username  TEXT NOT NULL,   -- lower-cased as typed
    reason       TEXT NOT NULL
);
CREATE INDEX signin_failures_state ON signin_failures(state_hash, failed_at);
CREATE INDEX signin_failures_slack_user ON signin_failures(slack_user, failed_at);
CREATE INDEX signin_failures_ss_username ON signin_failures(ss_username, failed_at);
