"""Secret Server's Event Pipeline, as far as the relay meets it: a secret pipeline triggered by
access-request events whose one task is "Run Script", a PowerShell script that POSTs to the
relay's nudge URL with a bearer token (the README's recipe).

    pipeline = NudgePipeline(f"{relay_url}/ss/nudge", token).attach(sandbox.ss)
    ...
    pipeline.detach()

SS runs pipeline tasks apart from the request that raised the event: the person who asked for
access gets SS's answer whether the script succeeds, fails or hangs. So here the world's change
listener only starts a run on its own thread; the run makes the HTTP call and records its
outcome in `runs` (status, or the error), never raising into SS.

Stand-in assumptions: "Access Approved" and "Access Denied" are secret events in Delinea's
published event list; the names used for a new request ("Access Request") and a canceled one
("Access Request Canceled") are this stand-in's. An approval of a step that is not the last
counts as "Access Approved" (the next step's reviewers are now due).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Self

import requests

from .secret_server import SecretServerStandIn

DEFAULT_TIMEOUT_SECONDS = 5.0


class Trigger(StrEnum):
    """The pipeline triggers of a secret access request, by the world's change name."""

    ACCESS_REQUEST = "Access Request"
    ACCESS_APPROVED = "Access Approved"
    ACCESS_DENIED = "Access Denied"
    ACCESS_REQUEST_CANCELED = "Access Request Canceled"


_BY_CHANGE = {"created": Trigger.ACCESS_REQUEST, "approved": Trigger.ACCESS_APPROVED,
              "denied": Trigger.ACCESS_DENIED, "canceled": Trigger.ACCESS_REQUEST_CANCELED}


@dataclass(frozen=True)
class PipelineRun:
    """One run of the "Run Script" task: what raised it and how the nudge URL answered."""

    trigger: Trigger
    request_id: int
    raised_at: float            # time.monotonic() when SS raised the event
    finished_at: float
    status: int | None          # the HTTP status answered; None when there was no answer
    error: str | None = None    # why there was no answer (connection refused, timeout)


class NudgePipeline:
    """A secret Event Pipeline whose task calls `url` with `Authorization: Bearer <token>`."""

    def __init__(self, url: str, token: str, *, triggers: frozenset[Trigger] = frozenset(Trigger),
                 timeout: float = DEFAULT_TIMEOUT_SECONDS):
        self.url = url
        self._token = token
        self.triggers = triggers
        self.timeout = timeout
        self.runs: list[PipelineRun] = []
        self._cond = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._ss: SecretServerStandIn | None = None

    def __repr__(self) -> str:                  # never the token
        return f"NudgePipeline({self.url!r}, triggers={sorted(self.triggers)})"

    # ---------------------------------------------------------------- lifecycle
    def attach(self, ss: SecretServerStandIn) -> Self:
        """Make `ss` raise this pipeline's triggers from now on."""
        self._ss = ss
        ss.world.listeners.append(self._on_change)
        return self

    def detach(self, wait: float = 10.0) -> None:
        """No new runs; wait up to `wait` seconds for the runs under way."""
        if self._ss is not None:
            try:
                self._ss.world.listeners.remove(self._on_change)
            except ValueError:
                pass
            self._ss = None
        deadline = time.monotonic() + wait
        with self._cond:
            threads = list(self._threads)
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.detach()

    # ---------------------------------------------------------------- runs
    def _on_change(self, change: str, request_id: int) -> None:
        """Called by the world, under its lock: only start a run, never wait for it."""
        trigger = _BY_CHANGE.get(change)
        if trigger is None or trigger not in self.triggers:
            return
        t = threading.Thread(target=self._run, args=(trigger, request_id, time.monotonic()),
                             name="ss-event-pipeline", daemon=True)
        with self._cond:
            self._threads = [x for x in self._threads if x.is_alive()] + [t]
        t.start()

    def _run(self, trigger: Trigger, request_id: int, raised_at: float) -> None:
        """The "Run Script" task: Invoke-RestMethod -Method Post -Headers @{Authorization = ...}."""
        status: int | None = None
        error: str | None = None
        try:
            answer = requests.post(self.url, headers={"Authorization": f"Bearer {self._token}"},
                                   timeout=self.timeout)
            status = answer.status_code
        except requests.RequestException as exc:
            error = type(exc).__name__          # the message may carry the URL, never the token
        run = PipelineRun(trigger, request_id, raised_at, time.monotonic(), status, error)
        with self._cond:
            self.runs.append(run)
            self._cond.notify_all()

    def wait_for_runs(self, count: int = 1, timeout: float = 10.0) -> list[PipelineRun]:
        """Block until `count` runs have finished; return them all. TimeoutError after `timeout`."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.runs) >= count, timeout=timeout):
                raise TimeoutError(f"{len(self.runs)} of {count} pipeline run(s) finished "
                                   f"within {timeout:g}s")
            return list(self.runs)
