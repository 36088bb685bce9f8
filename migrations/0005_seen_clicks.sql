-- Clicks already acted on: Slack signs a click once, so the same (team, user, action,
-- action_ts, container) arriving again is a replay. `click_key` is the SHA-256 of those parts;
-- rows older than the signature's replay window are pruned.
CREATE TABLE seen_clicks (
    click_key TEXT PRIMARY KEY,
    seen_at   TEXT NOT NULL
);
CREATE INDEX seen_clicks_age ON seen_clicks(seen_at);
