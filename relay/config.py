"""Configuration: TOML file, then `SSRELAY_<SECTION>_<KEY>` environment overrides, then
`<key>_file` for secrets. Validation stops start-up with one line per bad key.

`load` runs three steps: `parse` (the TOML file, refusing unknown sections and keys),
`merge_environment` (environment variables over the file, secrets from their files), and
`validate` (each value checked, every problem collected, typed sections built).

Every key is declared once in `SCHEMA` and once as a field of its section's frozen dataclass
(a test keeps the two in step); `config.example.toml` documents each of them.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from .errors import ConfigError, ConfigProblems

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


def _number(lo: float, hi: float, kind: type[int] | type[float] = float) -> Callable[[Any], float]:
    expected = f"{'an integer' if kind is int else 'a number'} from {lo:g} to {hi:g}"

    def check(v: Any) -> float:
        try:
            if isinstance(v, bool):
                raise ValueError
            n = kind(v)
            if kind is int and isinstance(v, float) and v != int(v):
                raise ValueError
        except (TypeError, ValueError):
            raise ValueError(expected) from None
        if not lo <= n <= hi:
            raise ValueError(expected)
        return n
    return check


def _optional_port(v: Any) -> int | None:
    """A port (0: any free one), or None when unset ("")."""
    if v is None or (isinstance(v, str) and not v.strip()):
        return None
    return int(_number(0, 65535, int)(v))


def _choice(*options: str) -> Callable[[Any], str]:
    def check(v: Any) -> str:
        if v not in options:
            raise ValueError("one of " + ", ".join(f'"{o}"' for o in options))
        return str(v)
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
        raise ValueError('an IANA time zone name such as "UTC" or "Europe/Berlin"') from None
    return str(v)


def _rate_table(v: Any) -> dict[str, float]:
    if isinstance(v, str):
        import json
        try:
            v = json.loads(v)
        except ValueError:
            raise ValueError('a table of Slack method = calls per minute, e.g. {"chat.postMessage" = 60}') from None
    if not isinstance(v, dict) or not all(
            isinstance(k, str) and isinstance(n, (int, float)) and not isinstance(n, bool) and n > 0
            for k, n in v.items()):
        raise ValueError('a table of Slack method = calls per minute, e.g. {"chat.postMessage" = 60}')
    return {k: float(n) for k, n in v.items()}


def _folder_list(v: Any) -> tuple[str, ...]:
    """Folder path prefixes: a TOML array of strings, or (environment) a JSON array."""
    if isinstance(v, str):
        import json
        try:
            v = json.loads(v) if v.strip() else []
        except ValueError:
            raise ValueError('an array of folder paths, e.g. ["\\\\Production"]') from None
    if not isinstance(v, (list, tuple)) or not all(isinstance(p, str) and p.strip("\\/ ") for p in v):
        raise ValueError('an array of folder paths, e.g. ["\\\\Production"]')
    return tuple(v)


def _channels(v: Any) -> tuple:
    """`[[channels]]` (or SSRELAY_CHANNELS as a JSON array of the same tables): folder
    prefix -> channel id, optional `personal`."""
    from .routes import ChannelRoute
    if isinstance(v, str):
        import json
        try:
            v = json.loads(v) if v.strip() else []
        except ValueError:
            raise ConfigError("channels", "a JSON array of {folder, channel, personal} tables") from None
    if not isinstance(v, list):
        raise ConfigError("channels", "an array of tables: [[channels]] with folder and channel")
    out = []
    for i, route in enumerate(v):
        where = f"channels[{i}]"
        if not isinstance(route, dict):
            raise ConfigError(where, "a table with folder and channel")
        unknown = set(route) - {"folder", "channel", "personal"}
        if unknown:
            raise ConfigError(f"{where}.{min(unknown)}", "a known key: folder, channel, personal")
        folder, channel = route.get("folder"), route.get("channel")
        if not isinstance(folder, str) or not folder.strip("\\/ "):
            raise ConfigError(f"{where}.folder", "a folder path such as '\\Production'", folder)
        if not isinstance(channel, str) or channel[:1] not in ("C", "G") or not channel.isalnum():
            raise ConfigError(f"{where}.channel", "a channel id such as C0123456789 (not its #name)", channel)
        try:
            personal = _bool(route.get("personal", False))
        except ValueError:
            raise ConfigError(f"{where}.personal", "true or false", route.get("personal")) from None
        out.append(ChannelRoute(folder, channel, personal))
    return tuple(out)


def _fernet_key(v: Any) -> str:
    import base64
    s = _str(v)
    if not s:
        return s
    try:
        if len(base64.urlsafe_b64decode(s.encode())) != 32:
            raise ValueError
    except (ValueError, TypeError):
        raise ValueError("a Fernet key (run `ssrelay keygen` to make one)") from None
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
    ("approvals", "remind_after_minutes"): (30, _number(0, 7 * 24 * 60)),
    ("approvals", "confirm_to_requester"): (True, _bool),
    ("approvals", "sensitive_folders"): ([], _folder_list),
    ("http", "host"): ("0.0.0.0", _str),
    ("http", "port"): (3000, _number(0, 65535, int)),
    ("http", "public_url"): ("http://localhost:3000", _url),
    ("http", "admin_host"): ("127.0.0.1", _str),
    ("http", "admin_port"): ("", _optional_port),
    ("storage", "path"): ("ssrelay.db", _str),
    ("storage", "encryption_key"): ("", _fernet_key),
    ("storage", "busy_timeout_seconds"): (30, _number(0.1, 600)),
    ("nudge", "token"): ("", _str),
    ("storage", "retention_days"): (30, _number(1, 3650)),
}


ENV_PREFIX = "SSRELAY_"
# Environment variables that are not settings but are read by ssrelay itself.
OTHER_VARIABLES = {"SSRELAY_CONFIG"}
CHANNELS_VARIABLE = "SSRELAY_CHANNELS"   # [[channels]] as a JSON array of the same tables
FILE_HINT = "a readable TOML file (--config, $SSRELAY_CONFIG or ./ssrelay.toml)"


# ---------------------------------------------------------------------- typed sections
@dataclass(frozen=True)
class SecretServerSection:
    base_url: str
    username: str
    password: Secret
    domain: str
    verify_tls: bool | str
    timeout_seconds: float
    timezone: str
    auth: str
    secret_url: str
    request_url: str


@dataclass(frozen=True)
class SlackSection:
    mode: str
    api_url: str
    approver_messages: str
    bot_token: Secret
    signing_secret: Secret
    app_token: Secret
    rate_limits: dict[str, float]
    unready_after_failing_seconds: float
    unready_after_pending_seconds: float


@dataclass(frozen=True)
class PollSection:
    interval_seconds: float
    catch_up_hours: float


@dataclass(frozen=True)
class UsersSection:
    match_by_email: bool
    email_cache_hours: float
    signin_requires_email_match: bool


@dataclass(frozen=True)
class ApprovalsSection:
    default_duration_hours: float
    notify_expiry: bool
    ask_reason: bool
    remind_after_minutes: float
    confirm_to_requester: bool
    sensitive_folders: tuple[str, ...]


@dataclass(frozen=True)
class HttpSection:
    host: str
    port: int
    public_url: str
    admin_host: str
    admin_port: int | None     # None: no admin listener (/metrics, detailed /readyz on `port`)


@dataclass(frozen=True)
class StorageSection:
    path: str
    encryption_key: Secret
    retention_days: float
    busy_timeout_seconds: float


@dataclass(frozen=True)
class NudgeSection:
    token: Secret


SECTIONS: dict[str, type] = {
    "secret_server": SecretServerSection,
    "slack": SlackSection,
    "poll": PollSection,
    "users": UsersSection,
    "approvals": ApprovalsSection,
    "http": HttpSection,
    "storage": StorageSection,
    "nudge": NudgeSection,
}


@dataclass(frozen=True)
class Config:
    secret_server: SecretServerSection
    slack: SlackSection
    poll: PollSection
    users: UsersSection
    approvals: ApprovalsSection
    http: HttpSection
    storage: StorageSection
    nudge: NudgeSection
    source: str = ""                  # the TOML file read; "" when the environment was the only source
    warnings: tuple[str, ...] = ()    # settings that were ignored (unknown SSRELAY_* variables)
    channels: tuple = ()              # [[channels]] routes (relay.routes.ChannelRoute), first match wins

    def secret_url(self, secret_id: int) -> str:
        return self.secret_server.secret_url.format(base_url=self.secret_server.base_url, id=secret_id)

    def request_url(self, request_id: int, secret_id: int) -> str:
        """Where a person acts on an access request in Secret Server itself ("Open in Secret
        Server"): by default the secret's page, where SS shows its pending request."""
        return self.secret_server.request_url.format(base_url=self.secret_server.base_url,
                                                     id=request_id, secret_id=secret_id)


def section_keys(section: str) -> list[str]:
    """The keys of one section, in the order of its dataclass."""
    return [f.name for f in fields(SECTIONS[section])]


def _sections_match_schema() -> None:
    """A key added to SCHEMA needs its field in the section's dataclass (and back): say so at
    import, by name, rather than as a TypeError at the first load."""
    differences = []
    for section in sorted({s for s, _ in SCHEMA} | set(SECTIONS)):
        declared = {k for s, k in SCHEMA if s == section}
        typed = set(section_keys(section)) if section in SECTIONS else set()
        if declared != typed:
            differences.append(f"[{section}] only in SCHEMA: {sorted(declared - typed)}, "
                               f"only in its dataclass: {sorted(typed - declared)}")
    if differences:
        raise RuntimeError("relay.config: SCHEMA and the section dataclasses differ (add each key to "
                           "both): " + "; ".join(differences))


_sections_match_schema()


# ---------------------------------------------------------------------- names and suggestions
def env_name(section: str, key: str) -> str:
    return f"{ENV_PREFIX}{section}_{key}".upper()


def known_variables() -> set[str]:
    names = {env_name(s, k) for s, k in SCHEMA} | OTHER_VARIABLES | {CHANNELS_VARIABLE}
    return names | {env_name(s, k) + "_FILE" for s, k in SECRET_KEYS}


def _did_you_mean(name: str, candidates: Iterable[str], prefix: str = "") -> str:
    """"; did you mean X?" for the closest candidate, compared without their common prefix
    (every variable starts with SSRELAY_, which would make anything look close)."""
    by_rest = {c[len(prefix):]: c for c in candidates if c.startswith(prefix)}
    close = difflib.get_close_matches(name[len(prefix):], sorted(by_rest), n=1, cutoff=0.6)
    return f"; did you mean {by_rest[close[0]]}?" if close else ""


def unknown_key(name: str, candidates: Iterable[str], prefix: str = "") -> str:
    """The one wording for a setting nobody reads, in the file or the environment."""
    return "unknown setting" + (_did_you_mean(name, candidates, prefix) or " (config.example.toml lists every one)")


def unknown_environment(environ: Mapping[str, str]) -> list[str]:
    """One line per `SSRELAY_*` variable that is not a setting: a typo would otherwise be
    silently ignored while the default applies."""
    known = known_variables()
    return [f"{name}: {unknown_key(name, known, ENV_PREFIX)} (ignored)"
            for name in sorted(environ) if name.startswith(ENV_PREFIX) and name not in known]


# ---------------------------------------------------------------------- step 1: parse
def default_path(explicit: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    return explicit or env.get("SSRELAY_CONFIG") or "ssrelay.toml"


def read_file(file: str, *, required: bool) -> tuple[str, dict[str, Any]]:
    """(source, tables) of the TOML file; ("", {}) when it is absent and not required."""
    if not Path(file).is_file():
        if required:
            raise ConfigError(file, FILE_HINT)
        return "", {}
    try:
        return file, tomllib.loads(Path(file).read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(file, f"valid TOML ({exc})") from None


def _known_in_file(section: str, key: str) -> bool:
    if (section, key) in SCHEMA:
        return True
    return key.endswith("_file") and (section, key[:-5]) in SECRET_KEYS


def structure_problems(raw: Mapping[str, Any]) -> list[ConfigError]:
    """Unknown sections and keys of a parsed file, each with the closest known name."""
    problems: list[ConfigError] = []
    file_keys = [f"{s}.{k}" for s, k in SCHEMA] + [f"{s}.{k}_file" for s, k in SECRET_KEYS]
    for section, body in raw.items():
        if section == "channels":       # [[channels]]: an array of tables, checked by _channels
            continue
        if section not in SECTIONS:
            problems.append(ConfigError(f"[{section}]", unknown_key(section, SECTIONS)))
        elif not isinstance(body, dict):
            problems.append(ConfigError(section, "a table"))
        else:
            problems += [ConfigError(f"{section}.{k}", unknown_key(f"{section}.{k}", file_keys))
                         for k in body if not _known_in_file(section, k)]
    return problems


def parse(path: str | None, environ: Mapping[str, str], *, require_file: bool = False,
          use_file: bool = True) -> tuple[str, dict[str, Any]]:
    """Step 1: the file's tables, structure-checked. (source, tables)."""
    if not use_file:
        return "", {}
    source, raw = read_file(default_path(path, environ), required=require_file or bool(path))
    _raise(structure_problems(raw))
    return source, raw


# ---------------------------------------------------------------------- step 2: environment
def _secret_from_file(section: str, key: str, raw: Mapping[str, Any], environ: Mapping[str, str]) -> Any:
    fpath = environ.get(env_name(section, key) + "_FILE") or raw.get(section, {}).get(key + "_file")
    if not fpath:
        return None
    try:
        return Path(fpath).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"{section}.{key}_file", f"a readable file ({exc.strerror})", fpath) from None


def merge_environment(raw: Mapping[str, Any], environ: Mapping[str, str]) -> dict[tuple[str, str], Any]:
    """Step 2: each key's raw value: the environment over the file, a secret's `_file` when
    the secret itself is not given. None where nothing was given."""
    merged: dict[tuple[str, str], Any] = {}
    problems: list[ConfigError] = []
    for s, k in SCHEMA:
        value = environ.get(env_name(s, k), raw.get(s, {}).get(k))
        if (s, k) in SECRET_KEYS and value in (None, ""):
            try:
                value = _secret_from_file(s, k, raw, environ)
            except ConfigError as exc:
                problems.append(exc)
        merged[(s, k)] = value
    _raise(problems)
    return merged


# ---------------------------------------------------------------------- step 3: validate
def _checked(section: str, key: str, value: Any) -> Any:
    """One key's value, validated and typed (defaults applied); ConfigError when bad."""
    default, check = SCHEMA[(section, key)]
    secret = (section, key) in SECRET_KEYS
    if value is None or (value == "" and default is None):
        if default is None:
            raise ConfigError(f"{section}.{key}", f"is required (or {env_name(section, key)})")
        value = default
    try:
        checked = check(value)
    except ValueError as exc:
        raise ConfigError(f"{section}.{key}", f"expected {exc}", None if secret else value) from None
    return Secret(checked) if secret else checked


def _mode_problems(slack: Mapping[str, Any]) -> list[ConfigError]:
    """The Slack credential each mode needs (checked once the mode itself is valid)."""
    needs = {"http": ("signing_secret", "SSRELAY_SLACK_SIGNING_SECRET"),
             "socket": ("app_token", "SSRELAY_SLACK_APP_TOKEN")}
    mode = slack.get("mode")
    if mode not in needs:
        return []
    key, variable = needs[mode]
    if key in slack and not slack[key]:
        return [ConfigError(f"slack.{key}", f'is required when slack.mode = "{mode}" (or {variable})')]
    return []


def validate(merged: Mapping[tuple[str, str], Any], *, source: str = "",
             warnings: Iterable[str] = (), channels: tuple = ()) -> Config:
    """Step 3: every key checked; all problems raised together (ConfigProblems), so an
    operator sees every missing or malformed key in one run."""
    values: dict[str, dict[str, Any]] = {s: {} for s in SECTIONS}
    problems: list[ConfigError] = []
    for (s, k), value in merged.items():
        try:
            values[s][k] = _checked(s, k, value)
        except ConfigError as exc:
            problems.append(exc)
    problems += _mode_problems(values["slack"])
    _raise(problems)
    sections = {s: cls(**values[s]) for s, cls in SECTIONS.items()}
    return Config(**sections, source=source, warnings=tuple(warnings), channels=channels)


def _raise(problems: list[ConfigError]) -> None:
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise ConfigProblems(problems)


def load(path: str | None = None, environ: Mapping[str, str] | None = None, *,
         require_file: bool = False, use_file: bool = True) -> Config:
    """Load and validate. Raises ConfigError naming the bad key (ConfigProblems when several
    are bad). `use_file=False` reads only `environ` (the sandbox and tests)."""
    env = dict(os.environ if environ is None else environ)
    source, raw = parse(path, env, require_file=require_file, use_file=use_file)
    merged = merge_environment(raw, env)
    channels = _channels(env[CHANNELS_VARIABLE] if CHANNELS_VARIABLE in env else raw.get("channels", []))
    return validate(merged, source=source, warnings=unknown_environment(env), channels=channels)


def read_keys(keys: list[tuple[str, str]], path: str | None = None,
              environ: Mapping[str, str] | None = None) -> dict[tuple[str, str], Any]:
    """Validated values of just these (non-secret) keys, with their defaults: for commands an
    operator runs before the rest is configured (`ssrelay manifest`, `migrate`, `status`).
    The file is optional; a bad value of one of these keys still raises ConfigError."""
    env = dict(os.environ if environ is None else environ)
    for s, k in keys:
        if (s, k) in SECRET_KEYS:
            raise ValueError(f"read_keys is for plain settings, not {s}.{k}")
    _, raw = read_file(default_path(path, env), required=bool(path))
    out: dict[tuple[str, str], Any] = {}
    for s, k in keys:
        section = raw.get(s, {}) if isinstance(raw.get(s, {}), dict) else {}
        out[(s, k)] = _checked(s, k, env.get(env_name(s, k), section.get(k)))
    return out


def has_channels(path: str | None = None, environ: Mapping[str, str] | None = None) -> bool:
    """Whether [[channels]] routes are configured (validated), for commands that run before
    the rest of the configuration is complete (`ssrelay manifest`)."""
    env = dict(os.environ if environ is None else environ)
    if CHANNELS_VARIABLE in env:
        return bool(_channels(env[CHANNELS_VARIABLE]))
    _, raw = read_file(default_path(path, env), required=False)
    return bool(_channels(raw.get("channels", [])))
