"""`ssrelay check`: each check returns one line, and on failure what to do about it.
Every sentence a new operator reads lives here.

The checks, in order: config; public URL (a warning when browsers would send passwords over
plain HTTP); Secret Server TLS; Secret Server reachable; relay account login; relay account
can list access requests; Secret Server time zone; Slack bot token (`auth.test`); the scopes
that token really has (`x-oauth-scopes` of `auth.test`) against those the relay needs;
Socket Mode connection (socket mode only); encryption key; database.

A line is `ok`, `WARN` (works, but an operator should look), `skip` (could not run because
an earlier check failed; that one says why) or `FAIL` (with `->` and what to do).
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

from .config import Config
from .errors import (AccessDenied, AuthenticationFailed, ConfigError, SecretServerBadResponse,
                     SecretServerError, SecretServerUnavailable, SlackError, SlackPermanentError,
                     SlackUnavailable)
from .manifest import APP_TOKEN_SCOPE, BOT_SCOPES, CHANNEL_SCOPES


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


def config_failed(exc: ConfigError) -> list[Check]:
    """One FAIL line per missing or malformed key, so one run names them all."""
    return [Check("config", False, problem.detail, FIX_CONFIG) for problem in exc.problems]


def config_loaded(cfg: Config) -> list[Check]:
    source = f"loaded from {cfg.source}" if cfg.source else "from environment (no config file)"
    return [Check("config", True, source)] + [Check("config", True, w, warn=True) for w in cfg.warnings]


def skipped(name: str, why: str) -> Check:
    return Check(name, True, f"skipped ({why})", skipped=True)


def run_checks(cfg: Config) -> list[Check]:
    return config_loaded(cfg) + [public_url_check(cfg)] + secret_server_checks(cfg) + slack_checks(cfg) \
        + [encryption_key_check(cfg), _guard("database", lambda: _database(cfg.storage.path), FIX_DB)]


def secret_server_checks(cfg: Config) -> list[Check]:
    from .runtime import build_ss_client
    ss = build_ss_client(cfg, retry_seconds=3.0)   # an operator is waiting: fail fast
    try:
        return _secret_server_checks(cfg, ss)
    finally:
        ss.close()


def _secret_server_checks(cfg: Config, ss) -> list[Check]:
    tls = tls_check(cfg)
    if not tls.ok:
        reach = skipped("secret server reachable", "TLS connection not trusted")
    else:
        reach = _guard("secret server reachable", lambda: _health(ss, cfg.secret_server.base_url), FIX_REACH)
    out = [tls, reach]
    after_login = ["relay account can list access requests", "secret server time zone"]
    if not reach.ok or reach.skipped:
        return out + [skipped(name, "SS unreachable") for name in ["relay account login", *after_login]]
    login = _guard("relay account login", lambda: _login(ss), FIX_LOGIN)
    if not login.ok:
        return out + [login] + [skipped(name, "relay account login failed") for name in after_login]
    return out + [login, _guard(after_login[0], lambda: f"sees {len(ss.list_pending())} pending request(s)",
                                FIX_LIST), timezone_check(ss, cfg.secret_server.timezone)]


def slack_checks(cfg: Config) -> list[Check]:
    from .slack.api import make_client
    client = make_client(cfg.slack.api_url, cfg.slack.bot_token.value)
    granted: list[set[str]] = []

    def auth_test() -> str:
        data, scopes = _auth_test(client)
        granted.append(scopes)
        return f"bot {data.get('user', '?')} in workspace {data.get('team', '?')}"
    bot = _guard("slack bot token", auth_test, FIX_BOT_TOKEN, network_fix=FIX_SLACK_NETWORK)
    out = [bot]
    if bot.ok:
        out.append(scopes_check(granted[0], channels=bool(cfg.channels)))
        for route in cfg.channels:   # [[channels]]: the bot must be in each routed channel
            out.append(_guard(f"slack channel {route.channel}", partial(_channel_member, client, route),
                              FIX_CHANNEL, network_fix=FIX_SLACK_NETWORK))
    else:
        out.append(skipped("slack scopes", "Slack unreachable" if bot.fix == FIX_SLACK_NETWORK
                           else "the bot token was refused"))
    if cfg.slack.mode == "socket":
        out.append(_guard("slack socket mode", lambda: _socket_mode(cfg), FIX_SOCKET,
                          network_fix=FIX_SOCKET_NETWORK))
    return out


# ---------------------------------------------------------------------- public URL
def public_url_check(cfg: Config) -> Check:
    """The sign-in page at http.public_url takes Secret Server passwords: over plain HTTP they
    would cross the network readable. Loopback (a trial on this machine) is fine."""
    url = cfg.http.public_url
    parsed = urlparse(url)
    name = "public URL"
    if parsed.scheme == "https":
        return Check(name, True, f"{url} (HTTPS)")
    if _is_loopback(parsed.hostname or ""):
        return Check(name, True, f"{url} is plain HTTP on loopback: fine on this machine only")
    return Check(name, True, f"{url} is plain HTTP: the sign-in page there asks for Secret Server passwords, "
                             "which would cross the network unencrypted", FIX_PUBLIC_URL, warn=True)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# ---------------------------------------------------------------------- Secret Server
def tls_check(cfg: Config) -> Check:
    """Connect to Secret Server the way the relay will, and say plainly when the certificate
    is not trusted (the relay's own client would only report a connection error)."""
    import requests
    base = cfg.secret_server.base_url
    name = "secret server TLS"
    if urlparse(base).scheme != "https":
        return Check(name, True, f"not used ({base} is plain HTTP; use https:// beyond a lab)")
    verify = cfg.secret_server.verify_tls
    if verify is False:
        return Check(name, True, "certificate NOT verified (secret_server.verify_tls = false)")
    try:
        requests.get(base + "/api/v1/healthcheck", verify=verify, timeout=float(cfg.secret_server.timeout_seconds),
                     allow_redirects=False).close()
    except requests.exceptions.SSLError as exc:
        return Check(name, False, f"certificate verification failed for {urlparse(base).netloc} "
                                  f"({_ssl_reason(exc)})", FIX_TLS)
    except requests.RequestException:
        # not a TLS problem: the reachability check says what it is
        return skipped(name, "SS unreachable")
    how = "the system CA store" if verify is True else f"the CA bundle {verify}"
    return Check(name, True, f"certificate valid (verified with {how})")


def _ssl_reason(exc: Exception) -> str:
    text = str(exc)
    for marker in ("CERTIFICATE_VERIFY_FAILED", "certificate verify failed", "hostname mismatch",
                   "doesn't match", "WRONG_VERSION_NUMBER"):
        i = text.find(marker)
        if i >= 0:
            end = text.find(")", i)
            return text[i:end if end > 0 else i + 120].strip(" ('\"")
    return type(exc).__name__


ZONE_TOLERANCE = timedelta(minutes=4)      # the time a check takes, and slack in SS's activity time
ZONE_STEP = timedelta(minutes=15)          # every zone offset in use is a multiple of 15 min
ZONE_MIN = timedelta(minutes=30)           # the smallest gap between two zones in use


def zone_offset_seen(read: datetime, now: datetime) -> timedelta | None:
    """How far a timestamp SS wrote "just now" (read in the configured zone) is from SS's
    clock, when that looks like a zone offset: at least 30 min, and within 4 min of a
    multiple of 15 min. None when the two agree or the gap is no zone offset at all."""
    gap = now - read
    steps = round(gap / ZONE_STEP)
    if abs(steps * ZONE_STEP) < ZONE_MIN or abs(gap - steps * ZONE_STEP) > ZONE_TOLERANCE \
            or abs(steps) > 14 * 4:
        return None
    return steps * ZONE_STEP


def _hours(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def timezone_check(ss, configured: str) -> Check:
    """Secret Server writes timestamps without an offset; the relay reads them in
    `secret_server.timezone`. The relay account's last activity (it just signed in and made
    calls) is such a timestamp: compared with SS's own clock (the HTTP Date header), a gap of
    whole quarter hours means SS writes another zone than the configured one."""
    name = "secret server time zone"
    try:
        me = ss.current_user()
        read = ss.last_activity(me.id)
    except SecretServerError as exc:
        return Check(name, True, f"not checked ({type(exc).__name__})", warn=True)
    now = ss.server_date() or datetime.now(UTC)
    if read is None:
        return Check(name, True, f"not checked: Secret Server gave no activity time; timestamps are "
                                 f"read as {configured}", warn=True)
    offset = zone_offset_seen(read, now)
    if offset is None:
        return Check(name, True, f"timestamps read as {configured} agree with Secret Server's clock")
    return Check(name, True, f"timestamps read as {configured} are {_duration(offset)} off Secret Server's "
                             f"clock: it seems to write them in another zone",
                 FIX_ZONE.format(hint=_zone_hint(read, now, configured)), warn=True)


def _duration(delta: timedelta) -> str:
    minutes = abs(int(delta.total_seconds() // 60))
    h, m = divmod(minutes, 60)
    return f"{h} h {m:02d} min" if m else f"{h} h"


def _zone_hint(read: datetime, now: datetime, configured: str) -> str:
    """The UTC offset SS's timestamps seem to be written in (today)."""
    from zoneinfo import ZoneInfo
    offset = zone_offset_seen(read, now) or timedelta(0)
    local = ZoneInfo(configured).utcoffset(now.replace(tzinfo=None)) or timedelta(0)
    return _hours(local - offset)


FLAVOURS = {"password": "Secret Server (on-premises or SS Cloud; OAuth2 password grant)",
            "platform": "Delinea Platform tenant (service user, client credentials; vault found by the "
                        "vault broker)"}


def _health(ss, base_url: str) -> str:
    if not ss.healthcheck():
        raise RuntimeError(f"{base_url} answered, but its health check does not say healthy")
    return f"{base_url} answers its health check: {FLAVOURS[ss.detect_flavour()]}"


def _login(ss) -> str:
    name = ss.current_user().username
    if ss.detect_flavour() == "platform":
        return f"signed in as {name} (platform service user; vault {ss.base_url})"
    return f"signed in as {name}"


# ---------------------------------------------------------------------- Slack
def _auth_test(client) -> tuple[dict, set[str]]:
    """auth.test with the bot token: (response data, scopes from the x-oauth-scopes header)."""
    from slack_sdk.errors import SlackApiError, SlackClientError
    try:
        resp = client.api_call("auth.test")
    except SlackApiError as exc:
        # Slack's own refusal (`invalid_auth`...) is about the token; an HTTP error without
        # Slack's JSON is the network's (a proxy, an outage)
        error = exc.response.get("error", "") if isinstance(exc.response.data, dict) else ""
        if error:
            raise SlackPermanentError("auth.test", error) from None
        raise SlackUnavailable("auth.test", f"answered HTTP {exc.response.status_code} without Slack's JSON") \
            from None
    except (SlackClientError, OSError) as exc:
        raise SlackUnavailable("auth.test", f"not reachable ({type(exc).__name__})") from None
    header = ""
    for k, v in (resp.headers or {}).items():
        if k.lower() == "x-oauth-scopes":
            header = v[0] if isinstance(v, list) else v
    scopes = {s.strip() for s in str(header).split(",") if s.strip()}
    return dict(resp.data) if isinstance(resp.data, dict) else {}, scopes


FIX_CHANNEL = ("Invite the bot to the channel: open it in Slack and type `/invite @<the app's name>` "
               "(see README, \"Beyond Secret Server's own bot\"). Use the channel's ID (C…, from the "
               "channel's details), not its name.")


def _channel_member(client, route) -> str:
    """conversations.info: the channel exists and the bot is a member of it."""
    from slack_sdk.errors import SlackApiError, SlackClientError
    try:
        resp = client.api_call("conversations.info", params={"channel": route.channel})
    except SlackApiError as exc:
        error = exc.response.get("error", "") if isinstance(exc.response.data, dict) else ""
        if error == "missing_scope":
            raise SlackPermanentError("conversations.info", "the bot token lacks channels:read (groups:read for "
                                   "a private channel): add it to the app's bot scopes and reinstall") from None
        if error == "channel_not_found":
            raise SlackPermanentError("conversations.info", "no such channel, or a private channel the bot "
                                   "is not in") from None
        raise SlackPermanentError("conversations.info", error or f"HTTP {exc.response.status_code}") from None
    except (SlackClientError, OSError) as exc:
        raise SlackUnavailable("conversations.info", f"not reachable ({type(exc).__name__})") from None
    channel = (resp.data or {}).get("channel") if isinstance(resp.data, dict) else None
    if not isinstance(channel, dict):
        raise SlackPermanentError("conversations.info", "answered without a channel")
    name = f"#{channel.get('name')}" if channel.get("name") else route.channel
    if channel.get("is_archived"):
        raise SlackPermanentError("conversations.info", f"{name} is archived")
    if not channel.get("is_member"):
        raise SlackPermanentError("conversations.info", f"the bot is not a member of {name}")
    return f"the bot is in {name} (requests under {route.folder})"


def scopes_check(granted: set[str], *, channels: bool = False) -> Check:
    needed = set(BOT_SCOPES) | (set(CHANNEL_SCOPES) if channels else set())
    missing = sorted(needed - granted)
    extra = sorted(granted - needed)
    if missing:
        return Check("slack scopes", False, f"the bot token lacks {', '.join(missing)}", FIX_SCOPES)
    detail = f"has {', '.join(sorted(needed))}"
    if extra:
        detail += f" (and more than needed: {', '.join(extra)})"
    return Check("slack scopes", True, detail)


def _socket_mode(cfg: Config) -> str:
    """apps.connections.open with the app-level token, then open the WebSocket and wait for
    Slack's hello: exactly what `ssrelay run` does in socket mode."""
    import websocket
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError, SlackClientError
    try:
        url = WebClient(base_url=cfg.slack.api_url, timeout=10, retry_handlers=[]) \
            .apps_connections_open(app_token=cfg.slack.app_token.value)["url"]
    except SlackApiError as exc:
        error = exc.response.get("error", "") if isinstance(exc.response.data, dict) else ""
        raise SlackPermanentError("apps.connections.open", error or f"HTTP {exc.response.status_code}") from None
    except (SlackClientError, OSError) as exc:
        raise SlackUnavailable("apps.connections.open", f"not reachable ({type(exc).__name__})") from None
    try:
        ws = websocket.create_connection(url, timeout=10)
    except (OSError, websocket.WebSocketException) as exc:
        raise SlackUnavailable("apps.connections.open", "answered, but its WebSocket did not open "
                               f"({type(exc).__name__})") from None
    try:
        first = json.loads(ws.recv() or "{}")
    except (OSError, ValueError, websocket.WebSocketException) as exc:
        raise RuntimeError(f"the Socket Mode WebSocket opened but sent no hello ({type(exc).__name__})") from None
    finally:
        ws.close()
    if first.get("type") != "hello":
        raise RuntimeError(f"the Socket Mode WebSocket sent {first.get('type')!r} instead of hello")
    return "connected, Slack said hello"


# ---------------------------------------------------------------------- local
def encryption_key_check(cfg: Config) -> Check:
    if not cfg.storage.encryption_key:
        return Check("encryption key", False, "storage.encryption_key is not set", FIX_KEY)
    return Check("encryption key", True, "set (people's Secret Server sessions are stored encrypted)")


def _database(path: str) -> str:
    from .store import db as store
    if str(path) != ":memory:" and not Path(path).is_file():
        raise RuntimeError(f"no database at {path}")
    db = store.open_db(path)
    try:
        todo = store.pending(db)
        if todo:
            raise RuntimeError(f"{path} is not migrated: pending {', '.join(todo)}")
        with db.atomic():
            db.execute("CREATE TABLE IF NOT EXISTS _check_probe (x)")
            db.execute("DROP TABLE _check_probe")
    finally:
        db.conn.close()
    return f"{path} is writable and migrated"


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
