"""`ssrelay check`: each check returns one line, and on failure what to do about it.
Every sentence a new operator reads lives in `report`.

The checks, in order: config; public URL (a warning when browsers would send passwords over
plain HTTP); Secret Server TLS; Secret Server reachable; relay account login; relay account
can list access requests; Secret Server time zone; Slack bot token (`auth.test`); the scopes
that token really has (`x-oauth-scopes` of `auth.test`) against those the relay needs;
Socket Mode connection (socket mode only); encryption key; database.

A line is `ok`, `WARN` (works, but an operator should look), `skip` (could not run because
an earlier check failed; that one says why) or `FAIL` (with `->` and what to do).

The modules: `report` (the Check line, the advice, the guard), `local` (config, public URL,
encryption key, database), `secret_server`, `slack`.
"""

from __future__ import annotations

from ..config import Config
from .local import _database, _is_loopback, config_failed, config_loaded, encryption_key_check, public_url_check
from .report import (FIX_BOT_TOKEN, FIX_CHANNEL, FIX_CONFIG, FIX_DB, FIX_KEY, FIX_LIST, FIX_LOGIN, FIX_PUBLIC_URL,
                     FIX_REACH, FIX_SCOPES, FIX_SLACK_NETWORK, FIX_SOCKET, FIX_SOCKET_NETWORK, FIX_TLS, FIX_ZONE,
                     Check, _guard, skipped)
from .secret_server import (FLAVOURS, ZONE_MIN, ZONE_STEP, ZONE_TOLERANCE, _duration, _health, _hours, _login,
                            _secret_server_checks, _ssl_reason, _zone_hint, secret_server_checks, timezone_check,
                            tls_check, zone_offset_seen)
from .slack import _auth_test, _channel_member, _socket_mode, scopes_check, slack_checks

__all__ = [
    "FIX_BOT_TOKEN", "FIX_CHANNEL", "FIX_CONFIG", "FIX_DB", "FIX_KEY", "FIX_LIST", "FIX_LOGIN", "FIX_PUBLIC_URL",
    "FIX_REACH", "FIX_SCOPES", "FIX_SLACK_NETWORK", "FIX_SOCKET", "FIX_SOCKET_NETWORK", "FIX_TLS", "FIX_ZONE",
    "FLAVOURS", "ZONE_MIN", "ZONE_STEP", "ZONE_TOLERANCE",
    "Check", "config_failed", "config_loaded", "encryption_key_check", "public_url_check", "run_checks",
    "scopes_check", "secret_server_checks", "skipped", "slack_checks", "timezone_check", "tls_check",
    "zone_offset_seen",
    "_auth_test", "_channel_member", "_database", "_duration", "_guard", "_health", "_hours", "_is_loopback",
    "_login", "_secret_server_checks", "_socket_mode", "_ssl_reason", "_zone_hint",
]


def run_checks(cfg: Config) -> list[Check]:
    return config_loaded(cfg) + [public_url_check(cfg)] + secret_server_checks(cfg) + slack_checks(cfg) \
        + [encryption_key_check(cfg), _guard("database", lambda: _database(cfg.storage.path), FIX_DB)]
