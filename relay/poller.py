"""One poll cycle: read Secret Server as the relay account, diff, record in one transaction.

Reads are O(changes): the Pending listing (all pages), the requests decided since the last
successful poll (one page per decided status in steady state, newest first), then only what
the plan asks for. A request decided faster than one poll interval is therefore still told,
and the catch-up after downtime is the same read over a longer window.
Any Secret Server failure abandons the cycle before anything is diffed or written, so an
outage can never look like a wave of cancellations.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from . import sync
from .errors import AccessDenied, SecretServerError
from .followups import describe_steps
from .metrics import Metrics
from .model import (
    APPROVED,
    CANCELED,
    DENIED,
    EXPIRED,
    AccessRequest,
    Person,
    StepReviewer,
)
from .store import snapshot
from .store.health import StorageHealth
from .store.handle import Store

log = logging.getLogger(__name__)

PEOPLE_TTL = timedelta(hours=1)      # how long an SS user's name and e-mail are trusted
FOLDER_TTL_SECONDS = 3600.0
DECIDED = (APPROVED, DENIED, CANCELED, EXPIRED)   # read every cycle, newest decision first


class RelayReader(Protocol):
    """What the poll needs from Secret Server (relay.ss.client.SecretServerClient)."""

    def pending_index(self): ...          # .fingerprints {id: str}, .request(id) -> AccessRequest
    def decided_since(self, status: str, since: datetime) -> list[AccessRequest]: ...
    def get_request(self, request_id: int) -> AccessRequest: ...
    def step_reviewers(self, request_id: int) -> tuple[StepReviewer, ...]: ...
    def group_members(self, group_id: int) -> tuple[Person, ...]: ...
    def get_user(self, user_id: int) -> Person: ...
    def folder_name(self, folder_id: int) -> str: ...
    def folder(self, folder_id: int) -> tuple[str, str]: ...   # (name, full path)
    def current_user(self) -> Person: ...


@dataclass
class PollResult:
    ok: bool
    listed: int = 0
    added: int = 0                      # outbox rows added
    changed: frozenset[int] = frozenset()   # SS user ids whose view of requests changed
    error: str = ""


class Poller:
    def __init__(self, db: Store, ss: RelayReader, *, policy: sync.Policy,
                 catch_up_hours: float = 24, metrics: Metrics | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 storage: StorageHealth | None = None):
        self.db = db
        self.ss = ss
        self.policy = policy
        self.catch_up_hours = catch_up_hours
        self.metrics = metrics or Metrics()
        self.clock = clock
        self._folders: dict[int, tuple[str, float]] = {}
        self._cycle_lock = threading.Lock()
        self._folder_paths: dict[int, str] = {}
        self._self_id: int | None = None
        self.last_success: datetime | None = None     # of this process (readiness)
        self.listeners: list[Callable[[PollResult], None]] = []
        # Called inside the poll's transaction, after the diff and before it is recorded:
        # (db, known, observation, diff, now). relay.followups adds its events here.
        self.on_diff: list[Callable] = []
        self.storage = storage or StorageHealth()      # a full or locked database: a line a minute, no traceback

    def poll_once(self) -> PollResult:
        """One cycle; a call made while another runs (a nudge during the scheduled poll)
        waits for it, then polls again: two cycles never interleave."""
        with self._cycle_lock:
            return self._poll_once()

    def _poll_once(self) -> PollResult:
        started = time.perf_counter()
        try:
            result = self._cycle()
        except SecretServerError as exc:
            kind = type(exc).__name__
            self.metrics.poll_failures.labels(kind).inc()
            self.metrics.ss_errors.labels(kind).inc()
            with self.db.atomic():
                snapshot.set_state(self.db, "last_poll_error", f"{self.clock().isoformat()} {kind}: {exc}")
            log.warning("poll abandoned", extra={"reason": kind, "error": str(exc)})
            return PollResult(ok=False, error=f"{kind}: {exc}")
        except Exception as exc:        # a bug or a local failure (database): say so, try next time
            kind = type(exc).__name__
            self.metrics.poll_failures.labels(kind).inc()
            if not self.storage.failed("poll", exc):
                log.exception("poll failed", extra={"reason": kind})
            try:
                with self.db.atomic():
                    snapshot.set_state(self.db, "last_poll_error", f"{self.clock().isoformat()} {kind}: {exc}")
            except Exception:
                pass
            return PollResult(ok=False, error=f"{kind}: {exc}")
        finally:
            self.metrics.poll_duration.observe(time.perf_counter() - started)
        self.last_success = self.clock()
        self.metrics.pending_requests.set(result.listed)
        self.metrics.last_poll.set(self.clock().timestamp())
        for listener in self.listeners:
            try:
                listener(result)
            except Exception:
                log.exception("poll listener failed")
        return result

    def _cycle(self) -> PollResult:
        """List Pending, read what changed, read what was decided, diff, write in one
        transaction; the listeners hear who is affected (see `_poll_once`)."""
        now = self.clock()
        self._learn_self()
        known = snapshot.load_known(self.db)
        index = self.ss.pending_index()
        plan = sync.plan(known, index.fingerprints, now)
        asked = self._read_reviewers(plan.reviewer_reads)

        # Decisions are read last, after the Pending listing and the reviewers: a request in
        # both listings was decided in between, and is never asked about.
        since = self._window(now)
        decided = self._decided(since)
        listed = {rid: fp for rid, fp in index.fingerprints.items() if rid not in decided}
        listing = {rid: index.request(rid) for rid in plan.reviewer_reads if rid in listed}   # parse only what changed
        resolved = self._resolved(known, plan, decided)
        unseen = self._unseen(known, decided)

        touched = [*listing.values(), *(r for r in resolved.values() if r), *unseen.values()]
        people, fetched = self._people(set(asked.members) | {r.requester_id for r in touched}, asked.members, now)
        context = self._context(touched, people, asked)
        obs = sync.Observation(now=now, pending=listing, listed=listed.keys(), reviewers=asked.reviewers,
                               resolved=resolved, decided=unseen, since=since, context=context)
        with self.db.atomic():
            told = snapshot.told(self.db, set(listing) | set(resolved) | set(unseen))
            result = sync.diff(known, obs, told, self.policy)
            for hook in self.on_diff:
                hook(self.db, known, obs, result, now)
            snapshot.remember_people(self.db, [people[i] for i in fetched], now)
            added = snapshot.record_poll(self.db, result, now=now, context=context)
            self._record_unreadable(asked.unreadable, now)
        if added or result.upserts:
            log.info("poll recorded changes", extra={"listed": len(index.fingerprints), "upserts": len(result.upserts),
                                                     "notifications": added})
        return PollResult(ok=True, listed=len(index.fingerprints), added=added,
                          changed=_affected_people(result, known))

    def _learn_self(self) -> None:
        if self._self_id is None:
            # The relay account sits in the approver groups it watches: never ask it to review.
            self._self_id = self.ss.current_user().id

    def _read_reviewers(self, request_ids: Iterable[int]) -> _Reviewers:
        """The current step's reviewers of each request (members of its approver groups,
        never the relay account). A request whose steps SS will not show is left out (read
        again at the next poll); an unreadable group counts as empty."""
        groups = _GroupReader(self.ss)
        out = _Reviewers()
        for rid in request_ids:
            try:
                steps = self.ss.step_reviewers(rid)
            except AccessDenied:
                # Not stored this cycle (no reviewers known): read again at the next poll.
                log.warning("reviewers of a request are not readable by the relay account",
                            extra={"request_id": rid})
                continue
            ids: set[int] = set()
            out.steps[rid] = steps
            for step in steps:
                for person in groups.members(step, rid):
                    if person.id != self._self_id:
                        out.members.setdefault(person.id, person)
                        ids.add(person.id)
            out.reviewers[rid] = tuple(sorted(ids))
        out.unreadable = groups.unreadable
        out.groups = groups.cache
        return out

    def _unseen(self, known: Mapping[int, sync.Known],
                decided: Mapping[int, AccessRequest]) -> dict[int, AccessRequest]:
        """Decided requests the poll does not watch and the snapshot never held (one settled
        earlier was told then, if at all)."""
        unseen = {rid: req for rid, req in decided.items() if rid not in known}
        for rid in snapshot.seen(self.db, unseen):
            del unseen[rid]
        return unseen

    def _context(self, touched: Iterable[AccessRequest], people: Mapping[int, Person],
                 asked: _Reviewers) -> dict[int, dict[str, Any]]:
        """Per request that changed: its folder's name and path, its requester's name, and who
        is asked as what, for the messages."""
        context: dict[int, dict[str, Any]] = {}
        for req in touched:
            requester = people.get(req.requester_id)
            context[req.id] = {
                "folder_name": self._folder(req.folder_id),
                "folder_path": self._folder_paths.get(req.folder_id or 0, ""),
                "requester_name": requester.name if requester else req.requester_username,
            }
            if req.id in asked.steps:   # who is asked, and as what (named reviewer or group member)
                context[req.id]["reviewer_steps"] = describe_steps(asked.steps[req.id], asked.groups, self._self_id)
        return context

    def _record_unreadable(self, unreadable: Mapping[int, str], now: datetime) -> None:
        """For `ssrelay status`: whose members could not be asked."""
        if unreadable:
            snapshot.set_state(self.db, "unreadable_groups", json.dumps(
                {"at": now.isoformat(), "groups": {str(k): v for k, v in sorted(unreadable.items())}}))

    def _resolved(self, known: dict[int, sync.Known], plan: sync.Plan,
                  decided: dict[int, AccessRequest]) -> dict[int, AccessRequest | None]:
        """The current state of watched requests that changed or left the Pending listing:
        from the decided listing where it has them, else read one by one (None: unreadable)."""
        resolved: dict[int, AccessRequest | None] = {
            rid: req for rid, req in decided.items()
            if rid in known and (req.status != known[rid].status or req.fingerprint != known[rid].fingerprint)}
        for rid in plan.request_reads:
            if rid in decided:
                resolved[rid] = decided[rid]
                continue
            try:
                resolved[rid] = self.ss.get_request(rid)
            except AccessDenied:
                resolved[rid] = None
        return resolved

    def _window(self, now: datetime) -> datetime | None:
        last = snapshot.get_state(self.db, "last_successful_poll")
        return sync.decision_window(datetime.fromisoformat(last) if last else None, now, self.catch_up_hours)

    def _decided(self, since: datetime | None) -> dict[int, AccessRequest]:
        """Requests decided since `since`, by id (None: a fresh database, nothing is news)."""
        out: dict[int, AccessRequest] = {}
        if since is None:
            return out
        for status in DECIDED:     # a request in two listings changed in between: the later read wins
            for req in self.ss.decided_since(status, since):
                out[req.id] = req
        return out

    def _people(self, ids: set[int], hints: dict[int, Person],
                now: datetime) -> tuple[dict[int, Person], set[int]]:
        """Names and e-mails of `ids`: from the store while fresh, else read from SS (returned
        as the second element, to be remembered)."""
        fresh = snapshot.known_people(self.db, now - PEOPLE_TTL)
        fetched: set[int] = set()
        out = {}
        for uid in sorted(ids):
            if uid in fresh:
                out[uid] = fresh[uid]
                continue
            try:
                out[uid] = self.ss.get_user(uid)
            except AccessDenied:
                hint = hints.get(uid)
                out[uid] = Person(uid, hint.username if hint else f"user{uid}", hint.display_name if hint else "")
            fetched.add(uid)
        return out, fetched

    def _folder(self, folder_id: int | None) -> str:
        if not folder_id:
            return ""
        hit = self._folders.get(folder_id)
        if hit and time.monotonic() - hit[1] < FOLDER_TTL_SECONDS:
            return hit[0]
        try:
            name, self._folder_paths[folder_id] = self.ss.folder(folder_id)
        except AccessDenied:
            name = ""
        self._folders[folder_id] = (name, time.monotonic())
        return name


@dataclass
class _Reviewers:
    """What reading the current steps' reviewers found."""

    reviewers: dict[int, tuple[int, ...]] = field(default_factory=dict)   # per request: SS user ids
    members: dict[int, Person] = field(default_factory=dict)              # everyone met, by id
    unreadable: dict[int, str] = field(default_factory=dict)              # group id -> display name
    steps: dict[int, tuple[StepReviewer, ...]] = field(default_factory=dict)   # per request, as SS gave them
    groups: dict[int, tuple[Person, ...]] = field(default_factory=dict)   # members of each group read


class _GroupReader:
    """Approver groups' members, each group read once per cycle."""

    def __init__(self, ss: RelayReader):
        self.ss = ss
        self.cache: dict[int, tuple[Person, ...]] = {}
        self.unreadable: dict[int, str] = {}    # reviewer groups SS will not show the relay account

    def members(self, step: StepReviewer, request_id: int) -> tuple[Person, ...]:
        if step.group_id not in self.cache:
            try:
                self.cache[step.group_id] = self.ss.group_members(step.group_id)
            except AccessDenied:
                # One unreadable group must not silence every other reviewer.
                log.warning("reviewer group not readable by the relay account",
                            extra={"group_id": step.group_id, "request_id": request_id})
                self.cache[step.group_id] = ()
                self.unreadable[step.group_id] = step.display_name
        return self.cache[step.group_id]


def _affected_people(result: sync.Diff, known: Mapping[int, sync.Known]) -> frozenset[int]:
    """SS user ids whose view of requests changed: whoever is told something, the requester
    and reviewers of every stored change, and those of every request gone from view."""
    changed = {ev.recipient for ev in result.events}
    for req, revs in result.upserts:
        changed.add(req.requester_id)
        changed.update(revs)
    for rid in result.gone:
        if rid in known:
            changed.add(known[rid].requester_id)
            changed.update(known[rid].reviewers)
    return frozenset(changed)
