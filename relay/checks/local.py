"""Checks of this host's own settings: the config as loaded, the public URL, the encryption
key, the database."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from urllib.parse import urlparse

from ..config import Config
from ..errors import ConfigError
from .report import FIX_CONFIG, FIX_KEY, FIX_PUBLIC_URL, Check


def config_failed(exc: ConfigError) -> list[Check]:
    """One FAIL line per missing or malformed key, so one run names them all."""
    return [Check("config", False, problem.detail, FIX_CONFIG) for problem in exc.problems]


def config_loaded(cfg: Config) -> list[Check]:
    source = f"loaded from {cfg.source}" if cfg.source else "from environment (no config file)"
    return [Check("config", True, source)] + [Check("config", True, w, warn=True) for w in cfg.warnings]


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


def encryption_key_check(cfg: Config) -> Check:
    if not cfg.storage.encryption_key:
        return Check("encryption key", False, "storage.encryption_key is not set", FIX_KEY)
    return Check("encryption key", True, "set (people's Secret Server sessions are stored encrypted)")


def _database(path: str) -> str:
    from ..store import db as store
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
