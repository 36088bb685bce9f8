"""Log lines: an exception nobody caught in a thread still becomes one JSON log record."""

from __future__ import annotations

import io
import json
import logging
import sys
import threading

from relay import logs


def test_an_uncaught_exception_in_a_thread_is_one_json_record_naming_the_thread():
    stream = io.StringIO()
    saved_thread_hook, saved_main_hook = threading.excepthook, sys.excepthook
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    try:
        logs.setup(fmt="json", level="INFO", stream=stream)

        def explode() -> None:
            raise RuntimeError("boom in a worker")

        worker = threading.Thread(target=explode, name="delivery-worker")
        worker.start()
        worker.join(timeout=5)
    finally:
        threading.excepthook, sys.excepthook = saved_thread_hook, saved_main_hook
        for h in list(root.handlers):
            if h not in saved_handlers:
                root.removeHandler(h)
        root.setLevel(saved_level)

    records = [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    crashes = [r for r in records if r.get("msg", r.get("message")) == "uncaught exception in a thread"]
    assert len(crashes) == 1, records
    assert crashes[0]["thread_name"] == "delivery-worker"
    assert "boom in a worker" in json.dumps(crashes[0])
