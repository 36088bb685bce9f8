"""Polling with a deadline: the one way tests wait for something that has no event to wait on
(a row in another process's database, a delivery thread's progress)."""

from __future__ import annotations

import threading
import time

POLL_INTERVAL = 0.02


def wait_until(check, timeout: float = 10.0, what: str = "condition"):
    """Return check()'s first truthy value; AssertionError naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    tick = threading.Event()          # never set: wait() is the pause between two looks
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        tick.wait(POLL_INTERVAL)
