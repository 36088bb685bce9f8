"""Who a Slack user is, for the interactions: the workspace's team id, the name the sign-in
page shows, and the SS user behind a Slack user (the sign-in link, else the e-mail match).
Slack lookups are cached per process and never made on the ack path."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol
from urllib.parse import quote

from ..errors import SlackError
from ..store.home_read import HomeReadModel


class SlackCalls(Protocol):
    """The Slack Web API client: one method call, its data or SlackError."""

    def call(self, method: str, **kwargs: Any) -> dict: ...


class Links(Protocol):
    """The sign-in links a Slack user has (`Sessions`)."""

    def ss_user_id(self, slack_user: str) -> int | None: ...


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class SignInLink:
    """The sign-in page's address for a sign-in state (`http.public_url` + /signin)."""

    public_url: str

    def __call__(self, state: str) -> str:
        return f"{self.public_url.rstrip('/')}/signin?state={quote(state)}"


class SlackPeople:
    def __init__(self, slack: SlackCalls, links: Links, read: HomeReadModel, *, match_by_email: bool,
                 email_cache_hours: float, clock: Callable[[], datetime] = _now):
        self.slack = slack
        self.links = links
        self.read = read
        self.match_by_email = match_by_email
        self.email_cache = timedelta(hours=email_cache_hours)
        self.clock = clock
        self._team_id = ""
        self._names: dict[str, str] = {}
        self._emails: dict[str, str] = {}    # slack user -> e-mail (users.info)

    def team(self, team: str) -> str:
        """The given team id, else the workspace's (auth.test, once)."""
        if team:
            return team
        if not self._team_id:
            try:
                self._team_id = self.slack.call("auth.test").get("team_id") or ""
            except SlackError:
                pass
        return self._team_id

    def display_name(self, slack_user: str) -> str:
        """How the sign-in page names the Slack account being linked (users.info, cached)."""
        name = self._names.get(slack_user)
        if name is None:
            try:
                user = self.slack.call("users.info", user=slack_user).get("user") or {}
                profile = user.get("profile") or {}
                name = profile.get("real_name") or user.get("real_name") or user.get("name") or ""
                handle = profile.get("display_name") or user.get("name") or ""
                if handle and handle != name:
                    name = f"{name} (@{handle})" if name else f"@{handle}"
            except SlackError:
                return slack_user
            self._names[slack_user] = name
        return name or slack_user

    def ss_user_for(self, slack_user: str) -> int | None:
        """The SS user behind a Slack user: the sign-in link, else the e-mail match."""
        linked = self.links.ss_user_id(slack_user)
        if linked is not None:
            return linked
        if not self.match_by_email:
            return None
        matched = self.read.ss_user_by_matched_email(slack_user, self.clock() - self.email_cache)
        if matched is not None:
            return matched
        email = self._email(slack_user)
        return self.read.ss_user_by_email(email) if email else None

    def _email(self, slack_user: str) -> str | None:
        email = self._emails.get(slack_user)
        if email is None:   # users.info once per person and process (never on the ack path)
            try:
                user = self.slack.call("users.info", user=slack_user).get("user") or {}
                email = "" if user.get("deleted") or user.get("is_bot") else \
                    ((user.get("profile") or {}).get("email") or "").strip().lower()
            except SlackError:
                return None
            self._emails[slack_user] = email
        return email
