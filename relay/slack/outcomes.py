"""What a click's Outcome looks like in Slack: the card it came from updated in place (or a
private notice to the clicker), the Home tab republished, and after a sign-in a DM saying
what was done.

A team channel's card is everyone's: the clicker hears privately, and the card itself is
closed (edited in place, one thread reply) through the outbox.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Protocol

from .. import actions as act
from ..errors import SlackError
from ..model import PENDING
from ..outbox import Outbox
from ..store.handle import Store
from . import followup_sender, replies
from .answers import Answers
from .people import SlackCalls

log = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now(timezone.utc)


class HomeTab(Protocol):
    """Republishing one person's Home tab (`HomePublisher.publish`)."""

    def publish(self, slack_user: str, team: str = "", *, event_hash: str | None = None,
                force: bool = False, override: dict | None = None, notice: str = "",
                only_if_published: bool = False, fetch_recent: bool = False) -> bool: ...


class OutcomeRenderer:
    def __init__(self, db: Store, slack: SlackCalls, answers: Answers, home: HomeTab, *,
                 signin_url: Callable[[str], str], secret_url: Callable[[int], str], default_hours: float,
                 wake_delivery: Callable[[], None], clock: Callable[[], datetime] = _now):
        self.db = db
        self.slack = slack
        self.answers = answers
        self.home = home
        self.signin_url = signin_url
        self.secret_url = secret_url
        self.default_hours = default_hours
        self.wake_delivery = wake_delivery
        self.clock = clock

    def render(self, o: act.Outcome, user: str, team: str, source: dict, *, after_signin: bool = False) -> None:
        kind = source.get("kind")
        if o.kind == act.SIGN_IN:
            text, blocks = replies.signin_prompt(self.signin_url(o.signin_state or ""), o.action)
            self.answers.respond_or_dm(user, source, text, blocks, replace=False)
            return
        decided = o.kind in (act.DONE, act.STALE) and o.request is not None
        override = {o.request_id: o.request} if o.request else None
        if kind == "channel":
            self._channel(o, user, source, decided)
        elif kind == "home":
            self.home.publish(user, team, force=True, notice=replies.outcome_line(o), override=override)
        elif decided and o.request is not None and o.request.status != PENDING:
            self._card(o, user, source, after_signin=after_signin)
        else:
            text, blocks = replies.notice(o)
            self.answers.respond_or_dm(user, source, text, blocks, replace=False)
        if after_signin:
            text, blocks = replies.completed_after_signin(o)
            self.answers.dm(user, text, blocks)
        if kind != "home" and o.kind == act.DONE:
            self.home.publish(user, team, override=override, only_if_published=True)

    def _channel(self, o: act.Outcome, user: str, source: dict, decided: bool) -> None:
        text, blocks = replies.notice(o)
        self.answers.respond_or_dm(user, source, text, blocks, replace=False)
        final = o.request if decided and o.request is not None and o.request.status != PENDING else None
        if final is not None and followup_sender.queue_channel_close(self.db, final, o.context, self.clock()):
            self.wake_delivery()

    def _card(self, o: act.Outcome, user: str, source: dict, *, after_signin: bool) -> None:
        """The decided request's card, updated where the click came from."""
        assert o.request is not None
        text, blocks = replies.updated_card(o, secret_url=self.secret_url(o.request.secret_id),
                                            default_hours=self.default_hours)
        if source.get("kind") == "message" and source.get("channel") and source.get("ts"):
            try:
                self.slack.call("chat.update", channel=source["channel"], ts=source["ts"], text=text,
                                blocks=blocks)
                if o.clicker_ss_id is not None:
                    Outbox(self.db).close_card(o.request_id, o.clicker_ss_id)   # type: ignore[arg-type]
            except SlackError as exc:
                log.warning("could not update the card", extra={"error": str(exc)})
                if source.get("response_url"):
                    self.answers.respond_or_dm(user, source, text, blocks, replace=True)
        elif source.get("response_url") or not after_signin:   # after a sign-in the DM below tells it
            self.answers.respond_or_dm(user, source, text, blocks, replace=True)
