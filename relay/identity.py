"""Whether a Slack account and a Secret Server account belong to one person.

A sign-in links the Slack user a sign-in link was made for to whichever SS account signs in
with it. A forwarded link would therefore bind the sender's Slack account to the reader's SS
account (or the reverse), so a link is made only when both accounts carry the same e-mail
address: the SS account's `emailAddress` (`GET /api/v1/users/current`) and the Slack profile's
`email` (`users.info`). `users.signin_requires_email_match = false` turns the requirement off.

`decide()` is the pure decision; `EmailBinding` fetches the Slack side.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .slack.api import SlackApi


class BindingReason(StrEnum):
    MATCH = "email_match"                # both e-mails present and equal
    NOT_REQUIRED = "match_not_required"  # the operator turned the check off
    MISMATCH = "email_mismatch"
    NO_SS_EMAIL = "no_ss_email"          # the SS account has no e-mail address
    NO_SLACK_EMAIL = "no_slack_email"    # Slack gave no e-mail (hidden, deleted user, bot)


@dataclass(frozen=True)
class Binding:
    """The decision for one Slack account and one SS account."""

    allowed: bool
    verified: bool          # the e-mails were seen to match (recorded with the link)
    reason: BindingReason


def normalise(email: str | None) -> str:
    return (email or "").strip().casefold()


def decide(ss_email: str | None, slack_email: str | None, *, required: bool) -> Binding:
    """May these two accounts be linked? Equal, non-empty e-mails (case-insensitive) prove one
    person; without proof the link is refused unless the requirement is off."""
    ss, slack = normalise(ss_email), normalise(slack_email)
    if ss and slack and ss == slack:
        return Binding(True, True, BindingReason.MATCH)
    if not required:
        return Binding(True, False, BindingReason.NOT_REQUIRED)
    if not ss:
        return Binding(False, False, BindingReason.NO_SS_EMAIL)
    if not slack:
        return Binding(False, False, BindingReason.NO_SLACK_EMAIL)
    return Binding(False, False, BindingReason.MISMATCH)


def profile_email(user: object) -> str:
    """The e-mail of a users.info `user` object (`profile.email`); "" for a deleted user, a bot,
    or a profile whose e-mail the app may not read."""
    if not isinstance(user, dict) or user.get("deleted") or user.get("is_bot"):
        return ""
    profile = user.get("profile")
    email = profile.get("email") if isinstance(profile, dict) else None
    return email if isinstance(email, str) else ""


class EmailBinding:
    """The e-mail check against live Slack data (users.info, never cached: a profile's e-mail
    may have changed since the last look)."""

    def __init__(self, slack: SlackApi, *, required: bool = True):
        self.slack = slack
        self.required = required

    def slack_email(self, slack_user: str) -> str:
        """The Slack profile's e-mail; "" for a deleted user, a bot or a hidden address.
        SlackError when Slack cannot be asked."""
        return profile_email(self.slack.call("users.info", user=slack_user).get("user"))

    def check(self, slack_user: str, ss_email: str | None) -> tuple[Binding, str]:
        """The decision for this Slack user and SS e-mail, and the Slack e-mail it used."""
        slack_email = self.slack_email(slack_user)
        return decide(ss_email, slack_email, required=self.required), slack_email
