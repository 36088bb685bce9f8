"""`POST /ss/nudge`: a caller holding the nudge token makes the relay poll now; a burst of
nudges makes one poll; anyone else gets 401 and causes nothing. Through the relay's real HTTP
server (waitress) with `requests`, against the Secret Server and Slack stand-ins."""

from __future__ import annotations


import pytest
import requests
from nudged import start_hourly_relay
from waiting import wait_until

from relay.nudge import bearer_matches

TOKEN = "nudge-0123456789abcdef"
LISTING = r"/api/v1/secret-access-requests$"


def pending_listings(sb) -> int:
    return len([c for c in sb.ss.calls_to(LISTING, "GET") if c.query.get("filter.status") == "Pending"])


@pytest.fixture
def relay(sandbox, tmp_path):
    """A running relay whose schedule would not poll again for an hour after its first poll."""
    r = start_hourly_relay(sandbox, str(tmp_path / "nudge.db"), TOKEN)
    yield r
    r.stop()


def nudge(relay, headers=None, method="POST") -> requests.Response:
    return requests.request(method, f"http://127.0.0.1:{relay.port}/ss/nudge", headers=headers or {}, timeout=5)


def test_a_burst_of_nudges_makes_one_poll_that_asks_the_reviewers(sandbox, relay):
    before = pending_listings(sandbox)
    rid = sandbox.ss.create_request(sandbox.secrets["prod-db"], sandbox["rita"].ss_id, comment="now please")
    relay.nudger.debounce = 2.0           # the whole burst lands well inside the window
    answers = [nudge(relay, {"Authorization": f"Bearer {TOKEN}"}) for _ in range(5)]
    assert [a.status_code for a in answers] == [200] * 5
    wait_until(lambda: relay.nudger.polls >= 1 and relay.nudger.idle.is_set(), 15, "the nudged poll")
    assert relay.nudger.polls == 1
    assert pending_listings(sandbox) == before + 1
    sandbox.slack.wait_for("chat.postEphemeral", count=2, timeout=10,
                           predicate=lambda c: f"'value': '{rid}'" in repr(c.args.get("blocks")))


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong-token"},
                                     {"Authorization": f"Basic {TOKEN}"}, {"Authorization": "Bearer "}])
def test_a_missing_or_wrong_token_gets_401_and_no_poll(sandbox, relay, headers):
    before = pending_listings(sandbox)
    answer = nudge(relay, headers)
    assert answer.status_code == 401
    assert answer.headers.get("WWW-Authenticate", "").startswith("Bearer")
    assert TOKEN not in answer.text
    assert relay.nudger.idle.is_set() and relay.nudger.polls == 0
    assert pending_listings(sandbox) == before


def test_only_post_nudges(relay):
    assert nudge(relay, {"Authorization": f"Bearer {TOKEN}"}, method="GET").status_code == 405
    assert relay.nudger.polls == 0 and relay.nudger.idle.is_set()


def test_without_a_token_there_is_no_endpoint(sandbox, make_relay):
    r = make_relay()
    assert r.nudger is None
    assert ("POST", "/ss/nudge") not in r.web.routes


def test_bearer_comparison():
    assert bearer_matches(f"Bearer {TOKEN}", TOKEN)
    assert bearer_matches(f"bearer  {TOKEN} ", TOKEN)
    assert not bearer_matches(f"Bearer {TOKEN}x", TOKEN)
    assert not bearer_matches(f"Bearer {TOKEN[:-1]}", TOKEN)
    assert not bearer_matches("Bearer ", "")
    assert not bearer_matches("", TOKEN)
