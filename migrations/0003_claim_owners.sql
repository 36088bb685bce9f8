-- Who claimed an outbox row, and which relay processes are alive: a relay that starts (or runs
-- beside another) re-sends only rows whose claimant stopped, never a live peer's in-flight row.
ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
ALTER TABLE outbox ADD COLUMN claimed_at TEXT;

CREATE TABLE relay_processes (
    id           TEXT PRIMARY KEY,   -- random per process start
    started_at   TEXT NOT NULL,
    heartbeat_at TEXT NOT NULL
);
