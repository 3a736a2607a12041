"""Replacing a file whole: temp file beside it, then rename. A reader or a crash sees the old
content or the new, never half. No fsync: the callers' files are rewritten often (status.json each
second, snapshots) or staged and synced as a whole by their writer (bundles)."""

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
