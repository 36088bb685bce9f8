"""Opening a database that must already exist, for the commands that only read it
(`ssrelay status`, `ssrelay backup`): they never create a file, and they refuse a file that
is not a migrated ssrelay database with one line saying what to run."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import sqlite_utils

from . import db as store


class DatabaseNotReady(Exception):
    """No database at the path, or one `ssrelay migrate` has not (fully) prepared."""


def open_existing(path: str | Path) -> sqlite_utils.Database:
    """The database at `path`, migrated, opened without writing anything (no journal-mode
    change, no new file). Raises DatabaseNotReady with the sentence an operator acts on."""
    return open_existing_or_checkpointed(path)[0]


def open_existing_or_checkpointed(path: str | Path) -> tuple[sqlite_utils.Database, bool]:
    """As `open_existing`, and on a full volume (where SQLite cannot set up the WAL's shared
    memory: "disk I/O error") the file as it was last checkpointed, read-only. Returns
    (database, whether it is that last-checkpointed view)."""
    if not Path(path).is_file():
        raise DatabaseNotReady(f"no database at {path} (run `ssrelay migrate`)")
    conn = sqlite3.connect(str(path), timeout=30, isolation_level=None, check_same_thread=False)
    db = sqlite_utils.Database(conn)
    checkpointed = False
    try:
        todo = store.pending(db)
    except sqlite3.OperationalError as exc:
        conn.close()
        if "disk i/o" not in str(exc).lower() and "full" not in str(exc).lower():
            raise DatabaseNotReady(f"{path} cannot be read ({exc})") from None
        uri = Path(path).resolve().as_uri() + "?mode=ro&immutable=1"
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        db, checkpointed = sqlite_utils.Database(conn), True
        todo = store.pending(db)
    except sqlite3.DatabaseError as exc:       # not SQLite at all
        conn.close()
        raise DatabaseNotReady(f"{path} is not an ssrelay database ({exc})") from None
    if todo:
        what = ("empty, or not an ssrelay database" if not store.applied(db)
                else f"not migrated: pending {', '.join(todo)}")
        conn.close()
        raise DatabaseNotReady(f"database {path} is {what} (run `ssrelay migrate`)")
    return db, checkpointed
