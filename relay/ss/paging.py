"""Paged listings read whole: every record of a listing read consistently while it changes
(`read_all`), and the newest-first read of recently decided requests (`read_decided`).
`get(params)` makes one GET of the listing with the account's token."""

from __future__ import annotations

import logging
from datetime import datetime, timezone, tzinfo
from typing import Any, Callable

from relay.errors import SecretServerBadResponse
from relay.model import APPROVED, CANCELED, DENIED, EXPIRED, AccessRequest
from relay.ss import parse

log = logging.getLogger("relay.ss")

MAX_REREADS = 20                           # a listing that shifts more often than this is abandoned
REQUEST_KEY = "secretAccessRequestId"


# What a decided request's listing is sorted by (newest first) to read only recent decisions:
# SecretAccessModel properties, named as SS's PowerShell module names them (`SecretId`).
DECISION_SORT_FIELD: dict[str, str] = {APPROVED: "ResponseDate", DENIED: "ResponseDate",
                                       CANCELED: "ResponseDate", EXPIRED: "ExpirationDate"}
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


def read_all(get: Callable[[dict], Any], path: str, params: dict | None = None, *,
             key: str | None, size: int) -> tuple[list, int]:
    """Every record of a paged listing, `size` at a time, and its `total`.

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
        page = get({**query, "skip": skip, "take": size})
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
        if skip == 0 and 2 <= len(recs) < min(size, total):
            # A first page shorter than asked while the total says more: this server holds
            # fewer records per page than `take` asks for. Its page length is the page size
            # from here on (a short page is then the last one, as usual).
            size = len(recs)
            overlap = max(1, size // 20)
        if not recs or len(recs) < size or skip + len(recs) >= total:
            out = [merged[k] for k in sorted(merged)]
            return out, len(out)
        skip += len(recs) - overlap


def read_decided(get: Callable[[dict], Any], path: str, status: str, since: datetime, *,
                 take: int, size: int, tz: tzinfo) -> list[AccessRequest]:
    """Requests in `status` (Approved, Denied, Canceled, Expired) decided at or after
    `since`, newest first. The decision time is `responseDate`; for Expired it is
    `expirationDate` (when the access ended). A record without one is never in the window.

    Pages are asked sorted by that date, descending, and reading stops at the first record
    older than `since`: one page of `take` in steady state (later pages, after downtime,
    are `size` long). The order is trusted only when
    the page's `sortBy` echo names it and the dates really descend; otherwise every page
    is read (`size` at a time) and filtered, so a server that ignores the sort order
    costs more reads, never a missed decision."""
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
        n = take if skip == 0 and trusted else size
        page = get({**base, "skip": skip, "take": n})
        recs = [parse.parse_access_request(r, tz, path=path)
                for r in parse.records(page, path)]
        # No shrink check here (unlike the Pending listing): decided listings change as
        # access expires; a record missed at a page boundary is read by the next poll,
        # whose window overlaps this one.
        total = page.get("total")
        if isinstance(total, bool) or not isinstance(total, int):
            raise SecretServerBadResponse("paged listing without total", path=path)
        if trusted and recs and not _echoes_sort(page, name):   # an empty page proves nothing
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
