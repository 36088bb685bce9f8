"""Configuration: TOML file, then `SSRELAY_<SECTION>_<KEY>` environment overrides, then
`<key>_file` for secrets. Validation stops start-up with one line naming the key.

Every key is declared once in `SCHEMA`; `config.example.toml` documents each of them and a
test keeps the two in step.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlparse

from .errors import ConfigError

SECRET_KEYS = {
    ("secret_server", "password"),
    ("slack", "bot_token"),
    ("slack", "signing_secret"),
    ("slack", "app_token"),
    ("storage", "encryption_key"),
    ("nudge", "token"),
}


class Secret:
    """A secret config value. repr/str show asterisks; `.value` is the only way to the text,
    so a secret can never reach a log line or an f-string by accident."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    @property
    def value(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return "Secret('********')" if self._value else "Secret('')"

    __str__ = __repr__


def _url(v: Any) -> str:
    if not isinstance(v, str) or urlparse(v).scheme not in ("http", "https") or not urlparse(v).netloc:
        raise ValueError("an http(s) URL")
    return v.rstrip("/")


def _api_url(v: Any) -> str:
    return _url(v) + "/"


def _str(v: Any) -> str:
    if not isinstance(v, str):
        raise ValueError("a string")
    return v


def _request_url(v: Any) -> str:
    """A link template for one access request: {base_url}, {id} (the request) and
    {secret_id} are filled in; anything else in braces is refused now, not at the first card."""
    v = _str(v)
    try:
        v.format(base_url="https://ss", id=1, secret_id=1)
    except (KeyError, IndexError, ValueError):
        raise ValueError("a URL template using only {base_url}, {id} and {secret_id}") from None
    return v


def _bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.lower() in ("true", "1", "yes", "on"):
        return True
    if isinstance(v, str) and v.lower() in ("false", "0", "no", "off"):
        return False
    raise ValueError("true or false")


def _number(lo: float, hi: float, kind: type = float) -> Callable[[Any], Any]:
    def check(v: Any):
        try:
            if isinstance(v, bool):
                raise ValueError
            n = kind(v)
            if kind is int and isinstance(v, float) and v != int(v):
                raise ValueError
        except (TypeError, ValueError):
            raise ValueError(f"{'an integer' if kind is int else 'a number'} from {lo:g} to {hi:g}")
        if not lo <= n <= hi:
            raise ValueError(f"{'an integer' if kind is int else 'a number'} from {lo:g} to {hi:g}")
        return n
    return check


def _choice(*options: str) -> Callable[[Any], str]:
    def check(v: Any) -> str:
        if v not in options:
            raise ValueError("one of " + ", ".join(f'"{o}"' for o in options))
        return v
    return check


def _verify(v: Any) -> bool | str:
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.lower() in ("true", "false"):
        return v.lower() == "true"
    if isinstance(v, str) and Path(v).is_file():
        return v
    raise ValueError("true, false, or the path of an existing CA bundle file")


def _tz(v: Any) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
    try:
        ZoneInfo(_str(v))
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError('an IANA time zone name such as "UTC" or "Europe/Berlin"')
    return v


def _rate_table(v: Any) -> dict[str, float]:
    if isinstance(v, str):
        import json
        try:
            v = json.loads(v)
        except ValueError:
            raise ValueError('a table of Slack method = calls per minute, e.g. {"chat.postMessage" = 60}')
    if not isinstance(v, dict) or not all(
            isinstance(k, str) and isinstance(n, (int, float)) and not isinstance(n, bool) and n > 0
            for k, n in v.items()):
        raise ValueError('a table of Slack method = calls per minute, e.g. {"chat.postMessage" = 60}')
    return {k: float(n) for k, n in v.items()}


def _fernet_key(v: Any) -> str:
    import base64
    s = _str(v)
    if not s:
        return s
    try:
        if len(base64.urlsafe_b64decode(s.encode())) != 32:
            raise ValueError
    except (ValueError, TypeError):
        raise ValueError("a Fernet key (run `ssrelay keygen` to make one)")
    return s


# (section, key) -> (default, validator). A default of None means "required".
SCHEMA: dict[tuple[str, str], tuple[Any, Callable[[Any], Any]]] = {
    ("secret_server", "base_url"): (None, _url),
    ("secret_server", "username"): (None, _str),
    ("secret_server", "password"): (None, _str),
    ("secret_server", "domain"): ("", _str),
    ("secret_server", "verify_tls"): (True, _verify),
    ("secret_server", "timeout_seconds"): (15, _number(1, 300)),
    ("secret_server", "timezone"): ("UTC", _tz),
    ("secret_server", "auth"): ("auto", _choice("auto", "password", "platform")),
    ("secret_server", "secret_url"): ("{base_url}/app/#/secrets/{id}/general", _str),
    ("secret_server", "request_url"): ("{base_url}/app/#/secrets/{secret_id}/general", _request_url),
    ("slack", "mode"): ("http", _choice("http", "socket")),
    ("slack", "api_url"): ("https://slack.com/api/", _api_url),
    ("slack", "approver_messages"): ("ephemeral", _choice("ephemeral", "dm")),
    ("slack", "bot_token"): (None, _str),
    ("slack", "signing_secret"): ("", _str),
    ("slack", "app_token"): ("", _str),
    ("slack", "rate_limits"): ({}, _rate_table),
    ("slack", "unready_after_failing_seconds"): (300, _number(10, 24 * 3600)),
    ("slack", "unready_after_pending_seconds"): (900, _number(10, 7 * 24 * 3600)),
    ("poll", "interval_seconds"): (15, _number(1, 3600)),
    ("poll", "catch_up_hours"): (24, _number(0, 24 * 30)),
    ("users", "match_by_email"): (True, _bool),
    ("users", "email_cache_hours"): (24, _number(0, 24 * 30)),
    ("users", "signin_requires_email_match"): (True, _bool),
    ("approvals", "default_duration_hours"): (8, _number(0.25, 24 * 365)),
    ("approvals", "notify_expiry"): (True, _bool),
    ("approvals", "ask_reason"): (False, _bool),
    ("http", "host"): ("0.0.0.0", _str),
    ("http", "port"): (3000, _number(0, 65535, int)),
    ("http", "public_url"): ("http://localhost:3000", _url),
    ("storage", "path"): ("ssrelay.db", _str),
    ("storage", "encryption_key"): ("", _fernet_key),
    ("nudge", "token"): ("", _str),
    ("storage", "retention_days"): (30, _number(1, 3650)),
}


class Section:
    """Attribute access to one validated section; repr masks secrets."""

    def __init__(self, name: str, values: dict[str, Any]):
        self._name = name
        self.__dict__.update(values)

    def __repr__(self) -> str:
        items = ", ".join(f"{k}={v!r}" for k, v in self.__dict__.items() if not k.startswith("_"))
        return f"{self._name}({items})"


@dataclass
class Config:
    secret_server: Section
    slack: Section
    poll: Section
    users: Section
    approvals: Section
    http: Section
    storage: Section
    nudge: Section
    source: str = ""

    def secret_url(self, secret_id: int) -> str:
        return self.secret_server.secret_url.format(base_url=self.secret_server.base_url, id=secret_id)

    def request_url(self, request_id: int, secret_id: int) -> str:
        """Where a person acts on an access request in Secret Server itself ("Open in Secret
        Server"): by default the secret's page, where SS shows its pending request."""
        return self.secret_server.request_url.format(base_url=self.secret_server.base_url,
                                                     id=request_id, secret_id=secret_id)


def default_path(explicit: str | None = None, environ: dict[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    return explicit or env.get("SSRELAY_CONFIG") or "ssrelay.toml"


def read_keys(keys: list[tuple[str, str]], path: str | None = None,
              environ: dict[str, str] | None = None) -> dict[tuple[str, str], Any]:
    """Validated values of just these (non-secret) keys, with their defaults: for commands an
    operator runs before the rest is configured (`ssrelay manifest`, `migrate`, `status`).
    The file is optional; a bad value of one of these keys still raises ConfigError."""
    env = dict(os.environ if environ is None else environ)
    file = default_path(path, env)
    raw: dict[str, Any] = {}
    if Path(file).is_file():
        try:
            raw = tomllib.loads(Path(file).read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(file, f"valid TOML ({exc})") from None
    elif path:
        raise ConfigError(file, "a readable TOML file (--config, $SSRELAY_CONFIG or ./ssrelay.toml)")
    out: dict[tuple[str, str], Any] = {}
    for s, k in keys:
        if (s, k) in SECRET_KEYS:
            raise ValueError(f"read_keys is for plain settings, not {s}.{k}")
        default, check = SCHEMA[(s, k)]
        envname = f"SSRELAY_{s}_{k}".upper()
        section = raw.get(s, {}) if isinstance(raw.get(s, {}), dict) else {}
        value = env[envname] if envname in env else section.get(k, default)
        if value is None:
            raise ConfigError(f"{s}.{k}", f"is required (or {envname})")
        try:
            out[(s, k)] = check(value)
        except ValueError as exc:
            raise ConfigError(f"{s}.{k}", f"expected {exc}", value) from None
    return out


def load(path: str | None = None, environ: dict[str, str] | None = None, *,
         require_file: bool = False, use_file: bool = True) -> Config:
    """Load and validate. Raises ConfigError naming the first bad key.
    `use_file=False` reads only `environ` (the sandbox and tests)."""
    env = dict(os.environ if environ is None else environ)
    file = default_path(path, env) if use_file else ""
    raw: dict[str, Any] = {}
    if not use_file:
        pass
    elif Path(file).is_file():
        try:
            raw = tomllib.loads(Path(file).read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(file, f"valid TOML ({exc})") from None
    elif require_file or path:
        raise ConfigError(file, "a readable TOML file (--config, $SSRELAY_CONFIG or ./ssrelay.toml)")
    sections = {s for s, _ in SCHEMA}
    for s, body in raw.items():
        if s not in sections:
            raise ConfigError(s, "a known section: " + ", ".join(sorted(sections)))
        if not isinstance(body, dict):
            raise ConfigError(s, "a table")
        for k in body:
            base = k[:-5] if k.endswith("_file") else k
            if (s, k) not in SCHEMA and not ((s, base) in SECRET_KEYS and k.endswith("_file")):
                raise ConfigError(f"{s}.{k}", "a known key (see config.example.toml)")

    values: dict[str, dict[str, Any]] = {s: {} for s in sections}
    for (s, k), (default, check) in SCHEMA.items():
        name = f"{s}.{k}"
        envname = f"SSRELAY_{s}_{k}".upper()
        value: Any = raw.get(s, {}).get(k)
        if envname in env:
            value = env[envname]
        if (s, k) in SECRET_KEYS and value in (None, ""):
            fpath = env.get(envname + "_FILE") or raw.get(s, {}).get(k + "_file")
            if fpath:
                try:
                    value = Path(fpath).read_text(encoding="utf-8").strip()
                except OSError as exc:
                    raise ConfigError(f"{name}_file", f"a readable file ({exc.strerror})", fpath) from None
        if value is None or (value == "" and default is None):
            if default is None:
                hint = f" (or {envname})"
                raise ConfigError(name, "is required" + hint)
            value = default
        try:
            value = check(value)
        except ValueError as exc:
            shown = None if (s, k) in SECRET_KEYS else value
            raise ConfigError(name, f"expected {exc}", shown) from None
        if (s, k) in SECRET_KEYS:
            value = Secret(value)
        values[s][k] = value

    cfg = Config(**{s: Section(s, v) for s, v in values.items()}, source=file)
    if cfg.slack.mode == "http" and not cfg.slack.signing_secret:
        raise ConfigError("slack.signing_secret", 'is required when slack.mode = "http" (or SSRELAY_SLACK_SIGNING_SECRET)')
    if cfg.slack.mode == "socket" and not cfg.slack.app_token:
        raise ConfigError("slack.app_token", 'is required when slack.mode = "socket" (or SSRELAY_SLACK_APP_TOKEN)')
    return cfg
