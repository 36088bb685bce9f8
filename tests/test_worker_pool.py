"""The worker pools behind the 3-second rule: work handed over is counted until it has run or
was cancelled by a stop, so `wait_idle` tells the truth after a stop too."""

from __future__ import annotations

import threading

from waiting import wait_until

from relay.slack.workers import WorkerPool


def test_work_cancelled_by_a_stop_is_no_longer_counted():
    # Test setup: one worker, busy until released; three more pieces of work queue behind it.
    pool = WorkerPool(workers=1, fast_workers=1)
    started, release = threading.Event(), threading.Event()

    def busy() -> None:
        started.set()
        release.wait(10)
    pool.submit(busy)
    assert started.wait(10)
    queued = [pool.submit(lambda: None) for _ in range(3)]
    # Test execution: the relay stops (queued work is cancelled, running work finishes).
    stopping = threading.Thread(target=pool.shutdown)
    stopping.start()
    wait_until(lambda: all(f is not None and f.cancelled() for f in queued), 10, "the queued work cancelled")
    release.set()
    stopping.join(10)
    # Validating: nothing is counted as in flight any more.
    assert pool.wait_idle(timeout=2)
