"""Publishing the Home tab: render a person's Home tab from the read model and publish it
with views.publish, unless it would be identical to the last one published.

A signed-out Home carries a one-time sign-in link, so it is republished after
SIGNIN_LINK_REFRESH even when unchanged. A publish Slack refuses for a while (rate limit,
outage) is retried later by `PublishRetries`; a `hash_conflict` (the tab changed meanwhile)
is re-rendered and published at once. After a poll, the Home tabs of the people a change
concerns are republished on the worker pool.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

from ..errors import SlackPermanentError, SlackRateLimited, SlackUnavailable
from ..model import PENDING, AccessRequest
from ..secrets import Recent
from ..store.home_read import HomeReadModel, HomeRow
from . import home as home_mod
from .home_retry import PublishRetries
from .people import SlackCalls, SlackPeople

log = logging.getLogger(__name__)

SIGNIN_LINK_REFRESH = timedelta(minutes=5)   # republish a signed-out Home so its link stays usable


def _now() -> datetime:
    return datetime.now(timezone.utc)


class SignInStates(Protocol):
    def has_session(self, slack_user: str) -> bool: ...

    def new_state(self, slack_team: str, slack_user: str, pending_action: dict | None = None) -> str: ...


class RecentSecrets(Protocol):
    def recent(self, slack_user: str, *, fetch: bool) -> Recent: ...


class Submit(Protocol):
    def __call__(self, fn: Callable[..., Any], *args: Any) -> object: ...


@dataclass(frozen=True)
class HomeLook:
    """The links and defaults a Home tab is rendered with (from the config)."""

    secret_url: Callable[[int], str]
    request_url: Callable[[int, int], str]
    more_url: str
    default_hours: float


class HomePublisher:
    def __init__(self, read: HomeReadModel, people: SlackPeople, sessions: SignInStates,
                 recent: RecentSecrets, slack: SlackCalls, *, look: HomeLook, signin_url: Callable[[str], str],
                 submit: Submit, stop: threading.Event, clock: Callable[[], datetime] = _now):
        self.read = read
        self.people = people
        self.sessions = sessions
        self.recent_secrets = recent
        self.slack = slack
        self.look = look
        self.signin_url = signin_url
        self.submit = submit
        self.clock = clock
        self.retries = PublishRetries(self.publish, stop=stop)
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()
        self.published = 0
        self.skipped = 0

    def data(self, slack_user: str, *, override: dict[int, AccessRequest] | None = None,
             notice: str = "", fetch_recent: bool = False) -> home_mod.HomeData:
        """What one person's Home tab shows; `override`: requests known decided a moment ago."""
        ss_id = self.people.ss_user_for(slack_user)
        # recent secrets are read before has_session: an expired session is dropped there
        recent = self.recent_secrets.recent(slack_user, fetch=fetch_recent)
        signed_in = self.sessions.has_session(slack_user)
        mine: tuple[home_mod.HomeItem, ...] = ()
        review: tuple[home_mod.HomeItem, ...] = ()
        if ss_id is not None:
            gone = {rid for rid, r in (override or {}).items() if r is not None and r.status != PENDING}
            mine = _items(self.read.my_pending(ss_id), gone)
            review = _items(self.read.to_review(ss_id), gone)
        return home_mod.HomeData(signed_in=signed_in, ss_username=self.read.linked_username(slack_user),
                                 my_pending=mine, to_review=review, notice=notice,
                                 recent=recent.secrets if signed_in else None,
                                 recent_note=recent.note if signed_in else "")

    def render(self, data: home_mod.HomeData, signin_url: str) -> dict:
        return home_mod.home_view(data, signin_url=signin_url, secret_url=self.look.secret_url,
                                  default_hours=self.look.default_hours, more_url=self.look.more_url,
                                  request_url=self.look.request_url)

    def _lock(self, user: str) -> threading.Lock:
        with self._locks_lock:
            return self._locks.setdefault(user, threading.Lock())

    def publish(self, slack_user: str, team: str = "", *, event_hash: str | None = None,
                force: bool = False, override: dict | None = None, notice: str = "",
                only_if_published: bool = False, fetch_recent: bool = False) -> bool:
        """Publish the Home tab unless it would be identical to the last one published.
        Returns True when views.publish was called."""
        with self._lock(slack_user):
            last = self.read.last_published(slack_user)
            if only_if_published and last is None:
                return False
            team = team or (last.slack_team if last else "")
            data = self.data(slack_user, override=override, notice=notice, fetch_recent=fetch_recent)
            digest = home_mod.view_hash(self.render(data, home_mod.SIGNIN_PLACEHOLDER))
            now = self.clock()
            if not force and last is not None and last.view_hash == digest and (
                    data.signed_in or now - last.published_at < SIGNIN_LINK_REFRESH):
                self.skipped += 1
                return False
            params: dict[str, Any] = {"user_id": slack_user, "view": self._view_with_link(data, team, slack_user)}
            if event_hash:
                params["hash"] = event_hash
            try:
                try:
                    self.slack.call("views.publish", **params)
                except SlackPermanentError as exc:
                    if exc.error != "hash_conflict":
                        raise
                    log.info("home tab changed meanwhile: re-rendering", extra={"slack_user": slack_user})
                    data = self.data(slack_user, override=override, notice=notice)
                    digest = home_mod.view_hash(self.render(data, home_mod.SIGNIN_PLACEHOLDER))
                    self.slack.call("views.publish", user_id=slack_user,
                                    view=self._view_with_link(data, team, slack_user))
            except (SlackRateLimited, SlackUnavailable) as exc:   # time fixes it: publish again later
                self.retries.failed(slack_user, exc)
                return False
            self.retries.succeeded(slack_user)
            self.read.record_published(slack_user, team or "", digest, data.signed_in, now)
            self.published += 1
            return True

    def _view_with_link(self, data: home_mod.HomeData, team: str, slack_user: str) -> dict:
        if data.signed_in:
            return self.render(data, home_mod.SIGNIN_PLACEHOLDER)
        state = self.sessions.new_state(self.people.team(team), slack_user)
        return self.render(data, self.signin_url(state))

    def after_poll(self, result: Any) -> None:
        """Poll listener: republish the Home tabs of people the change concerns (only those who
        have a Home tab published; identical views are skipped)."""
        changed = set(getattr(result, "changed", ()) or ())
        if result.ok and changed:
            self.submit(self._republish_concerned, changed)

    def _republish_concerned(self, changed: set[int]) -> None:
        for user in self.read.published_users():
            if self.people.ss_user_for(user) in changed:
                self.submit(self.publish, user)


def _items(rows: Iterable[HomeRow], gone: set[int]) -> tuple[home_mod.HomeItem, ...]:
    return tuple(home_mod.HomeItem(r.request, {"folder_name": r.folder_name, "requester_name": r.requester_name})
                 for r in rows if r.request.id not in gone)
