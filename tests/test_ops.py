"""Operations: /healthz, /readyz, /metrics and the logs, on a really running relay (HTTP on a
free port, polling every second) against the stand-ins. Waits use deadlines, never sleeps
of a fixed length."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from waiting import wait_until
from relay.sandbox import scenario
from relay.sandbox.slack_client import SlackClient

ROOT = Path(__file__).parent.parent

REQUIRED_METRICS = {
    "ssrelay_poll_duration_seconds": "histogram",
    "ssrelay_poll_failures": "counter",
    "ssrelay_pending_requests": "gauge",
    "ssrelay_outbox_rows": "gauge",
    "ssrelay_deliveries": "counter",
    "ssrelay_slack_rate_limited": "counter",
    "ssrelay_secret_server_errors": "counter",
    "ssrelay_interaction_ack_seconds": "histogram",
    "ssrelay_linked_users": "gauge",
    "ssrelay_unmapped_reviewers": "gauge",
}




@pytest.fixture
def running(sandbox, tmp_path):
    """The relay as `ssrelay run` builds it, started, polling every second."""
    from relay.runtime import Relay
    relay = Relay(sandbox.config(str(tmp_path / "ops.db"), POLL_INTERVAL_SECONDS="1")).start()
    relay.url = f"http://127.0.0.1:{relay.port}"
    yield relay
    sandbox.ss.clear_faults()
    relay.stop()
    relay.ss.close()


def get(relay, path: str) -> requests.Response:
    return requests.get(relay.url + path, timeout=10)


def samples(relay) -> dict[tuple[str, tuple], float]:
    text = get(relay, "/metrics").text
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(found: dict, name: str, **labels) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


# ---------------------------------------------------------------------- health and readiness
def test_healthz_answers_while_running(running):
    r = get(running, "/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


def test_readyz_goes_503_when_secret_server_is_down_three_intervals_and_recovers(running, sandbox):
    # Setup: the relay polls every second and becomes ready.
    wait_until(lambda: get(running, "/readyz").status_code == 200, 15, "first ready")
    assert get(running, "/readyz").json() == {"ready": True, "problems": []}
    # Secret Server goes down (503 on every listing).
    sandbox.ss.fail(r"/api/v1/secret-access-requests$", status=503, times=10**6)
    down_at = time.monotonic()
    [r] = wait_until(lambda: [r for r in [get(running, "/readyz")] if r.status_code == 503], 20, "readyz 503")
    # Not before three intervals without a successful poll.
    assert time.monotonic() - down_at >= 2.0
    body = r.json()
    assert body["ready"] is False
    [problem] = body["problems"]
    assert re.match(r"last successful poll was \d+s ago \(limit 3s\)", problem), problem
    # Secret Server is back: the next poll succeeds and the relay is ready again.
    sandbox.ss.clear_faults()
    wait_until(lambda: get(running, "/readyz").status_code == 200, 40, "readyz back to 200")
    assert get(running, "/readyz").json() == {"ready": True, "problems": []}


def test_readyz_names_a_database_that_is_not_writable(running, monkeypatch):
    import sqlite3
    wait_until(lambda: get(running, "/readyz").status_code == 200, 15, "first ready")

    def refuse():
        raise sqlite3.OperationalError("attempt to write a readonly database")
    monkeypatch.setattr(running.delivery.outbox, "heartbeat", refuse)   # the heartbeat is the probe
    [r] = wait_until(lambda: [r for r in [get(running, "/readyz")] if r.status_code == 503], 10, "readyz 503")
    [problem] = r.json()["problems"]
    assert problem.startswith("database volume fails (attempt to write a readonly database; "), problem


def test_readyz_names_slack_when_it_is_unreachable(running, sandbox):
    wait_until(lambda: get(running, "/readyz").status_code == 200, 15, "first ready")
    sandbox.slack.fail("auth.test", error="invalid_auth", times=None)
    running._slack_ok = (0.0, True, "")           # forget the cached answer (kept 30 s)
    [r] = wait_until(lambda: [r for r in [get(running, "/readyz")] if r.status_code == 503], 10, "readyz 503")
    assert r.json()["problems"] == ["Slack not reachable: slack auth.test: invalid_auth"]


# ---------------------------------------------------------------------- metrics
def test_metrics_parse_and_move_when_things_happen(running, sandbox):
    text = get(running, "/metrics").text
    families = {f.name: f.type for f in text_string_to_metric_families(text)}
    for name, kind in REQUIRED_METRICS.items():
        assert families.get(name) == kind, f"{name} ({kind}) missing from /metrics: {sorted(families)}"

    before = samples(running)
    polls_before = value(before, "ssrelay_poll_duration_seconds_count")
    # A request appears: the relay polls, owes two approval messages (and Rita's confirmation),
    # delivers them.
    sandbox.ss.create_request(sandbox.secrets["prod-db"], sandbox["rita"].ss_id, comment="metrics")
    sandbox.slack.wait_for("chat.postEphemeral", count=2, timeout=15)
    after = wait_until(lambda: (lambda s: s if value(s, "ssrelay_outbox_rows", state="sent") >= 3 else None)(
        samples(running)), 15, "outbox rows sent")
    assert value(after, "ssrelay_poll_duration_seconds_count") > polls_before
    assert value(after, "ssrelay_pending_requests") == 1
    assert value(after, "ssrelay_deliveries_total", method="chat.postEphemeral", result="ok") == 2
    assert value(after, "ssrelay_outbox_rows", state="pending") == 0

    # A Secret Server failure is counted by kind (an HTML page instead of JSON abandons the poll).
    sandbox.ss.fail(r"/api/v1/secret-access-requests$", html=True, times=1)
    failed = wait_until(lambda: (lambda s: s if value(s, "ssrelay_poll_failures_total",
                                                      reason="SecretServerBadResponse") else None)(samples(running)),
                        15, "a counted poll failure")
    assert value(failed, "ssrelay_secret_server_errors_total", kind="SecretServerBadResponse") >= 1

    # A Slack request (here unsigned: refused) is answered and its ack time observed.
    acks = value(failed, "ssrelay_interaction_ack_seconds_count")
    assert requests.post(running.url + "/slack/events", data=b"payload=%7B%7D", timeout=10).status_code == 401
    assert value(samples(running), "ssrelay_interaction_ack_seconds_count") == acks + 1


def test_metrics_count_linked_users_and_rate_limits(running, sandbox):
    wait_until(lambda: get(running, "/readyz").status_code == 200, 15, "first ready")
    SlackClient(sandbox, running.url).sign_in(sandbox["alice"])
    assert value(samples(running), "ssrelay_linked_users") == 1
    sandbox.slack.fail("chat.postEphemeral", status=429, retry_after=1, times=1)
    sandbox.ss.create_request(sandbox.secrets["wiki-admin"], sandbox["rita"].ss_id)
    wait_until(lambda: value(samples(running), "ssrelay_slack_rate_limited_total", method="chat.postEphemeral"),
               15, "a counted 429")


# ---------------------------------------------------------------------- logs
def test_logs_are_json_lines_without_any_secret(sandbox, tmp_path):
    """`ssrelay run` as a process: every stderr line is a JSON object, and no password, token,
    signing secret, encryption key or secret field value appears anywhere in it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SSRELAY_") and k != "GLIBC_TUNABLES"}
    env.update(sandbox.environ(str(tmp_path / "logs.db")))
    env["SSRELAY_POLL_INTERVAL_SECONDS"] = "1"
    stderr = open(tmp_path / "stderr.log", "w+")
    proc = subprocess.Popen([sys.executable, "-m", "relay", "--log-level", "DEBUG", "run"], env=env,
                            stdout=subprocess.DEVNULL, stderr=stderr, cwd=tmp_path)
    try:
        def port():
            for line in (tmp_path / "stderr.log").read_text().splitlines():
                if '"http_port"' in line:
                    return json.loads(line)["http_port"]
            assert proc.poll() is None, (tmp_path / "stderr.log").read_text()[-3000:]
        relay_url = f"http://127.0.0.1:{wait_until(port, 30, 'the start-up line')}"
        # the process re-executed itself with glibc's per-thread malloc caches off (relay.memory)
        assert b"GLIBC_TUNABLES=glibc.malloc.tcache_count=0" in Path(f"/proc/{proc.pid}/environ").read_bytes().split(b"\0")
        slack = SlackClient(sandbox, relay_url)
        # Things worth logging: sign-ins (SS tokens issued), clicks, a retried SS outage, a Slack 429.
        for who in ("alice", "bob"):
            slack.sign_in(sandbox[who])
        sandbox.ss.fail(r"/api/v1/secret-access-requests$", status=500, times=2)
        sandbox.slack.fail("chat.postEphemeral", status=429, retry_after=1, times=1)
        rid = sandbox.ss.create_request(sandbox.secrets["prod-db"], sandbox["rita"].ss_id, comment="logs")
        card = wait_until(lambda: [m for m in sandbox.slack.ephemerals(sandbox["alice"].slack_id)
                                   if f'"value": "{rid}"' in json.dumps(m)], 30, "alice's approval message")[-1]
        payload = slack.click_message(sandbox["alice"].slack_id, "approve", str(rid), f"request:{rid}", card,
                                      ephemeral=True)
        assert slack.send_interaction(payload).status_code == 200
        wait_until(lambda: sandbox.ss.get_request(rid)["status"] == "Approved", 30, "the approval in SS")
        wait_until(lambda: any("approved" in (m.get("text") or "").lower()
                               for m in sandbox.slack.messages(sandbox["rita"].slack_id)), 30, "rita is told")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    text = (tmp_path / "stderr.log").read_text()
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) > 10, text
    for line in lines:
        record = json.loads(line)               # every line is one JSON object
        assert {"ts", "level", "logger", "msg"} <= set(record), line
    assert any(json.loads(line)["level"] == "warning" for line in lines), "the outage was logged"
    secrets = {scenario.RELAY_PASSWORD, scenario.SIGNING_SECRET, scenario.BOT_TOKEN, scenario.APP_TOKEN,
               sandbox.encryption_key, *(p.password for p in sandbox.people.values()),
               *sandbox.ss.issued_tokens(), *sandbox.ss.secret_field_values()}
    assert len(sandbox.ss.issued_tokens()) >= 3, "the relay and both people were issued SS tokens"
    for secret in secrets:
        assert secret not in text, f"a secret ({secret[:4]}...) reached the logs"
