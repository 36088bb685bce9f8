"""`POST /ss/nudge`: someone (an SS Event Pipeline "Run Script" task, a scheduler) says Secret
Server changed, so poll now instead of at the next interval. The poll stays the source of
truth: a nudge carries no data, it only moves the next poll earlier.

Enabled by `[nudge] token`; the caller sends `Authorization: Bearer <token>`. A missing or
wrong token gets 401 and causes nothing. Nudges are debounced: the poll runs `debounce`
seconds after the first nudge of a burst, and every nudge arriving in that time joins it, so
several nudges within a second make one poll. A nudge arriving while that poll runs makes
one more.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
from collections.abc import Callable

from .web.app import WebApp, json_response

log = logging.getLogger(__name__)

PATH = "/ss/nudge"
DEBOUNCE_SECONDS = 1.0


def bearer_matches(header: str, token: str) -> bool:
    """True when an Authorization header carries exactly `token` as a Bearer credential.
    Compared as SHA-256 digests with hmac.compare_digest: the time taken says nothing about
    the token, not even its length."""
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given.strip() or not token:
        return False
    a = hashlib.sha256(given.strip().encode()).digest()
    b = hashlib.sha256(token.encode()).digest()
    return hmac.compare_digest(a, b)


class Nudger:
    """Turns accepted nudges into debounced calls of `poll` on its own thread."""

    def __init__(self, token: str, poll: Callable[[], object], stop: threading.Event, *,
                 debounce: float = DEBOUNCE_SECONDS):
        self._token = token
        self._poll = poll
        self._stop = stop
        self.debounce = debounce
        self._wanted = threading.Event()        # a nudge arrived and its poll has not started
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.polls = 0                          # nudge polls run (for `/metrics` and tests)
        self.idle = threading.Event()           # set while no nudge is waiting or being polled
        self.idle.set()

    def handle(self, environ: dict) -> tuple[int, list[tuple[str, str]], bytes]:
        if not bearer_matches(environ.get("HTTP_AUTHORIZATION", ""), self._token):
            log.warning("nudge refused: missing or wrong token")
            status, headers, body = json_response(401, {"error": "invalid or missing bearer token"})
            return status, headers + [("WWW-Authenticate", 'Bearer realm="ssrelay"')], body
        self.nudge()
        return json_response(200, {"ok": True, "poll": "queued"})

    def nudge(self) -> None:
        with self._lock:
            self.idle.clear()
            self._wanted.set()
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="ssrelay-nudge", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self._wanted.wait(0.5):
                continue
            if self._stop.wait(self.debounce):      # the rest of the burst joins this poll
                return
            self._wanted.clear()
            try:
                self._poll()
            except Exception:       # the scheduled poll still runs; say so and wait for the next
                log.exception("nudged poll failed")
            self.polls += 1
            with self._lock:
                if not self._wanted.is_set():
                    self.idle.set()


def mount(web: WebApp, token: str, poll: Callable[[], None], stop: threading.Event) -> Nudger | None:
    """Mount `POST /ss/nudge` on `web` when a token is set (`[nudge] token`)."""
    if not token:
        return None
    nudger = Nudger(token, poll, stop)
    web.route("POST", PATH, nudger.handle)
    return nudger
