"""Reading the event log: filtered listings and a live tail, for `edgewatch events`, the web page and tests."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import snapshots
from .database import EventLogError
from .model import Event, SystemEvent
from .times import iso

_COLUMNS = ('id, label, class_id, score, start, "end", box, snapshot, source, model, updated, last_seen, recovered, '
            'trajectory, zones, stationary')


@dataclass(frozen=True, slots=True)
class Filter:
    """Events that began in [since, until), with any of `labels` (all labels when empty)."""

    since: float | None = None
    until: float | None = None
    labels: tuple[str, ...] = ()

    def where(self) -> tuple[str, list[object]]:
        clauses, params = [], []
        if self.since is not None:
            clauses.append("start >= ?")
            params.append(self.since)
        if self.until is not None:
            clauses.append("start < ?")
            params.append(self.until)
        if self.labels:
            clauses.append(f"label IN ({', '.join('?' * len(self.labels))})")
            params += list(self.labels)
        return (" AND ".join(clauses) or "1"), params


def parse_limit(text: str | None) -> int | None:
    """A listing's `limit` as people type it (None: no limit); ValueError names the bad value."""
    if text is None:
        return None
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"{text!r} is not a positive whole number")
    return value


@dataclass(frozen=True, slots=True)
class Row:
    """An event as stored: the `Event` plus when it was last written."""

    event: Event
    updated: float

    def to_dict(self) -> dict[str, Any]:
        """The one listing shape: `edgewatch events --json` and the page's /api/events."""
        return {**self.event.to_dict(), "updated": iso(self.updated)}


def _row(db_dir: Path, values: tuple) -> Row:
    (event_id, label, class_id, score, start, end, box, snapshot, source, model, updated, last_seen, recovered,
     trajectory, zones, stationary) = values
    path = snapshots.resolve(db_dir, snapshot) if snapshot is not None else None
    event = Event(event_id, label, class_id, score, start, end, tuple(json.loads(box)), path, source, model,
                  last_seen, bool(recovered), tuple(tuple(p) for p in json.loads(trajectory)), tuple(json.loads(zones)),
                  bool(stationary))
    return Row(event, updated)


def by_id(conn: sqlite3.Connection, db_dir: Path, ids: list[str]) -> list[Row]:
    """The stored events with these ids (those that exist)."""
    marks = ", ".join("?" * len(ids))
    return [_row(db_dir, values) for values in conn.execute(f"SELECT {_COLUMNS} FROM events WHERE id IN ({marks})", ids)]


def select(conn: sqlite3.Connection, db_dir: Path, where: Filter, limit: int | None = None) -> tuple[list[Row], int]:
    """Matching events in order of start (with `limit`, the latest `limit` of them), and the last
    batch they include, read in one transaction so that `follow` can go on from exactly there."""
    clause, params = where.where()
    sql = f"SELECT {_COLUMNS} FROM events WHERE {clause} ORDER BY start DESC, id DESC"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    conn.execute("BEGIN")
    try:
        rows = [_row(db_dir, values) for values in conn.execute(sql, params)]
        rev = last_rev(conn)
    finally:
        conn.execute("COMMIT")
    rows.reverse()
    return rows, rev


def last_rev(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT COALESCE(MAX(rev), 0) FROM events").fetchone()[0]


def follow(open_db: Callable[[], sqlite3.Connection], db_dir: Path, where: Filter, after_rev: int,
           poll_seconds: float = 0.5) -> Iterator[Row]:
    """Events written or updated after batch `after_rev`, as they are committed, forever.

    Polls: WAL lets this reader see each commit without blocking the writer. A connection per poll
    keeps up with the daemon starting, stopping or replacing the file meanwhile; a poll that cannot
    read (the daemon mid-start) is simply retried.
    """
    clause, params = where.where()
    sql = f"SELECT {_COLUMNS} FROM events WHERE rev > ? AND rev <= ? AND {clause} ORDER BY rev, start, id"
    while True:
        try:
            conn = open_db()
        except EventLogError:
            rows: list[Row] = []
        else:
            try:
                conn.execute("BEGIN")
                latest = last_rev(conn)
                rows = [_row(db_dir, values) for values in conn.execute(sql, [after_rev, latest, *params])]
                after_rev = max(after_rev, latest)
            except sqlite3.Error:
                rows = []
            finally:
                conn.close()
        yield from rows
        time.sleep(poll_seconds)


def system_events(conn: sqlite3.Connection, kind_prefix: str = "", limit: int = 20) -> list[SystemEvent]:
    """The latest `limit` system events whose kind starts with `kind_prefix`, newest first."""
    pattern = kind_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    rows = conn.execute("SELECT kind, message, detail, time FROM system_events WHERE kind LIKE ? ESCAPE '\\' "
                        "ORDER BY time DESC, id DESC LIMIT ?", (pattern, limit))
    return [SystemEvent(kind, message, json.loads(detail), when) for kind, message, detail, when in rows]
