-- What the relay does beyond Secret Server's own workflow: reminders to reviewers of requests
-- still pending, and the facts (folder path, reviewer steps) the reminder cards repeat.
-- One row per Pending request (also when reminders are off: the click on a sensitive
-- folder's card reads its folder path here); deleted when the request is decided. The poll asks only for
-- rows whose next_reminder_at has come (indexed), so an idle poll costs one index probe.
CREATE TABLE reminders (
    request_id       INTEGER PRIMARY KEY,
    requested_at     TEXT NOT NULL,       -- when SS says the request was made (else first seen)
    sent             INTEGER NOT NULL DEFAULT 0,   -- how many reminders are in the outbox
    next_reminder_at TEXT,                -- NULL: no more reminders
    context          TEXT NOT NULL DEFAULT '{}'    -- JSON: folder_path, requester_name, reviewer_steps
);
CREATE INDEX reminders_due ON reminders(next_reminder_at);
