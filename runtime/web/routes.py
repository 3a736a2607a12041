"""Every path the page serves, each GET only. A request's path picks a route from a fixed table;
no part of it is ever used as a file name (the page's own files are read once, at start)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote

from ..events.database import EventLogError
from ..health import PipelineHealth
from ..pipeline.live import LiveFeed
from .events_api import EventsApi
from .history import History
from .live import LiveBusy, LiveView, placeholder_jpeg
from .metrics import Metrics
from .responses import PAGE_POLICY, Response, Stream, error, json_response

STATIC = Path(__file__).resolve().parent / "static"
PAGE_FILES = {"app.js": "text/javascript; charset=utf-8", "style.css": "text/css; charset=utf-8"}
BOUNDARY = "edgewatch-frame"
LIVE_WAIT_S = 5.0  # a single live.jpg waits this long for a frame; a stream repeats its last this often
MAX_QUERY_FIELDS = 32


@dataclass(frozen=True)
class DaemonView:
    """What the page reads from the daemon, and nothing more: `status()` returns what status.json
    holds (None before the first), `health()` the pipeline's own report (for its cumulative
    timings), `feed` the pipeline's live feed, `events_db` and `snapshots_dir` the event log's
    files."""

    status: Callable[[], dict[str, Any] | None]
    health: Callable[[], PipelineHealth | None]
    feed: LiveFeed
    events_db: Path
    snapshots_dir: Path


class Routes:
    def __init__(self, view: DaemonView, live: LiveView, history: History, metrics: Metrics, web_info: Callable[[], dict]):
        self.view = view
        self.live = live
        self.history = history
        self.metrics = metrics
        self.events = EventsApi(view.events_db, view.snapshots_dir)
        self.web_info = web_info
        self.closing = threading.Event()
        self.index = (STATIC / "index.html").read_bytes()
        self.files = {name: (STATIC / name).read_bytes() for name in PAGE_FILES}
        self.waiting = placeholder_jpeg("waiting for a frame", live.width)

    def get(self, raw_path: str, headers: Mapping[str, str]) -> Response | Stream:
        path, _, query_string = raw_path.partition("?")
        try:
            params = parse_qs(query_string, max_num_fields=MAX_QUERY_FIELDS, strict_parsing=False)
        except ValueError:
            return error(400, "too many query parameters")
        parts = [unquote(p) for p in path.split("/")[1:]]
        try:
            return self._route(parts, params, headers)
        except EventLogError as exc:
            return error(503, str(exc))

    def _route(self, parts: list[str], params: dict[str, list[str]], headers: Mapping[str, str]) -> Response | Stream:
        match parts:
            case [""]:
                return Response(200, self.index, "text/html; charset=utf-8", (("Content-Security-Policy", PAGE_POLICY),),
                                cache="no-cache")
            case ["static", name] if name in self.files:
                return Response(200, self.files[name], PAGE_FILES[name], cache="no-cache")
            case ["metrics"]:
                body, content_type = self.metrics.render(headers.get("Accept"))
                return Response(200, body, content_type)
            case ["api", "status"]:
                status = self.view.status()
                return json_response(status) if status is not None else error(503, "the daemon has not reported yet")
            case ["api", "web"]:
                return json_response(self.web_info())
            case ["api", "history"]:
                return json_response(self.history.as_dict())
            case ["api", "events"]:
                return self.events.listing(params)
            case ["api", "events", event_id]:
                return self.events.event(event_id)
            case ["api", "events", event_id, "snapshot"]:
                return self.events.snapshot(event_id)
            case ["api", "events", event_id, "thumbnail"]:
                return self.events.thumbnail(event_id)
            case ["api", "system"]:
                return self.events.system(params)
            case ["api", "live.jpg"]:
                return self._live_jpeg()
            case ["api", "live.mjpg"]:
                return self._live_stream()
        return error(404, "not found")

    def _live_jpeg(self) -> Response:
        try:
            with self.live.viewer():
                got = self.live.next_jpeg(0, LIVE_WAIT_S)
        except LiveBusy as exc:
            return error(503, str(exc))
        if got is None:
            return error(503, "no frame: the pipeline has not inferred one yet (or is paused)")
        return Response(200, got[1], "image/jpeg")

    def _live_stream(self) -> Response | Stream:
        stack = ExitStack()
        try:
            stack.enter_context(self.live.viewer())
        except LiveBusy as exc:
            return error(503, str(exc))
        return Stream(f"multipart/x-mixed-replace; boundary={BOUNDARY}", self._mjpeg(), stack.close)

    def _mjpeg(self) -> Iterator[bytes]:
        number, jpeg = 0, self.waiting
        while not self.closing.is_set():
            got = self.live.next_jpeg(number, LIVE_WAIT_S)
            if got is not None:
                number, jpeg = got
            elif self.closing.is_set():
                return
            # else the last picture again (or "waiting"): writing is how a viewer that left is found
            yield (f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n").encode() + jpeg + b"\r\n"

