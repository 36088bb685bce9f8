"""Domain objects: what Secret Server tells us, as plain immutable data.

Timestamps are naive-free: every datetime here is timezone-aware UTC. The SS client
converts SS's offset-less timestamps using `secret_server.timezone` (default UTC).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class RequestStatus(StrEnum):
    """An access request's `status`, spelled as Secret Server spells it (and as the snapshot
    stores it: each member is its string)."""

    WAITING = "WaitingForRequest"
    PENDING = "Pending"
    APPROVED = "Approved"
    DENIED = "Denied"
    CANCELED = "Canceled"
    EXPIRED = "Expired"


_MEMBERS: dict[str, RequestStatus] = {s.value: s for s in RequestStatus}

PENDING = RequestStatus.PENDING
APPROVED = RequestStatus.APPROVED
DENIED = RequestStatus.DENIED
CANCELED = RequestStatus.CANCELED
EXPIRED = RequestStatus.EXPIRED
WAITING = RequestStatus.WAITING
STATUSES = tuple(RequestStatus)


@dataclass(frozen=True)
class AccessRequest:
    """One secret access request (SS `SecretAccessModel`)."""

    id: int
    secret_id: int
    secret_name: str
    folder_id: int | None
    requester_id: int
    requester_username: str
    status: RequestStatus    # a known status's string is converted to its member (the SS parser refuses unknown ones)
    comment: str = ""
    ticket: str = ""
    requested_at: datetime | None = None
    start: datetime | None = None
    expiration: datetime | None = None
    review_status: str = ""          # reviewStatusMessage: changes when a workflow step moves
    decided_by: str = ""             # approverDisplayName
    response_comment: str = ""
    decided_at: datetime | None = None  # responseDate
    has_workflow: bool = False

    # What, in a listing record, tells us the request changed since we last looked. The SS
    # parser fills it from the raw record (relay.ss.parse.raw_fingerprint) so a listing can be
    # compared with the snapshot without parsing every record; otherwise it is derived here.
    fingerprint: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        member = _MEMBERS.get(self.status)
        if member is not None and self.status is not member:
            object.__setattr__(self, "status", member)
        if not self.fingerprint:
            object.__setattr__(self, "fingerprint", "|".join([
                self.status, self.review_status, self.decided_by,
                self.decided_at.isoformat() if self.decided_at else "",
                self.expiration.isoformat() if self.expiration else "",
            ]))


@dataclass(frozen=True)
class StepReviewer:
    """An entry of `currentStepReviewers`: a user (isUser) or a group; both carry a groupId."""

    display_name: str
    group_id: int
    is_user: bool


@dataclass(frozen=True)
class Person:
    """An SS user as the relay knows them (UserModel / GroupUserSummary)."""

    id: int
    username: str
    display_name: str = ""
    email: str = ""

    @property
    def name(self) -> str:
        return self.display_name or self.username


@dataclass(frozen=True)
class Secret:
    """Secret metadata (SecretSummary). Never a field value."""

    id: int
    name: str
    folder_id: int | None = None
    folder_path: str = ""
    template_name: str = ""
    requires_approval: bool = False
    requires_comment: bool = False
    has_launcher: bool = False
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class Launcher:
    launcher_id: int
    name: str
    prompted: bool = False            # a field the user must fill in (e.g. machine)
    restricted_hosts: tuple[str, ...] = ()


_DATES = ("requested_at", "start", "expiration", "decided_at")


def request_to_dict(r: AccessRequest) -> dict[str, Any]:
    """A JSON-safe dict of a request (datetimes as ISO-8601 UTC)."""
    d = dict(r.__dict__)
    d.pop("fingerprint", None)
    for k in _DATES:
        d[k] = d[k].isoformat() if d[k] else None
    return d


def request_from_dict(d: dict[str, Any]) -> AccessRequest:
    d = dict(d)
    for k in _DATES:
        d[k] = datetime.fromisoformat(d[k]) if d.get(k) else None
    names = AccessRequest.__dataclass_fields__
    return AccessRequest(**{k: v for k, v in d.items() if k in names})
