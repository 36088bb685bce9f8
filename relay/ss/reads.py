"""What any Secret Server account reads: requests (Pending, decided, one), a step's reviewers,
users, group members, folders, secrets' metadata and launchers. The relay client and a person's
`UserApi` share these; each gives `_api` (one call with its own token)."""

from __future__ import annotations

import logging
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any

from relay.errors import RequestRejected, SecretServerBadResponse
from relay.model import PENDING, AccessRequest, Launcher, Person, Secret, StepReviewer
from relay.ss import paging, parse
from relay.ss.paging import REQUEST_KEY

if TYPE_CHECKING:
    from relay.ss.client import SecretServerClient

log = logging.getLogger("relay.ss")


class PendingIndex:
    """A Pending listing: `fingerprints` for every id, `request(id)` parses one record."""

    def __init__(self, fingerprints: dict[int, str], raw: dict[int, dict], tz: tzinfo, path: str):
        self.fingerprints = fingerprints
        self._raw, self._tz, self._path = raw, tz, path

    def request(self, request_id: int) -> AccessRequest:
        return parse.parse_access_request(self._raw[request_id], self._tz, path=self._path)


class Reads:
    """Read methods shared by the relay client and a user's API. Subclasses give `_api`."""

    _client: SecretServerClient

    def _api(self, method: str, path: str, *, params: dict | None = None, json: Any = None) -> Any:
        raise NotImplementedError

    def _pages(self, path: str, params: dict | None = None, *,
               key: str | None = None) -> tuple[list, int]:
        """Every record of a paged listing and its `total` (`paging.read_all`), `page_size`
        at a time."""
        return paging.read_all(lambda q: self._api("GET", path, params=q), path, params, key=key,
                               size=self._client.page_size)

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
        `since`, newest first, read as `paging.read_decided` says: a first page of `take`,
        later ones `page_size` long."""
        path = "/api/v1/secret-access-requests"
        return paging.read_decided(lambda q: self._api("GET", path, params=q), path, status, since,
                                   take=take, size=self._client.page_size, tz=self._client.tz)

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
