"""The sign-in page: `GET /signin?state=T` and `POST /signin`.

A plain, accessible HTML form (labels, autocomplete hints, no scripts, no external assets).
Every echoed value is HTML-escaped. Responses carry `Cache-Control: no-store` and
`Referrer-Policy: no-referrer` (the state is in the URL). The password goes to SS once
(`/oauth2/token`) and is never stored or echoed.

Unknown, used or expired state: a 400 page without a form. A wrong password re-shows the form
with the error; the state stays valid until a sign-in succeeds.
"""

from __future__ import annotations

import html
import logging
from typing import Callable
from urllib.parse import parse_qs

from ..errors import AuthenticationFailed, SecretServerError
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
            f"<body><main>{body}</main></body></html>\n").encode("utf-8")


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
        try:
            tokens = self.ss.login_user(username, password, domain, otp)
        except AuthenticationFailed as exc:
            if exc.otp_required:
                msg = ("The one-time password was not accepted. Enter the current code." if otp else
                       "This account needs a one-time password (OTP). Enter the code from your "
                       "authenticator and sign in again.")
                return again(200, msg, otp_wanted=True)
            return again(200, "Secret Server did not accept that username, password and domain.")
        except SecretServerError as exc:
            log.warning("sign-in: secret server unavailable", extra={"error": type(exc).__name__})
            return again(503, "Secret Server could not be reached. Try again in a moment.")
        try:
            person = self.ss.as_user(tokens).current_user()
        except SecretServerError as exc:
            log.warning("sign-in: could not read the current user", extra={"error": type(exc).__name__})
            self._revoke(tokens.access_token)
            return again(503, "Secret Server could not be reached. Try again in a moment.")
        if self.sessions.linked_elsewhere(found.slack_user, person.id):
            self._revoke(tokens.access_token)
            return again(409, LINKED_ELSEWHERE)
        used = self.sessions.consume_state(state)
        if used is None:          # another submission of the same link won the race
            self._revoke(tokens.access_token)
            return 400, HEADERS, invalid_page()
        try:
            self.sessions.link(used.slack_user, used.slack_team, person, tokens)
        except LinkConflict:      # linked elsewhere in between: refuse, as above
            self._revoke(tokens.access_token)
            return 409, HEADERS, form_page(state, error=LINKED_ELSEWHERE)
        try:
            self.on_signed_in(used, person)
        except Exception:   # the sign-in itself succeeded; the follow-up is logged, not shown
            log.exception("sign-in follow-up failed")
        return 200, HEADERS, done_page(person, bool(used.pending_action))

    def _revoke(self, token: str) -> None:
        try:
            self.ss.revoke(token)
        except SecretServerError:
            pass
