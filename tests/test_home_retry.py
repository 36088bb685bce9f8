"""A Home tab Slack refused for a while (429, 5xx) is published again through the same pacing,
and the view published is the latest one."""

from __future__ import annotations

import json

from conftest import cycle
from waiting import wait_until


def test_a_home_tab_refused_with_429_then_503_is_published_again_with_the_latest_view(sandbox, make_relay):
    # Test setup: Alice's Home tab; Slack answers views.publish with 429 (Retry-After 3), then 503.
    relay = make_relay()
    alice = sandbox["alice"].slack_id
    retries = relay.interactions.home.retries
    now = [100.0]
    retries.clock = lambda: now[0]
    sandbox.slack.fail("views.publish", status=429, retry_after=3, times=1)
    sandbox.slack.fail("views.publish", status=503, times=1)
    # Test execution: the publish is refused; meanwhile Rita asks for prod-db (Alice reviews it).
    assert relay.interactions.home.publish(alice) is False
    assert retries.pending() == {alice: 103.0}
    sandbox.ss.create_request(sandbox.secrets["prod-db"], sandbox["rita"].ss_id, comment="late change")
    cycle(relay)
    now[0] = 103.0                                      # Retry-After has passed: 503 this time
    wait_until(lambda: len(sandbox.slack.calls_to("views.publish")) >= 2, 10, "the first retry")
    wait_until(lambda: retries.pending(), 10, "the 503 rescheduled")
    now[0] = 10_000.0
    wait_until(lambda: sandbox.slack.home_view(alice) is not None, 10, "the Home tab published")
    # Validating: one successful publish, of the newest view (it lists the request made meanwhile).
    ok = [c for c in sandbox.slack.calls_to("views.publish") if c.ok]
    assert len(ok) == 1 and sandbox.slack.count_429() == 1
    assert "late change" in json.dumps(sandbox.slack.home_view(alice))
    assert retries.pending() == {}
