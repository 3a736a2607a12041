"""Snapshot files: one JPEG per event, written whole (temp file + rename) and named for the event.

The database stores a path relative to the database's folder when the snapshot lies under it,
so a state folder can be moved or copied as a whole; anything else is stored absolute.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable
from pathlib import Path

from ..atomic import replace_bytes

_SAFE_ID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}")


def file_for(snapshots_dir: Path, event_id: str) -> Path:
    """The event's snapshot file: its id when that is a safe file name, else a hash of it."""
    name = event_id if _SAFE_ID.fullmatch(event_id) else hashlib.sha1(event_id.encode()).hexdigest()
    return snapshots_dir / f"{name}.jpg"


def write(path: Path, jpeg: bytes) -> None:
    """Replace `path` with `jpeg` whole: a reader or a crash sees the old file or the new, never half.

    No fsync: the database is the record, and an fsync per snapshot would wear an SD card; a power
    cut can at worst leave a recent snapshot empty.
    """
    replace_bytes(path, jpeg)


def stored(db_dir: Path, path: Path) -> str:
    """How a snapshot path is kept in the database."""
    try:
        return path.relative_to(db_dir).as_posix()
    except ValueError:
        return str(path)


def resolve(db_dir: Path, value: str) -> str:
    """A stored snapshot path back to a usable one."""
    return value if os.path.isabs(value) else str(db_dir / value)


def remove(paths: Iterable[str]) -> int:
    """Delete files, ignoring those already gone; returns how many were deleted."""
    removed = 0
    for path in paths:
        try:
            os.unlink(path)
            removed += 1
        except FileNotFoundError:
            pass
    return removed


def sweep(snapshots_dir: Path, referenced: set[str]) -> int:
    """Delete files in `snapshots_dir` that no event refers to: temp files and snapshots of a batch
    that never committed (a crash, a full disk). Returns how many were deleted."""
    try:
        entries = list(os.scandir(snapshots_dir))
    except FileNotFoundError:
        return 0
    # Only our own kinds of file, whatever else someone keeps in the folder.
    def ours(name: str) -> bool:  # a snapshot, or replace_bytes's temp file of one (.ID.jpg.PID.tmp)
        return name.endswith(".jpg") or (name.endswith(".tmp") and ".jpg." in name)

    orphans = [e.path for e in entries if ours(e.name) and e.is_file() and e.path not in referenced]
    return remove(orphans)
