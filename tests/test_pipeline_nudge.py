"""The Secret Server stand-in acting as SS's Event Pipeline would: when an access request is
created or decided, a "Run Script" task POSTs to the relay's `/ss/nudge` with the bearer token.
A real running relay whose schedule would not poll again for an hour: the approvers and the
requester hear within seconds only because of the nudges. Requests are made and decided over
SS's REST API (requests), as people would in SS's web UI."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta

import pytest
import requests

from nudged import start_hourly_relay

from relay.sandbox.pipeline import NudgePipeline, Trigger
from relay.sandbox.scenario import RELAY_USERNAME

TOKEN = "nudge-pipeline-0123456789abcdef"
LISTING = r"/api/v1/secret-access-requests$"
QUICK = 10.0        # "well before the poll interval" (an hour here)


@pytest.fixture
def relay(sandbox, tmp_path):
    """A running relay whose schedule would not poll again for an hour after its first poll."""
    r = start_hourly_relay(sandbox, str(tmp_path / "pipeline.db"), TOKEN)
    yield r
    r.stop()


def nudge_url(relay) -> str:
    return f"http://127.0.0.1:{relay.port}/ss/nudge"


class Person:
    """Someone using SS's REST API with their own token, as SS's web UI would for them."""

    def __init__(self, sandbox, name: str):
        who = sandbox[name]
        answer = requests.post(f"{sandbox.ss.base_url}/oauth2/token", timeout=5, data={
            "grant_type": "password", "username": name, "password": who.password})
        answer.raise_for_status()
        self.base = sandbox.ss.base_url
        self.headers = {"Authorization": f"Bearer {answer.json()['access_token']}"}

    def request_access(self, secret_id: int, comment: str) -> requests.Response:
        return requests.post(f"{self.base}/api/v1/secret-access-requests", headers=self.headers, timeout=5,
                             json={"secretId": secret_id, "requestComment": comment})

    def approve(self, request_id: int, comment: str) -> requests.Response:
        until = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        return requests.put(f"{self.base}/api/v1/secret-access-requests", headers=self.headers, timeout=5,
                            json={"secretAccessRequestId": request_id, "status": "Approved",
                                  "responseComment": comment, "expirationDate": until})


def asked_about(rid: int):
    return lambda c: c.ok and f"'value': '{rid}'" in repr(c.args.get("blocks"))


def relay_listings(sandbox) -> int:
    return len([c for c in sandbox.ss.calls_to(LISTING, "GET") if c.user == RELAY_USERNAME])


def test_a_new_request_reaches_its_approvers_and_the_decision_its_requester_within_seconds(sandbox, relay):
    # Test setup: SS's pipeline calls the relay's nudge URL on access-request events
    with NudgePipeline(nudge_url(relay), TOKEN).attach(sandbox.ss) as pipeline:
        rita, alice = Person(sandbox, "rita"), Person(sandbox, "alice")

        # Test execution: Rita asks for prod-db in SS
        asked = rita.request_access(sandbox.secrets["prod-db"], "deploy hotfix")
        assert asked.status_code == 200
        rid = asked.json()["secretAccessRequestId"]

        # Validating: Alice and Bob are asked in Slack long before the next scheduled poll
        sandbox.slack.wait_for("chat.postEphemeral", predicate=asked_about(rid), count=2, timeout=QUICK)
        first = pipeline.wait_for_runs(1)[0]
        assert (first.trigger, first.request_id, first.status) == (Trigger.ACCESS_REQUEST, rid, 200)
        assert relay.nudger.polls >= 1

        # Test execution: Alice approves in SS's web UI
        assert alice.approve(rid, "go ahead").status_code == 200

        # Validating: Rita hears it, again because SS nudged
        sandbox.slack.wait_for("chat.postMessage", timeout=QUICK, predicate=lambda c: c.ok and c.args.get(
            "channel") == sandbox["rita"].slack_id and "go ahead" in repr(c.args.get("blocks")))
        runs = pipeline.wait_for_runs(2)
        assert [(r.trigger, r.request_id, r.status) for r in runs] == [
            (Trigger.ACCESS_REQUEST, rid, 200), (Trigger.ACCESS_APPROVED, rid, 200)]


def test_a_pipeline_with_a_wrong_token_makes_no_poll(sandbox, relay):
    before = relay_listings(sandbox)
    with NudgePipeline(nudge_url(relay), "not-the-token").attach(sandbox.ss) as pipeline:
        asked = Person(sandbox, "rita").request_access(sandbox.secrets["prod-db"], "wrong token")
        assert asked.status_code == 200
        rid = asked.json()["secretAccessRequestId"]

        run = pipeline.wait_for_runs(1)[0]
        assert (run.trigger, run.request_id, run.status) == (Trigger.ACCESS_REQUEST, rid, 401)
    assert relay.nudger.polls == 0 and relay.nudger.idle.is_set()
    assert relay_listings(sandbox) == before
    assert not [c for c in sandbox.slack.calls if asked_about(rid)(c)]


def test_a_pipeline_that_cannot_reach_the_relay_does_not_change_what_ss_answers(sandbox):
    # Test setup: the nudge URL accepts connections but never answers (a relay that hangs)
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    url = f"http://127.0.0.1:{silent.getsockname()[1]}/ss/nudge"
    try:
        with NudgePipeline(url, TOKEN, timeout=2.0).attach(sandbox.ss) as pipeline:
            # Test execution: Rita asks for access in SS
            asked = Person(sandbox, "rita").request_access(sandbox.secrets["prod-db"], "while the relay hangs")

            # Validating: SS answered at once, while the pipeline's call was still waiting
            assert asked.status_code == 200
            assert asked.json()["status"] == "Pending"
            assert pipeline.runs == []
            run = pipeline.wait_for_runs(1)[0]
            assert (run.request_id, run.status, run.error) == (asked.json()["secretAccessRequestId"], None, "ReadTimeout")
    finally:
        silent.close()
    assert sandbox.ss.get_request(asked.json()["secretAccessRequestId"])["status"] == "Pending"
