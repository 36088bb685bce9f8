"""Secret Server checks: TLS, reachable, the relay account's login, that it can list access
requests, and that the configured time zone matches the one SS writes timestamps in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlparse

from ..config import Config
from ..errors import SecretServerError
from .report import FIX_LIST, FIX_LOGIN, FIX_REACH, FIX_TLS, FIX_ZONE, Check, _guard, skipped


def secret_server_checks(cfg: Config) -> list[Check]:
    from ..runtime import build_ss_client
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
