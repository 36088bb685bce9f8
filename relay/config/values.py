"""Config values: `Secret`, and one parser per kind of value. Each parser takes what the file
or the environment gave and returns the typed value, or raises ValueError with what it
expected (the loader names the key)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from ..errors import ConfigError


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
    from ..routes import ChannelRoute
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
