"""Retention: delete the oldest events (rows and snapshot files together) past an age or a size.

Size is the database's used pages plus the snapshot bytes recorded with each event. Rows go in one
transaction; their files are deleted only after it commits, so a crash in between leaves orphan
files (swept later) and never rows that point at nothing.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from . import snapshots
from .model import Retention

# When over the size limit, delete down to this share of it, so that retention does not delete a
# handful of events on every pass once the log is full.
SIZE_TARGET = 0.9


@dataclass
class Pruned:
    """One pass's work: rows deleted, and the snapshot files to delete once that has committed."""

    events: int = 0
    system_events: int = 0
    snapshots: int = 0  # snapshot files deleted from events that stay
    files: list[str] = field(default_factory=list)


def used_bytes(conn: sqlite3.Connection) -> tuple[int, int]:
    """(database bytes in use, snapshot bytes recorded): what `Retention.max_bytes` bounds."""
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    pages = conn.execute("PRAGMA page_count").fetchone()[0] - conn.execute("PRAGMA freelist_count").fetchone()[0]
    snapshot_bytes = conn.execute("SELECT COALESCE(SUM(snapshot_bytes), 0) FROM events").fetchone()[0]
    return pages * page_size, snapshot_bytes


def prune(conn: sqlite3.Connection, db_dir: Path, policy: Retention, now: float) -> Pruned:
    """Delete what `policy` no longer keeps, inside the caller's transaction."""
    pruned = Pruned()
    if policy.max_age_days is not None:
        cutoff = now - policy.max_age_days * 86400.0
        # An event is as old as its last sight; one still in view (no end) as old as its start.
        _delete_events(conn, db_dir, conn.execute('SELECT id, snapshot FROM events WHERE COALESCE("end", start) < ?', (cutoff,)).fetchall(), pruned)
        pruned.system_events += conn.execute("DELETE FROM system_events WHERE time < ?", (cutoff,)).rowcount
    pruned.system_events += conn.execute(
        "DELETE FROM system_events WHERE id <= (SELECT id FROM system_events ORDER BY id DESC LIMIT 1 OFFSET ?)",
        (policy.max_system_events,),
    ).rowcount
    if policy.max_bytes is not None:
        _prune_size(conn, db_dir, policy.max_bytes, pruned)
    return pruned


def _prune_size(conn: sqlite3.Connection, db_dir: Path, max_bytes: int, pruned: Pruned) -> None:
    db_bytes, snapshot_bytes = used_bytes(conn)
    if db_bytes + snapshot_bytes <= max_bytes:
        return
    rows = conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]
    if rows == 0:
        return
    # Deleting rows frees page space that later rows reuse, but rarely whole pages at once, so the
    # pages in use lag behind: count each row at the database's average instead of re-measuring.
    row_bytes = db_bytes / rows
    excess = db_bytes + snapshot_bytes - SIZE_TARGET * max_bytes
    victims: list[tuple[str, str | None]] = []
    oldest = conn.execute("SELECT id, snapshot, snapshot_bytes FROM events ORDER BY start, id")
    for event_id, snapshot, size in oldest:
        if excess <= 0:
            break
        victims.append((event_id, snapshot))
        excess -= row_bytes + size
    oldest.close()
    _delete_events(conn, db_dir, victims, pruned)


def _delete_events(conn: sqlite3.Connection, db_dir: Path, victims: list[tuple[str, str | None]], pruned: Pruned) -> None:
    conn.executemany("DELETE FROM events WHERE id = ?", [(event_id,) for event_id, _ in victims])
    pruned.events += len(victims)
    pruned.files += [snapshots.resolve(db_dir, s) for _, s in victims if s is not None]


# A full disk: free this much (or this share of a smaller file system), so writing can go on for a
# while before the disk fills again; what is deleted is the log's own oldest, snapshots first.
LOW_WATER_BYTES = 64 * 1024 * 1024
LOW_WATER_SHARE = 0.10


def free_target(folder: Path) -> tuple[int, int]:
    """(free bytes now, free bytes wanted) on the file system holding `folder`."""
    st = os.statvfs(folder)
    free, total = st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize
    return free, int(min(LOW_WATER_BYTES, LOW_WATER_SHARE * total))


def free_space(conn: sqlite3.Connection, db_dir: Path, rows: bool = True) -> Pruned:
    """On a full disk, free the log's own oldest up to the low-water mark: snapshot files first
    (deleting a file needs no space; their rows then lose the reference), then, with no snapshots
    left and `rows`, whole rows. Rows change inside the caller's transaction, after the files are gone."""
    pruned = Pruned()
    free, target = free_target(db_dir)
    if free >= target:
        return pruned
    emptied = []
    oldest = conn.execute("SELECT id, snapshot, snapshot_bytes FROM events WHERE snapshot IS NOT NULL ORDER BY start, id")
    for event_id, snapshot, size in oldest.fetchall():
        if free >= target:
            break
        path = snapshots.resolve(db_dir, snapshot)
        try:
            size = os.stat(path).st_size
            os.unlink(path)
        except FileNotFoundError:
            size = 0
        emptied.append(event_id)
        pruned.files.append(path)
        free += size
    conn.executemany("UPDATE events SET snapshot = NULL, snapshot_bytes = 0 WHERE id = ?", [(i,) for i in emptied])
    pruned.snapshots = len(emptied)
    if free < target and rows:
        count = conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]
        db_bytes, _ = used_bytes(conn)
        per_row = db_bytes / count if count else 0
        wanted = int((target - free) / per_row) + 1 if per_row else 0
        # never more than half the log in one pass: the rest of a full disk is not ours to win back
        victims = conn.execute("SELECT id, snapshot FROM events ORDER BY start, id LIMIT ?", (min(wanted, count // 2),)).fetchall()
        _delete_events(conn, db_dir, victims, pruned)
    return pruned
