"""A running relay for the nudge stories: it polls once at start, then not for an hour, so any
later poll is one a nudge asked for."""

from __future__ import annotations

import threading

from relay.runtime import Relay


def start_hourly_relay(sandbox, db_path: str, token: str) -> Relay:
    r = Relay(sandbox.config(db_path, POLL_INTERVAL_SECONDS="3600", NUDGE_TOKEN=token))
    polled = threading.Event()

    def on_poll(result) -> None:
        if result.ok:
            polled.set()
    r.poller.listeners.append(on_poll)
    r.start()
    assert polled.wait(10), "first scheduled poll"
    return r
