"""`ssrelay run` as a real subprocess against the sandbox stand-ins: start, find its HTTP
port, stop it (SIGTERM) or kill it (SIGKILL), read its log lines and its database."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import requests
from waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]


class RelayProcess:
    """One `ssrelay run` process. Log lines (JSON) go to `log_path`, appended across runs."""

    def __init__(self, sandbox, db_path: str | Path, log_path: str | Path, **overrides: str):
        self.sandbox = sandbox
        self.db_path = str(db_path)
        self.log_path = Path(log_path)
        self.overrides = overrides
        self.proc: subprocess.Popen | None = None
        self._log_offset = 0
        self.port = 0

    def start(self, *, wait_port: bool = True, timeout: float = 30.0) -> RelayProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SSRELAY_")}
        env.update(self.sandbox.environ(self.db_path, **self.overrides))
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:      # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen([sys.executable, "-m", "relay", "run"], env=env, cwd=str(ROOT),
                                         stdout=subprocess.DEVNULL, stderr=log)
        self.port = 0
        if wait_port:
            self.port = wait_until(self._port, timeout, "the relay's start-up line")
        return self

    def lines(self) -> list[dict]:
        """This run's log lines, parsed (a line that is not JSON is kept as {"raw": line})."""
        if not self.log_path.exists():
            return []
        with open(self.log_path, "rb") as f:
            f.seek(self._log_offset)
            text = f.read().decode("utf-8", "replace")
        out = []
        for line in text.splitlines():
            if line.strip():
                try:
                    out.append(json.loads(line))
                except ValueError:
                    out.append({"raw": line})
        return out

    def _port(self) -> int | None:
        for rec in self.lines():
            if "http_port" in rec:
                return int(rec["http_port"])
        assert self.alive(), f"relay exited early: {self.tail()}"
        return None

    def tail(self, n: int = 3000) -> str:
        return "\n".join(json.dumps(r) for r in self.lines())[-n:]

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str, timeout: float = 2.0) -> requests.Response:
        return requests.get(self.url + path, timeout=timeout)

    def terminate(self, timeout: float = 30.0) -> float:
        """SIGTERM; returns seconds until the process was gone (TimeoutExpired past `timeout`)."""
        assert self.proc is not None
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=timeout)
        return time.monotonic() - started

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def count(self, sql: str, params: tuple = ()) -> int:
        return query(self.db_path, sql, params)


def query(db_path: str, sql: str, params: tuple = ()) -> int:
    """One number from the relay's database (0 while it does not exist or is busy)."""
    try:
        con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
        try:
            row = con.execute(sql, params).fetchone()
            return int(row[0]) if row and row[0] is not None else 0
        finally:
            con.close()
    except sqlite3.OperationalError:
        return 0
