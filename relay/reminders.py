"""When reviewers of a still-pending request are reminded: a pure schedule.

The first reminder comes `remind_after_minutes` after the request was made, each next one
after twice the previous wait (30, 60, 120 min after the request with the default), at
most `most` of them. A relay that was down when several were due sends only the latest one:
old reminders are no news.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from .model import PENDING

REMINDER_EVENT = "reminder_{n}"   # outbox event per reminder number: each is sent exactly once


@dataclass(frozen=True)
class ReminderPolicy:
    after_minutes: float = 30.0    # 0: never remind
    most: int = 3


@dataclass(frozen=True)
class ReminderState:
    """What the schedule needs to know about one request."""

    requested_at: datetime
    status: str = PENDING
    sent: int = 0                  # reminders already put in the outbox


def event_name(number: int) -> str:
    return REMINDER_EVENT.format(n=int(number))


def reminder_time(requested_at: datetime, number: int, policy: ReminderPolicy) -> datetime:
    """When reminder `number` (1-based) is due: after, 2 x after, 4 x after ... the request."""
    return requested_at + timedelta(minutes=policy.after_minutes * (2 ** (number - 1)))


def reminders_due(request: ReminderState, now: datetime, policy: ReminderPolicy) -> list[int]:
    """Numbers of the reminders due at `now` and not sent yet (oldest first). Empty once the
    request is decided, when reminders are off, or when all were sent."""
    if request.status != PENDING or policy.after_minutes <= 0:
        return []
    return [n for n in range(request.sent + 1, policy.most + 1)
            if reminder_time(request.requested_at, n, policy) <= now]


def next_reminder_at(request: ReminderState, policy: ReminderPolicy) -> datetime | None:
    """When the next unsent reminder is due, or None when there is none to come."""
    if request.status != PENDING or policy.after_minutes <= 0 or request.sent >= policy.most:
        return None
    return reminder_time(request.requested_at, request.sent + 1, policy)


# Quiet hours: reminders to a person wait for the morning in that person's own time zone.
QUIET_FROM_HOUR = 20
QUIET_UNTIL_HOUR = 8


class Deferred(Exception):
    """Not now: send this notification again in `seconds` (quiet hours)."""

    def __init__(self, seconds: float, reason: str):
        super().__init__(reason)
        self.seconds = seconds


def quiet_wait(now: datetime, tz_name: str | None) -> float:
    """Seconds until 08:00 when it is between 20:00 and 08:00 in `tz_name` (a Slack user's
    `tz`), else 0. An unknown or missing zone means no quiet hours."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
    if not tz_name:
        return 0.0
    try:
        local = now.astimezone(ZoneInfo(tz_name))
    except (ZoneInfoNotFoundError, ValueError):
        return 0.0
    if QUIET_UNTIL_HOUR <= local.hour < QUIET_FROM_HOUR:
        return 0.0
    morning = local.replace(hour=QUIET_UNTIL_HOUR, minute=0, second=0, microsecond=0)
    if local.hour >= QUIET_FROM_HOUR:
        morning = (local + timedelta(days=1)).replace(hour=QUIET_UNTIL_HOUR, minute=0, second=0, microsecond=0)
    return max(0.0, (morning - local).total_seconds())
