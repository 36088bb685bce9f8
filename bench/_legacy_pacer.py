"""The pacer's previous spacing rule, for bench_delivery's baseline only: the next call leaves
one interval after the moment the previous one is guessed to have reached Slack (its answer
time minus the shortest of the last 16 round trips). `python bench/_legacy_pacer.py ARGS`
runs the relay (`python -m relay ARGS`) with that rule in place."""

from __future__ import annotations

import runpy
import sys
from collections import deque

from relay.slack import api

RTT_WINDOW = 16
_rtts: dict[str, deque[float]] = {}


def answered(self: api.Pacer, method: str, sent_at: float) -> None:
    if method in api.UNPACED:
        return
    now = self._clock()
    with self._lock:
        recent = _rtts.setdefault(method, deque(maxlen=RTT_WINDOW))
        recent.append(now - sent_at)
        self._next[method] = max(self._next.get(method, 0.0), now - min(recent) + self.interval(method))
    self._method_lock(method).release()


if __name__ == "__main__":
    api.Pacer.answered = answered  # type: ignore[method-assign]
    sys.argv = ["relay", *sys.argv[1:]]
    runpy.run_module("relay", run_name="__main__", alter_sys=True)
