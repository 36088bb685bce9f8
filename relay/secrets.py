"""Secrets from Slack, without Slack: search, recent secrets, launching and asking for access.

No Slack here (house rule 4): `relay/slack/secret_flows.py` turns clicks and modal submissions
into calls on `Secrets` and renders the step it gets back (one type per kind, in
`relay.secret_steps`).

Everything runs as the person who asked, with their own SS session (`Sessions.api_for`):
SS decides what they may see, launch or request, and audits it as them. Only metadata
endpoints are used (search, summary, launchers, launch, access requests): no secret field
value is ever requested. An SS error becomes one sentence for a person (`ss_sentence`),
never a stack trace.

Recent secrets are cached per person for `RECENT_TTL` seconds so a burst of `app_home_opened`
does not hammer SS. The cache is dropped when the person logs off or signs in again, when
their session is found expired, and whenever they no longer have a session at all: it never
outlives the session it was read with.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from .errors import (
    AccessDenied,
    CommentRequired,
    RequestRejected,
    SecretServerBadResponse,
    SecretServerError,
    SecretServerUnavailable,
    SessionExpired,
    TicketRequired,
)
from .model import Launcher, Secret
from .secret_steps import (
    Choose,
    Created,
    Failed,
    Form,
    FormInvalid,
    Handoff,
    Launched,
    Nothing,
    NotNeeded,
    Prompt,
    PromptInvalid,
    Results,
    SignIn,
    Step,
)
from .sessions import NeedsSignIn, Sessions

log = logging.getLogger(__name__)

SEARCH_MAX_CHARS = 200
SEARCH_TAKE = 3
RECENT_TAKE = 5
RECENT_TTL = 60.0                 # seconds a Home tab's recent list is reused
PROMPT_MAX_CHARS = 255
COMMENT_MAX_CHARS = 1000
TICKET_MAX_CHARS = 100



NO_LAUNCHER = "This secret has no launcher in Secret Server. Open it there instead."
LAUNCHER_GONE = "That launcher is no longer available on this secret."
NO_LINK = "Secret Server started the launch but gave no link Slack can open. Open the secret in Secret Server instead."
LINK_MAX_CHARS = 2000            # a longer launch link is not shown as text (it would not survive a copy)
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


@dataclass(frozen=True)
class LaunchLink:
    """Where a started launch can be opened: `url` "" when SS gave nothing usable;
    `in_browser` True for an http(s) link, False for a link only SS's launcher app opens."""

    url: str
    in_browser: bool = False


def launch_link(launched: dict, ss_base: str) -> LaunchLink:
    """The link a person can open for SS's answer to POST /api/v1/launchers/secret
    (`LaunchedSecretModel`). SS's API models describe `baseUrl` as "the url to the launcher",
    `ssUrl` as "the query string for the launcher" and `encodedUrl` as "the url to Secret
    Server": the launch link is `baseUrl` with `ssUrl` as its query (or `ssUrl` itself when it
    is a whole URL). `encodedUrl`, and any link that is only SS's own address, launch nothing
    and are never offered as a launch link."""
    raw_base, raw_query = launched.get("baseUrl"), launched.get("ssUrl")
    base = raw_base.strip() if isinstance(raw_base, str) else ""
    query = raw_query.strip() if isinstance(raw_query, str) else ""
    if _SCHEME.match(query) and "://" in query or query.lower().startswith("sslauncher:"):
        url = query
    elif _SCHEME.match(base):
        q = query.lstrip("?&")
        url = base + (("&" if "?" in base else "?") + q if q else "")
    else:
        return LaunchLink("")
    if len(url) > LINK_MAX_CHARS or any(ord(c) < 33 for c in url):
        return LaunchLink("")
    web = url.lower().startswith(("https://", "http://"))
    if web and _only_ss(url, ss_base):
        return LaunchLink("")
    return LaunchLink(url, in_browser=web)


def _only_ss(url: str, ss_base: str) -> bool:
    """True when `url` is just SS's address (its root, app shell or login page): opening it
    launches nothing."""
    u = url.split("#", 1)[0].split("?", 1)[0].rstrip("/").lower()
    b = ss_base.rstrip("/").lower()
    return u in (b + "/app", b + "/login.aspx", b + "/dashboard.aspx") or b.startswith(u)


def validate_search(text: str | None) -> str:
    """The error for a search text ("" when it is fine)."""
    t = (text or "").strip()
    if not t:
        return "Type part of a secret's name."
    if len(t) > SEARCH_MAX_CHARS:
        return f"Use at most {SEARCH_MAX_CHARS} characters."
    return ""


def validate_prompt(value: str | None) -> str:
    v = (value or "").strip()
    if not v:
        return "Say which host to connect to."
    if len(v) > PROMPT_MAX_CHARS or any(ord(c) < 32 for c in v):
        return f"Use at most {PROMPT_MAX_CHARS} characters, on one line."
    return ""


def validate_request(comment: str | None, ticket: str | None) -> dict[str, str]:
    """Field errors of the request-access form, keyed "comment" / "ticket"."""
    errors = {}
    c = (comment or "").strip()
    if not c:
        errors["comment"] = "Say why you need access."
    elif len(c) > COMMENT_MAX_CHARS:
        errors["comment"] = f"Use at most {COMMENT_MAX_CHARS} characters."
    if len((ticket or "").strip()) > TICKET_MAX_CHARS:
        errors["ticket"] = f"Use at most {TICKET_MAX_CHARS} characters."
    return errors


_PATH_SUFFIX = re.compile(r"\s*\[[^\]]*\]\s*$")


def _ss_message(exc: SecretServerError) -> str:
    text = _PATH_SUFFIX.sub("", str(exc)).removeprefix("Secret Server: ").strip()
    return text[:300]


def ss_sentence(exc: SecretServerError) -> str:
    """What a person reads when SS failed: one sentence, no internals."""
    if isinstance(exc, AccessDenied):
        return "You cannot see this secret in Secret Server (or it no longer exists)."
    if isinstance(exc, SecretServerUnavailable):
        return "Secret Server could not be reached just now. Try again in a minute."
    if isinstance(exc, SecretServerBadResponse):
        return ("Secret Server gave an answer the relay could not read. Try again, or tell your "
                "Secret Server administrator.")
    if isinstance(exc, RequestRejected):
        msg = _ss_message(exc)
        return f"Secret Server refused: {msg}" if msg else "Secret Server refused the request."
    return "Secret Server could not do that just now. Try again in a minute."


_Read = TypeVar("_Read")


@dataclass(frozen=True)
class Recent:
    """The Home tab's Recent Secrets: `secrets` None when nothing is known (yet)."""

    secrets: tuple[Secret, ...] | None
    note: str = ""


@dataclass
class _Cached:
    fetched: float
    secrets: tuple[Secret, ...]


class Secrets:
    def __init__(self, sessions: Sessions, *, recent_ttl: float = RECENT_TTL,
                 clock: Callable[[], float] = time.monotonic):
        self.sessions = sessions
        self.recent_ttl = recent_ttl
        self.clock = clock
        self._recent: dict[str, _Cached] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ helpers
    def _api(self, slack_user: str):
        return self.sessions.api_for(slack_user)     # NeedsSignIn

    @property
    def ss_base(self) -> str:
        return self.sessions.ss.base_url

    def _expired(self, slack_user: str) -> Step:
        self.sessions.expired(slack_user)
        self.forget(slack_user)
        return SignIn()

    # ------------------------------------------------------------------ search
    def search(self, slack_user: str, text: str) -> Step:
        """The top three secrets matching `text` that this person can see in SS."""
        text = (text or "").strip()
        if validate_search(text):
            return Failed(validate_search(text))
        try:
            found = self._api(slack_user).search_secrets(text, take=SEARCH_TAKE)
        except NeedsSignIn:
            return SignIn()
        except SessionExpired:
            return self._expired(slack_user)
        except SecretServerError as exc:
            log.warning("secret search failed", extra={"slack_user": slack_user, "error": type(exc).__name__})
            return Failed(ss_sentence(exc))
        return Results(tuple(found[:SEARCH_TAKE]))

    # ------------------------------------------------------------------ recent (Home tab)
    def forget(self, slack_user: str) -> None:
        """Drop what is cached for this person (log off, new sign-in, session gone)."""
        with self._lock:
            self._recent.pop(slack_user, None)

    def recent(self, slack_user: str, *, fetch: bool) -> Recent:
        """The person's recent secrets. With `fetch`, SS is asked unless the cached list is
        younger than `recent_ttl`; without, only the cache is used (republishes after a poll
        or a click never call SS). A lapsed session gives `Recent(None)` and forgets it."""
        if not self.sessions.has_session(slack_user):
            self.forget(slack_user)
            return Recent(None)
        with self._lock:
            cached = self._recent.get(slack_user)
        if cached is not None and (not fetch or self.clock() - cached.fetched < self.recent_ttl):
            return Recent(cached.secrets)
        if not fetch:
            return Recent(None)
        try:
            found = tuple(self._api(slack_user).recent_secrets(take=RECENT_TAKE)[:RECENT_TAKE])
        except NeedsSignIn:
            self.forget(slack_user)
            return Recent(None)
        except SessionExpired:
            self._expired(slack_user)
            return Recent(None)
        except SecretServerError as exc:
            log.warning("recent secrets not read", extra={"slack_user": slack_user, "error": type(exc).__name__})
            if cached is not None:
                return Recent(cached.secrets)
            return Recent(None, "Your recent secrets could not be read from Secret Server just now.")
        with self._lock:
            self._recent[slack_user] = _Cached(self.clock(), found)
        return Recent(found)

    # ------------------------------------------------------------------ launch
    def _as_person(self, slack_user: str, secret_id: int, read: Callable[[Any], _Read]) -> _Read | Step:
        """`read(api)` with this person's session, or the Step that explains why it could not run."""
        try:
            return read(self._api(slack_user))
        except NeedsSignIn:
            return SignIn(secret_id)
        except SessionExpired:
            return self._expired(slack_user)
        except SecretServerError as exc:
            return Failed(ss_sentence(exc), secret_id)

    def _read_launchers(self, slack_user: str, secret_id: int) \
            -> tuple[Any, Secret, tuple[Launcher, ...]] | Step:
        """(api, secret, launchers) as this person sees them, or the Step that explains why not."""
        return self._as_person(slack_user, secret_id,
                               lambda api: (api, api.secret_summary(secret_id), api.launchers(secret_id)))

    def launch_options(self, slack_user: str, secret_id: int) -> Step:
        """What clicking Launch leads to: launched at once (one launcher, no prompt), a choice,
        a prompt, or nothing launchable (with the reason)."""
        read = self._read_launchers(slack_user, secret_id)
        if isinstance(read, Step):
            return read
        api, secret, launchers = read
        if not launchers:
            return Nothing(secret, NO_LAUNCHER)
        if len(launchers) > 1:
            return Choose(secret, launchers)
        only = launchers[0]
        if only.prompted:
            return Prompt(secret, only)
        return self._launch(api, slack_user, secret, only, None)

    def launch(self, slack_user: str, secret_id: int, launcher_id: int, prompt_value: str | None = None) -> Step:
        """Launch `launcher_id` on `secret_id` as this person. Launchers are re-read (a click
        carries ids only); a prompted launcher without a value answers PROMPT, a value outside
        its restricted hosts INVALID."""
        read = self._read_launchers(slack_user, secret_id)
        if isinstance(read, Step):
            return read
        api, secret, launchers = read
        launcher = next((x for x in launchers if x.launcher_id == int(launcher_id)), None)
        if launcher is None:
            return Nothing(secret, LAUNCHER_GONE if launchers else NO_LAUNCHER)
        value = (prompt_value or "").strip() or None
        if launcher.prompted:
            if value is None:
                return Prompt(secret, launcher)
            problem = validate_prompt(value)
            if not problem and launcher.restricted_hosts and value not in launcher.restricted_hosts:
                problem = "Pick one of the hosts this launcher allows."
            if problem:
                return PromptInvalid(secret, launcher, problem)
        else:
            value = None
        return self._launch(api, slack_user, secret, launcher, value)

    def _launch(self, api, slack_user: str, secret: Secret, launcher: Launcher, value: str | None) -> Step:
        try:
            launched = api.launch(secret.id, launcher.launcher_id, value)
        except SessionExpired:
            return self._expired(slack_user)
        except (RequestRejected, AccessDenied) as exc:
            # SS will not launch it (approval needed, checked out, not allowed...): say why
            return Nothing(secret, f"Secret Server did not launch it: {_ss_message(exc) or 'refused'}")
        except SecretServerError as exc:
            return Failed(ss_sentence(exc), secret.id, secret, launcher)
        link = launch_link(launched, self.ss_base)
        log.info("secret launched from slack", extra={"slack_user": slack_user, "secret_id": secret.id,
                                                      "launcher_id": launcher.launcher_id})
        if not link.url:
            return Nothing(secret, NO_LINK, launcher)
        started = Launched if link.in_browser else Handoff
        return started(secret, launcher, link.url)

    def launchable(self, slack_user: str, secret_id: int) -> bool:
        """For the requester's "approved" message: False only when SS, asked as that person,
        says the secret has no launcher. Without a session (or when SS cannot say), the button
        is shown: the click re-reads the launchers and says plainly if there is none."""
        try:
            return self._api(slack_user).secret_summary(secret_id).has_launcher
        except NeedsSignIn:
            return True
        except SessionExpired:
            self._expired(slack_user)
            return True
        except SecretServerError:
            return True

    # ------------------------------------------------------------------ request access
    def access_form(self, slack_user: str, secret_id: int) -> Step:
        """Before the request form: the secret as this person sees it."""
        secret = self._as_person(slack_user, secret_id, lambda api: api.secret_summary(secret_id))
        if isinstance(secret, Step):
            return secret
        if not secret.requires_approval:
            return NotNeeded(secret)
        return Form(secret)

    def request_access(self, slack_user: str, secret_id: int, comment: str, ticket: str = "") -> Step:
        """Create the access request in SS as this person; the poll then tells the approvers."""
        comment, ticket = (comment or "").strip(), (ticket or "").strip()
        errors = validate_request(comment, ticket)
        if errors:
            return FormInvalid(secret_id, errors)
        try:
            req = self._api(slack_user).create_request(secret_id, comment, ticket)
        except NeedsSignIn:
            return SignIn(secret_id)
        except SessionExpired:
            return self._expired(slack_user)
        except TicketRequired:
            return FormInvalid(secret_id, {"ticket": "This secret needs a ticket number."}, needs_ticket=True)
        except CommentRequired:
            return FormInvalid(secret_id, {"comment": "This secret needs a comment."})
        except SecretServerError as exc:
            return Failed(ss_sentence(exc), secret_id)
        log.info("access requested from slack", extra={"slack_user": slack_user, "secret_id": secret_id,
                                                       "request_id": req.id})
        return Created(secret_id, req)
