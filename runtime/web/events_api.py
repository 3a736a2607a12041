"""The event log over HTTP: listings with the filters of `edgewatch events`, one event, its
snapshot and a thumbnail of it, and recent system events (the budget controller's decisions).

Read-only connections per request (WAL: readers never block the daemon's writer). A snapshot is
found by event id through the database, never by a path from the request, and is served only
from the snapshots folder.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections import OrderedDict
from pathlib import Path

import cv2
import numpy as np

from ..events import database, query
from ..events.times import TimeSpecError, parse_time
from .responses import Response, error, json_response

EVENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
LIST_KEYS = {"since", "until", "label", "limit"}
MAX_EVENTS = 10_000  # per listing: a month of a busy camera must not be built in memory at once
MAX_SNAPSHOT_BYTES = 32 * 2**20
THUMB_WIDTH = 240
THUMB_CACHE = 256  # thumbnails kept (a few KB each)
MAX_SYSTEM = 200


class EventsApi:
    def __init__(self, events_db: Path, snapshots_dir: Path):
        self.db = Path(events_db)
        self.snapshots = Path(snapshots_dir).resolve()
        self._thumbs: OrderedDict[tuple[str, int, int], bytes] = OrderedDict()
        self._thumbs_lock = threading.Lock()

    def _connect(self) -> sqlite3.Connection:
        return database.connect_readonly(self.db)  # EventLogError: the caller answers 503

    def listing(self, params: dict[str, list[str]]) -> Response:
        unknown = sorted(set(params) - LIST_KEYS)
        if unknown:
            return error(400, f"unknown parameter {unknown[0]!r} (known: {', '.join(sorted(LIST_KEYS))})")
        try:
            since = _one_time(params, "since")
            until = _one_time(params, "until")
            limit = query.parse_limit(_one(params, "limit"))
        except ValueError as exc:
            return error(400, str(exc))
        where = query.Filter(since, until, tuple(params.get("label", ())))
        limit = min(limit or MAX_EVENTS, MAX_EVENTS)
        conn = self._connect()
        try:
            rows, _ = query.select(conn, self.db.parent, where, limit)
        finally:
            conn.close()
        return json_response([row.to_dict() for row in rows])

    def _row(self, event_id: str) -> query.Row | None:
        if not EVENT_ID.fullmatch(event_id):
            return None
        conn = self._connect()
        try:
            rows = query.by_id(conn, self.db.parent, [event_id])
        finally:
            conn.close()
        return rows[0] if rows else None

    def event(self, event_id: str) -> Response:
        row = self._row(event_id)
        return json_response(row.to_dict()) if row else error(404, f"no event {event_id!r}")

    def _snapshot_file(self, event_id: str) -> Path | None:
        row = self._row(event_id)
        if row is None or row.event.snapshot is None:
            return None
        path = Path(row.event.snapshot).resolve()
        if not path.is_relative_to(self.snapshots) or not path.is_file():
            return None  # written by the daemon, but the page serves its snapshots folder and nothing else
        return path

    def snapshot(self, event_id: str) -> Response:
        path = self._snapshot_file(event_id)
        data = _read(path) if path else None
        if data is None:
            return error(404, f"no snapshot for event {event_id!r}")
        return Response(200, data, "image/jpeg", cache="private, max-age=5")

    def thumbnail(self, event_id: str) -> Response:
        path = self._snapshot_file(event_id)
        try:
            stat = path.stat() if path else None
        except OSError:
            stat = None
        if stat is None:
            return error(404, f"no snapshot for event {event_id!r}")
        key = (event_id, stat.st_mtime_ns, stat.st_size)
        with self._thumbs_lock:
            thumb = self._thumbs.get(key)
            if thumb is not None:
                self._thumbs.move_to_end(key)
        if thumb is None:
            thumb = _thumbnail(_read(path))
            if thumb is None:
                return error(404, f"no snapshot for event {event_id!r}")
            with self._thumbs_lock:
                self._thumbs[key] = thumb
                while len(self._thumbs) > THUMB_CACHE:
                    self._thumbs.popitem(last=False)
        return Response(200, thumb, "image/jpeg", cache="private, max-age=5")

    def system(self, params: dict[str, list[str]]) -> Response:
        unknown = sorted(set(params) - {"kind", "limit"})
        if unknown:
            return error(400, f"unknown parameter {unknown[0]!r} (known: kind, limit)")
        try:
            limit = min(query.parse_limit(_one(params, "limit")) or 20, MAX_SYSTEM)
        except ValueError as exc:
            return error(400, str(exc))
        conn = self._connect()
        try:
            notes = query.system_events(conn, _one(params, "kind") or "", limit)
        finally:
            conn.close()
        return json_response([n.to_dict() for n in notes])


def _one(params: dict[str, list[str]], key: str) -> str | None:
    values = params.get(key)
    if not values:
        return None
    if len(values) > 1:
        raise ValueError(f"{key}: given {len(values)} times")
    return values[0]


def _one_time(params: dict[str, list[str]], key: str) -> float | None:
    text = _one(params, key)
    if text is None:
        return None
    try:
        return parse_time(text)
    except TimeSpecError as exc:
        raise ValueError(f"{key}: {exc}") from None


def _read(path: Path) -> bytes | None:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_SNAPSHOT_BYTES + 1)
    except OSError:
        return None  # deleted by retention meanwhile
    return data if len(data) <= MAX_SNAPSHOT_BYTES else None


def _thumbnail(jpeg: bytes | None) -> bytes | None:
    if not jpeg:
        return None
    # Decoded at half size straight from the JPEG (cheaper than decoding whole, then shrinking).
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_REDUCED_COLOR_2)
    if image is None:
        return None
    h, w = image.shape[:2]
    if w > THUMB_WIDTH:
        image = cv2.resize(image, (THUMB_WIDTH, max(1, round(h * THUMB_WIDTH / w))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 75])
    return buf.tobytes() if ok else None
