"""The worker pools behind the 3-second rule: a listener acks at once and hands its work (SS
calls, Slack updates) to one of these, so a slow SS cannot delay an ack.

Two pools: `submit` for ordinary work, `submit_fast` for modal work bound to a trigger
(views.open must come within 3 s of the click, so it never queues behind SS calls). Work that
fails is logged in one line when SS or Slack said no, with a traceback otherwise.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from ..errors import RelayError

log = logging.getLogger(__name__)


class WorkerPool:
    def __init__(self, *, workers: int = 16, fast_workers: int = 4):
        self._idle = threading.Condition()
        self._in_flight = 0
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ssrelay-click")
        self.fast = ThreadPoolExecutor(max_workers=fast_workers, thread_name_prefix="ssrelay-modal")

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future | None:
        """Run fn(*args, **kwargs) on the worker pool; None when the relay is stopping."""
        return self._run_on(self.pool, fn, args, kwargs)

    def submit_fast(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future | None:
        """Modal work bound to a trigger (views.open within 3 s): its own small pool, logged
        like any other work."""
        return self._run_on(self.fast, fn, args, kwargs)

    def _run_on(self, pool: ThreadPoolExecutor, fn: Callable[..., Any], args: tuple, kwargs: dict) -> Future | None:
        def run() -> None:
            try:
                fn(*args, **kwargs)
            except RelayError as exc:   # SS or Slack said no (e.g. to an unknown user): one line
                log.warning("interaction work failed", extra={"work": getattr(fn, "__name__", "?"),
                                                              "error": str(exc)[:200]})
            except Exception:
                log.exception("interaction work failed", extra={"work": getattr(fn, "__name__", "?")})
        with self._idle:
            self._in_flight += 1
        try:
            future = pool.submit(run)
        except RuntimeError:   # shutting down
            self._done()
            log.warning("interaction dropped: the relay is stopping")
            return None
        # Counted out once it has run, or once a stop cancelled it before it could.
        future.add_done_callback(lambda _: self._done())
        return future

    def _done(self) -> None:
        with self._idle:
            self._in_flight -= 1
            self._idle.notify_all()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until no submitted work is queued or running (tests, orderly stops)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._in_flight == 0, timeout)

    def shutdown(self) -> None:
        """Stop both pools; queued work is cancelled, running work finishes."""
        self.fast.shutdown(wait=True, cancel_futures=True)
        self.pool.shutdown(wait=True, cancel_futures=True)
