"""`edgewatch events`: list, filter, follow and export the local event log.

Reads the database beside a running daemon (WAL: readers never block the writer) through a
read-only connection, so it can neither create nor change the log.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from .. import exitcodes, paths
from ..errors import CommandError

_CSV_FIELDS = ["id", "label", "class_id", "score", "start", "end", "x1", "y1", "x2", "y2", "snapshot", "source", "model", "updated",
               "stationary", "zones"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--db", metavar="PATH", help="the event database (default: events.db in the state folder)")
    where.add_argument(
        "--state-dir", metavar="DIR",
        help="the daemon's state folder (default: $STATE_DIRECTORY, else $XDG_STATE_HOME/edgewatch, else ~/.local/state/edgewatch)",
    )
    parser.add_argument("--since", metavar="T", help="events that began at or after T: ISO 8601 (2026-11-26T08:00, "
                        "local unless an offset is given) or an age (30s, 10m, 2h, 1d, 1w)")
    parser.add_argument("--until", metavar="T", help="events that began before T (same forms as --since)")
    parser.add_argument("--label", metavar="L", action="append", default=[], help="only this label (repeat for several)")
    parser.add_argument("--limit", metavar="N", help="only the latest N matching events (the initial listing, with --follow)")
    out = parser.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="one JSON object per line")
    out.add_argument("--csv", action="store_true", help="CSV with a header row")
    parser.add_argument("--follow", "-f", action="store_true", help="then print new and updated events as they are written, until interrupted")


def run(args: argparse.Namespace) -> int:
    import sqlite3

    from ..events import EventLogError, query
    from ..events import database

    db, default = _database(args)
    try:
        paths.require_readable(db)
    except PermissionError as exc:
        raise CommandError(str(exc), exitcodes.FAILURE) from None
    where = query.Filter(_time("--since", args.since), _time("--until", args.until), tuple(args.label))
    limit = _limit(args.limit)
    try:
        conn = database.connect_readonly(db)
    except EventLogError as exc:
        hint = " (the default state folder; has `edgewatch run` written events yet? else give --db or --state-dir)" if default else ""
        raise CommandError(f"{exc}{hint}") from None
    emit = _writer(args)
    try:
        rows, rev = query.select(conn, db.parent, where, limit)
    except sqlite3.Error as exc:
        raise CommandError(f"{db}: cannot read the event log: {exc}") from None
    finally:
        conn.close()
    for row in rows:
        emit(row.to_dict())
    if not args.follow:
        return exitcodes.OK
    try:
        for row in query.follow(lambda: database.connect_readonly(db), db.parent, where, rev):
            emit(row.to_dict())
    except KeyboardInterrupt:  # the normal way to stop following
        return exitcodes.OK
    return exitcodes.OK


def _time(flag: str, text: str | None) -> float | None:
    from ..events.times import TimeSpecError, parse_time

    if text is None:
        return None
    try:
        return parse_time(text)
    except TimeSpecError as exc:
        raise CommandError(f"{flag}: {exc}") from None


def _database(args: argparse.Namespace) -> tuple[Path, bool]:
    """The database to read, and whether it is the default one."""
    if args.db:
        return Path(args.db), False
    return paths.state_dir(args.state_dir) / paths.EVENTS_DB, not args.state_dir


def _limit(text: str | None) -> int | None:
    from ..events.query import parse_limit

    try:
        return parse_limit(text)
    except ValueError as exc:
        raise CommandError(f"--limit: {exc}") from None


def _writer(args: argparse.Namespace) -> Callable[[dict[str, Any]], None]:
    """One function per output format; each line is flushed, so `--follow | jq` sees it at once."""
    if args.json:
        return lambda r: print(json.dumps(r, ensure_ascii=False), flush=True)
    if args.csv:
        out = csv.DictWriter(sys.stdout, fieldnames=_CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
        out.writeheader()

        def write_csv(r: dict[str, Any]) -> None:
            x1, y1, x2, y2 = r["box"]
            out.writerow({**r, "x1": x1, "y1": y1, "x2": x2, "y2": y2, "zones": ";".join(r["zones"])})
            sys.stdout.flush()

        return write_csv
    print(f"{'START':<19}  {'END':<19}  {'LABEL':<12}  {'SCORE':>5}  {'ID':<16}  SNAPSHOT", flush=True)
    return lambda r: print(
        f"{_local(r['start']):<19}  {_local(r['end']) or 'in view':<19}  {r['label']:<12.12}  {r['score']:>5.2f}  {r['id']:<16}  {r['snapshot'] or '-'}",
        flush=True,
    )


def _local(stamp: str | None) -> str:
    return "" if stamp is None else datetime.fromisoformat(stamp).strftime("%Y-%m-%d %H:%M:%S")
