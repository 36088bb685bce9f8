-- Delivery whose cost does not grow with the backlog, ambiguous Slack answers, retention.

-- When a Slack call for this row may have taken effect without the relay hearing so (the
-- connection dropped after the request was sent, a timeout, a stop inside the call): the
-- claim time of that first uncertain attempt. Before the row is posted again, the relay looks
-- for its key in the conversation from this time on. NULL: no attempt is in doubt.
ALTER TABLE outbox ADD COLUMN uncertain_since TEXT;

-- The oldest pending notification (readiness), without reading every pending row.
CREATE INDEX outbox_pending_age ON outbox(created_at) WHERE state = 'pending';

-- Retention: finished rows by age, settled requests by age, in small batches.
CREATE INDEX outbox_finished ON outbox(finished_at) WHERE state IN ('sent', 'superseded');
CREATE INDEX access_requests_settled ON access_requests(updated_at) WHERE status != 'Pending';
