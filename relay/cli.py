"""The `ssrelay` command line."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from datetime import datetime, timezone

from . import config as config_mod
from .errors import ConfigError


def _load(args) -> config_mod.Config:
    return config_mod.load(args.config)


PRIVATE_UMASK = 0o077


def _private_files() -> None:
    """Files this process creates (the database, its -wal/-shm, backups) are readable by
    its own user only, whatever umask it was started with."""
    os.umask(PRIVATE_UMASK)


def cmd_run(args) -> int:
    from .runtime import Relay
    _private_files()
    cfg = _load(args)
    relay = Relay(cfg).start()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    import logging
    logging.getLogger("relay.cli").info(
        f"ssrelay running: polling {cfg.secret_server.base_url} every {cfg.poll.interval_seconds:g}s, "
        f"http on {cfg.http.host}:{relay.port}",
        extra={"http_host": cfg.http.host, "http_port": relay.port, "mode": cfg.slack.mode})
    stop.wait()
    relay.stop()
    return 0


def cmd_migrate(args) -> int:
    from .store import db as store
    _private_files()
    path = _storage_path(args)
    db = store.open_db(path)
    applied = store.migrate(db)
    print(f"applied {', '.join(applied)}" if applied else "database is up to date", f"({path})")
    return 0


def _storage_path(args) -> str:
    """The database path, even when the rest of the config is not written yet."""
    import os
    import tomllib
    from pathlib import Path
    env = os.environ.get("SSRELAY_STORAGE_PATH")
    if env:
        return env
    file = config_mod.default_path(args.config)
    if Path(file).is_file():
        try:
            return tomllib.loads(Path(file).read_text()).get("storage", {}).get("path", "ssrelay.db")
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(file, f"valid TOML ({exc})") from None
    return "ssrelay.db"


def cmd_check(args) -> int:
    from .checks import config_failed, run_checks
    try:
        cfg = _load(args)
    except ConfigError as exc:
        print(config_failed(exc).line())
        return 1
    results = run_checks(cfg)
    for c in results:
        print(c.line())
    return 0 if all(c.ok for c in results) else 1


def cmd_status(args) -> int:
    from .outbox import Outbox
    from .store import db as store
    from .store.snapshot import get_state
    path = _storage_path(args)
    db = store.open_db(path)
    if store.pending(db):
        print(f"database {path} is not migrated: run `ssrelay migrate`")
        return 1
    ob = Outbox(db)
    pending = db.execute("SELECT COUNT(*) FROM access_requests WHERE status = 'Pending' AND gone = 0").fetchone()[0]
    backlog = ob.backlog()
    linked = db.execute("SELECT COUNT(*) FROM slack_links").fetchone()[0]
    unmapped = db.execute("SELECT ss_user_id, username, reason FROM unmapped_people ORDER BY username").fetchall()
    last = get_state(db, "last_successful_poll")
    report = {
        "pending_requests": pending,
        "outbox": {s: backlog.get(s, 0) for s in ("pending", "sending", "sent", "dead", "superseded")},
        "dead_letters": ob.dead_letters(),
        "linked_users": linked,
        "unmapped_people": [{"ss_user_id": u, "username": n, "reason": r} for u, n, r in unmapped],
        "last_successful_poll": last,
        "last_poll_error": get_state(db, "last_poll_error"),
        "unreadable_reviewer_groups": json.loads(get_state(db, "unreadable_groups") or "null"),
        "database_bytes": _database_bytes(path),
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    age = ""
    if last:
        secs = (datetime.now(timezone.utc) - datetime.fromisoformat(last)).total_seconds()
        age = f" ({secs:.0f}s ago)"
    print(f"pending requests:     {pending}")
    print("outbox:               " + ", ".join(f"{k} {v}" for k, v in report["outbox"].items()))
    print(f"linked users:         {linked}")
    print(f"last successful poll: {last or 'never'}{age}")
    if report["last_poll_error"]:
        print(f"last poll error:      {report['last_poll_error']}")
    if report["unreadable_reviewer_groups"]:
        seen = report["unreadable_reviewer_groups"]
        names = ", ".join(f"{name or 'group'} (#{gid})" for gid, name in seen["groups"].items())
        print(f"unreadable reviewer groups (as of {seen['at']}): {names}; add the relay account to them")
    print(f"unmapped people:      {len(unmapped)}")
    for u in report["unmapped_people"]:
        print(f"  - {u['username']} (SS user {u['ss_user_id']}): {u['reason']}")
    print(f"dead letters:         {backlog.get('dead', 0)}")
    for d in report["dead_letters"]:
        print(f"  - request {d['request_id']} {d['event']} to SS user {d['recipient']}: {d['reason']}")
    print(f"database size:        {_size(report['database_bytes'])}")
    return 0


def _database_bytes(path: str) -> int:
    """The database file with its -wal and -shm files, in bytes."""
    return sum(os.path.getsize(p) for p in (path, f"{path}-wal", f"{path}-shm") if os.path.exists(p))


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KiB"
    return f"{n / (1024 * 1024):.1f} MiB"


def cmd_manifest(args) -> int:
    """Works before any secret is configured: reads only slack.mode and http.public_url."""
    from . import manifest
    values = config_mod.read_keys([("slack", "mode"), ("http", "public_url")], args.config)
    mode = args.mode or values[("slack", "mode")]
    public_url = args.public_url or values[("http", "public_url")]
    if mode == "http" and not public_url.startswith("https://"):
        print(f"ssrelay manifest: http.public_url is {public_url}: Slack must reach it over HTTPS from the "
              "internet (set http.public_url, or use --mode socket)", file=sys.stderr)
    sys.stdout.write(manifest.render(mode, public_url))
    return 0


def cmd_backup(args) -> int:
    from .store import db as store
    _private_files()
    path = _storage_path(args)
    copied = store.backup(path, args.path)
    print(f"backed up {path} to {args.path} ({copied} pages)")
    return 0


def cmd_keygen(args) -> int:
    from cryptography.fernet import Fernet
    print(Fernet.generate_key().decode())
    return 0


def cmd_demo(args) -> int:
    if args.preview:
        from .sandbox.preview import run_preview
        return run_preview(args)
    from .demo import run_demo
    return run_demo(args)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ssrelay", description="Relay Secret Server access requests into Slack.")
    p.add_argument("--config", help="config file (default: $SSRELAY_CONFIG or ./ssrelay.toml)")
    p.add_argument("--log-format", choices=("json", "text"), default="json", help="log line format")
    p.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING, ERROR")
    # The same options after the command (`ssrelay run --config PATH`, as the design writes it);
    # SUPPRESS keeps an option given before the command when it is not repeated after it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", default=argparse.SUPPRESS, help="config file")
    common.add_argument("--log-format", choices=("json", "text"), default=argparse.SUPPRESS)
    common.add_argument("--log-level", default=argparse.SUPPRESS)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("run", parents=[common], help="poll, deliver and serve HTTP (one process)").set_defaults(fn=cmd_run)
    sub.add_parser("migrate", parents=[common], help="create or upgrade the database").set_defaults(fn=cmd_migrate)
    sub.add_parser("check", parents=[common], help="verify config, Secret Server and Slack; exit 1 on any failure").set_defaults(fn=cmd_check)
    st = sub.add_parser("status", parents=[common], help="pending requests, outbox, dead letters, unmapped people, last poll")
    st.add_argument("--json", action="store_true", help="machine-readable output")
    st.set_defaults(fn=cmd_status)
    m = sub.add_parser("manifest", parents=[common], help="print the Slack app manifest (YAML) for the configured mode")
    m.add_argument("--mode", choices=("http", "socket"), help="override slack.mode")
    m.add_argument("--public-url", help="override http.public_url")
    m.set_defaults(fn=cmd_manifest)
    b = sub.add_parser("backup", parents=[common], help="copy the database to PATH while the relay runs (SQLite online backup)")
    b.add_argument("path", metavar="PATH", help="the copy to write (must not exist)")
    b.set_defaults(fn=cmd_backup)
    sub.add_parser("keygen", parents=[common], help="print a new encryption key for storage.encryption_key").set_defaults(fn=cmd_keygen)
    d = sub.add_parser("demo", parents=[common], help="run the relay against loopback stand-ins and print what Slack receives")
    d.add_argument("--seconds", type=float, default=60.0, help="give up after this long")
    d.add_argument("--preview", action="store_true",
                   help="serve a local web page showing each sandbox person's Slack, with working buttons")
    d.add_argument("--port", type=int, default=8765, help="port of the preview page (with --preview)")
    d.add_argument("--flavour", choices=("password", "platform"), default="password",
                   help="run the Secret Server stand-in as on-premises/SS Cloud (password) or behind a "
                        "Delinea Platform tenant (platform)")
    d.set_defaults(fn=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    from . import logs
    args = build_parser().parse_args(argv)
    logs.setup(args.log_format, args.log_level.upper())
    try:
        return args.fn(args)
    except ConfigError as exc:
        print(f"ssrelay: {exc}", file=sys.stderr)
        return 2
    except (FileExistsError, FileNotFoundError) as exc:   # backup: an operator's path mistake
        print(f"ssrelay: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
