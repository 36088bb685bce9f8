"""The sign-in page: `GET /signin?state=T` and `POST /signin`.

A plain, accessible HTML form (labels, autocomplete hints, no scripts, no external assets).
Every echoed value is HTML-escaped. Responses carry `Cache-Control: no-store` and
`Referrer-Policy: no-referrer` (the state is in the URL). The password goes to SS once
(`/oauth2/token`) and is never stored or echoed.

Unknown, used or expired state: a 400 page without a form. A wrong password re-shows the form
with the error; the state stays valid until a sign-in succeeds.

Refused sign-ins, so that a Slack account is only ever linked to its owner's SS account:
* The accounts must be one person (`relay.identity`): the SS account's e-mail, read with the
  fresh token from `/users/current`, must equal the Slack profile's e-mail of the user the state
  was made for. Otherwise a 403 page names both accounts and says what to do; the fresh SS
  token is revoked and nothing is linked.
* Guessing is bounded (`relay.guesses`): past the limits a 429 page says when to retry, and
  the attempt never reaches SS.
* A refused password and a right password without the needed one-time password get the same
  page (same status, same words), so the page does not confirm a password to a guesser; the
  log tells them apart.
Every failed attempt is logged with the Slack user, the SS username and the reason, never
the password.
"""

from __future__ import annotations

import html
import logging
import math
from typing import Callable
from urllib.parse import parse_qs

from ..errors import AuthenticationFailed, SecretServerError, SlackError
from ..guesses import GuessLimits, LimitScope, Refusal
from ..identity import Binding, BindingReason
from ..model import Person
from ..sessions import LinkConflict, Sessions, SignInState
from ..ss.client import SecretServerClient

log = logging.getLogger(__name__)

FIELD_LIMIT = 512   # no legitimate username, domain or OTP is longer

HEADERS = [
    ("Content-Type", "text/html; charset=utf-8"),
    ("Cache-Control", "no-store"),
    ("Pragma", "no-cache"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                                "frame-ancestors 'none'; base-uri 'none'"),
]

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem;color:#1d1c1d}
h1{font-size:1.4rem}label{display:block;margin-top:1rem;font-weight:600}
input{display:block;width:100%;box-sizing:border-box;padding:.5rem;font-size:1rem;margin-top:.25rem}
button{margin-top:1.5rem;padding:.6rem 1.2rem;font-size:1rem}
.error{border:2px solid #b00020;padding:.75rem;color:#b00020}.hint{color:#555;font-size:.9rem}
"""

E = html.escape


def _page(title: str, body: str) -> bytes:
    return (f"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<meta name=\"referrer\" content=\"no-referrer\">"
            f"<title>{E(title)}</title><style>{_STYLE}</style></head>"
            f"<body><main>{body}</main></body></html>\n").encode()


def form_page(state: str, *, username: str = "", domain: str = "", error: str = "",
              otp_wanted: bool = False, slack_name: str = "") -> bytes:
    err = (f'<p class="error" role="alert" id="error">{E(error)}</p>' if error else "")
    described = ' aria-describedby="error"' if error else ""
    otp_hint = ("This account needs a one-time password." if otp_wanted
                else "Only if your account uses two-factor authentication.")
    body = f"""<h1>Sign in to Secret Server</h1>
<p>Sign in once so that Slack can approve, deny and cancel requests as you, with your own Secret Server permissions.</p>
<p class="who">This links your Secret Server account to the Slack account <strong>{E(slack_name or "that asked for this link")}</strong>. If that is not you, close this page: someone may have forwarded you their link.</p>
{err}
<form method="post" action="signin" autocomplete="off">
<input type="hidden" name="state" value="{E(state)}">
<label for="username">Username</label>
<input id="username" name="username" type="text" autocomplete="username" required value="{E(username)}"{described}>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required{described}>
<label for="domain">Domain <span class="hint">(optional)</span></label>
<input id="domain" name="domain" type="text" value="{E(domain)}">
<label for="otp">One-time password <span class="hint">(optional)</span></label>
<input id="otp" name="otp" type="text" inputmode="numeric" autocomplete="one-time-code" aria-describedby="otp-hint">
<p class="hint" id="otp-hint">{E(otp_hint)}</p>
<button type="submit">Sign in</button>
</form>"""
    return _page("Sign in to Secret Server", body)


def invalid_page() -> bytes:
    return _page("Sign-in link not valid", """<h1>This sign-in link is not valid</h1>
<p>It is unknown, was already used, or is more than 10 minutes old.</p>
<p>Go back to Slack and use the <strong>Sign in to Secret Server</strong> button again to get a new link.</p>""")


def done_page(person: Person, pending: bool) -> bytes:
    then = ("<p>The action you clicked is being completed now; Slack will confirm it.</p>" if pending else "")
    return _page("Signed in", f"""<h1>Signed in</h1>
<p>You are signed in to Secret Server as <strong>{E(person.name)}</strong> ({E(person.username)}).</p>
{then}<p>You can close this window and go back to Slack.</p>""")


def too_many_page(refusal: Refusal, wait_seconds: int) -> bytes:
    minutes = max(1, math.ceil(wait_seconds / 60))
    when = refusal.retry_at.strftime("%H:%M UTC")
    fresh = ("<p>This link cannot be used again: get a new one from the <strong>Sign in to Secret Server</strong> "
             "button in Slack.</p>" if refusal.scope is LimitScope.STATE else "")
    return _page("Too many failed sign-ins", f"""<h1>Too many failed sign-in attempts</h1>
<p>Sign-in through this relay is paused for this {E(str(refusal.scope))} after too many failed attempts.</p>
<p>Try again after <strong>{E(when)}</strong> (in about {minutes} minute{"s" if minutes != 1 else ""}).</p>
{fresh}<p>If these attempts were not yours, tell your Secret Server administrator.</p>""")


def not_one_person_page(slack_name: str, person: Person, binding: Binding) -> bytes:
    why = {
        BindingReason.MISMATCH: "the two accounts have different e-mail addresses",
        BindingReason.NO_SS_EMAIL: "the Secret Server account has no e-mail address",
        BindingReason.NO_SLACK_EMAIL: "Slack does not show an e-mail address for the Slack account",
    }.get(binding.reason, "the two accounts could not be shown to belong to one person")
    return _page("Not linked", f"""<h1>Not linked: these accounts may belong to two people</h1>
<p>You signed in to Secret Server as <strong>{E(person.name)}</strong> ({E(person.username)}), but this
sign-in link was made for the Slack account <strong>{E(slack_name)}</strong>, and {E(why)}.</p>
<p>Nothing was linked, and the Secret Server session this sign-in opened has been ended.</p>
<p>If that Slack account is not yours, someone forwarded you their sign-in link: close this page and
use the <strong>Sign in to Secret Server</strong> button in your own Slack instead.</p>
<p>If both accounts are yours, ask your administrators to give them the same e-mail address, then sign in again.</p>""")


# The page for every refused password or one-time password: the same words whatever SS
# objected to, so the page never confirms that a password was right.
SIGN_IN_REFUSED = ("Secret Server did not accept that username, password and domain. If your account uses "
                   "a one-time password (OTP), enter the current code as well.")

LINKED_ELSEWHERE = ("This Secret Server account is already linked to another Slack account. "
                    "Log off there first (Home tab of the app, Log off), then use this link again.")


def _field(form: dict, name: str) -> str:
    v = form.get(name, [""])[-1]
    return v[:FIELD_LIMIT] if name != "password" else v[:4096]


class SignInPages:
    """GET and POST handlers for the WebApp router."""

    def __init__(self, sessions: Sessions, ss: SecretServerClient,
                 on_signed_in: Callable[[SignInState, Person], None],
                 slack_name: Callable[[str], str] = lambda slack_user: ""):
        self.sessions = sessions
        self.ss = ss
        self.on_signed_in = on_signed_in
        self.slack_name = slack_name     # display name of the Slack user a state belongs to
        self.limits = GuessLimits(sessions.db, clock=sessions.clock)

    def get(self, environ: dict):
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        state = (query.get("state") or [""])[-1]
        found = self.sessions.peek_state(state)
        if found is None:
            return 400, HEADERS, invalid_page()
        return 200, HEADERS, form_page(state, slack_name=self.slack_name(found.slack_user))

    def post(self, environ: dict):
        try:
            form = parse_qs(environ.get("ssrelay.body", b"").decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError:
            return 400, HEADERS, invalid_page()
        state = _field(form, "state")
        username, password = _field(form, "username").strip(), _field(form, "password")
        domain, otp = _field(form, "domain").strip(), _field(form, "otp").strip()
        found = self.sessions.peek_state(state)
        if found is None:
            return 400, HEADERS, invalid_page()

        def again(status: int, error: str, otp_wanted: bool = False):
            return status, HEADERS, form_page(state, username=username, domain=domain, error=error,
                                              otp_wanted=otp_wanted, slack_name=self.slack_name(found.slack_user))

        if not username or not password:
            return again(200, "Enter your Secret Server username and password.")
        refused = self.limits.check(found.state_hash, found.slack_user, username)
        if refused is not None:
            wait = max(1, math.ceil((refused.retry_at - self.sessions.clock()).total_seconds()))
            log.warning("sign-in refused: too many failed attempts",
                        extra={"slack_user": found.slack_user, "ss_username": username,
                               "limit": refused.scope.name.lower(), "retry_at": refused.retry_at.isoformat()})
            return 429, [*HEADERS, ("Retry-After", str(wait))], too_many_page(refused, wait)
        try:
            tokens = self.ss.login_user(username, password, domain, otp)
        except AuthenticationFailed as exc:
            reason = ("otp_rejected" if otp else "otp_missing") if exc.otp_required else "credentials_rejected"
            self._failed(found, username, reason)
            return again(200, SIGN_IN_REFUSED)
        except SecretServerError as exc:
            log.warning("sign-in: secret server unavailable", extra={"error": type(exc).__name__})
            return again(503, "Secret Server could not be reached. Try again in a moment.")
        try:
            person = self.ss.as_user(tokens).current_user()
        except SecretServerError as exc:
            log.warning("sign-in: could not read the current user", extra={"error": type(exc).__name__})
            self._revoke(tokens.access_token)
            return again(503, "Secret Server could not be reached. Try again in a moment.")
        binding = self._binding(found, person)
        if binding is None:
            self._revoke(tokens.access_token)
            return again(503, "Slack could not be reached to confirm your account. Try again in a moment.")
        if not binding.allowed:
            self._revoke(tokens.access_token)
            self._failed(found, username, str(binding.reason))
            return 403, HEADERS, not_one_person_page(self.slack_name(found.slack_user), person, binding)
        if self.sessions.linked_elsewhere(found.slack_user, person.id):
            self._revoke(tokens.access_token)
            return again(409, LINKED_ELSEWHERE)
        used = self.sessions.consume_state(state)
        if used is None:          # another submission of the same link won the race
            self._revoke(tokens.access_token)
            return 400, HEADERS, invalid_page()
        try:
            self.sessions.link(used.slack_user, used.slack_team, person, tokens, verified=binding.verified)
        except LinkConflict:      # linked elsewhere in between: refuse, as above
            self._revoke(tokens.access_token)
            return 409, HEADERS, form_page(state, error=LINKED_ELSEWHERE)
        try:
            self.on_signed_in(used, person)
        except Exception:   # the sign-in itself succeeded; the follow-up is logged, not shown
            log.exception("sign-in follow-up failed")
        return 200, HEADERS, done_page(person, bool(used.pending_action))

    def _binding(self, state: SignInState, person: Person) -> Binding | None:
        """May the state's Slack user be linked to this SS account? None when Slack cannot be
        asked (nothing is linked then)."""
        identity = self.sessions.identity
        if identity is None:
            return Binding(True, False, BindingReason.NOT_REQUIRED)
        try:
            return identity.check(state.slack_user, person.email)[0]
        except SlackError as exc:
            log.warning("sign-in: could not read the slack profile", extra={"slack_user": state.slack_user,
                                                                           "error": type(exc).__name__})
            return None

    def _failed(self, state: SignInState, username: str, reason: str) -> None:
        """Log and count an attempt that reached SS and failed (never the password)."""
        log.warning("sign-in failed", extra={"slack_user": state.slack_user, "ss_username": username,
                                             "reason": reason})
        self.limits.record_failure(state.state_hash, state.slack_user, username, reason)

    def _revoke(self, token: str) -> None:
        try:
            self.ss.revoke(token)
        except SecretServerError:
            pass
