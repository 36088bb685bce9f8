"""Shared fixtures: the sandbox (both stand-ins, real HTTP) and a relay wired to it."""

from __future__ import annotations

import pytest

from relay.sandbox import scenario


@pytest.fixture
def sandbox():
    sb = scenario.start()
    try:
        yield sb
    finally:
        sb.stop()


@pytest.fixture
def make_relay(sandbox, tmp_path):
    """Build a Relay against the sandbox without starting its threads: stories drive
    `cycle()` themselves, so every step is deterministic."""
    from relay.runtime import Relay
    made = []

    def build(**overrides) -> Relay:
        cfg = sandbox.config(str(tmp_path / f"relay{len(made)}.db"), **overrides)
        relay = Relay(cfg)
        made.append(relay)
        return relay

    yield build
    for r in made:
        r.stop()
        r.ss.close()
        r.db.close()    # every thread's SQLite connection: a long suite must not run out of descriptors


def cycle(relay, *, expect_ok: bool = True):
    """One poll, then deliver everything that is due."""
    result = relay.poller.poll_once()
    assert result.ok == expect_ok, result.error
    while relay.delivery.deliver_due():
        pass
    return result
