"""Loading: `parse` (the TOML file, refusing unknown sections and keys) -> `merge_environment`
(environment variables over the file, secrets from their files) -> `validate` (each value
checked, every problem collected, typed sections built). `load` runs the three."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..errors import ConfigError, ConfigProblems
from .schema import CHANNELS_VARIABLE, FILE_HINT, SCHEMA, SECRET_KEYS, env_name
from .sections import SECTIONS, Config
from .suggestions import unknown_environment, unknown_key
from .values import Secret, _channels


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
