"""Prometheus metrics, on a registry of the relay's own (so tests and two relays in one
process never share counters)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.poll_duration = Histogram("ssrelay_poll_duration_seconds", "Duration of poll cycles", registry=r)
        self.poll_failures = Counter("ssrelay_poll_failures_total", "Poll cycles abandoned", ["reason"], registry=r)
        self.pending_requests = Gauge("ssrelay_pending_requests", "Pending access requests seen by the relay", registry=r)
        self.outbox_depth = Gauge("ssrelay_outbox_rows", "Outbox rows by state", ["state"], registry=r)
        self.deliveries = Counter("ssrelay_deliveries_total", "Slack deliveries", ["method", "result"], registry=r)
        self.slack_rate_limited = Counter("ssrelay_slack_rate_limited_total", "Slack 429 answers", ["method"], registry=r)
        self.ss_errors = Counter("ssrelay_secret_server_errors_total", "Secret Server errors", ["kind"], registry=r)
        self.ack_latency = Histogram("ssrelay_interaction_ack_seconds",
                                     "Time from receiving a Slack request over HTTP to its answer (the ack)",
                                     buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5), registry=r)
        self.linked_users = Gauge("ssrelay_linked_users", "Slack users signed in to Secret Server", registry=r)
        self.unmapped_reviewers = Gauge("ssrelay_unmapped_reviewers",
                                        "SS reviewers (and requesters) the relay cannot reach in Slack", registry=r)
        self.last_poll = Gauge("ssrelay_last_successful_poll_timestamp_seconds", "Unix time of the last good poll", registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)
