"""Opening the SQLite database and applying the numbered SQL migrations.

Migrations are plain `NNNN_name.sql` files in the top-level `migrations/` folder, shipped
inside the package as `relay.migrations`. Each is applied with its record in one
transaction; `pending()` only reads.

The database holds e-mails, names, comments and encrypted tokens, so it is private to the
relay's user: the file is created mode 0600 whatever the umask (SQLite gives its `-wal` and
`-shm` files the database file's mode), files found readable by others are made 0600 when
opened (with a log line), and a backup is created 0600.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import sqlite_utils

log = logging.getLogger(__name__)

_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
PRIVATE = 0o600
SIDE_FILES = ("-wal", "-shm", "-journal")     # SQLite's companions of a database file


def create_private(path: Path, *, exclusive: bool = False) -> bool:
    """Create `path` empty with mode 0600 unless it exists (`exclusive`: FileExistsError then).
    True when this call created it. An existing file is never opened here: closing any
    descriptor of a database file drops every POSIX lock this process's SQLite connections
    hold on it."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, PRIVATE)
    except FileExistsError:
        if exclusive:
            raise
        return False
    os.close(fd)
    return True


def make_private(path: str | Path) -> list[str]:
    """chmod 0600 the database and its -wal/-shm/-journal files where others may read or
    write them; returns the files changed (each logged)."""
    changed = []
    for name in (str(path), *(f"{path}{suffix}" for suffix in SIDE_FILES)):
        try:
            mode = os.stat(name).st_mode & 0o777
        except FileNotFoundError:
            continue
        if mode & 0o077:
            try:
                os.chmod(name, PRIVATE)
            except OSError as exc:      # not ours to change (another owner, read-only mount)
                log.warning("database file is readable by others and could not be made private",
                            extra={"file": name, "old_mode": oct(mode), "error": type(exc).__name__})
                continue
            changed.append(name)
            log.warning("database file was readable by others: made private (mode 0600)",
                        extra={"file": name, "old_mode": oct(mode)})
    return changed


class Database(sqlite_utils.Database):
    """sqlite-utils' Database whose outermost `atomic()` starts with BEGIN IMMEDIATE: the
    write lock is taken up front (waiting up to busy_timeout), so two connections writing at
    once queue instead of failing with SQLITE_BUSY when a read transaction tries to upgrade."""

    @contextlib.contextmanager
    def atomic(self) -> Iterator[Database]:
        if self.conn.in_transaction:
            with super().atomic():
                yield self
            return
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise
        else:
            self.conn.execute("COMMIT")


BUSY_TIMEOUT_SECONDS = 30.0
# The WAL is folded back into the database every this many pages (SQLite's default, stated),
# and truncated to at most this size afterwards, so a freed disk is not refilled by it.
WAL_AUTOCHECKPOINT_PAGES = 1000
JOURNAL_SIZE_LIMIT_BYTES = 4 * 1024 * 1024
# Each connection's page cache holds at most this much (SQLite's default is 2000 KiB). The relay
# holds a connection per thread, about twenty, and a connection's cache is dropped whenever
# another one writes, so a large cache buys few hits; the file's pages stay in the OS's cache.
PAGE_CACHE_KIB = 512
# SQLite's heap in the whole process is kept near this size: past it, each connection's page
# cache reuses its own pages instead of growing (sqlite3_soft_heap_limit64; prepared statements
# and schemas are not limited). About twenty connections fill it in the first minute; without
# it their caches grew with the database for many minutes, up to 20 x PAGE_CACHE_KIB.
SQLITE_HEAP_LIMIT_BYTES = 4 * 1024 * 1024


def open_db(path: str | Path, *, busy_timeout: float = BUSY_TIMEOUT_SECONDS) -> Database:
    """Open (creating if needed) the database with the pragmas the relay relies on."""
    if str(path) == ":memory:":
        conn = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
    else:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        create_private(Path(path))
        make_private(path)
        conn = sqlite3.connect(str(path), check_same_thread=False, timeout=busy_timeout, isolation_level=None)
        if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":   # a write: only when needed
            conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
    conn.execute(f"PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT_BYTES}")
    conn.execute(f"PRAGMA cache_size=-{PAGE_CACHE_KIB}")
    conn.execute(f"PRAGMA soft_heap_limit={SQLITE_HEAP_LIMIT_BYTES}")   # process-wide
    return Database(conn)


def checkpoint(db: sqlite_utils.Database) -> tuple[int, int, int]:
    """Copy the WAL into the database and truncate it to zero bytes (when no reader is in
    the way; else as much as readers allow). Returns SQLite's (busy, log pages, checkpointed)."""
    row = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    return (row[0], row[1], row[2]) if row else (0, 0, 0)


def available() -> list[tuple[str, str]]:
    """(name, sql) of every shipped migration, in order."""
    files = resources.files("relay.migrations")
    out = []
    for f in files.iterdir():
        if _NAME.match(f.name):
            out.append((f.name, f.read_text(encoding="utf-8")))
    return sorted(out)


def _ensure_table(db: sqlite_utils.Database) -> None:
    db.execute("CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")


def applied(db: sqlite_utils.Database) -> list[str]:
    if "schema_migrations" not in db.table_names():
        return []
    return [r[0] for r in db.execute("SELECT name FROM schema_migrations ORDER BY name").fetchall()]


def pending(db: sqlite_utils.Database) -> list[str]:
    done = set(applied(db))
    return [name for name, _ in available() if name not in done]


def migrate(db: sqlite_utils.Database) -> list[str]:
    """Apply every pending migration; return the names applied."""
    _ensure_table(db)
    done = set(applied(db))
    ran = []
    for name, sql in available():
        if name in done:
            continue
        with db.atomic():
            for statement in _statements(sql):
                db.execute(statement)
            db.execute("INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)",
                       [name, datetime.now(UTC).isoformat()])
        ran.append(name)
    return ran


def _statements(sql: str) -> list[str]:
    """Split a migration into statements, line by line, as SQLite itself sees them end."""
    out, buf = [], ""
    for line in sql.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip():
                out.append(buf.strip())
            buf = ""
    if buf.strip() and not all(ln.strip().startswith("--") or not ln.strip() for ln in buf.splitlines()):
        raise ValueError("migration ends with an incomplete statement")
    return out


def backup(source: str | Path, target: str | Path, *, pages_per_step: int = 256) -> int:
    """Copy the database with SQLite's online backup API while the relay keeps writing: the
    copy is a consistent snapshot (WAL content included), created mode 0600. Refuses to
    overwrite `target`. Returns the number of pages copied."""
    src_path, dst_path = Path(source), Path(target)
    if not src_path.is_file():
        raise FileNotFoundError(f"no database at {src_path}")
    dst_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        create_private(dst_path, exclusive=True)
    except FileExistsError:
        raise FileExistsError(f"{dst_path} exists; choose a new file name") from None
    try:
        copied = _copy(src_path, dst_path, pages_per_step)
    except BaseException:
        dst_path.unlink(missing_ok=True)     # no half-written copy left behind
        raise
    return copied


def _copy(src_path: Path, dst_path: Path, pages_per_step: int) -> int:
    src = sqlite3.connect(str(src_path), timeout=30)
    dst = sqlite3.connect(str(dst_path))
    copied = 0

    def progress(status: int, remaining: int, total: int) -> None:
        nonlocal copied
        copied = total - remaining

    try:
        src.backup(dst, pages=pages_per_step, progress=progress)
        dst.execute("PRAGMA journal_mode=DELETE")    # a single self-contained file
    finally:
        dst.close()
        src.close()
    return copied
