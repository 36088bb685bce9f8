"""Lost-answer reconciliation: a post whose answer was lost (SlackOutcomeUnknown) may exist in
Slack. Every chat.postMessage carries message metadata with the outbox key, and before such a
row is posted again the conversation is searched for that key (conversations.history with
include_all_metadata, from the first uncertain claim on: the DM, or a team channel; a reply in
a channel card's thread with conversations.replies); when found, the row is recorded as sent.
Ephemeral messages cannot be looked up: they are sent at most once on an ambiguous answer
(README "Delivery guarantees")."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any, Callable

from ..errors import SlackPermanentError
from ..followups import CHANNEL, CHANNEL_CARD, CHANNEL_CLOSED, is_channel_step, is_reminder
from ..outbox import Notification, Outbox
from .. import sync
from .api import SlackApi
from .directory import Directory
from .sending import METADATA_EVENT_TYPE

log = logging.getLogger(__name__)

# Look this much before the uncertain claim: the relay's and Slack's clocks may differ a little.
RECONCILE_MARGIN = timedelta(seconds=60)
RECONCILE_PAGE = 100          # messages per conversations.history page
RECONCILE_MAX_PAGES = 5       # a DM holds few messages since the claim; past this, post again
FOUND = "found in Slack after an unanswered call"


class Reconciling:
    """Part of `Delivery`: finds a row in doubt in Slack before it is posted again."""

    api: SlackApi
    outbox: Outbox
    directory: Directory
    mode: str
    _method_for: Callable[[Notification], str]     # Sending's: the method that would carry it
    save_card_of: Callable[[Notification, int, int, str, str], None]     # Delivery's
    replace_card_of: Callable[[Notification, str, str, tuple[str, str] | None], None]   # Delivery's

    def _already_posted(self, n: Notification, slack_user: str) -> str | None:
        """For a row in doubt that would be posted with chat.postMessage: look for its key where
        it would have gone since the uncertain claim (the DM, the team channel, or the channel
        card's thread). Returns the note to record when it is there."""
        if n.uncertain_since is None:
            return None
        oldest = (n.uncertain_since - RECONCILE_MARGIN).timestamp()
        params: dict[str, Any] = {"oldest": f"{oldest:.6f}", "inclusive": True,
                                  "limit": RECONCILE_PAGE, "include_all_metadata": True}
        if n.recipient == CHANNEL:
            return self._already_in_channel(n, params)
        if self._method_for(n) != "chat.postMessage":
            return None
        channel = self.directory.dm_channel(slack_user)
        found = self._find(n, "conversations.history", {"channel": channel, **params})
        if found is None:
            return None
        if self.mode == "dm" and n.event == sync.APPROVAL_REQUESTED:
            self.save_card_of(n, n.request_id, n.recipient, channel, str(found["ts"]))
        elif self.mode == "dm" and is_reminder(n.event):    # as if its answer had come back
            self.replace_card_of(n, channel, str(found["ts"]), self.outbox.card(n.request_id, n.recipient))
        return FOUND

    def _already_in_channel(self, n: Notification, params: dict[str, Any]) -> str | None:
        """The team channel's card, or a reply in its thread."""
        if is_channel_step(n.event):   # chat.update: rewriting again is harmless
            return None
        if n.event == CHANNEL_CARD:
            channel = str(n.payload.get("channel") or "")
            found = self._find(n, "conversations.history", {"channel": channel, **params})
            if found is None:
                return None
            self.save_card_of(n, n.request_id, CHANNEL, channel, str(found["ts"]))
            return FOUND
        # A reply in the card's thread (a reminder, the closing reply): only replies are
        # listed there, conversations.history shows the parent alone.
        card = self.outbox.card(n.request_id, CHANNEL)
        if card is None:
            return None
        found = self._find(n, "conversations.replies", {"channel": card[0], "ts": card[1], **params})
        if found is None:
            return None
        if n.event == CHANNEL_CLOSED:   # the reply follows the card's rewrite: both are done
            self.outbox.close_card(n.request_id, CHANNEL)
        return FOUND

    def _find(self, n: Notification, method: str, params: dict[str, Any]) -> dict | None:
        """The message carrying `n`'s key among the pages `method` lists, else None."""
        cursor: str | None = None
        for _ in range(RECONCILE_MAX_PAGES):
            try:
                data = self.api.call(method, **params, **({"cursor": cursor} if cursor else {}))
            except SlackPermanentError as exc:   # e.g. missing_scope: post again rather than drop it
                log.warning("cannot look for a message whose answer was lost; posting it again",
                            extra={"request_id": n.request_id, "error": exc.error})
                return None
            for m in data.get("messages") or []:
                meta = m.get("metadata") or {}
                if meta.get("event_type") == METADATA_EVENT_TYPE and \
                        (meta.get("event_payload") or {}).get("key") == n.key:
                    return dict(m)
            cursor = ((data.get("response_metadata") or {}).get("next_cursor")) or None
            if not data.get("has_more") or not cursor:
                break
        return None
