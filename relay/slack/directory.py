"""Who an SS user is in Slack: the sign-in link first, then (when `users.match_by_email`)
`users.lookupByEmail` on the SS e-mail, cached with a TTL, misses included. People who cannot
be reached are recorded with the reason, never silently dropped.

A link not proven to join one person's accounts (`slack_links.email_verified_at` empty: made
before sign-in checked e-mails, or while `users.signin_requires_email_match` was off) is used
only once the SS e-mail and the linked Slack profile's e-mail (users.info) are seen to match,
and that proof is recorded; otherwise the e-mail match decides, as for a person never signed in.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from ..errors import SlackPermanentError
from ..identity import decide, profile_email
from ..store.handle import Store
from ..store.snapshot import get_person
from .api import SlackApi


class Unmapped(Exception):
    """This SS user has no Slack identity we may use. `str()` is the reason."""


class Directory:
    def __init__(self, db: Store, api: SlackApi, *, match_by_email: bool = True,
                 cache_ttl: timedelta = timedelta(hours=24), links_need_proof: bool = True):
        self.db = db
        self.api = api
        self.match_by_email = match_by_email
        self.cache_ttl = cache_ttl
        self.links_need_proof = links_need_proof   # users.signin_requires_email_match

    def slack_user_for(self, ss_user_id: int, now: datetime | None = None) -> str:
        """The Slack user id for an SS user, or Unmapped. Slack outages propagate (retry later)."""
        now = now or datetime.now(timezone.utc)
        row = self.db.execute("SELECT slack_user, email_verified_at FROM slack_links WHERE ss_user_id = ?",
                              [ss_user_id]).fetchone()
        if row and (row[1] is not None or not self.links_need_proof or self._prove_link(row[0], ss_user_id, now)):
            return row[0]
        person = get_person(self.db, ss_user_id)
        label = person.username if person else f"SS user #{ss_user_id}"
        if not self.match_by_email:
            raise self._unmapped(ss_user_id, label, "not signed in to the relay and users.match_by_email is off", now)
        if person is None or not person.email:
            raise self._unmapped(ss_user_id, label, "has no e-mail address in Secret Server", now)
        email = person.email.strip().lower()
        cached = self.db.execute("SELECT slack_user, error, looked_up_at FROM slack_directory WHERE email = ?",
                                 [email]).fetchone()
        if cached and datetime.fromisoformat(cached[2]) > now - self.cache_ttl:
            if cached[0]:
                return cached[0]
            raise self._unmapped(ss_user_id, label, f"no Slack user has the e-mail {email} ({cached[1]})", now)
        try:
            data = self.api.call("users.lookupByEmail", email=email)
            user = data.get("user") or {}
            slack_user, error = user.get("id"), None
            if not slack_user:
                error = "users_not_found"
            elif user.get("deleted") or user.get("is_bot"):
                slack_user, error = None, "deactivated or a bot"
        except SlackPermanentError as exc:
            slack_user, error = None, exc.error
        with self.db.atomic():
            self.db.execute("INSERT INTO slack_directory (email, slack_user, error, looked_up_at) VALUES (?,?,?,?) "
                            "ON CONFLICT(email) DO UPDATE SET slack_user=excluded.slack_user, error=excluded.error, "
                            "looked_up_at=excluded.looked_up_at", [email, slack_user, error, now.isoformat()])
        if slack_user:
            self.db.execute("DELETE FROM unmapped_people WHERE ss_user_id = ?", [ss_user_id])
            return slack_user
        raise self._unmapped(ss_user_id, label, f"no Slack user has the e-mail {email} ({error})", now)

    def _prove_link(self, slack_user: str, ss_user_id: int, now: datetime) -> bool:
        """True (and recorded) when the SS e-mail equals the linked Slack profile's e-mail."""
        person = get_person(self.db, ss_user_id)
        try:
            slack_email = profile_email(self.api.call("users.info", user=slack_user).get("user"))
        except SlackPermanentError:
            return False
        if not decide(person.email if person else "", slack_email, required=True).verified:
            return False
        with self.db.atomic():
            self.db.execute("UPDATE slack_links SET email_verified_at = ? WHERE slack_user = ?",
                            [now.isoformat(), slack_user])
        return True

    def known_slack_user(self, ss_user_id: int, now: datetime | None = None) -> str | None:
        """The Slack user id when it is known without asking Slack (a link, or a fresh cached
        lookup); None when `slack_user_for` would call users.lookupByEmail or say Unmapped."""
        now = now or datetime.now(UTC)
        row = self.db.execute("SELECT slack_user, email_verified_at FROM slack_links WHERE ss_user_id = ?",
                              [ss_user_id]).fetchone()
        if row and (row[1] is not None or not self.links_need_proof):
            return row[0]
        if row:     # a link still to be proven by e-mail: slack_user_for asks Slack
            return None
        person = get_person(self.db, ss_user_id)
        if not self.match_by_email or person is None or not person.email:
            return None
        cached = self.db.execute("SELECT slack_user, looked_up_at FROM slack_directory WHERE email = ?",
                                 [person.email.strip().lower()]).fetchone()
        if cached and cached[0] and datetime.fromisoformat(cached[1]) > now - self.cache_ttl:
            return cached[0]
        return None

    def knows_dm_channel(self, slack_user: str) -> bool:
        """True when `dm_channel` needs no conversations.open call."""
        return self.db.execute("SELECT 1 FROM dm_channels WHERE slack_user = ?", [slack_user]).fetchone() is not None

    def dm_channel(self, slack_user: str) -> str:
        """The app DM channel with this person (conversations.open once, then remembered)."""
        row = self.db.execute("SELECT channel FROM dm_channels WHERE slack_user = ?", [slack_user]).fetchone()
        if row:
            return row[0]
        channel = self.api.call("conversations.open", users=slack_user)["channel"]["id"]
        with self.db.atomic():
            self.db.execute("INSERT OR REPLACE INTO dm_channels (slack_user, channel) VALUES (?, ?)",
                            [slack_user, channel])
        return channel

    def _unmapped(self, ss_user_id: int, label: str, reason: str, now: datetime) -> Unmapped:
        with self.db.atomic():
            self.db.execute("INSERT INTO unmapped_people (ss_user_id, username, reason, seen_at) VALUES (?,?,?,?) "
                            "ON CONFLICT(ss_user_id) DO UPDATE SET username=excluded.username, "
                            "reason=excluded.reason, seen_at=excluded.seen_at",
                            [ss_user_id, label, reason, now.isoformat()])
        return Unmapped(f"{label}: {reason}")
