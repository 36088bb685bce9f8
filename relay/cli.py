"""The `ssrelay` command line."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from datetime import datetime, timezone

from . import config as config_mod
from .errors import ConfigError

log = logging.getLogger("relay.cli")


def _load(args) -> config_mod.Config:
    return config_mod.load(args.config)


PRIVATE_UMASK = 0o077


def _private_files() -> None:
    """Files this process creates (the database, its -wal/-shm, backups) are readable by
    its own user only, whatever umask it was started with."""
    os.umask(PRIVATE_UMASK)


def cmd_run(args) -> int:
    from . import listen, memory
    from .runtime import ADMIN_KEYS, Relay
    _private_files()
    memory.limit_arenas()       # before any thread: relay.memory
    cfg = _load(args)
    # The port first: a relay that cannot serve HTTP must stop before it migrates, polls or
    # writes anything (a second `ssrelay run` would otherwise poll and queue notifications).
    sockets: list = []
    try:
        sockets.append(listen.bind(cfg.http.host, cfg.http.port))
        if cfg.http.admin_port is not None:
            sockets.append(listen.bind(cfg.http.admin_host, cfg.http.admin_port, keys=ADMIN_KEYS))
    except listen.PortUnavailable as exc:
        for s in sockets:
            s.close()
        print(f"ssrelay: {exc}", file=sys.stderr)
        return 1
    try:
        relay = Relay(cfg).start(listening=sockets[0], admin_listening=sockets[1] if len(sockets) > 1 else None)
    except BaseException:
        for s in sockets:
            s.close()
        raise
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    log.info(
        f"ssrelay running: polling {cfg.secret_server.base_url} every {cfg.poll.interval_seconds:g}s, "
        f"http on {cfg.http.host}:{relay.port}",
        extra={"http_host": cfg.http.host, "http_port": relay.port, "mode": cfg.slack.mode})
    stop.wait()
    relay.stop()
    _exit_now_if_stuck()
    return 0


def _exit_now_if_stuck() -> None:
    """After a stop, a call still hanging on Secret Server or Slack would keep the interpreter
    waiting for its worker thread (the interpreter joins the scheduler's workers at exit, daemon
    or not); the relay has released its work by now (and SQLite's transactions are all or
    nothing), so end the process here, within the container's grace."""
    import logging
    import os
    if any(t.is_alive() for t in threading.enumerate() if t is not threading.main_thread()):
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


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
    return str(config_mod.read_keys([("storage", "path")], args.config)[("storage", "path")])


def cmd_check(args) -> int:
    from . import logs
    from .checks import config_failed, run_checks
    # Its lines say everything; the relay's own log records (retries, warnings) stay out of
    # the human output.
    logs.silence()
    try:
        cfg = _load(args)
    except ConfigError as exc:
        for line in config_failed(exc):
            print(line.line())
        return 1
    results = run_checks(cfg)
    for c in results:
        print(c.line())
    return 0 if all(c.ok for c in results) else 1


def cmd_status(args) -> int:
    from .outbox import Outbox
    from .store.existing import DatabaseNotReady, open_existing_or_checkpointed
    from .store.snapshot import get_state
    path = _storage_path(args)
    try:
        db, checkpointed = open_existing_or_checkpointed(path)   # read-only: never creates the file
    except DatabaseNotReady as exc:
        print(f"ssrelay: {exc}", file=sys.stderr)
        return 1
    if checkpointed:
        print(f"database {path}: its volume is full or failing; showing it as last checkpointed", file=sys.stderr)
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
    sys.stdout.write(manifest.render(mode, public_url, channels=config_mod.has_channels(args.config)))
    return 0


def cmd_backup(args) -> int:
    from .store import db as store
    from .store.existing import DatabaseNotReady, open_existing
    _private_files()
    path = _storage_path(args)
    try:
        open_existing(path).conn.close()      # a backup of nothing would look like a backup
    except DatabaseNotReady as exc:
        print(f"ssrelay: refusing to back up: {exc}", file=sys.stderr)
        return 1
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


# One line per command: `ssrelay --help` lists them, `ssrelay COMMAND --help` repeats its own.
COMMANDS = {
    "run": "poll, deliver and serve HTTP (one process)",
    "migrate": "create or upgrade the database",
    "check": "verify config, Secret Server and Slack; exit 1 on any failure",
    "status": "pending requests, outbox, dead letters, unmapped people, last poll (read-only)",
    "manifest": "print the Slack app manifest (YAML) for the configured mode",
    "backup": "copy the database to PATH while the relay runs (SQLite online backup)",
    "keygen": "print a new encryption key for storage.encryption_key",
    "demo": "run the relay against loopback stand-ins and print what Slack receives",
}


def version() -> str:
    """The installed package's version (its metadata, from pyproject.toml)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed
    try:
        return installed("ssrelay")
    except PackageNotFoundError:    # running from a source tree that was never installed
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ssrelay", description="Relay Secret Server access requests into Slack.")
    p.add_argument("--version", action="version", version=f"ssrelay {version()}")
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

    def command(name: str, fn) -> argparse.ArgumentParser:
        c = sub.add_parser(name, parents=[common], help=COMMANDS[name], description=COMMANDS[name])
        c.set_defaults(fn=fn)
        return c

    command("run", cmd_run)
    command("migrate", cmd_migrate)
    command("check", cmd_check)
    command("status", cmd_status).add_argument("--json", action="store_true", help="machine-readable output")
    m = command("manifest", cmd_manifest)
    m.add_argument("--mode", choices=("http", "socket"), help="override slack.mode")
    m.add_argument("--public-url", help="override http.public_url")
    command("backup", cmd_backup).add_argument("path", metavar="PATH", help="the copy to write (must not exist)")
    command("keygen", cmd_keygen)
    d = command("demo", cmd_demo)
    d.add_argument("--seconds", type=float, default=60.0, help="give up after this long")
    d.add_argument("--preview", action="store_true",
                   help="serve a local web page showing each sandbox person's Slack, with working buttons")
    d.add_argument("--port", type=int, default=8765, help="port of the preview page (with --preview)")
    d.add_argument("--flavour", choices=("password", "platform"), default="password",
                   help="run the Secret Server stand-in as on-premises/SS Cloud (password) or behind a "
                        "Delinea Platform tenant (platform)")
    return p


def _warn_unknown_environment(command: str) -> None:
    """A mistyped SSRELAY_* variable is ignored; say so (`check` prints it as a line)."""
    if command in ("check", "demo", "keygen"):
        return
    for line in config_mod.unknown_environment(os.environ):
        if command == "run":          # its stderr is the JSON log
            log.warning(f"config: {line}")
        else:
            print(f"ssrelay: warning: config: {line}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    from . import logs, memory
    args = build_parser().parse_args(argv)
    if args.command == "run" and argv is None:
        # `ssrelay run` as a program may start itself again, before it logs or opens anything
        # (relay.memory); called with arguments from inside another program, it never does.
        memory.without_thread_caches()
    logs.setup(args.log_format, args.log_level.upper())
    _warn_unknown_environment(args.command)
    try:
        return int(args.fn(args))
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"ssrelay: {problem}", file=sys.stderr)
        return 2
    except (FileExistsError, FileNotFoundError) as exc:   # backup: an operator's path mistake
        print(f"ssrelay: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
