"""Replacing a file whole: temp file beside it, then rename. A reader or a crash sees the old
content or the new, never half. No fsync there: the callers' files are rewritten often
(status.json each second, snapshots). Folders published by a rename (bundles: converted, or
received by a board) are synced whole first, with `fsync_tree`, and their parent after."""

from __future__ import annotations

import os
from pathlib import Path


def replace_bytes(path: Path, data: bytes, temp_suffix: str = ".tmp") -> None:
    path = Path(path)
    temp = path.with_name(f".{path.name}.{os.getpid()}{temp_suffix}")
    try:
        with open(temp, "wb") as f:
            f.write(data)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def fsync_path(path: Path) -> None:
    """A file's or a folder's own entry on disk (a folder: the names in it, e.g. after a rename)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(folder: Path) -> None:
    """Every file below `folder`, then the folder: before a rename publishes it, so that after a
    power cut a folder that looks complete is complete."""
    for path in [*sorted(p for p in Path(folder).rglob("*") if p.is_file()), Path(folder)]:
        fsync_path(path)
