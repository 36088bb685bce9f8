"""The Home tab's read model: what the database says about one person's Home tab (their
pending requests, the requests they review, their SS account) and what was last published
to it (`home_views`, so an identical view is not published again)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..model import PENDING, AccessRequest
from . import snapshot
from .handle import Store


@dataclass(frozen=True)
class HomeRow:
    """One request on a Home tab, with the names it shows."""

    request: AccessRequest
    folder_name: str
    requester_name: str


@dataclass(frozen=True)
class LastPublished:
    view_hash: str
    signed_in: bool
    published_at: datetime
    slack_team: str


class HomeReadModel:
    def __init__(self, db: Store):
        self.db = db

    def ss_user_by_matched_email(self, slack_user: str, fresh_since: datetime) -> int | None:
        """The SS user whose e-mail the directory matched to this Slack user since `fresh_since`."""
        row = self.db.execute(
            "SELECT p.id FROM people p JOIN slack_directory d ON lower(p.email) = d.email "
            "WHERE d.slack_user = ? AND d.looked_up_at > ? ORDER BY p.fetched_at DESC LIMIT 1",
            [slack_user, fresh_since.isoformat()]).fetchone()
        return row[0] if row else None

    def ss_user_by_email(self, email: str) -> int | None:
        row = self.db.execute("SELECT id FROM people WHERE lower(email) = ? ORDER BY fetched_at DESC LIMIT 1",
                              [email]).fetchone()
        return row[0] if row else None

    def linked_username(self, slack_user: str) -> str:
        """The SS username this Slack user signed in as, or ''."""
        row = self.db.execute("SELECT ss_username FROM slack_links WHERE slack_user = ?", [slack_user]).fetchone()
        return row[0] if row else ""

    def my_pending(self, ss_id: int) -> list[HomeRow]:
        """The person's own pending requests."""
        ids = [r[0] for r in self.db.execute(
            "SELECT id FROM access_requests WHERE requester_id = ? AND status = ? AND gone = 0 ORDER BY id",
            [ss_id, PENDING]).fetchall()]
        return self._rows(ids)

    def to_review(self, ss_id: int) -> list[HomeRow]:
        """Pending requests of others that this person may approve."""
        ids = [r[0] for r in self.db.execute(
            "SELECT id FROM access_requests WHERE status = ? AND gone = 0 AND requester_id != ? "
            "AND EXISTS (SELECT 1 FROM json_each(access_requests.reviewers) WHERE value = ?) ORDER BY id",
            [PENDING, ss_id, ss_id]).fetchall()]
        return self._rows(ids)

    def _rows(self, ids: list[int]) -> list[HomeRow]:
        rows = []
        for rid in ids:
            found = snapshot.get_request(self.db, rid)   # type: ignore[arg-type]
            if found is None:
                continue
            req, ctx = found
            person = snapshot.get_person(self.db, req.requester_id)   # type: ignore[arg-type]
            rows.append(HomeRow(req, ctx.get("folder_name", ""),
                                person.name if person else req.requester_username))
        return rows

    def last_published(self, slack_user: str) -> LastPublished | None:
        row = self.db.execute("SELECT view_hash, signed_in, published_at, slack_team FROM home_views "
                              "WHERE slack_user = ?", [slack_user]).fetchone()
        if row is None:
            return None
        return LastPublished(row[0], bool(row[1]), datetime.fromisoformat(row[2]), row[3] or "")

    def record_published(self, slack_user: str, team: str, view_hash: str, signed_in: bool,
                         at: datetime) -> None:
        with self.db.atomic():
            self.db.execute(
                "INSERT INTO home_views (slack_user, slack_team, view_hash, signed_in, published_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT(slack_user) DO UPDATE SET slack_team=excluded.slack_team, "
                "view_hash=excluded.view_hash, signed_in=excluded.signed_in, published_at=excluded.published_at",
                [slack_user, team, view_hash, int(signed_in), at.isoformat()])

    def published_users(self) -> list[str]:
        """Everyone with a Home tab published."""
        return [r[0] for r in self.db.execute("SELECT slack_user FROM home_views").fetchall()]
