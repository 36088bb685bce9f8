"""The relay account's session: its token reused until near expiry, then refreshed or
obtained again (password grant, or the platform's service-user grant), and a call refused with
401/403 retried once with a fresh token. Also the password grant people sign in with."""

from __future__ import annotations

import logging
import threading
from typing import Any

from relay.errors import AuthenticationFailed
from relay.ss.flavour import PLATFORM_AUTH, Flavour
from relay.ss.http import AuthRejected, utcnow
from relay.ss.tokens import TokenSet

log = logging.getLogger("relay.ss")


class RelaySession(Flavour):
    """The relay account's token, and people's password grant (on the platform it goes to the
    vault, which the relay's first sign-in finds). The client's constructor sets
    `_relay_tokens` (None) and `_relay_lock`."""

    _relay_tokens: TokenSet | None
    _relay_lock: threading.Lock

    def login_user(self, username: str, password: str, domain: str = "", otp: str = "") -> TokenSet:
        """Password grant. 400 -> AuthenticationFailed (otp_required when SS asks for an OTP)."""
        if self.base_url == self.platform_url and self._credentials is not None \
                and self.detect_flavour() == PLATFORM_AUTH:
            self._relay_token()              # people sign in at the vault: find it first
        form = {"grant_type": "password", "username": username, "password": password}
        if domain:
            form["domain"] = domain
        headers = {"OTP": otp} if otp else None
        # An OTP is single use: a retried grant would be refused even when the first went through.
        return self._token(form, headers, AuthenticationFailed, idempotent=not otp)

    def _relay_token(self) -> str:
        if self._credentials is None:
            raise AuthenticationFailed("no relay credentials configured")
        with self._relay_lock:
            tokens = self._relay_tokens
            if tokens is not None and tokens.fresh(utcnow()):
                return tokens.access_token
            if self.detect_flavour() == PLATFORM_AUTH:
                self._relay_tokens = self._platform_grant()
                return self._relay_tokens.access_token
            if tokens is not None and tokens.refresh_token:
                try:
                    self._relay_tokens = self.refresh_user(tokens.refresh_token)
                    log.debug("relay session refreshed")
                    return self._relay_tokens.access_token
                except AuthenticationFailed:
                    log.info("relay refresh token refused: signing in again")
            c = self._credentials
            self._relay_tokens = self.login_user(c.username, c.password, c.domain)
            log.debug("relay signed in to Secret Server")
            return self._relay_tokens.access_token

    def _drop_relay_token(self, token: str) -> None:
        with self._relay_lock:
            if self._relay_tokens is not None and self._relay_tokens.access_token == token:
                self._relay_tokens = None

    def _relay_api(self, method: str, path: str, *, params: dict | None = None,
                   json: Any = None) -> Any:
        """One API call as the relay account (a 401/403 signs in again and retries once)."""
        token = self._relay_token()
        try:
            return self._request(method, path, params=params, json=json, token=token)
        except AuthRejected as e:
            log.info("Secret Server refused the relay's token (%s) on %s: signing in again",
                     e.status, path)
            self._drop_relay_token(token)
        token = self._relay_token()
        try:
            return self._request(method, path, params=params, json=json, token=token)
        except AuthRejected as e:
            self._drop_relay_token(token)
            raise AuthenticationFailed("Secret Server refused a fresh token", path=path,
                                       status=e.status) from None
