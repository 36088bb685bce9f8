"""One HTTP exchange with Secret Server: retries within a time budget, JSON bodies, typed errors.

Transient failures (connection errors, timeouts, 5xx, 429) are retried with tenacity within
`retry_seconds` in total (Retry-After honoured, else exponential backoff with jitter from
0.5 s), then `SecretServerUnavailable`. Writes (POST/PUT other than the token endpoint) are
retried only where SS cannot have acted: connect failures and 429. 401/403 raise `AuthRejected`
for the caller's auth strategy to handle. Nothing here logs or raises with a token or a query.
"""

from __future__ import annotations

import email.utils
import logging
import random
from datetime import datetime, timezone
from typing import Any, Callable

import requests
from tenacity import Retrying, retry_if_exception_type

from relay.errors import SecretServerBadResponse, SecretServerUnavailable
from relay.ss import refusals

log = logging.getLogger("relay.ss")

MAX_ATTEMPTS = 25                          # safety net on top of the time budget
MIN_READ_SECONDS = 1.0                     # a read is never given less than this to answer


def _backoff(attempt: int) -> float:
    """Exponential backoff with jitter: 0.5 s, 1 s, 2 s ... capped at 8 s, plus up to 0.5 s."""
    return min(8.0, 0.5 * 2 ** (attempt - 1)) + random.uniform(0, 0.5)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class _Retryable(Exception):
    def __init__(self, reason: str, *, status: int | None = None, retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.retry_after = retry_after


class AuthRejected(Exception):
    """401/403 on an API call (internal: the auth strategy decides what happens next)."""

    def __init__(self, status: int):
        super().__init__(status)
        self.status = status


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - utcnow()).total_seconds())


def json_body(resp: requests.Response, path: str) -> Any:
    """The JSON body; SecretServerBadResponse for HTML or anything that is not JSON."""
    raw = resp.content
    if not raw.strip():
        if 200 <= resp.status_code < 300:
            return None
        return {}
    ctype = resp.headers.get("Content-Type", "").lower()
    looks_html = raw.lstrip()[:1] == b"<" or "html" in ctype
    if looks_html or ("json" not in ctype and 200 <= resp.status_code < 300):
        raise SecretServerBadResponse(f"Secret Server answered {ctype or 'no content type'} "
                                      f"instead of JSON (HTTP {resp.status_code})", path=path,
                                      status=resp.status_code)
    try:
        return resp.json()
    except ValueError:
        raise SecretServerBadResponse("Secret Server answered malformed JSON", path=path,
                                      status=resp.status_code) from None


def _never_sent(e: requests.ConnectionError) -> bool:
    """True when the connection failed before the request went out (refused, DNS...)."""
    text = repr(e)
    return any(s in text for s in ("NewConnectionError", "Connection refused", "NameResolution",
                                   "Failed to establish"))


class HttpExchange:
    """The HTTP part of the SS client: `_request` sends one call with retries. The client's
    constructor sets these attributes."""

    base_url: str
    timeout: float
    verify: bool | str
    retry_seconds: float
    _sleep: Callable[[float], None]
    _clock: Callable[[], float]
    _session: requests.Session

    def _request(self, method: str, path: str, *, params: dict | None = None, json: Any = None,
                 data: dict | None = None, headers: dict | None = None, token: str | None,
                 idempotent: bool | None = None) -> Any:
        """One API call with retries. Returns the JSON body; raises typed errors, or
        AuthRejected on 401/403 (the caller's auth strategy decides)."""
        if idempotent is None:
            idempotent = method in ("GET", "HEAD")
        hdrs = dict(headers or {})
        if token is not None:
            hdrs["Authorization"] = f"Bearer {token}"
        start = self._clock()

        def remaining() -> float:
            return self.retry_seconds - (self._clock() - start)

        def wait(state) -> float:
            exc = state.outcome.exception()
            if isinstance(exc, _Retryable) and exc.retry_after is not None:
                w = exc.retry_after
            else:
                w = _backoff(state.attempt_number)
            return max(0.0, min(w, remaining()))

        def stop(state) -> bool:
            return remaining() <= 0 or state.attempt_number >= MAX_ATTEMPTS

        def before_sleep(state) -> None:   # only when a retry follows (tenacity asks stop() first)
            exc = state.outcome.exception()
            log.warning("Secret Server %s %s: %s; retrying in %.1fs (attempt %d)", method, path,
                        exc.reason if isinstance(exc, _Retryable) else "error",
                        state.next_action.sleep, state.attempt_number)

        retrying = Retrying(sleep=self._sleep, wait=wait, stop=stop, reraise=True, before_sleep=before_sleep,
                            retry=retry_if_exception_type(_Retryable))
        try:
            return retrying(self._exchange, method, path, params, json, data, hdrs, idempotent, remaining)
        except _Retryable as e:
            raise SecretServerUnavailable(f"Secret Server unavailable: {e.reason}", path=path,
                                          status=e.status) from None

    def _exchange(self, method: str, path: str, params, json, data, headers,
                  idempotent: bool, remaining: Callable[[], float]) -> Any:
        # A read (GET) waits at most what is left of the retry budget: the budget is the promise
        # (a person hears within seconds that SS cannot be reached), and a read can be made
        # again. Anything else waits the whole timeout: a write cut short may have acted
        # without the relay knowing, and a token grant may be slow on a directory-backed SS.
        reads = method in ("GET", "HEAD")      # not a sign-in's token grant: a slow directory is no outage
        timeout = max(MIN_READ_SECONDS, min(self.timeout, remaining())) if reads else self.timeout
        try:
            url = path if path.startswith(("https://", "http://")) else self.base_url + path
            resp = self._session.request(method, url, params=params, json=json,
                                         data=data, headers=headers, timeout=timeout,
                                         verify=self.verify, allow_redirects=False)
        except requests.ConnectTimeout:
            raise _Retryable("connect timeout") from None
        except requests.Timeout:
            if not idempotent:   # SS may have acted: do not repeat a write
                raise SecretServerUnavailable("Secret Server timed out (not retried: a write)",
                                              path=path) from None
            raise _Retryable("timeout") from None
        except requests.ConnectionError as e:
            if not idempotent and not _never_sent(e):
                raise SecretServerUnavailable("Secret Server connection lost (not retried: a "
                                              "write)", path=path) from None
            raise _Retryable("connection error") from None
        except requests.RequestException as e:
            raise SecretServerUnavailable(f"Secret Server request failed: {type(e).__name__}",
                                          path=path) from None
        try:
            return self._read(resp, path, idempotent)
        finally:
            resp.close()

    @staticmethod
    def _read(resp: requests.Response, path: str, idempotent: bool) -> Any:
        status = resp.status_code
        if status == 429:
            raise _Retryable("429 too many requests", status=429,
                             retry_after=_retry_after(resp.headers.get("Retry-After")))
        if status >= 500:
            if not idempotent:
                raise SecretServerUnavailable(f"Secret Server error {status} (not retried: a "
                                              "write)", path=path, status=status)
            raise _Retryable(f"server error {status}", status=status)
        if status in (401, 403):
            raise AuthRejected(status)
        body = json_body(resp, path)
        if 400 <= status < 500:
            raise refusals.refusal(status, body, path)   # AccessDenied or a RequestRejected kind
        if not 200 <= status < 300:
            raise SecretServerBadResponse(f"unexpected HTTP {status}", path=path, status=status)
        return body

