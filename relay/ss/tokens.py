"""Sessions at Secret Server's token endpoint: `TokenSet`, the refresh grant, revoking, and
what a refused grant means (`AuthenticationFailed`, `OtpRequired`, `SessionExpired`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from relay.errors import (AccessDenied, AuthenticationFailed, OtpRequired, RequestRejected,
                          SecretServerBadResponse, SessionExpired)
from relay.ss import parse, refusals
from relay.ss.http import AuthRejected, HttpExchange, utcnow

TOKEN_PATH = "/oauth2/token"
EXPIRY_MARGIN = timedelta(seconds=60)     # renew this long BEFORE the token expires


@dataclass(frozen=True)
class RelayCredentials:
    """The relay's own read account."""

    username: str
    password: str = field(repr=False)
    domain: str = ""


@dataclass(frozen=True)
class TokenSet:
    """An SS session. `repr` hides the tokens."""

    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    expires_at: datetime

    def fresh(self, now: datetime) -> bool:
        return now < self.expires_at - EXPIRY_MARGIN


class TokenGrants(HttpExchange):
    """Grants at the token endpoint (and revoking a session) over `HttpExchange`."""

    def refresh_user(self, refresh_token: str) -> TokenSet:
        """Refresh grant (refresh tokens are single use). 400 -> SessionExpired."""
        # Refresh tokens are single use: never repeat a refresh whose answer was lost.
        return self._token({"grant_type": "refresh_token", "refresh_token": refresh_token},
                           None, SessionExpired, idempotent=False)

    def revoke(self, token: str) -> None:
        """Ends an SS session (POST /api/v1/oauth-expiration). An already dead token is fine."""
        try:
            self._request("POST", "/api/v1/oauth-expiration", token=token)
        except AuthRejected:
            pass

    def _token(self, form: dict, headers: dict | None, error: type[AuthenticationFailed], *,
               idempotent: bool, url: str = TOKEN_PATH) -> TokenSet:
        try:
            data = self._request("POST", url, data=form, headers=headers, token=None,
                                 idempotent=idempotent)
        except RequestRejected as e:
            raise self._auth_error(e, error) from None
        except AccessDenied as e:
            raise error("Secret Server refused the sign-in", path=TOKEN_PATH, status=e.status) from None
        except AuthRejected as e:
            raise error("Secret Server refused the sign-in", path=TOKEN_PATH,
                        status=e.status) from None
        if not isinstance(data, dict) or not isinstance(data.get("access_token"), str) \
                or not data["access_token"]:
            raise SecretServerBadResponse("token response without access_token", path=TOKEN_PATH)
        refresh = data.get("refresh_token")
        return TokenSet(access_token=data["access_token"],
                        refresh_token=refresh if isinstance(refresh, str) and refresh else None,
                        expires_at=parse.expires_at(data.get("expires_in"), utcnow(),
                                                    path=TOKEN_PATH))

    @staticmethod
    def _auth_error(e: RequestRejected, error: type[AuthenticationFailed]) -> AuthenticationFailed:
        otp = refusals.wants_otp(e)
        if error is SessionExpired:
            return SessionExpired("Secret Server refused the refresh token", path=TOKEN_PATH,
                                  status=e.status)
        if otp:
            return OtpRequired("Secret Server: a one-time password (OTP) is required or wrong",
                               path=TOKEN_PATH, status=e.status)
        return error("Secret Server: sign-in refused", path=TOKEN_PATH, status=e.status)
