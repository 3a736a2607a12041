"""Reading sysfs/procfs files under a root: a missing or unreadable file is an absent sensor, not an error."""

from __future__ import annotations

from pathlib import Path


def under(root: str | Path, path: str) -> Path:
    """`path` (absolute, as on the board) inside `root`."""
    return Path(root) / path.lstrip("/")


def read_text(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace").strip()
    except (OSError, ValueError):
        # ValueError: some sysfs attributes fail reads with EINVAL-like errors wrapped by Python.
        return None


def read_int(path: Path) -> int | None:
    text = read_text(path)
    if text is None:
        return None
    try:
        return int(text.split()[0])
    except (ValueError, IndexError):
        return None


def read_keyed(path: Path) -> dict[str, int]:
    """`key value` lines (memory.events, memory.stat) or `Key: value kB` lines (/proc/meminfo)."""
    text = read_text(path)
    out: dict[str, int] = {}
    for line in (text or "").splitlines():
        parts = line.replace(":", " ").split()
        if len(parts) >= 2:
            try:
                out[parts[0]] = int(parts[1])
            except ValueError:
                continue
    return out
