"""The schema: every key with its default and parser, the secret keys, and the names of
the environment variables that set them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .values import (_api_url, _bool, _choice, _fernet_key, _folder_list, _number, _optional_port,
                     _rate_table, _request_url, _str, _tz, _url, _verify)

SECRET_KEYS = {
    ("secret_server", "password"),
    ("slack", "bot_token"),
    ("slack", "signing_secret"),
    ("slack", "app_token"),
    ("storage", "encryption_key"),
    ("nudge", "token"),
}


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
    ("nudge", "token"): ("", _str),
    ("storage", "retention_days"): (30, _number(1, 3650)),
    ("storage", "busy_timeout_seconds"): (30, _number(0.1, 600)),
}


ENV_PREFIX = "SSRELAY_"
# Environment variables that are not settings but are read by ssrelay itself.
OTHER_VARIABLES = {"SSRELAY_CONFIG"}
CHANNELS_VARIABLE = "SSRELAY_CHANNELS"   # [[channels]] as a JSON array of the same tables
FILE_HINT = "a readable TOML file (--config, $SSRELAY_CONFIG or ./ssrelay.toml)"


def env_name(section: str, key: str) -> str:
    return f"{ENV_PREFIX}{section}_{key}".upper()


def known_variables() -> set[str]:
    names = {env_name(s, k) for s, k in SCHEMA} | OTHER_VARIABLES | {CHANNELS_VARIABLE}
    return names | {env_name(s, k) + "_FILE" for s, k in SECRET_KEYS}
