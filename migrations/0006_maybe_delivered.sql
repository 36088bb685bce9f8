-- An outbox row whose claim was interrupted (its process stopped inside the Slack call) may have
-- reached its recipient. The mark is never cleared: when such an approval message is later
-- superseded, its reviewer still hears how the request ended.
ALTER TABLE outbox ADD COLUMN maybe_delivered INTEGER NOT NULL DEFAULT 0;
