"""People's Secret Server sessions and the sign-in links that create them.

* A sign-in state is random (32 bytes, URL-safe), stored only as its SHA-256, bound to the
  Slack team and user it was made for, valid `STATE_TTL`, single use. It may carry the click
  that needed the sign-in (`pending_action`), completed right after it.
* Access and refresh tokens are stored Fernet-encrypted with `storage.encryption_key`; the
  password is never stored (it goes to SS once, from the sign-in form).
* `api_for(slack_user)` gives a `UserApi` acting as that person. It refreshes the access token
  when needed and stores the rotated tokens; when SS will not refresh any more the session is
  deleted and the caller gets `NeedsSignIn`.
* Log off revokes the token in SS and deletes the session; the Slack <-> SS link stays, so
  notifications and the Home tab still find the person.
* A link records whether the two accounts were proven to be one person (`email_verified_at`,
  see `relay.identity`). While `users.signin_requires_email_match` is on, a link without that
  proof (made before the check existed, or while it was off) is checked the next time it is
  used; when the e-mails differ the link and its session are removed and the person must
  sign in again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable

from cryptography.fernet import Fernet, InvalidToken

from .errors import (
    ConfigError,
    RelayError,
    SecretServerError,
    SessionExpired,
    SlackError,
)
from .identity import EmailBinding
from .model import Person
from .outbox import Outbox
from .ss.client import SecretServerClient, TokenSet, UserApi

log = logging.getLogger(__name__)

STATE_TTL = timedelta(minutes=10)
STATE_PURGE_AFTER = timedelta(days=1)   # used and expired states are deleted after this


class LinkConflict(RelayError):
    """The SS account is already linked to another Slack account."""


class NeedsSignIn(RelayError):
    """This Slack user has no usable Secret Server session: they must sign in."""

    def __init__(self, slack_user: str, reason: str = "not signed in"):
        self.slack_user = slack_user
        self.reason = reason
        super().__init__(f"{slack_user}: {reason}")


@dataclass(frozen=True)
class SignInState:
    """A valid (unused, unexpired) sign-in state as stored."""

    state_hash: str
    slack_team: str
    slack_user: str
    expires_at: datetime
    pending_action: dict | None


def _now() -> datetime:
    return datetime.now(timezone.utc)


def hash_state(state: str) -> str:
    return hashlib.sha256(state.encode("utf-8", "replace")).hexdigest()


def require_key(key: str) -> Fernet:
    """The Fernet for `storage.encryption_key`; a start-up error saying what to do when missing."""
    if not key:
        raise ConfigError("storage.encryption_key",
                          "is required: people's Secret Server sessions are stored encrypted "
                          "with it. Run `ssrelay keygen` and set the key it prints "
                          "(or SSRELAY_STORAGE_ENCRYPTION_KEY / encryption_key_file)")
    try:
        return Fernet(key.encode())
    except (ValueError, TypeError):
        raise ConfigError("storage.encryption_key", "expected a Fernet key (run `ssrelay keygen`)") from None


class Sessions:
    def __init__(self, db, ss: SecretServerClient, encryption_key: str, *,
                 clock: Callable[[], datetime] = _now, identity: EmailBinding | None = None):
        self.db = db
        self.ss = ss
        self.identity = identity     # the e-mail check of links; None: links are not checked
        self._fernet = require_key(encryption_key)
        self.clock = clock
        self._apis: dict[str, tuple[str, UserApi]] = {}   # slack user -> (stored access ct, api)
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ sign-in states
    def new_state(self, slack_team: str, slack_user: str, pending_action: dict | None = None) -> str:
        """A fresh sign-in state (the only copy of the raw value is returned)."""
        state = secrets.token_urlsafe(32)
        now = self.clock()
        with self.db.atomic():
            self.db.execute("DELETE FROM signin_states WHERE expires_at < ?",
                            [(now - STATE_PURGE_AFTER).isoformat()])
            self.db.execute(
                "INSERT INTO signin_states (state_hash, slack_team, slack_user, created_at, expires_at, "
                "pending_action) VALUES (?, ?, ?, ?, ?, ?)",
                [hash_state(state), slack_team or "", slack_user, now.isoformat(),
                 (now + STATE_TTL).isoformat(),
                 json.dumps(pending_action, sort_keys=True) if pending_action else None])
        return state

    def peek_state(self, state: str) -> SignInState | None:
        """The state if it exists, is unused and unexpired; None otherwise. Changes nothing."""
        if not state or len(state) > 200:
            return None
        row = self.db.execute(
            "SELECT state_hash, slack_team, slack_user, expires_at, pending_action, used_at "
            "FROM signin_states WHERE state_hash = ?", [hash_state(state)]).fetchone()
        if row is None or row[5] is not None:
            return None
        expires = datetime.fromisoformat(row[3])
        if self.clock() >= expires:
            return None
        return SignInState(row[0], row[1], row[2], expires, json.loads(row[4]) if row[4] else None)

    def consume_state(self, state: str) -> SignInState | None:
        """Mark the state used; None when it was not valid or someone else used it first."""
        found = self.peek_state(state)
        if found is None:
            return None
        with self.db.atomic():
            taken = self.db.execute(
                "UPDATE signin_states SET used_at = ? WHERE state_hash = ? AND used_at IS NULL",
                [self.clock().isoformat(), found.state_hash]).rowcount == 1
        return found if taken else None

    # ------------------------------------------------------------------ links and sessions
    def _encrypt(self, text: str) -> str:
        return self._fernet.encrypt(text.encode()).decode()

    def _decrypt(self, text: str) -> str:
        return self._fernet.decrypt(text.encode()).decode()

    def linked_elsewhere(self, slack_user: str, ss_user_id: int) -> bool:
        """True when this SS user is already linked to another Slack user."""
        return self.db.execute("SELECT 1 FROM slack_links WHERE ss_user_id = ? AND slack_user != ?",
                               [ss_user_id, slack_user]).fetchone() is not None

    def link(self, slack_user: str, slack_team: str, person: Person, tokens: TokenSet, *,
             verified: bool = False) -> None:
        """Link the Slack user to the SS user and store the session (encrypted). An SS user is
        linked to one Slack user, and a link is never moved by a sign-in: a forwarded sign-in
        link must not hand someone's SS account to another Slack account (LinkConflict); the
        person logs off from the other Slack account first. `verified`: the two accounts'
        e-mails were seen to match."""
        now = self.clock().isoformat()
        others: list[str] = []
        with self.db.atomic():
            if self.linked_elsewhere(slack_user, person.id):
                raise LinkConflict(person.username)
            self.db.execute(
                "INSERT INTO slack_links (slack_user, slack_team, ss_user_id, ss_username, linked_at, "
                "email_verified_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(slack_user) DO UPDATE SET "
                "slack_team=excluded.slack_team, ss_user_id=excluded.ss_user_id, "
                "ss_username=excluded.ss_username, linked_at=excluded.linked_at, "
                "email_verified_at=excluded.email_verified_at",
                [slack_user, slack_team or "", person.id, person.username, now, now if verified else None])
            self.db.execute(
                "INSERT INTO people (id, username, display_name, email, fetched_at) VALUES (?,?,?,?,?) "
                "ON CONFLICT(id) DO UPDATE SET username=excluded.username, display_name=excluded.display_name, "
                "email=excluded.email, fetched_at=excluded.fetched_at",
                [person.id, person.username, person.display_name, person.email, now])
            self._store_tokens(slack_user, person.id, tokens)
            self.db.execute("DELETE FROM unmapped_people WHERE ss_user_id = ?", [person.id])
            revived = Outbox(self.db).revive_unmapped(person.id)
        if revived:
            log.info("approval messages revived after sign-in", extra={"ss_user_id": person.id, "count": revived})
        with self._lock:
            for u in [slack_user, *others]:
                self._apis.pop(u, None)
        log.info("slack user signed in to secret server", extra={"slack_user": slack_user,
                                                                  "ss_user_id": person.id})

    def _store_tokens(self, slack_user: str, ss_user_id: int, tokens: TokenSet) -> None:
        self.db.execute(
            "INSERT INTO user_sessions (slack_user, ss_user_id, access_token, refresh_token, expires_at, "
            "updated_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(slack_user) DO UPDATE SET "
            "ss_user_id=excluded.ss_user_id, access_token=excluded.access_token, "
            "refresh_token=excluded.refresh_token, expires_at=excluded.expires_at, updated_at=excluded.updated_at",
            [slack_user, ss_user_id, self._encrypt(tokens.access_token),
             self._encrypt(tokens.refresh_token) if tokens.refresh_token else None,
             tokens.expires_at.isoformat(), self.clock().isoformat()])

    def ss_user_id(self, slack_user: str) -> int | None:
        """The SS user linked to this Slack user (signed in at least once), or None. A link
        that must be checked is checked here through the person's session; without a session
        it is not used (None) until the person signs in again."""
        row = self.db.execute("SELECT ss_user_id, email_verified_at FROM slack_links WHERE slack_user = ?",
                              [slack_user]).fetchone()
        if row is None:
            return None
        if row[1] is None and self._checks_links():
            if not self.has_session(slack_user):
                return None
            try:
                self.api_for(slack_user)       # checks the link; removes it when it fails
            except NeedsSignIn:
                return None
        return row[0]

    def _checks_links(self) -> bool:
        return self.identity is not None and self.identity.required

    def _link_unproven(self, slack_user: str) -> bool:
        row = self.db.execute("SELECT email_verified_at FROM slack_links WHERE slack_user = ?",
                              [slack_user]).fetchone()
        return row is not None and row[0] is None and self._checks_links()

    def _check_link(self, slack_user: str, api: UserApi) -> None:
        """Prove an unproven link with the session's own account (`/users/current`) and the
        Slack profile, or remove it (NeedsSignIn). An outage leaves it unproven and unused."""
        assert self.identity is not None
        try:
            person = api.current_user()
            binding, _ = self.identity.check(slack_user, person.email)
        except SessionExpired:
            self.expired(slack_user)
            raise NeedsSignIn(slack_user, "session expired") from None
        except (SecretServerError, SlackError) as exc:
            log.warning("could not check that a linked slack and secret server account are one person; "
                        "not using the link now", extra={"slack_user": slack_user, "error": type(exc).__name__})
            raise NeedsSignIn(slack_user, "link not checked yet") from None
        if binding.verified:
            with self.db.atomic():
                self.db.execute("UPDATE slack_links SET email_verified_at = ? WHERE slack_user = ?",
                                [self.clock().isoformat(), slack_user])
            log.info("linked accounts checked: same e-mail", extra={"slack_user": slack_user,
                                                                      "ss_user_id": person.id})
            return
        log.warning("linked slack and secret server accounts are not proven to be one person: link "
                    "removed, a new sign-in is needed",
                    extra={"slack_user": slack_user, "ss_user_id": person.id, "reason": str(binding.reason)})
        self.unlink(slack_user)
        raise NeedsSignIn(slack_user, "linked accounts do not match")

    def unlink(self, slack_user: str) -> None:
        """Remove the link and its session (the session is revoked in SS, best effort)."""
        self.log_off(slack_user)
        with self.db.atomic():
            self.db.execute("DELETE FROM slack_links WHERE slack_user = ?", [slack_user])
        with self._lock:
            self._apis.pop(slack_user, None)

    def has_session(self, slack_user: str) -> bool:
        return self.db.execute("SELECT 1 FROM user_sessions WHERE slack_user = ?",
                               [slack_user]).fetchone() is not None

    def api_for(self, slack_user: str) -> UserApi:
        """SS as this person. NeedsSignIn when there is no session (or it cannot be decrypted)."""
        row = self.db.execute(
            "SELECT ss_user_id, access_token, refresh_token, expires_at FROM user_sessions WHERE slack_user = ?",
            [slack_user]).fetchone()
        if row is None:
            raise NeedsSignIn(slack_user)
        api = self._api_for(slack_user, row)
        if self._link_unproven(slack_user):
            self._check_link(slack_user, api)
        return api

    def _api_for(self, slack_user: str, row) -> UserApi:
        ss_user_id, access_ct, refresh_ct, expires = row
        with self._lock:
            cached = self._apis.get(slack_user)
            if cached and cached[0] == access_ct:
                return cached[1]
            try:
                tokens = TokenSet(access_token=self._decrypt(access_ct),
                                  refresh_token=self._decrypt(refresh_ct) if refresh_ct else None,
                                  expires_at=datetime.fromisoformat(expires))
            except InvalidToken:
                log.warning("stored session cannot be decrypted (encryption key changed?)",
                            extra={"slack_user": slack_user})
                self._forget_locked(slack_user)
                raise NeedsSignIn(slack_user, "stored session unreadable") from None

            def on_refresh(new: TokenSet) -> None:
                with self.db.atomic():
                    self._store_tokens(slack_user, ss_user_id, new)
                stored = self.db.execute("SELECT access_token FROM user_sessions WHERE slack_user = ?",
                                         [slack_user]).fetchone()
                with self._lock:
                    if stored and self._apis.get(slack_user, (None, None))[1] is api:
                        self._apis[slack_user] = (stored[0], api)

            api = self.ss.as_user(tokens, on_refresh=on_refresh)
            self._apis[slack_user] = (access_ct, api)
            return api

    def expired(self, slack_user: str) -> None:
        """SS refused to refresh: the session is gone for good."""
        with self._lock:
            self._forget_locked(slack_user)

    def _forget_locked(self, slack_user: str) -> None:
        self._apis.pop(slack_user, None)
        with self.db.atomic():
            self.db.execute("DELETE FROM user_sessions WHERE slack_user = ?", [slack_user])

    def log_off(self, slack_user: str) -> bool:
        """Revoke the session in SS (best effort) and delete it. True if there was one."""
        row = self.db.execute("SELECT access_token FROM user_sessions WHERE slack_user = ?",
                              [slack_user]).fetchone()
        if row is None:
            return False
        with self._lock:
            cached = self._apis.get(slack_user)
        token = None
        try:
            token = cached[1].tokens.access_token if cached else self._decrypt(row[0])
        except InvalidToken:
            pass
        if token:
            try:
                self.ss.revoke(token)
            except SecretServerError as exc:
                log.warning("could not revoke the session in secret server; deleting it anyway",
                            extra={"slack_user": slack_user, "error": type(exc).__name__})
        with self._lock:
            self._forget_locked(slack_user)
        log.info("slack user logged off", extra={"slack_user": slack_user})
        return True
