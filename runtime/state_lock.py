"""One daemon per state folder: an exclusive lock on `daemon.lock`, held for the daemon's life.

Two daemons on one folder would mix their events and flip status.json between their pids. The
lock is the kernel's (flock): it goes with the process, whatever way it dies, so a crash never
leaves a stale lock behind. The file holds the holder's pid, for the message the second one gets.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCK_FILE = "daemon.lock"


class StateLocked(Exception):
    """Another daemon holds the folder; one line naming the folder and its pid."""


class StateLock:
    def __init__(self, state_dir: Path):
        self.path = Path(state_dir) / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> StateLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise StateLocked(f"{self.path.parent}: another edgewatch daemon (pid {holder}) runs on this state folder; "
                              "stop it, or give this one another --state-dir") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock; the file stays (removing it would race a new holder)
            self._fd = None
