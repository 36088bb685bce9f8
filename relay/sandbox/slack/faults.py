"""Fault injection: failing, hanging, dropped or rate-limited calls, and a revoked token."""

from __future__ import annotations

import math
import threading
from collections import deque

from .state import StandInState


class _Fault:
    def __init__(self, *, error, status, retry_after, times, hang, delay, reset_after_accept=False,
                 answer_delay=None):
        self.error = error
        self.status = status
        self.retry_after = retry_after
        self.remaining = times  # None: forever
        self.hang = hang
        self.delay = delay
        self.reset_after_accept = reset_after_accept
        self.answer_delay = answer_delay


class DropConnection(Exception):
    """Raised to the HTTP handler: close the connection without writing an answer."""


class _Bucket:
    def __init__(self, per_minute: float, burst: float | None, now: float):
        self.rate = per_minute / 60.0
        self.capacity = float(burst) if burst is not None else max(1.0, self.rate)
        self.tokens = self.capacity
        self.updated = now

    def take(self, now: float) -> float:
        """Take one token; return 0 on success, else seconds until one is available."""
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(self.capacity, self.tokens + elapsed * self.rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        if self.rate <= 0:
            return 60.0
        return (1.0 - self.tokens) / self.rate


class FaultInjection(StandInState):
    """The stand-in's public fault API (``fail``, ``set_rate_limit``, ``revoke_token``...) and how a
    queued fault is taken and played out by a call."""

    def revoke_token(self) -> None:
        """From now on the bot token answers ``token_revoked`` (a token-expiry fault)."""
        with self._lock:
            self._token_revoked = True

    def set_rate_limit(self, method: str, per_minute: float, burst: float | None = None) -> None:
        """Token bucket for ``method``: capacity ``burst`` (default max(1, per_minute/60)),
        refilled at per_minute/60 tokens a second. Over budget: 429 + Retry-After."""
        with self._lock:
            self._buckets[method] = _Bucket(per_minute, burst, self.clock())

    def clear_rate_limit(self, method: str) -> None:
        with self._lock:
            self._buckets.pop(method, None)

    def fail(
        self,
        method: str,
        *,
        error: str | None = None,
        status: int | None = None,
        retry_after: int | None = None,
        times: int | None = 1,
        hang: threading.Event | None = None,
        delay: float | None = None,
        reset_after_accept: bool = False,
        answer_delay: float | None = None,
    ) -> None:
        """Inject a fault into the next ``times`` calls of ``method`` (None: every call).

        - ``reset_after_accept``: the call is served normally (a message is posted), then the
          connection is closed without an answer: the client cannot know it took effect.
        - ``answer_delay``: the call is served normally at once, the answer is written that many
          seconds later (a slow answer: the effect exists before the client hears of it).

        - ``error``: HTTP 200 ``{"ok": false, "error": error}`` (or with ``status``).
        - ``status``: that HTTP status, body ``{"ok": false, "error": error or "internal_error"}``.
        - ``retry_after`` (or ``status=429``): 429 ``ratelimited`` with ``Retry-After``.
        - ``hang``: the call is recorded, then waits until the Event is set (or the
          stand-in stops); ``delay``: waits that many seconds. Without an outcome
          above, the call then proceeds normally (the effect happens late).
        """
        if times is not None and times < 1:
            raise ValueError("times must be >= 1 or None")
        with self._lock:
            self._faults.setdefault(method, deque()).append(
                _Fault(error=error, status=status, retry_after=retry_after, times=times, hang=hang, delay=delay,
                       reset_after_accept=reset_after_accept, answer_delay=answer_delay)
            )

    def clear_faults(self) -> None:
        """Forget injected faults (recorded calls and state stay)."""
        with self._lock:
            self._faults.clear()

    def _take_fault(self, method: str) -> _Fault | None:
        with self._lock:
            q = self._faults.get(method)
            if not q:
                return None
            fault = q[0]
            if fault.remaining is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    q.popleft()
            return fault

    def _wait_fault(self, fault: _Fault) -> None:
        if fault.hang is not None:
            while not fault.hang.wait(0.05):
                if self._stopping.is_set():
                    break
        if fault.delay:
            self._stopping.wait(fault.delay)

    def _fault_outcome(self, fault: _Fault) -> tuple[int, dict, dict] | None:
        if fault.status == 429 or fault.retry_after is not None:
            ra = max(1, int(math.ceil(fault.retry_after or 1)))
            return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(ra)}
        if fault.status is not None:
            return fault.status, {"ok": False, "error": fault.error or "internal_error"}, {}
        if fault.error is not None:
            return 200, {"ok": False, "error": fault.error}, {}
        return None
