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

Nothing here logs or raises with a token, a password or a query string.
"""

from __future__ import annotations

import email.utils
import logging
import random
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any, Callable

import requests
from tenacity import Retrying, retry_if_exception_type

from relay.errors import (AccessDenied, AuthenticationFailed, OtpRequired, RequestRejected,
                          SecretServerBadResponse, SecretServerUnavailable, SessionExpired)
from relay.model import APPROVED, CANCELED, DENIED, EXPIRED, PENDING, AccessRequest, Launcher, \
    Person, Secret, StepReviewer
from relay.ss import parse, refusals

log = logging.getLogger("relay.ss")

TOKEN_PATH = "/oauth2/token"
PLATFORM_TOKEN_PATH = "/identity/api/oauth2/token/xpmplatform"
VAULTS_PATH = "/vaultbroker/api/vaults"
AUTO_AUTH, PASSWORD_AUTH, PLATFORM_AUTH = "auto", "password", "platform"
PROBE_TIMEOUT = 5.0                        # seconds for one flavour-detection health probe
EXPIRY_MARGIN = timedelta(seconds=60)     # renew this long BEFORE the token expires
MAX_ATTEMPTS = 25                          # safety net on top of the time budget
MAX_REREADS = 20                           # a listing that shifts more often than this is abandoned


# What a decided request's listing is sorted by (newest first) to read only recent decisions:
# SecretAccessModel properties, named as SS's PowerShell module names them (`SecretId`).
DECISION_SORT_FIELD = {APPROVED: "ResponseDate", DENIED: "ResponseDate", CANCELED: "ResponseDate",
                       EXPIRED: "ExpirationDate"}
_MIN = datetime.min.replace(tzinfo=timezone.utc)
_UNSORTED_SEEN: set[str] = set()


def _echoes_sort(page: Any, name: str) -> bool:
    """True when a paged answer says it is sorted by `name`, descending (its `sortBy`)."""
    sort = page.get("sortBy") if isinstance(page, dict) else None
    if not isinstance(sort, list) or not sort or not isinstance(sort[0], dict):
        return False
    first = sort[0]
    return str(first.get("name", "")).lower() == name.lower() and \
        str(first.get("direction", "")).lower() == "desc"


def _backoff(attempt: int) -> float:
    """Exponential backoff with jitter: 0.5 s, 1 s, 2 s ... capped at 8 s, plus up to 0.5 s."""
    return min(8.0, 0.5 * 2 ** (attempt - 1)) + random.uniform(0, 0.5)


@dataclass(frozen=True)
class RelayCredentials:
    """The relay's own read account."""

    username: str
    password: str = field(repr=False)
    domain: str = ""


@dataclass(frozen=True)
class TokenSet:
    """An SS session. `repr` hides the tokens."""

    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    expires_at: datetime

    def fresh(self, now: datetime) -> bool:
        return now < self.expires_at - EXPIRY_MARGIN


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class _Retryable(Exception):
    def __init__(self, reason: str, *, status: int | None = None, retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.retry_after = retry_after


class _AuthRejected(Exception):
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
    return max(0.0, (when - _utcnow()).total_seconds())


REQUEST_KEY = "secretAccessRequestId"


def _keys(recs: list, key: str | None) -> list[int] | None:
    """The records' `key` values if every record has an integer one and they ascend strictly;
    else None."""
    keys: list[int] = []
    for r in recs:
        k = r.get(key) if isinstance(r, dict) and key else None
        if type(k) is not int or (keys and k <= keys[-1]):
            return None
        keys.append(k)
    return keys


class PendingIndex:
    """A Pending listing: `fingerprints` for every id, `request(id)` parses one record."""

    def __init__(self, fingerprints: dict[int, str], raw: dict[int, dict], tz: tzinfo, path: str):
        self.fingerprints = fingerprints
        self._raw, self._tz, self._path = raw, tz, path

    def request(self, request_id: int) -> AccessRequest:
        return parse.parse_access_request(self._raw[request_id], self._tz, path=self._path)


class _Reads:
    """Read methods shared by the relay client and a user's API. Subclasses give `_api`."""

    _client: "SecretServerClient"

    def _api(self, method: str, path: str, *, params: dict | None = None, json: Any = None) -> Any:
        raise NotImplementedError

    def _pages(self, path: str, params: dict | None = None, *,
               key: str | None = None) -> tuple[list, int]:
        """Every record of a paged listing, `page_size` at a time, and its `total`.

        With `key` (a unique integer field of the records) the listing is asked for in
        ascending `key` order (`sortBy[0].name`, `sortBy[0].direction=asc`, as Delinea's
        PowerShell module sends) and each page after the first starts `overlap` records
        early. A page whose first key is beyond the last key already read means records
        before it left the listing between two reads (so some may have been skipped): the
        overlap doubles and that stretch is read again. Records seen twice are merged by key, so requests added or
        decided between page reads neither abandon the listing nor go missing. If SS answers
        out of order (it ignored the sort), or without `key`, the strict rules apply: a
        `total` that shrinks between pages or records that do not add up to it ->
        SecretServerBadResponse("inconsistent listing")."""
        size = self._client.page_size
        query = dict(params or {})
        sorted_mode = key is not None and size >= 2
        if sorted_mode:
            query.update({"sortBy[0].name": key, "sortBy[0].direction": "asc"})
        overlap = max(1, size // 20) if sorted_mode else 0
        strict: list = []
        merged: dict[int, Any] = {}
        skip, last_total, rereads = 0, -1, 0
        last_key: int | None = None
        while True:
            page = self._api("GET", path, params={**query, "skip": skip, "take": size})
            recs = parse.records(page, path)
            total = page.get("total")
            if isinstance(total, bool) or not isinstance(total, int):
                raise SecretServerBadResponse("paged listing without total", path=path)
            keys = _keys(recs, key) if sorted_mode else None
            if sorted_mode and keys is None:
                if skip > 0:
                    raise SecretServerBadResponse("inconsistent listing (sort order changed)",
                                                  path=path)
                sorted_mode, overlap = False, 0        # SS ignored the sort: strict rules
            if not sorted_mode or keys is None:
                if total < last_total:
                    raise SecretServerBadResponse("inconsistent listing (shrank while paging)",
                                                  path=path)
                last_total = total
                strict.extend(recs)
                skip += len(recs)
                if not recs or skip >= total:
                    return strict, last_total
                continue
            if last_key is not None and skip > 0 and (not keys or keys[0] > last_key):
                # more records before this page left the listing than the overlap covers:
                # double the overlap and read again from that much earlier
                rereads += 1
                if rereads > MAX_REREADS:
                    raise SecretServerBadResponse("inconsistent listing (kept shifting)",
                                                  path=path)
                overlap = min(size - 1, overlap * 2)
                skip = max(0, skip - overlap)
                continue
            for k, r in zip(keys, recs, strict=True):   # one key per record (_keys)
                merged[k] = r
            if keys:
                last_key = keys[-1] if last_key is None else max(last_key, keys[-1])
            if not recs or len(recs) < size or skip + len(recs) >= total:
                out = [merged[k] for k in sorted(merged)]
                return out, len(out)
            skip += len(recs) - overlap

    # ------------------------------------------------------------------ requests
    def list_pending(self) -> list[AccessRequest]:
        """Every Pending request this account sees (all pages), sorted by id."""
        return self.list_requests(PENDING)

    def list_requests(self, status: str) -> list[AccessRequest]:
        """Every request in `status` this account sees (all pages), sorted by id. The listing
        must be consistent (unique ids == last page's total) or nothing is returned."""
        path = "/api/v1/secret-access-requests"
        recs, total = self._pages(path, {"filter.status": status}, key=REQUEST_KEY)
        items = [parse.parse_access_request(r, self._client.tz, path=path) for r in recs]
        unique = {r.id: r for r in items}
        if len(unique) != total:
            raise SecretServerBadResponse("inconsistent listing", path=path)
        return sorted(unique.values(), key=lambda r: r.id)

    def pending_index(self) -> "PendingIndex":
        """The Pending listing (all pages, same consistency checks as `list_requests`) as
        id -> fingerprint, with records parsed only when asked for: a poll with no change
        costs the HTTP reads and little else."""
        path = "/api/v1/secret-access-requests"
        recs, total = self._pages(path, {"filter.status": PENDING}, key=REQUEST_KEY)
        raw: dict[int, dict] = {}
        fingerprints: dict[int, str] = {}
        for r in recs:
            rid, fp = parse.listing_entry(r, path=path)
            raw[rid], fingerprints[rid] = r, fp
        if len(raw) != total:
            raise SecretServerBadResponse("inconsistent listing", path=path)
        return PendingIndex(fingerprints, raw, self._client.tz, path)

    def decided_since(self, status: str, since: datetime, take: int = 50) -> list[AccessRequest]:
        """Requests in `status` (Approved, Denied, Canceled, Expired) decided at or after
        `since`, newest first. The decision time is `responseDate`; for Expired it is
        `expirationDate` (when the access ended). A record without one is never in the window.

        Pages are asked sorted by that date, descending, and reading stops at the first record
        older than `since`: one page of `take` in steady state (later pages, after downtime,
        are `page_size` long). The order is trusted only when
        the page's `sortBy` echo names it and the dates really descend; otherwise every page
        is read (`page_size` at a time) and filtered, so a server that ignores the sort order
        costs more reads, never a missed decision."""
        path = "/api/v1/secret-access-requests"
        name = DECISION_SORT_FIELD.get(status)
        if name is None:
            raise ValueError(f"not a decided status: {status!r}")
        base = {"filter.status": status, "sortBy[0].name": name, "sortBy[0].direction": "desc",
                "sortBy[0].priority": 0}

        def when(r: AccessRequest) -> datetime | None:
            return r.expiration if name == "ExpirationDate" else r.decided_at

        found: dict[int, AccessRequest] = {}
        skip, trusted = 0, True
        previous: datetime | None = None
        while True:
            # A small first page (steady state); a catch-up that needs more reads big pages.
            size = take if skip == 0 and trusted else self._client.page_size
            page = self._api("GET", path, params={**base, "skip": skip, "take": size})
            recs = [parse.parse_access_request(r, self._client.tz, path=path)
                    for r in parse.records(page, path)]
            # No shrink check here (unlike the Pending listing): decided listings change as
            # access expires; a record missed at a page boundary is read by the next poll,
            # whose window overlaps this one.
            total = page.get("total")
            if isinstance(total, bool) or not isinstance(total, int):
                raise SecretServerBadResponse("paged listing without total", path=path)
            if trusted and not _echoes_sort(page, name):
                trusted = False
                if status not in _UNSORTED_SEEN:      # once per process and status
                    _UNSORTED_SEEN.add(status)
                    log.warning("Secret Server did not confirm the order of %s requests by %s: "
                                "every poll reads all their pages", status, name)
            older = False
            for r in recs:
                at = when(r)
                if trusted and previous is not None and (at or _MIN) > previous:
                    trusted = False         # not really sorted: read everything instead
                previous = at or _MIN
                if at is not None and at >= since:
                    found[r.id] = r
                else:
                    older = True
            skip += len(recs)
            if not recs or skip >= total or (trusted and older):
                return sorted(found.values(), key=lambda r: (when(r) or _MIN, r.id), reverse=True)

    def get_request(self, request_id: int) -> AccessRequest:
        path = f"/api/v1/secret-access-requests/{int(request_id)}"
        return parse.parse_access_request(self._api("GET", path), self._client.tz, path=path)

    def step_reviewers(self, request_id: int) -> tuple[StepReviewer, ...]:
        """Reviewers of the current workflow step (users carry their personal group id)."""
        path = f"/api/v1/secret-access-requests/{int(request_id)}/pending"
        return parse.parse_step_reviewers(self._api("GET", path), path=path)

    # ------------------------------------------------------------------ people, folders
    def group_members(self, group_id: int) -> tuple[Person, ...]:
        """Enabled members of a group (all pages)."""
        path = f"/api/v1/groups/{int(group_id)}/users"
        recs, _ = self._pages(path, key="userId")
        members = (parse.parse_group_member(r, path=path) for r in recs)
        return tuple(p for p in members if p is not None)

    def get_user(self, user_id: int) -> Person:
        path = f"/api/v1/users/{int(user_id)}"
        return parse.parse_user(self._api("GET", path), path=path)

    def current_user(self) -> Person:
        path = "/api/v1/users/current"
        return parse.parse_user(self._api("GET", path), path=path)

    def last_activity(self, user_id: int) -> datetime | None:
        """When SS last saw this user active (`UserModel.lastSessionActivity`, else
        `lastLogin`), read in the configured zone; None when SS gives neither."""
        path = f"/api/v1/users/{int(user_id)}"
        data = parse._obj(self._api("GET", path), "user", path)
        for key in ("lastSessionActivity", "lastLogin"):
            when = parse.parse_timestamp(data.get(key), self._client.tz, path=path)
            if when is not None:
                return when
        return None

    def folder_name(self, folder_id: int) -> str:
        return self.folder(folder_id)[0]

    def folder(self, folder_id: int) -> tuple[str, str]:
        """(folderName, folderPath) of a folder; the path ("\\Production\\DB") may be empty."""
        path = f"/api/v1/folders/{int(folder_id)}"
        data = self._api("GET", path)
        if not isinstance(data, dict) or not isinstance(data.get("folderName"), str):
            raise SecretServerBadResponse("folder without folderName", path=path)
        full = data.get("folderPath")
        return data["folderName"], full if isinstance(full, str) else ""

    # ------------------------------------------------------------------ secrets (metadata)
    def _search(self, params: dict) -> list[Secret]:
        client = self._client
        if client._v1_secrets:
            path = "/api/v1/secrets"
            try:
                page = self._api("GET", path, params=params)
            except RequestRejected as e:
                if e.status not in (404, 405):     # 405: a server with only POST /v1/secrets
                    raise
                log.info("GET /api/v1/secrets answered %s: using /api/v2/secrets from now on",
                         e.status)
                client._v1_secrets = False
        if not client._v1_secrets:
            path = "/api/v2/secrets"
            page = self._api("GET", path, params=params)
        return [parse.parse_secret(r, path=path) for r in parse.records(page, path)]

    def search_secrets(self, text: str, take: int = 3) -> list[Secret]:
        """Secrets whose name matches `text`, including approval-gated ones."""
        return self._search({"filter.searchText": text, "filter.includeRestricted": "true",
                             "take": int(take)})

    def recent_secrets(self, take: int = 10) -> list[Secret]:
        return self._search({"filter.scope": "Recent", "filter.includeRestricted": "true",
                             "take": int(take)})

    def secret_summary(self, secret_id: int) -> Secret:
        path = f"/api/v1/secrets/{int(secret_id)}/summary"
        return parse.parse_secret(self._api("GET", path), path=path)

    def launchers(self, secret_id: int) -> tuple[Launcher, ...]:
        path = "/api/v2/launchers/secret"
        page = self._api("GET", path, params={"filter.secretId": int(secret_id), "take": 100})
        return tuple(parse.parse_launcher(r, path=path) for r in parse.records(page, path))


class SecretServerClient(_Reads):
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
        self.flavour: str | None = None if auth == AUTO_AUTH else auth
        self.timeout = timeout
        self.verify = verify
        self.retry_seconds = retry_seconds
        self.tz = tz
        self.page_size = page_size
        self._sleep = sleep
        self._clock = clock or (lambda: time.monotonic())
        self._session = requests.Session()
        self._session.headers.update({"User-Agent": user_agent, "Accept": "application/json"})
        self._client = self
        self._credentials = credentials
        self._relay_tokens: TokenSet | None = None
        self._relay_lock = threading.Lock()
        self._v1_secrets = True

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> "SecretServerClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ relay auth
    # ------------------------------------------------------------------ flavour
    def detect_flavour(self) -> str:
        """PASSWORD_AUTH (on-premises or SS Cloud) or PLATFORM_AUTH (Delinea Platform), as
        configured, or for "auto" found the way Delinea's python-tss-sdk does: SS answers
        `{base}/api/v1/healthcheck`, a platform tenant `{base}/health`. Neither healthy:
        PASSWORD_AUTH, so the usual errors say what is wrong."""
        if self.flavour is None:
            if self._healthy(self.platform_url + "/api/v1/healthcheck"):
                self.flavour = PASSWORD_AUTH
            elif self._healthy(self.platform_url + "/health"):
                self.flavour = PLATFORM_AUTH
            else:
                return PASSWORD_AUTH
            log.info("Secret Server flavour: %s", self.flavour)
        return self.flavour

    def _platform_grant(self) -> TokenSet:
        """The relay account as a platform service user: client-credentials grant, scope
        xpmheadless. Then the vault's API URL (once): the default, active vault."""
        c = self._credentials
        assert c is not None
        tokens = self._token({"grant_type": "client_credentials", "client_id": c.username,
                              "client_secret": c.password, "scope": "xpmheadless"},
                             None, AuthenticationFailed, idempotent=True,
                             url=self.platform_url + PLATFORM_TOKEN_PATH)
        if self.base_url == self.platform_url:
            data = self._request("GET", self.platform_url + VAULTS_PATH,
                                 token=tokens.access_token)
            self.base_url = parse.default_vault_url(data, path=VAULTS_PATH)
            log.info("Delinea Platform vault: %s", self.base_url)
        return tokens

    def _relay_token(self) -> str:
        if self._credentials is None:
            raise AuthenticationFailed("no relay credentials configured")
        with self._relay_lock:
            tokens = self._relay_tokens
            if tokens is not None and tokens.fresh(_utcnow()):
                return tokens.access_token
            if self.detect_flavour() == PLATFORM_AUTH:
                self._relay_tokens = self._platform_grant()
                return self._relay_tokens.access_token
            if tokens is not None and tokens.refresh_token:
                try:
                    self._relay_tokens = self.refresh_user(tokens.refresh_token)
                    log.debug("relay session refreshed")
                    return self._relay_tokens.access_token
                except AuthenticationFailed:
                    log.info("relay refresh token refused: signing in again")
            c = self._credentials
            self._relay_tokens = self.login_user(c.username, c.password, c.domain)
            log.debug("relay signed in to Secret Server")
            return self._relay_tokens.access_token

    def _drop_relay_token(self, token: str) -> None:
        with self._relay_lock:
            if self._relay_tokens is not None and self._relay_tokens.access_token == token:
                self._relay_tokens = None

    def _api(self, method: str, path: str, *, params: dict | None = None, json: Any = None) -> Any:
        token = self._relay_token()
        try:
            return self._request(method, path, params=params, json=json, token=token)
        except _AuthRejected as e:
            log.info("Secret Server refused the relay's token (%s) on %s: signing in again",
                     e.status, path)
            self._drop_relay_token(token)
        token = self._relay_token()
        try:
            return self._request(method, path, params=params, json=json, token=token)
        except _AuthRejected as e:
            self._drop_relay_token(token)
            raise AuthenticationFailed("Secret Server refused a fresh token", path=path,
                                       status=e.status) from None

    # ------------------------------------------------------------------ sessions of people
    def login_user(self, username: str, password: str, domain: str = "", otp: str = "") -> TokenSet:
        """Password grant. 400 -> AuthenticationFailed (otp_required when SS asks for an OTP)."""
        if self.base_url == self.platform_url and self._credentials is not None \
                and self.detect_flavour() == PLATFORM_AUTH:
            self._relay_token()              # people sign in at the vault: find it first
        form = {"grant_type": "password", "username": username, "password": password}
        if domain:
            form["domain"] = domain
        headers = {"OTP": otp} if otp else None
        # An OTP is single use: a retried grant would be refused even when the first went through.
        return self._token(form, headers, AuthenticationFailed, idempotent=not otp)

    def refresh_user(self, refresh_token: str) -> TokenSet:
        """Refresh grant (refresh tokens are single use). 400 -> SessionExpired."""
        # Refresh tokens are single use: never repeat a refresh whose answer was lost.
        return self._token({"grant_type": "refresh_token", "refresh_token": refresh_token},
                           None, SessionExpired, idempotent=False)

    def revoke(self, token: str) -> None:
        """Ends an SS session (POST /api/v1/oauth-expiration). An already dead token is fine."""
        try:
            self._request("POST", "/api/v1/oauth-expiration", token=token)
        except _AuthRejected:
            pass

    def as_user(self, tokens: TokenSet,
                on_refresh: Callable[[TokenSet], None] | None = None) -> "UserApi":
        return UserApi(self, tokens, on_refresh)

    def _token(self, form: dict, headers: dict | None, error: type[AuthenticationFailed], *,
               idempotent: bool, url: str = TOKEN_PATH) -> TokenSet:
        try:
            data = self._request("POST", url, data=form, headers=headers, token=None,
                                 idempotent=idempotent)
        except RequestRejected as e:
            raise self._auth_error(e, error) from None
        except AccessDenied as e:
            raise error("Secret Server refused the sign-in", path=TOKEN_PATH, status=e.status) from None
        except _AuthRejected as e:
            raise error("Secret Server refused the sign-in", path=TOKEN_PATH,
                        status=e.status) from None
        if not isinstance(data, dict) or not isinstance(data.get("access_token"), str) \
                or not data["access_token"]:
            raise SecretServerBadResponse("token response without access_token", path=TOKEN_PATH)
        refresh = data.get("refresh_token")
        return TokenSet(access_token=data["access_token"],
                        refresh_token=refresh if isinstance(refresh, str) and refresh else None,
                        expires_at=parse.expires_at(data.get("expires_in"), _utcnow(),
                                                    path=TOKEN_PATH))

    @staticmethod
    def _auth_error(e: RequestRejected, error: type[AuthenticationFailed]) -> AuthenticationFailed:
        otp = refusals.wants_otp(e)
        if error is SessionExpired:
            return SessionExpired("Secret Server refused the refresh token", path=TOKEN_PATH,
                                  status=e.status)
        if otp:
            return OtpRequired("Secret Server: a one-time password (OTP) is required or wrong",
                               path=TOKEN_PATH, status=e.status)
        return error("Secret Server: sign-in refused", path=TOKEN_PATH, status=e.status)

    # ------------------------------------------------------------------ health
    def healthcheck(self) -> bool:
        """True when SS (on the platform: the tenant until its vault is known) says it is
        healthy (anonymous). False when it answers otherwise; SecretServerUnavailable when
        it cannot be reached within the retry budget."""
        if self.detect_flavour() == PLATFORM_AUTH and self.base_url == self.platform_url:
            return self._healthy(self.platform_url + "/health", quiet=False)
        return self._healthy(self.base_url + "/api/v1/healthcheck", quiet=False)

    def _healthy(self, url: str, *, quiet: bool = True) -> bool:
        """Whether `url` answers a health check saying healthy (`healthy` in any case).
        `quiet`: one try, and unreachable is just False (flavour detection)."""
        try:
            if quiet:                          # a probe: short, so a dead host costs little
                resp = self._session.get(url, timeout=min(self.timeout, PROBE_TIMEOUT),
                                         verify=self.verify, allow_redirects=False)
                with resp:
                    data = _json_body(resp, url) if resp.status_code == 200 else None
            else:
                data = self._request("GET", url, token=None)
        except (SecretServerBadResponse, RequestRejected, AccessDenied, _AuthRejected):
            return False
        except requests.RequestException:
            return False
        if isinstance(data, dict):
            for key, value in data.items():
                if key.lower() == "healthy":
                    return value is True
        return False

    def server_date(self) -> datetime | None:
        """SS's clock, from the HTTP `Date` header of the anonymous health check (always
        GMT, whatever zone SS writes its timestamps in); None when it cannot be read."""
        try:
            resp = self._session.get(self.base_url + "/api/v1/healthcheck", timeout=self.timeout,
                                     verify=self.verify, allow_redirects=False)
        except requests.RequestException:
            return None
        with resp:
            try:
                when = email.utils.parsedate_to_datetime(resp.headers.get("Date", ""))
            except (TypeError, ValueError):
                return None
        return when.replace(tzinfo=UTC) if when.tzinfo is None else when

    # ------------------------------------------------------------------ HTTP
    def _request(self, method: str, path: str, *, params: dict | None = None, json: Any = None,
                 data: dict | None = None, headers: dict | None = None, token: str | None,
                 idempotent: bool | None = None) -> Any:
        """One API call with retries. Returns the JSON body; raises typed errors, or
        _AuthRejected on 401/403 (the caller's auth strategy decides)."""
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
            w = max(0.0, min(w, remaining()))
            log.warning("Secret Server %s %s: %s; retrying in %.1fs (attempt %d)", method, path,
                        exc.reason if isinstance(exc, _Retryable) else "error", w,
                        state.attempt_number)
            return w

        def stop(state) -> bool:
            return remaining() <= 0 or state.attempt_number >= MAX_ATTEMPTS

        retrying = Retrying(sleep=self._sleep, wait=wait, stop=stop, reraise=True,
                            retry=retry_if_exception_type(_Retryable))
        try:
            return retrying(self._exchange, method, path, params, json, data, hdrs, idempotent)
        except _Retryable as e:
            raise SecretServerUnavailable(f"Secret Server unavailable: {e.reason}", path=path,
                                          status=e.status) from None

    def _exchange(self, method: str, path: str, params, json, data, headers,
                  idempotent: bool) -> Any:
        try:
            url = path if path.startswith(("https://", "http://")) else self.base_url + path
            resp = self._session.request(method, url, params=params, json=json,
                                         data=data, headers=headers, timeout=self.timeout,
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
            raise _AuthRejected(status)
        body = _json_body(resp, path)
        if 400 <= status < 500:
            raise refusals.refusal(status, body, path)   # AccessDenied or a RequestRejected kind
        if not 200 <= status < 300:
            raise SecretServerBadResponse(f"unexpected HTTP {status}", path=path, status=status)
        return body


def _json_body(resp: requests.Response, path: str) -> Any:
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


class UserApi(_Reads):
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
        if not tokens.fresh(_utcnow()) and self._on_refresh is not None and tokens.refresh_token:
            tokens = self._refresh(tokens)
        try:
            return self._client._request(method, path, params=params, json=json,
                                         token=tokens.access_token)
        except _AuthRejected as e:
            if self._on_refresh is None or not tokens.refresh_token:
                raise SessionExpired("the Secret Server session has expired", path=path,
                                     status=e.status) from None
        tokens = self._refresh(tokens)
        try:
            return self._client._request(method, path, params=params, json=json,
                                         token=tokens.access_token)
        except _AuthRejected as e:
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
                             "startDate": self._client_fmt(_utcnow()),
                             "responseComment": comment})

    def cancel(self, request_id: int) -> AccessRequest:
        return self._update({"secretAccessRequestId": int(request_id), "status": CANCELED,
                             "startDate": self._client_fmt(_utcnow())})

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
