"""What the store's functions need of a database handle.

Both `store.db.Database` (one connection) and `store.local.ThreadLocalDb` (one connection per
thread) provide it, so the snapshot and outbox functions take either without casts.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol


class Store(Protocol):
    """A SQLite database the relay reads and writes: statements, and transactions."""

    def execute(self, sql: str, parameters: Sequence[Any] | dict[str, Any] | None = None) -> sqlite3.Cursor:
        """Run one statement (its own transaction unless inside `atomic()`)."""
        ...

    def atomic(self) -> AbstractContextManager[Any]:
        """A transaction: committed at the end of the block, rolled back on any exception;
        nested blocks are savepoints."""
        ...
