"""Readiness from memory, and the optional admin listener: /readyz never writes to SQLite and
answers at once while another connection holds the database; with `http.admin_port` set,
/metrics and the detailed /readyz live there only and the public /readyz names no causes."""

from __future__ import annotations

import sqlite3
import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from waiting import wait_until


@pytest.fixture
def start(sandbox, tmp_path):
    from relay.runtime import Relay
    made = []

    def build(**overrides):
        relay = Relay(sandbox.config(str(tmp_path / f"ready{len(made)}.db"), POLL_INTERVAL_SECONDS="1",
                                     **overrides)).start()
        made.append(relay)
        return relay
    yield build
    sandbox.slack.clear_faults()
    for relay in made:
        relay.stop()


def get(port: int, path: str, timeout: float = 5) -> requests.Response:
    return requests.get(f"http://127.0.0.1:{port}{path}", timeout=timeout)


def test_readyz_answers_from_memory_while_the_database_is_locked(start):
    # Test setup: a ready relay; another connection takes the database's write lock.
    relay = start()
    wait_until(lambda: get(relay.port, "/readyz").status_code == 200, 15, "first ready")
    holder = sqlite3.connect(relay.cfg.storage.path, timeout=1, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        # Test execution: /readyz, many times, while the lock is held.
        answers = []
        for _ in range(20):
            t0 = time.monotonic()
            r = get(relay.port, "/readyz", timeout=3)
            answers.append((r.status_code, time.monotonic() - t0))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    # Validating: each answered within a second, and nothing was written for them.
    assert all(code == 200 for code, _ in answers), answers
    assert max(took for _, took in answers) < 1.0, answers
    assert relay.db.execute("SELECT value FROM relay_state WHERE key = 'readyz_probe'").fetchone() is None


def test_admin_listener_has_metrics_and_causes_the_public_one_only_ready_or_not(start, sandbox):
    relay = start(HTTP_ADMIN_PORT="0")           # any free port
    assert relay.admin_port and relay.admin_port != relay.port
    wait_until(lambda: get(relay.port, "/readyz").status_code == 200, 15, "first ready")
    # Public listener: status only, no metrics.
    assert get(relay.port, "/readyz").json() == {"ready": True}
    assert get(relay.port, "/metrics").status_code == 404
    # Admin listener: the detailed readiness and the metrics.
    assert get(relay.admin_port, "/readyz").json() == {"ready": True, "problems": []}
    metrics = get(relay.admin_port, "/metrics")
    assert metrics.status_code == 200
    assert any(f.name == "ssrelay_poll_duration_seconds" for f in text_string_to_metric_families(metrics.text))
    # Slack refuses the token: the public answer says "not ready" and nothing else.
    sandbox.slack.fail("auth.test", error="invalid_auth", times=None)
    relay._slack_ok = (0.0, True, "")            # forget the cached answer (kept 30 s)
    [public] = wait_until(lambda: [r for r in [get(relay.port, "/readyz")] if r.status_code == 503], 10, "503")
    assert public.json() == {"ready": False}
    assert "invalid_auth" not in public.text
    detailed = get(relay.admin_port, "/readyz")
    assert detailed.status_code == 503
    assert detailed.json()["problems"] == ["Slack not reachable: slack auth.test: invalid_auth"]


def test_without_an_admin_port_everything_stays_on_the_main_listener(start):
    relay = start()
    assert relay.admin_port == 0
    wait_until(lambda: get(relay.port, "/readyz").status_code == 200, 15, "first ready")
    assert get(relay.port, "/readyz").json() == {"ready": True, "problems": []}
    assert get(relay.port, "/metrics").status_code == 200


def test_an_admin_host_with_several_addresses_listens_on_the_first(start, monkeypatch):
    import socket
    real = socket.getaddrinfo

    # Test setup: "localhost" as many containers resolve it, to two addresses (as ::1 and
    # 127.0.0.1; here two loopback IPv4 addresses, which every Linux machine has).
    def two_addresses(host, *args, **kw):
        if host == "admin.test":
            return real("127.0.0.1", *args, **kw) + real("127.0.0.2", *args, **kw)
        return real(host, *args, **kw)
    monkeypatch.setattr(socket, "getaddrinfo", two_addresses)
    # Test execution: the relay starts with its admin listener on that name.
    relay = start(HTTP_ADMIN_HOST="admin.test", HTTP_ADMIN_PORT="0")
    # Validating: it serves /metrics there, and the public listener still answers.
    assert get(relay.admin_port, "/metrics").status_code == 200
    assert get(relay.port, "/healthz").status_code == 200
