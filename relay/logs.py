"""Logging: one JSON object per line (or readable text), secrets redacted on the way out.

Redaction is by construction: every record passes a filter that masks the configured secret
values and anything shaped like a Slack token or a bearer header, whatever the caller wrote.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
from datetime import datetime, timezone

_TOKEN_SHAPES = re.compile(r"(xox[abposr]-[A-Za-z0-9-]+|xapp-[A-Za-z0-9-]+|(?i:bearer)\s+[A-Za-z0-9._~+/=-]+)")
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}
MASK = "********"


class Redactor(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self.values: set[str] = set()

    def add(self, *values: str) -> None:
        self.values.update(v for v in values if v and len(v) >= 4)

    def scrub(self, text: str) -> str:
        for v in sorted(self.values, key=len, reverse=True):
            text = text.replace(v, MASK)
        return _TOKEN_SHAPES.sub(MASK, text)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.scrub(record.getMessage())
        record.args = ()
        for k, v in list(vars(record).items()):
            if k not in _STANDARD and isinstance(v, str):
                setattr(record, k, self.scrub(v))
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = self.scrub(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


REDACTOR = Redactor()


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, str | int | float | bool | None] = {"ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
               "level": record.levelname.lower(), "logger": record.name, "msg": record.getMessage()}
        for k, v in vars(record).items():
            if k not in _STANDARD and not k.startswith("_"):
                out[k] = v if isinstance(v, (int, float, bool, type(None))) else str(v)
        if record.exc_text:
            out["exc"] = record.exc_text
        return json.dumps(out, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(f"{k}={v}" for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_"))
        line = f"{datetime.fromtimestamp(record.created, timezone.utc):%H:%M:%S} {record.levelname:<7} {record.name}: {record.getMessage()}"
        if extras:
            line += f"  [{extras}]"
        if record.exc_text:
            line += "\n" + record.exc_text
        return line


def setup(fmt: str = "json", level: str = "INFO", stream=None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(REDACTOR)
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_ssrelay", False):
            root.removeHandler(h)
    handler._ssrelay = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    _route_uncaught_exceptions()
    for noisy in ("slack_sdk", "slack_bolt", "urllib3", "apscheduler", "waitress"):
        logging.getLogger(noisy).setLevel(max(logging.INFO, logging.getLogger(noisy).level))
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


def _route_uncaught_exceptions() -> None:
    """An exception nobody caught (in any thread) becomes one redacted log record, not a raw
    traceback on stderr: every line stays JSON and passes the redactor."""
    crash = logging.getLogger("relay.crash")

    def thread_hook(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit:
            return
        name = args.thread.name if args.thread else "?"
        # Without an exception value there is no traceback to format (the redactor would drop it).
        exc_info = ((args.exc_type, args.exc_value, args.exc_traceback)
                    if args.exc_value is not None else None)
        crash.error("uncaught exception in a thread", extra={"thread_name": name}, exc_info=exc_info)

    def main_hook(exc_type, exc_value, tb) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            sys.__excepthook__(exc_type, exc_value, tb)
            return
        crash.critical("uncaught exception", exc_info=(exc_type, exc_value, tb))

    threading.excepthook = thread_hook
    sys.excepthook = main_hook


def silence() -> None:
    """Keep log records out of a command whose printed lines are its whole output
    (`ssrelay check`); an uncaught exception (critical) still shows."""
    for h in logging.getLogger().handlers:
        if getattr(h, "_ssrelay", False):
            h.setLevel(logging.CRITICAL)
