"""The Secret Server REST client.

Two ways to talk to SS over one `requests.Session`:

* as the relay (`SecretServerClient(..., credentials=RelayCredentials(...))`): reads only.
  The access token is reused until 60 s before it expires, then refreshed (refresh token) or
  re-obtained (password grant). A 401/403 drops it, logs in again and retries the call once.
* as a person (`client.as_user(tokens, on_refresh=None) -> UserApi`): the same reads plus the
  writes (approve, deny, cancel, create), search, recent secrets and launching.
  On 401/403, or when the token is within 60 s of expiry: with an `on_refresh` callback and a
  refresh token, the session is refreshed, `on_refresh(new_tokens)` is called (store them!)
  and the call retried once; otherwise `SessionExpired` is raised and the caller decides.

Transient failures (connection errors, timeouts, 5xx, 429) are retried with tenacity within
`retry_seconds` in total (Retry-After honoured, else exponential backoff with jitter from
0.5 s), then `SecretServerUnavailable`. Writes (POST/PUT other than the token endpoint) are
retried only where SS cannot have acted: connect failures and 429. `sleep` and `clock` are
injectable so tests can record waits instead of sleeping.

The parts, one job each: `http` (one call with retries and typed errors), `tokens` (grants at
the token endpoint), `flavour` (on-premises/Cloud or Delinea Platform, health, platform auth),
`relay_session` (the relay account's token), `paging` (listings read whole), `reads` (what any
account reads), `user` (a person's calls). This module assembles the client and keeps the names
the rest of the relay imports.

Nothing here logs or raises with a token, a password or a query string.
"""

from __future__ import annotations

import threading
import time
from datetime import timezone, tzinfo
from typing import Any, Callable

import requests
from requests.adapters import HTTPAdapter

from relay.ss.flavour import (AUTO_AUTH, PASSWORD_AUTH, PLATFORM_AUTH, PLATFORM_TOKEN_PATH,
                              PROBE_TIMEOUT, VAULTS_PATH)
from relay.ss.http import MAX_ATTEMPTS
from relay.ss.paging import DECISION_SORT_FIELD, MAX_REREADS, REQUEST_KEY
from relay.ss.reads import PendingIndex, Reads
from relay.ss.relay_session import RelaySession
from relay.ss.tokens import EXPIRY_MARGIN, TOKEN_PATH, RelayCredentials, TokenSet
from relay.ss.user import UserApi

__all__ = ["AUTO_AUTH", "DECISION_SORT_FIELD", "EXPIRY_MARGIN", "MAX_ATTEMPTS", "MAX_REREADS",
           "PASSWORD_AUTH", "PLATFORM_AUTH", "PLATFORM_TOKEN_PATH", "PROBE_TIMEOUT",
           "REQUEST_KEY", "TOKEN_PATH", "VAULTS_PATH", "PendingIndex", "RelayCredentials",
           "SecretServerClient", "TokenSet", "UserApi"]


# Connections kept open to Secret Server per client: more than the click and modal workers
# (20) and the web threads (8) together, which is how many may call it at once.
POOL_CONNECTIONS = 32


class SecretServerClient(RelaySession, Reads):
    """SS over HTTP. Relay reads use `credentials`; people act through `as_user()`."""

    def __init__(self, base_url: str, *, credentials: RelayCredentials | None = None,
                 timeout: float = 15.0, verify: bool | str = True, retry_seconds: float = 30.0,
                 tz: tzinfo = timezone.utc, user_agent: str = "ssrelay", page_size: int = 500,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] | None = None, auth: str = PASSWORD_AUTH):
        self.base_url = base_url.rstrip("/")
        # Delinea Platform: `base_url` is the tenant; API calls go to its vault once found
        self.platform_url = self.base_url
        self.auth = auth
        self.flavour = None if auth == AUTO_AUTH else auth
        self.timeout = timeout
        self.verify = verify
        self.retry_seconds = retry_seconds
        self.tz = tz
        self.page_size = page_size
        self._sleep = sleep
        self._clock = clock or (lambda: time.monotonic())
        self._session = requests.Session()
        # One client serves every worker at once (clicks, modals, sign-ins: up to ~30 threads);
        # requests keeps 10 connections per host by default and drops the others after use.
        for scheme in ("https://", "http://"):
            self._session.mount(scheme, HTTPAdapter(pool_maxsize=POOL_CONNECTIONS))
        self._session.headers.update({"User-Agent": user_agent, "Accept": "application/json"})
        self._client = self
        self._credentials = credentials
        self._relay_tokens = None
        self._relay_lock = threading.Lock()
        self._v1_secrets = True

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> "SecretServerClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _api(self, method: str, path: str, *, params: dict | None = None, json: Any = None) -> Any:
        return self._relay_api(method, path, params=params, json=json)

    def as_user(self, tokens: TokenSet,
                on_refresh: Callable[[TokenSet], None] | None = None) -> "UserApi":
        return UserApi(self, tokens, on_refresh)
