"""What `ssrelay check` prints: one `Check` per line, the advice each failure gives (every
sentence a new operator reads lives here), and `_guard`, which turns a failing check into
its line with the right advice."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..errors import (AccessDenied, AuthenticationFailed, SecretServerBadResponse, SecretServerError,
                      SecretServerUnavailable, SlackError, SlackUnavailable)
from ..manifest import APP_TOKEN_SCOPE


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    warn: bool = False          # passes, but the operator should look (printed as "WARN")
    skipped: bool = False       # not run: an earlier check failed (printed as "skip")

    def line(self) -> str:
        mark = "FAIL" if not self.ok else "skip" if self.skipped else "WARN" if self.warn else "ok  "
        text = f"{mark} {self.name}: {self.detail}"
        if (not self.ok or self.warn) and self.fix:
            text += f" -> {self.fix}"
        return text


# ---------------------------------------------------------------------- what the operator reads
FIX_CONFIG = "fix that key in the config file or its SSRELAY_* variable"
FIX_TLS = ("give the CA bundle that signed Secret Server's certificate as secret_server.verify_tls = "
           "\"/path/ca.pem\" (or fix the certificate: it must name the host in secret_server.base_url)")
FIX_REACH = ("check secret_server.base_url and that this host can reach it: DNS, firewall, proxy "
             "(HTTPS_PROXY / NO_PROXY); TLS: secret_server.verify_tls")
FIX_LOGIN = "check secret_server.username / password / domain; the account must be allowed to use the API"
FIX_LIST = ("give the account a role that may view access requests and add it to the approver "
            "groups it should watch")
FIX_BOT_TOKEN = "copy the Bot User OAuth Token (xoxb-...) into SSRELAY_SLACK_BOT_TOKEN"
FIX_SLACK_NETWORK = ("check that this host reaches slack.api_url over HTTPS (outbound port 443: DNS, "
                     "firewall, proxy via HTTPS_PROXY / NO_PROXY); the token was not tried")
FIX_SOCKET_NETWORK = ("allow outbound HTTPS and WebSocket (wss://) traffic to Slack from this host "
                      "(firewall, proxy via HTTPS_PROXY / NO_PROXY)")
FIX_PUBLIC_URL = ("serve the relay behind an HTTPS reverse proxy (README: Reverse proxy) and set "
                  "http.public_url to its https:// address")
FIX_SCOPES = ("paste the output of `ssrelay manifest` into the app's manifest (api.slack.com/apps -> "
              "your app -> App Manifest), reinstall the app, and copy the new bot token")
FIX_SOCKET = (f"create an App-Level Token with {APP_TOKEN_SCOPE} (Basic Information -> App-Level Tokens), "
              "put it in SSRELAY_SLACK_APP_TOKEN, and turn Socket Mode on (`ssrelay manifest --mode socket`)")
FIX_KEY = ("run `ssrelay keygen` and put the key in SSRELAY_STORAGE_ENCRYPTION_KEY (keep the same key "
           "across restarts: people's Secret Server sessions are encrypted with it)")
FIX_DB = "run `ssrelay migrate`, and make storage.path writable"
FIX_ZONE = ("set secret_server.timezone to the IANA zone of the Secret Server host (its timestamps "
            "look like {hint}), e.g. \"Europe/Berlin\"")
FIX_CHANNEL = ("Invite the bot to the channel: open it in Slack and type `/invite @<the app's name>` "
               "(see README, \"Beyond Secret Server's own bot\"). Use the channel's ID (C…, from the "
               "channel's details), not its name.")

def skipped(name: str, why: str) -> Check:
    return Check(name, True, f"skipped ({why})", skipped=True)

def _guard(name: str, fn: Callable[[], str], fix: str, *, network_fix: str = FIX_REACH) -> Check:
    """Run one check; a failure becomes its line. A network failure gets network advice
    (`network_fix`), never the advice for a wrong credential."""
    try:
        return Check(name, True, fn() or "ok")
    except AuthenticationFailed as exc:
        return Check(name, False, f"Secret Server refused the credentials ({exc})", fix)
    except AccessDenied as exc:
        return Check(name, False, f"access denied ({exc})", fix)
    except SecretServerUnavailable as exc:
        return Check(name, False, f"unreachable ({exc})", FIX_REACH)
    except SlackUnavailable as exc:
        return Check(name, False, f"Slack {exc.error}", network_fix)
    except SecretServerBadResponse as exc:
        return Check(name, False, f"answered with something that is not its API ({exc})",
                     "secret_server.base_url must point at the Secret Server root, e.g. https://host/SecretServer")
    except SecretServerError as exc:
        return Check(name, False, str(exc), fix)
    except SlackError as exc:
        return Check(name, False, f"Slack said {exc.error}", fix)
    except Exception as exc:   # a check must report, never crash
        msg = str(exc) if isinstance(exc, RuntimeError) else f"{type(exc).__name__}: {exc}"
        return Check(name, False, msg, fix)
