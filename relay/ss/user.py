"""Secret Server as one person: their own token (refreshed through `on_refresh`, else
`SessionExpired`), the shared reads, and their writes: approve, deny, cancel, request, launch."""

from __future__ import annotations

import threading
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable

from relay.errors import SecretServerBadResponse, SessionExpired
from relay.model import APPROVED, CANCELED, DENIED, AccessRequest
from relay.ss import parse
from relay.ss.http import AuthRejected, utcnow
from relay.ss.reads import Reads
from relay.ss.tokens import TokenSet

if TYPE_CHECKING:
    from relay.ss.client import SecretServerClient


class UserApi(Reads):
    """SS as one person: their reads, searches and writes, with their own token."""

    def __init__(self, client: SecretServerClient, tokens: TokenSet,
                 on_refresh: Callable[[TokenSet], None] | None = None):
        self._client = client
        self._tokens = tokens
        self._on_refresh = on_refresh
        self._lock = threading.Lock()

    @property
    def tokens(self) -> TokenSet:
        """The current session (changes after a refresh)."""
        return self._tokens

    def _refresh(self, seen: TokenSet) -> TokenSet:
        with self._lock:
            if self._tokens is not seen:           # another thread already refreshed
                return self._tokens
            if self._on_refresh is None or not seen.refresh_token:
                raise SessionExpired("the Secret Server session has expired")
            new = self._client.refresh_user(seen.refresh_token)
            self._tokens = new
        self._on_refresh(new)
        return new

    def _api(self, method: str, path: str, *, params: dict | None = None, json: Any = None) -> Any:
        tokens = self._tokens
        if not tokens.fresh(utcnow()) and self._on_refresh is not None and tokens.refresh_token:
            tokens = self._refresh(tokens)
        try:
            return self._client._request(method, path, params=params, json=json,
                                         token=tokens.access_token)
        except AuthRejected as e:
            if self._on_refresh is None or not tokens.refresh_token:
                raise SessionExpired("the Secret Server session has expired", path=path,
                                     status=e.status) from None
        tokens = self._refresh(tokens)
        try:
            return self._client._request(method, path, params=params, json=json,
                                         token=tokens.access_token)
        except AuthRejected as e:
            raise SessionExpired("the Secret Server session has expired", path=path,
                                 status=e.status) from None

    # ------------------------------------------------------------------ writes
    def _update(self, body: dict) -> AccessRequest:
        path = "/api/v1/secret-access-requests"
        data = self._api("PUT", path, json=body)
        return parse.parse_access_request(data, self._client.tz, path=path)

    def approve(self, request_id: int, start: datetime, expiration: datetime,
                comment: str = "") -> AccessRequest:
        fmt = self._client_fmt
        return self._update({"secretAccessRequestId": int(request_id), "status": APPROVED,
                             "startDate": fmt(start), "expirationDate": fmt(expiration),
                             "responseComment": comment})

    # Delinea's PowerShell module (Update-TssSecretAccessRequest) sends startDate, "now" by
    # default, with every update: deny and cancel do too, in case a server requires it.
    def deny(self, request_id: int, comment: str) -> AccessRequest:
        return self._update({"secretAccessRequestId": int(request_id), "status": DENIED,
                             "startDate": self._client_fmt(utcnow()),
                             "responseComment": comment})

    def cancel(self, request_id: int) -> AccessRequest:
        return self._update({"secretAccessRequestId": int(request_id), "status": CANCELED,
                             "startDate": self._client_fmt(utcnow())})

    def create_request(self, secret_id: int, comment: str, ticket: str = "", *,
                       start: datetime | None = None,
                       expiration: datetime | None = None) -> AccessRequest:
        path = "/api/v1/secret-access-requests"
        body: dict[str, Any] = {"secretId": int(secret_id), "requestComment": comment}
        if ticket:
            body["ticketNumber"] = ticket
        if start is not None:
            body["startDate"] = self._client_fmt(start)
        if expiration is not None:
            body["expirationDate"] = self._client_fmt(expiration)
        return parse.parse_access_request(self._api("POST", path, json=body), self._client.tz,
                                          path=path)

    def launch(self, secret_id: int, launcher_id: int, prompt_value: str | None = None) -> dict:
        """Starts a launcher session: {"guid", "launcherType", "ssUrl", "baseUrl", "encodedUrl"}."""
        path = "/api/v1/launchers/secret"
        body: dict[str, Any] = {"secretId": int(secret_id), "launcherId": int(launcher_id)}
        if prompt_value:
            body["promptFieldValue"] = prompt_value
        data = self._api("POST", path, json=body)
        if not isinstance(data, dict) or not isinstance(data.get("guid"), str):
            raise SecretServerBadResponse("launch answer without guid", path=path)
        return {k: data.get(k) for k in ("guid", "launcherType", "ssUrl", "baseUrl", "encodedUrl")}

    def _client_fmt(self, dt: datetime) -> str:
        return parse.format_timestamp(dt, self._client.tz)
