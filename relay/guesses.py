"""Bounds on password guessing through the sign-in page.

Within `WINDOW` (15 minutes), at most 5 failed attempts per sign-in state, 10 per Slack user
and 10 per SS username; beyond that the page answers 429 with the time to retry and nothing
goes to Secret Server. Only attempts that reached SS and failed are counted (a refused attempt
is not), so someone hammering one stolen link burns that link, not its owner's next sign-in.
Failures are stored in SQLite (`signin_failures`), so a restart does not reset the count.

`refusal()` is the pure decision; `GuessLimits` reads and records failures around it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

log = logging.getLogger(__name__)

WINDOW = timedelta(minutes=15)
KEEP = timedelta(days=1)          # failures are deleted after this (they stay for the audit meanwhile)


class LimitScope(StrEnum):
    STATE = "sign-in link"
    SLACK_USER = "Slack account"
    SS_USERNAME = "Secret Server username"


LIMITS: dict[LimitScope, int] = {
    LimitScope.STATE: 5,
    LimitScope.SLACK_USER: 10,
    LimitScope.SS_USERNAME: 10,
}


@dataclass(frozen=True)
class Refusal:
    """Too many failures for `scope`; another attempt is allowed from `retry_at`."""

    scope: LimitScope
    retry_at: datetime


def refusal(failures: dict[LimitScope, list[datetime]], now: datetime,
            limits: dict[LimitScope, int] = LIMITS, window: timedelta = WINDOW) -> Refusal | None:
    """None when one more attempt may go to SS; else the scope that forbids it with the
    latest time at which every exhausted scope allows one again."""
    worst: Refusal | None = None
    for scope, times in failures.items():
        limit = limits[scope]
        recent = sorted(t for t in times if t > now - window)
        if len(recent) < limit:
            continue
        # the attempt that must leave the window before the count drops below the limit
        retry_at = recent[len(recent) - limit] + window
        if worst is None or retry_at > worst.retry_at:
            worst = Refusal(scope, retry_at)
    return worst


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(dt: datetime) -> str:
    """One fixed-width UTC form, so stored times compare correctly as text."""
    return dt.astimezone(UTC).isoformat(timespec="microseconds")


_COLUMN = {LimitScope.STATE: "state_hash", LimitScope.SLACK_USER: "slack_user",
           LimitScope.SS_USERNAME: "ss_username"}


class GuessLimits:
    def __init__(self, db, *, clock: Callable[[], datetime] = _now):
        self.db = db
        self.clock = clock

    def check(self, state_hash: str, slack_user: str, ss_username: str) -> Refusal | None:
        """Whether this attempt must be refused before it reaches SS."""
        now = self.clock()
        since = _iso(now - WINDOW)
        keys = {LimitScope.STATE: state_hash, LimitScope.SLACK_USER: slack_user,
                LimitScope.SS_USERNAME: ss_username.strip().casefold()}
        failures = {
            scope: [datetime.fromisoformat(r[0]) for r in self.db.execute(
                f"SELECT failed_at FROM signin_failures WHERE {_COLUMN[scope]} = ? AND failed_at > ?",
                [key, since]).fetchall()]
            for scope, key in keys.items()}
        return refusal(failures, now)

    def record_failure(self, state_hash: str, slack_user: str, ss_username: str, reason: str) -> None:
        """Count one attempt that reached SS and failed."""
        now = self.clock()
        with self.db.atomic():
            self.db.execute("DELETE FROM signin_failures WHERE failed_at < ?", [_iso(now - KEEP)])
            self.db.execute(
                "INSERT INTO signin_failures (failed_at, state_hash, slack_user, ss_username, reason) "
                "VALUES (?, ?, ?, ?, ?)",
                [_iso(now), state_hash, slack_user, ss_username.strip().casefold(), reason])
