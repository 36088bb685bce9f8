"""A small volume that can be filled to the last byte: a tmpfs mounted for the test (needs
CAP_SYS_ADMIN, as root in a container has). SQLite then fails the way it does on a real
full disk: SQLITE_FULL, "database or disk is full"."""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path


class SmallVolume:
    def __init__(self, path: Path, size: str = "4m"):
        self.path = Path(path)
        self.size = size
        self.mounted = False
        self._filler = self.path / "filler"

    def mount(self) -> bool:
        """Mount the tmpfs; False (and nothing mounted) where the machine does not allow it."""
        self.path.mkdir(parents=True, exist_ok=True)
        try:
            done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.size},mode=0700", "tmpfs",
                                   str(self.path)], capture_output=True, timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return False
        self.mounted = done.returncode == 0
        return self.mounted

    def unmount(self) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.path)], capture_output=True, timeout=10, check=False)
            self.mounted = False

    def fill(self) -> int:
        """Take every free byte; returns how many were taken."""
        taken = 0
        chunk = b"\0" * 4096
        with open(self._filler, "ab", buffering=0) as f:
            while True:
                try:
                    n = f.write(chunk)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    if len(chunk) == 1:
                        return taken
                    chunk = chunk[: len(chunk) // 2]
                    continue
                taken += n or 0

    def free(self) -> None:
        try:
            os.unlink(self._filler)
        except FileNotFoundError:
            pass

    def used(self, name: str) -> int:
        p = self.path / name
        return p.stat().st_size if p.exists() else 0
