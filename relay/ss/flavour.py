"""Which Secret Server this is (on-premises or SS Cloud, or a Delinea Platform tenant), its
health, its clock, and the platform's service-user grant that finds the tenant's vault."""

from __future__ import annotations

import email.utils
import logging
from datetime import UTC, datetime

import requests

from relay.errors import AccessDenied, AuthenticationFailed, RequestRejected, SecretServerBadResponse
from relay.ss import parse
from relay.ss.http import AuthRejected, json_body
from relay.ss.tokens import RelayCredentials, TokenGrants, TokenSet

log = logging.getLogger("relay.ss")

PLATFORM_TOKEN_PATH = "/identity/api/oauth2/token/xpmplatform"
VAULTS_PATH = "/vaultbroker/api/vaults"
AUTO_AUTH, PASSWORD_AUTH, PLATFORM_AUTH = "auto", "password", "platform"
PROBE_TIMEOUT = 5.0                        # seconds for one flavour-detection health probe


class Flavour(TokenGrants):
    """Flavour detection, health checks and platform auth. The client's constructor sets
    `platform_url` (the configured URL; `base_url` becomes the vault's on the platform),
    `flavour` (None until detected) and `_credentials`."""

    platform_url: str
    flavour: str | None
    _credentials: RelayCredentials | None

    def detect_flavour(self) -> str:
        """PASSWORD_AUTH (on-premises or SS Cloud) or PLATFORM_AUTH (Delinea Platform), as
        configured, or for "auto" found the way Delinea's python-tss-sdk does: SS answers
        `{base}/api/v1/healthcheck`, a platform tenant `{base}/health`. Neither healthy:
        PASSWORD_AUTH, so the usual errors say what is wrong."""
        if self.flavour is None:
            if self._healthy(self.platform_url + "/api/v1/healthcheck"):
                self.flavour = PASSWORD_AUTH
            elif self._healthy(self.platform_url + "/health"):
                self.flavour = PLATFORM_AUTH
            else:
                return PASSWORD_AUTH
            log.info("Secret Server flavour: %s", self.flavour)
        return self.flavour

    def _platform_grant(self) -> TokenSet:
        """The relay account as a platform service user: client-credentials grant, scope
        xpmheadless. Then the vault's API URL (once): the default, active vault."""
        c = self._credentials
        assert c is not None
        tokens = self._token({"grant_type": "client_credentials", "client_id": c.username,
                              "client_secret": c.password, "scope": "xpmheadless"},
                             None, AuthenticationFailed, idempotent=True,
                             url=self.platform_url + PLATFORM_TOKEN_PATH)
        if self.base_url == self.platform_url:
            data = self._request("GET", self.platform_url + VAULTS_PATH,
                                 token=tokens.access_token)
            self.base_url = parse.default_vault_url(data, path=VAULTS_PATH)
            log.info("Delinea Platform vault: %s", self.base_url)
        return tokens

    def healthcheck(self) -> bool:
        """True when SS (on the platform: the tenant until its vault is known) says it is
        healthy (anonymous). False when it answers otherwise; SecretServerUnavailable when
        it cannot be reached within the retry budget."""
        if self.detect_flavour() == PLATFORM_AUTH and self.base_url == self.platform_url:
            return self._healthy(self.platform_url + "/health", quiet=False)
        return self._healthy(self.base_url + "/api/v1/healthcheck", quiet=False)

    def _healthy(self, url: str, *, quiet: bool = True) -> bool:
        """Whether `url` answers a health check saying healthy (`healthy` in any case).
        `quiet`: one try, and unreachable is just False (flavour detection)."""
        try:
            if quiet:                          # a probe: short, so a dead host costs little
                resp = self._session.get(url, timeout=min(self.timeout, PROBE_TIMEOUT),
                                         verify=self.verify, allow_redirects=False)
                with resp:
                    data = json_body(resp, url) if resp.status_code == 200 else None
            else:
                data = self._request("GET", url, token=None)
        except (SecretServerBadResponse, RequestRejected, AccessDenied, AuthRejected):
            return False
        except requests.RequestException:
            return False
        if isinstance(data, dict):
            for key, value in data.items():
                if key.lower() == "healthy":
                    return value is True
        return False

    def server_date(self) -> datetime | None:
        """SS's clock, from the HTTP `Date` header of the anonymous health check (always
        GMT, whatever zone SS writes its timestamps in); None when it cannot be read."""
        try:
            resp = self._session.get(self.base_url + "/api/v1/healthcheck", timeout=self.timeout,
                                     verify=self.verify, allow_redirects=False)
        except requests.RequestException:
            return None
        with resp:
            try:
                when = email.utils.parsedate_to_datetime(resp.headers.get("Date", ""))
            except (TypeError, ValueError):
                return None
        return when.replace(tzinfo=UTC) if when.tzinfo is None else when
