"""The database, its -wal/-shm files and backups are private (0600) even when the process
starts with the common umask 022, and files left readable by others are made private."""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest


def mode(path: str | Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def umask_022():
    """The process umask most systems start with; restored afterwards (the CLI sets its own)."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def db_files(path: str) -> list[str]:
    return [f for f in (path, f"{path}-wal", f"{path}-shm") if os.path.exists(f)]


def test_a_running_relay_keeps_its_database_private(sandbox, make_relay, tmp_path, umask_022):
    path = str(tmp_path / "run.db")
    relay = make_relay(STORAGE_PATH=path)
    relay.start()
    with relay.db.atomic():          # a write: the -wal and -shm files exist while it runs
        relay.db.execute("INSERT INTO relay_state (key, value) VALUES ('probe', 'x')")
    files = db_files(path)
    assert len(files) == 3
    assert {f: mode(f) for f in files} == {f: 0o600 for f in files}


def test_files_readable_by_others_are_made_private_at_start_with_a_log_line(sandbox, make_relay, tmp_path,
                                                                             umask_022, caplog):
    path = str(tmp_path / "old.db")
    conn = sqlite3.connect(path)      # as an older relay left it: 0644 under umask 022
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    assert {mode(f) for f in db_files(path)} == {0o644}
    caplog.set_level(logging.WARNING, logger="relay.store.db")
    make_relay(STORAGE_PATH=path)
    conn.close()
    assert {f: mode(f) for f in db_files(path)} == {f: 0o600 for f in db_files(path)}
    made = [r for r in caplog.records if r.getMessage().startswith("database file was readable by others")]
    assert {r.file for r in made} >= {path, f"{path}-wal", f"{path}-shm"}
    assert all(r.old_mode == "0o644" for r in made)


def ssrelay(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    """The command as an operator runs it: a new process, started with this process's umask."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SSRELAY_")}
    full_env.update(env)
    return subprocess.run([sys.executable, "-m", "relay", *args], capture_output=True, text=True,
                          env=full_env, cwd=cwd, timeout=120, check=False)


def test_migrate_and_backup_write_private_files(tmp_path, umask_022):
    path = str(tmp_path / "ops.db")
    env = {"SSRELAY_STORAGE_PATH": path}
    run = ssrelay("migrate", env=env, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert {f: mode(f) for f in db_files(path)} == {f: 0o600 for f in db_files(path)}
    copy = tmp_path / "backups" / "copy.db"
    run = ssrelay("backup", str(copy), env=env, cwd=tmp_path)
    assert run.returncode == 0 and "backed up" in run.stdout, run.stderr
    assert mode(copy) == 0o600
    assert not Path(f"{copy}-journal").exists()
