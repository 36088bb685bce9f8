"""The fault harness: `ssrelay run` as a real subprocess against the sandbox stand-ins, a
steady workload of access requests, faults injected one after another, then one invariant
checked over everything Slack recorded.

    owed         every notification the relay owes is delivered exactly once, except at most
                 one extra per SIGKILL (the message inside the Slack call when it died)
    no false     no "approved"/"denied"/"canceled"/"has ended" for a request that was not
    no stale     no approval message after the relay had seen the request decided

Faults are a list of `FaultKind`s (`FAULTS`), each two small functions (inject, clear): add a
kind by appending one. `short` marks the kinds the CI run includes. The long mode
(`python -m tests.faults --long`) runs every kind, at least 30 SIGKILLs and a soak, and prints
a report table.
"""

from __future__ import annotations

import heapq
import json
import random
import re
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from relay.sandbox import scenario

from .disk import SmallVolume
from .process import RelayProcess

POLL_SECONDS = 1.0
BUSY_TIMEOUT_SECONDS = 0.5
HOLD_SECONDS = 4.0            # a request stays undecided at least this long (the relay sees it Pending)
QUICK_SECONDS = 0.1           # a quick decision: approved or denied this soon after creation
QUICK_SHARE = 0.2             # share of requests decided quickly
SLOW_ANSWER_SECONDS = 2.0     # a slow Slack answer, well inside the relay's client timeout
# Slack budgets the relay is configured with (calls a minute); the stand-in enforces them too,
# so a burst past the pacing shows up as 429s and in the busiest second.
BUDGETS = {"chat.postEphemeral": 300, "chat.postMessage": 300, "chat.update": 300}
# With DM cards, chat.postMessage carries the asks too (four posts a request instead of two):
# twice the budget keeps it as loaded as in ephemeral mode.
DM_BUDGETS = {**BUDGETS, "chat.postMessage": 600}
DELIVERY_METHODS = ("chat.postEphemeral", "chat.postMessage", "conversations.open", "users.lookupByEmail",
                    "chat.update", "conversations.history")
LISTING = re.compile(r"^/api/v1/secret-access-requests$")


# ---------------------------------------------------------------------- the world the harness drives
@dataclass
class Request:
    id: int
    secret: str
    created: float
    fate: str                               # approved, denied, canceled, expired (approved, then over)
    quick: bool = False                     # decided QUICK_SECONDS after creation, before any poll can settle
    decided: float | None = None            # when SS changed it from Pending
    outcome: str | None = None              # what SS says now: approved, denied, canceled, expired
    expired: float | None = None


@dataclass
class Window:
    kind: str
    start: float
    end: float = 0.0


@dataclass
class Run:
    sandbox: scenario.Sandbox
    relay: RelayProcess
    volume: SmallVolume | None
    rng: random.Random
    requests: dict[int, Request] = field(default_factory=dict)
    windows: list[Window] = field(default_factory=list)   # faults, and the relay being down
    kills: int = 0
    term_seconds: list[float] = field(default_factory=list)
    injected: Counter = field(default_factory=Counter)
    lock: sqlite3.Connection | None = None
    hang: threading.Event | None = None
    workload: Workload | None = None
    messages: str = "ephemeral"             # slack.approver_messages: ephemeral, or dm (cards)

    def restart(self) -> None:
        self.relay.start()


class Workload:
    """Creates a request every `every` seconds (one secret each, so every message names its
    request) and decides each after HOLD_SECONDS or more: approve, deny, cancel, or approve and
    later expire. A share (QUICK_SHARE) is approved or denied QUICK_SECONDS after creation: the
    requester is owed the outcome, the reviewers are never to be asked."""

    FATES = (("approved", 0.35), ("denied", 0.2), ("canceled", 0.2), ("expired", 0.25))

    def __init__(self, run: Run, every: float = 0.8):
        self.run = run
        self.every = every
        self.stop = threading.Event()
        self._due: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = 0
        self._thread = threading.Thread(target=self._loop, name="workload", daemon=True)
        self._n = 0
        self._mutex = threading.RLock()       # the workload thread and a fault may both create
        self._group = run.sandbox.groups["approvers"]
        self._folder = run.sandbox.ss.add_folder("Harness", path="\\Harness")

    def start(self) -> Workload:
        self._thread.start()
        return self

    def finish(self) -> None:
        """Stop creating; carry out every decision already planned."""
        self.stop.set()
        self._thread.join(timeout=60)
        while self._due:
            at, _, action = heapq.heappop(self._due)
            threading.Event().wait(max(0.0, at - time.monotonic()))
            action()

    def _later(self, delay: float, action: Callable[[], None]) -> None:
        with self._mutex:
            self._seq += 1
            heapq.heappush(self._due, (time.monotonic() + delay, self._seq, action))

    def burst(self, n: int) -> None:
        """`n` requests at once: a batch for the relay to be in the middle of."""
        for _ in range(n):
            self._create()

    def _loop(self) -> None:
        next_create = time.monotonic()
        while not self.stop.is_set():
            now = time.monotonic()
            if now >= next_create:
                self._create()
                next_create = now + self.every
            while True:
                with self._mutex:
                    if not (self._due and self._due[0][0] <= time.monotonic()):
                        break
                    action = heapq.heappop(self._due)[2]
                action()
            with self._mutex:
                wake = min([next_create] + [d[0] for d in self._due[:1]])
            self.stop.wait(max(0.0, wake - time.monotonic()))

    def _create(self) -> None:
        sb, rng = self.run.sandbox, self.run.rng
        with self._mutex:
            self._n += 1
            name = f"hx{self._n:04d}"
        secret = sb.ss.add_secret(name, folder_id=self._folder, template_name="Password",
                                  viewers=[sb[n].ss_id for n in ("rita", "alice", "bob")],
                                  requires_approval=True, approvers=[self._group])
        rid = sb.ss.create_request(secret, sb["rita"].ss_id, comment=f"harness {name}")
        quick = rng.random() < QUICK_SHARE
        if quick:
            fate = rng.choice(("approved", "denied"))
        else:
            fate = rng.choices([f for f, _ in self.FATES], [w for _, w in self.FATES])[0]
        req = Request(rid, name, time.monotonic(), fate, quick=quick)
        self.run.requests[rid] = req
        delay = QUICK_SECONDS if quick else HOLD_SECONDS + rng.uniform(0, 3)
        self._later(delay, lambda: self._decide(req))

    def _decide(self, req: Request) -> None:
        ss, sb = self.run.sandbox.ss, self.run.sandbox
        if req.fate == "denied":
            ss.deny(req.id, sb["alice"].ss_id, f"no {req.secret}")
            req.outcome = "denied"
        elif req.fate == "canceled":
            ss.cancel(req.id)
            req.outcome = "canceled"
        else:
            # The relay looks at an approval again when its window ends: give it one that ends.
            window = HOLD_SECONDS + self.run.rng.uniform(0, 2)
            until = ss.now() + timedelta(seconds=window) if req.fate == "expired" else None
            ss.approve(req.id, sb["bob"].ss_id, f"ok {req.secret}", expiration=until)
            req.outcome = "approved"
            if req.fate == "expired":
                self._later(window, lambda: self._expire(req))
        req.decided = time.monotonic()

    def _expire(self, req: Request) -> None:
        self.run.sandbox.ss.expire(req.id)
        req.outcome = "expired"
        req.expired = time.monotonic()


# ---------------------------------------------------------------------- fault kinds
@dataclass(frozen=True)
class FaultKind:
    name: str
    inject: Callable[[Run], None]
    clear: Callable[[Run], None]
    short: bool = True                     # part of the CI run
    needs_volume: bool = False


def _noop(run: Run) -> None:
    pass


def _sigkill(run: Run) -> None:
    # A random point of the relay's work: somewhere in the next second.
    threading.Event().wait(run.rng.uniform(0, 1.0))
    run.relay.kill()
    run.kills += 1
    run.restart()


def _sigterm(run: Run) -> None:
    """SIGTERM in the middle of a batch: it must neither burst the rest out nor take long."""
    assert run.workload is not None
    asks = "chat.postMessage" if run.messages == "dm" else "chat.postEphemeral"
    before = len(run.sandbox.slack.calls_to(asks))
    run.workload.burst(6)
    _wait(lambda: len(run.sandbox.slack.calls_to(asks)) >= before + 2, 10)
    run.term_seconds.append(run.relay.terminate(timeout=30))
    run.restart()


def _sigterm_ss_hang(run: Run) -> None:
    """SIGTERM while a poll hangs on Secret Server."""
    _ss_hang(run)
    _wait(lambda: any(c.status == 0 for c in run.sandbox.ss.calls_to(r"/api/v1/")), 10)
    run.term_seconds.append(run.relay.terminate(timeout=40))
    _ss_clear(run)
    run.restart()


def _disk_full_restart(run: Run) -> None:
    """The disk fills, the relay dies and starts again on the full disk: it must come up."""
    _disk_full(run)
    threading.Event().wait(0.5)
    run.relay.kill()
    run.kills += 1
    run.restart()
    _wait(lambda: run.relay.get("/readyz").status_code == 503, 10)


def _wait(check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    tick = threading.Event()
    while not check():
        assert time.monotonic() < deadline, "the harness waited too long for its own setup"
        tick.wait(0.05)


def _ss(status: int, **kw) -> Callable[[Run], None]:
    def inject(run: Run) -> None:
        run.sandbox.ss.fail(r"/api/v1/", status=status, times=10_000, **kw)
    return inject


def _ss_hang(run: Run) -> None:
    run.hang = threading.Event()
    run.sandbox.ss.fail(r"/api/v1/", hang=run.hang, times=10_000)


def _ss_clear(run: Run) -> None:
    run.sandbox.ss.clear_faults()          # releases a hang too


def _slack(**kw) -> Callable[[Run], None]:
    def inject(run: Run) -> None:
        for method in DELIVERY_METHODS:
            run.sandbox.slack.fail(method, times=None, **kw)
    return inject


def _slack_posts(**kw) -> Callable[[Run], None]:
    """A fault on the two posting methods only: every post in the window (DM, channel and
    ephemeral) is served, then its answer is lost or late."""
    def inject(run: Run) -> None:
        for method in ("chat.postMessage", "chat.postEphemeral"):
            run.sandbox.slack.fail(method, times=None, **kw)
    return inject


def _slack_clear(run: Run) -> None:
    run.sandbox.slack.clear_faults()


def _slack_refuse(run: Run) -> None:
    run.sandbox.slack.refuse_connections()


def _slack_accept(run: Run) -> None:
    run.sandbox.slack.accept_connections()


def _db_lock(run: Run) -> None:
    run.lock = sqlite3.connect(run.relay.db_path, timeout=10, isolation_level=None, check_same_thread=False)
    run.lock.execute("BEGIN EXCLUSIVE")


def _db_unlock(run: Run) -> None:
    if run.lock is not None:
        run.lock.rollback()
        run.lock.close()
        run.lock = None


def _disk_full(run: Run) -> None:
    assert run.volume is not None
    run.volume.fill()


def _disk_free(run: Run) -> None:
    assert run.volume is not None
    run.volume.free()


FAULTS: list[FaultKind] = [
    FaultKind("sigkill", _sigkill, _noop),
    FaultKind("sigterm", _sigterm, _noop),
    FaultKind("sigterm_ss_hang", _sigterm_ss_hang, _noop),
    FaultKind("ss_5xx", _ss(503), _ss_clear),
    FaultKind("ss_429", _ss(429, retry_after=1), _ss_clear),
    FaultKind("ss_hang", _ss_hang, _ss_clear),
    FaultKind("ss_html", _ss(200, html=True), _ss_clear, short=False),
    FaultKind("ss_401", _ss(401), _ss_clear, short=False),
    FaultKind("slack_429", _slack(status=429, retry_after=1), _slack_clear),
    FaultKind("slack_5xx", _slack(status=503), _slack_clear),
    FaultKind("slack_refused", _slack_refuse, _slack_accept),
    FaultKind("slack_reset_after_accept", _slack_posts(reset_after_accept=True), _slack_clear),
    FaultKind("slack_slow_answer", _slack_posts(answer_delay=SLOW_ANSWER_SECONDS), _slack_clear),
    FaultKind("slack_invalid_auth", _slack(error="invalid_auth"), _slack_clear, short=False),
    FaultKind("db_lock", _db_lock, _db_unlock),
    FaultKind("disk_full", _disk_full, _disk_free, needs_volume=True),
    FaultKind("disk_full_restart", _disk_full_restart, _disk_free, needs_volume=True),
]


# ---------------------------------------------------------------------- driving a run
def last_poll(run: Run) -> str | None:
    try:
        con = sqlite3.connect(f"file:{run.relay.db_path}?mode=ro", uri=True, timeout=1)
        try:
            row = con.execute("SELECT value FROM relay_state WHERE key = 'last_successful_poll'").fetchone()
            return row[0] if row else None
        finally:
            con.close()
    except sqlite3.Error:
        return None


def wait_recovered(run: Run, timeout: float = 20.0) -> bool:
    """Until the relay has finished a poll after now (True), or `timeout` passed (False)."""
    before = last_poll(run)
    deadline = time.monotonic() + timeout
    tick = threading.Event()
    while time.monotonic() < deadline:
        now = last_poll(run)
        if now is not None and now != before:
            return True
        assert run.relay.alive(), f"the relay died: {run.relay.tail()}"
        tick.wait(0.1)
    return False


def outbox_open(run: Run) -> int:
    return run.relay.count("SELECT COUNT(*) FROM outbox WHERE state IN ('pending', 'sending')")


def run_harness(kinds: list[FaultKind], *, workdir: Path, seed: int = 1, rounds: int = 1,
                fault_seconds: float = 1.5, gap_seconds: float = 0.5, min_kills: int = 0,
                soak_seconds: float = 0.0, use_volume: bool = True, messages: str = "ephemeral",
                log: Callable[[str], None] = lambda s: None) -> Report:
    workdir.mkdir(parents=True, exist_ok=True)
    volume = None
    if use_volume and any(k.needs_volume for k in kinds):
        volume = SmallVolume(workdir / "vol", size="16m")
        if not volume.mount():
            volume = None
    kinds = [k for k in kinds if not k.needs_volume or volume is not None]
    db_dir = volume.path if volume else workdir
    sb = scenario.start()
    rng = random.Random(seed)
    budgets = DM_BUDGETS if messages == "dm" else BUDGETS
    relay = RelayProcess(sb, db_dir / "relay.db", workdir / "relay.log",
                         POLL_INTERVAL_SECONDS=f"{POLL_SECONDS:g}", SLACK_APPROVER_MESSAGES=messages,
                         SLACK_RATE_LIMITS=json.dumps({**budgets, "conversations.open": 6000,
                                                       "users.lookupByEmail": 6000}),
                         STORAGE_BUSY_TIMEOUT_SECONDS=f"{BUSY_TIMEOUT_SECONDS:g}")
    for method, per_minute in budgets.items():
        sb.slack.set_rate_limit(method, per_minute)
    run = Run(sb, relay, volume, rng, messages=messages)
    work = Workload(run)
    run.workload = work
    started = time.monotonic()
    try:
        relay.start()
        work.start()
        wait_recovered(run)
        plan = [k for _ in range(rounds) for k in kinds]
        kill = next((k for k in kinds if k.name == "sigkill"), None)
        while kill and sum(1 for k in plan if k is kill) < min_kills:
            plan.insert(rng.randrange(len(plan) + 1), kill)
        for i, kind in enumerate(plan):
            log(f"[{time.monotonic() - started:6.1f}s] {i + 1}/{len(plan)} {kind.name}")
            w = Window(kind.name, time.monotonic())
            run.windows.append(w)
            kind.inject(run)
            run.injected[kind.name] += 1
            threading.Event().wait(fault_seconds if kind.clear is not _noop else 0)
            kind.clear(run)
            wait_recovered(run)
            w.end = time.monotonic()
            threading.Event().wait(gap_seconds)
        soak_start = time.monotonic()
        soak_end = soak_start + soak_seconds
        rss_first: tuple[float, int] | None = None      # after the soak's first minute
        while time.monotonic() < soak_end:
            assert relay.alive(), relay.tail()
            if rss_first is None and time.monotonic() - soak_start >= 60:
                rss_first = (time.monotonic(), relay_rss_kib(relay))
            threading.Event().wait(min(5.0, max(0.0, soak_end - time.monotonic())))
        soak_growth = None
        if rss_first is not None:
            minutes = (time.monotonic() - rss_first[0]) / 60
            soak_growth = (relay_rss_kib(relay) - rss_first[1]) / 1024 / minutes if minutes > 0 else None
        db_bytes = sum(f.stat().st_size for f in db_dir.glob("relay.db*"))
        work.finish()
        # Drain: everything owed has time to go out.
        deadline = time.monotonic() + 60
        quiet = 0
        while time.monotonic() < deadline and quiet < 3:
            wait_recovered(run, timeout=5)
            quiet = quiet + 1 if outbox_open(run) == 0 else 0
        elapsed = time.monotonic() - started
        calls = sb.slack.calls
        listings = [c for c in sb.ss.calls if c.method == "GET" and LISTING.match(c.path) and c.status == 200
                    and c.query.get("filter.status") == "Pending" and c.user == scenario.RELAY_USERNAME]
        rss = relay_rss_kib(relay)
        run.term_seconds.append(relay.terminate(timeout=30))
        report = check(run, calls, listings, elapsed=elapsed, rss_kib=rss, unsure=unsure_ephemerals(run))
        report.soak_seconds = soak_seconds
        report.rss_growth_mib_per_minute = soak_growth
        report.db_bytes = db_bytes
        return report
    finally:
        relay.kill()
        work.stop.set()
        _db_unlock(run)
        if run.hang:
            run.hang.set()
        sb.stop()
        if volume:
            volume.free()
            volume.unmount()


def relay_rss_kib(relay: RelayProcess) -> int:
    if relay.proc is None:
        return 0
    try:
        for line in Path(f"/proc/{relay.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, AttributeError):
        pass
    return 0


# ---------------------------------------------------------------------- the invariant
@dataclass
class Report:
    requests: int = 0
    owed: int = 0
    delivered: int = 0
    lost: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    allowed_duplicates: int = 0
    false_notices: list[str] = field(default_factory=list)
    stale_asks: list[str] = field(default_factory=list)
    unpaced: list[str] = field(default_factory=list)       # a second with more calls than the budget
    unsure_not_repeated: list[str] = field(default_factory=list)   # ephemerals in doubt, by design not repeated
    cancels_without_ask: list[str] = field(default_factory=list)
    quick: int = 0                                          # requests decided QUICK_SECONDS after creation
    quick_told_once: int = 0                                # ... whose requester got the outcome exactly once
    quick_seen_pending: int = 0                             # ... that a Pending listing caught in its 0.1 s
    quick_asks: list[str] = field(default_factory=list)     # asks for one no listing saw Pending
    injected: Counter = field(default_factory=Counter)
    kills: int = 0
    max_term_seconds: float = 0.0
    elapsed: float = 0.0
    rss_kib: int = 0
    soak_seconds: float = 0.0
    rss_growth_mib_per_minute: float | None = None     # during the soak, after its first minute
    db_bytes: int = 0

    @property
    def duplicates_outside_window(self) -> int:
        return max(0, len(self.duplicates) - self.allowed_duplicates)

    @property
    def ok(self) -> bool:
        return not self.lost and not self.false_notices and not self.stale_asks and not self.unpaced \
            and not self.quick_asks and self.quick_told_once == self.quick \
            and self.duplicates_outside_window == 0 and self.max_term_seconds <= 5.0

    def table(self) -> str:
        rows = [
            ("requests driven", self.requests),
            ("faults injected", ", ".join(f"{k} {v}" for k, v in sorted(self.injected.items()))),
            ("SIGKILLs", self.kills),
            ("notifications owed", self.owed),
            ("delivered", self.delivered),
            ("lost", len(self.lost)),
            ("ephemerals in doubt, not repeated (at most once)", len(self.unsure_not_repeated)),
            ("duplicates (allowed: one per SIGKILL)", f"{len(self.duplicates)} ({self.allowed_duplicates})"),
            ("duplicates outside the window", self.duplicates_outside_window),
            ("false notices", len(self.false_notices)),
            ("stale asks", len(self.stale_asks)),
            ("seconds over a Slack method's budget", len(self.unpaced)),
            ("cancel notices to reviewers never asked", len(self.cancels_without_ask)),
            (f"quick decisions ({QUICK_SECONDS:g} s): requester told exactly once",
             f"{self.quick_told_once} of {self.quick}"),
            ("quick decisions asked to reviewers (no poll saw them Pending)", len(self.quick_asks)),
            ("quick decisions a poll caught Pending (asks allowed)", self.quick_seen_pending),
            ("slowest SIGTERM to exit", f"{self.max_term_seconds:.2f} s"),
            ("run time", f"{self.elapsed:.0f} s"),
            ("relay RSS at the end", f"{self.rss_kib / 1024:.1f} MiB"),
            ("database and WAL at the end", f"{self.db_bytes / 1024 / 1024:.1f} MiB"),
        ]
        if self.rss_growth_mib_per_minute is not None:
            rows.append((f"RSS growth in the {self.soak_seconds / 60:.0f}-minute soak, after its first minute",
                         f"{self.rss_growth_mib_per_minute:.2f} MiB/min"))
        width = max(len(r[0]) for r in rows)
        out = [f"| {'what':<{width}} | result |", f"|{'-' * (width + 2)}|--------|"]
        out += [f"| {k:<{width}} | {v} |" for k, v in rows]
        return "\n".join(out)

    def details(self) -> str:
        parts = []
        for name in ("lost", "unsure_not_repeated", "duplicates", "false_notices", "stale_asks", "unpaced",
                     "cancels_without_ask", "quick_asks"):
            items = getattr(self, name)
            if items:
                parts.append(f"{name}: " + "; ".join(items[:20]))
        return "\n".join(parts)


SECRET = re.compile(r"hx\d{4}")
KIND_WORDS = (("canceled", "canceled the request for"), ("approved", "was approved by"),
              ("denied", "was denied by"), ("expired", "has ended"), ("ask", "requests access to"))
# A reviewer's DM card rewritten in place (dm mode): canceled, or closed with the decision.
CARD_WORDS = (("canceled", "Canceled by"), ("closed", "Approved by"), ("closed", "Denied by"),
              ("closed", "Approved access has expired"))


def classify(call, card_owners: dict[str, str] | None = None) -> tuple[str, str, str] | None:
    """(kind, Slack user, secret) of a message call, or None for other calls. A chat.update of
    a card is named by the owner of its DM channel (`card_owners`)."""
    text = call.args.get("text") or ""
    secret = SECRET.search(text)
    if secret is None:
        return None
    if call.method == "chat.update":
        owner = (card_owners or {}).get(call.args.get("channel") or "")
        return next(((kind, owner, secret.group(0)) for kind, words in CARD_WORDS if owner and words in text), None)
    if call.method not in ("chat.postEphemeral", "chat.postMessage"):
        return None
    for kind, words in KIND_WORDS:
        if words in text:
            return kind, call.args.get("user") or call.args.get("channel") or "", secret.group(0)
    return None


def unsure_ephemerals(run: Run) -> set[tuple[str, str]]:
    """(Slack user, secret) of ephemeral posts whose answer was lost (a reset connection): the
    relay counts them as sent and never repeats them (at most once, README), so they may be
    missing from what Slack recorded."""
    by_id = {r.id: r.secret for r in run.requests.values()}
    slack_of = {p.ss_id: p.slack_id for p in run.sandbox.people.values()}
    out: set[tuple[str, str]] = set()
    try:
        con = sqlite3.connect(f"file:{run.relay.db_path}?mode=ro", uri=True, timeout=5)
        try:
            rows = con.execute("SELECT request_id, recipient FROM outbox WHERE state = 'sent' "
                               "AND last_error LIKE '%cannot be looked up%'").fetchall()
        finally:
            con.close()
    except sqlite3.Error:
        return out
    for rid, recipient in rows:
        if rid in by_id and recipient in slack_of:
            out.add((slack_of[recipient], by_id[rid]))
    return out


def check(run: Run, calls, listings, *, elapsed: float, rss_kib: int,
          unsure: set[tuple[str, str]] | None = None) -> Report:
    unsure = unsure or set()
    sb = run.sandbox
    rita, reviewers = sb["rita"].slack_id, [sb["alice"].slack_id, sb["bob"].slack_id]
    by_secret = {r.secret: r for r in run.requests.values()}
    card_owners = {sb.slack.dm_channel(v): v for v in reviewers}
    got: Counter = Counter()
    rewritten: set[tuple[str, str, str]] = set()       # cards rewritten in place: once is enough
    first_at: dict[tuple[str, str, str], float] = {}
    attempted: set[tuple[str, str]] = set()
    for c in calls:
        key = classify(c, card_owners)
        if key is None:
            continue
        if key[0] == "ask":
            attempted.add((key[1], key[2]))
        if c.ok and c.method == "chat.update":
            rewritten.add(key)
        elif c.ok:
            got[key] += 1
            first_at.setdefault(key, c.at)
    for key in rewritten:       # a rewrite repeated is no visible duplicate; a rewrite plus a post is
        got[key] += 1
    rep = Report(requests=len(run.requests), injected=run.injected, kills=run.kills,
                 allowed_duplicates=run.kills, elapsed=elapsed, rss_kib=rss_kib,
                 max_term_seconds=max(run.term_seconds, default=0.0))
    owed: set[tuple[str, str, str]] = set()
    optional: set[tuple[str, str, str]] = set()
    clean = clean_intervals(run, elapsed_end=time.monotonic())
    for r in run.requests.values():
        pending_until = r.decided if r.decided is not None else time.monotonic()
        for v in reviewers:
            ask = ("ask", v, r.secret)
            if seen_pending(r.created, pending_until, clean):
                owed.add(ask)
            else:
                optional.add(ask)
            if r.outcome == "canceled" and got[ask]:
                owed.add(("canceled", v, r.secret))
            elif r.outcome == "canceled":
                optional.add(("canceled", v, r.secret))
            elif run.messages == "dm" and r.outcome is not None:     # the card ends in the decision
                (owed if got[ask] else optional).add(("closed", v, r.secret))
        if r.outcome in ("approved", "expired"):
            owed.add(("approved", rita, r.secret))
        if r.outcome == "denied":
            owed.add(("denied", rita, r.secret))
        if r.outcome == "expired":
            owed.add(("expired", rita, r.secret))
    rep.owed = len(owed)
    for key in owed:
        if got[key] == 0:
            if (key[1], key[2]) in unsure:     # an ephemeral whose answer was lost: at most once
                rep.unsure_not_repeated.append(":".join(key))
            else:
                rep.lost.append(":".join(key))
    for key, n in got.items():
        if n > 1:
            rep.duplicates.extend([":".join(key)] * (n - 1))
        if key not in owed and key not in optional:
            kind, user, secret = key
            known = by_secret.get(secret)
            rep.false_notices.append(f"{kind} to {user} for {secret} "
                                     f"({known.outcome if known else 'unknown request'})")
        if key[0] == "canceled" and (key[1], key[2]) not in attempted:
            rep.cancels_without_ask.append(":".join(key))
    rep.delivered = sum(1 for k in owed if got[k])
    for method, per_minute in (DM_BUDGETS if run.messages == "dm" else BUDGETS).items():
        times = sorted(c.at for c in calls if c.method == method)
        worst = max((sum(1 for t in times[i:i + 200] if t - s < 1.0) for i, s in enumerate(times)), default=0)
        if worst > per_minute / 60 + 1:
            rep.unpaced.append(f"{method}: {worst} calls in one second (budget {per_minute / 60:g}/s)")
    # Quick decisions: the requester hears the outcome once; reviewers are asked only if a Pending
    # listing was under way while the request was still Pending.
    for r in run.requests.values():
        if not r.quick or r.decided is None:
            continue
        rep.quick += 1
        if got[(r.outcome or "", rita, r.secret)] == 1:
            rep.quick_told_once += 1
        if any(lst.at < r.decided and lst.done_at > r.created for lst in listings):
            rep.quick_seen_pending += 1
            continue
        for v in reviewers:
            if got[("ask", v, r.secret)]:
                rep.quick_asks.append(f"{r.secret} to {v}")
    # Stale: an approval message sent after a poll had listed Pending without the decided request.
    for (kind, user, secret), at in first_at.items():
        asked = by_secret.get(secret)
        if kind != "ask" or asked is None or asked.decided is None:
            continue
        decided = asked.decided
        if any(lst.at > decided and lst.done_at < at - (POLL_SECONDS + BUSY_TIMEOUT_SECONDS + 1.0)
               for lst in listings):
            rep.stale_asks.append(f"{secret} to {user} {at - decided:.1f}s after the decision")
    return rep


def clean_intervals(run: Run, elapsed_end: float) -> list[tuple[float, float]]:
    """Stretches with no fault and a running relay."""
    out, start = [], 0.0
    for w in sorted(run.windows, key=lambda w: w.start):
        if w.start > start:
            out.append((start, w.start))
        start = max(start, w.end or elapsed_end)
    out.append((start, elapsed_end))
    return out


def seen_pending(created: float, until: float, clean: list[tuple[float, float]]) -> bool:
    """Pending through a fault-free stretch long enough for two polls and a delivery."""
    need = 2 * POLL_SECONDS + 1.0
    return any(min(until, b) - max(created, a) >= need for a, b in clean)

