"""The page's HTTP server: the standard library's, bounded for a handful of local clients.

The standard library adds nothing to the board's footprint; what a small server library would
bring for this use is here, and each point is tested (tests/test_web_server.py):
- a fixed number of connections at once (`max_connections`): one more is answered 503 by the
  accepting thread and closed, never given a thread or a queue place;
- a deadline for a request's head, from connect to its blank line: a client that trickles bytes
  (or sends nothing) loses its place after `timeout_s`;
- a timeout on every write (the whole of one response, or of one live frame): a client that stops
  reading loses its place, and the kernel's socket buffers are all it ever held;
- one request per connection (HTTP/1.0): no idle keep-alive connection holds a place;
- GET only; a request line and headers capped by the standard library (64 KiB, 100 headers);
  request bodies are never read.
The pipeline never waits on any of it: the server reads the daemon through a DaemonView, and the
live feed is a slot the pipeline fills only while someone watches.
"""

from __future__ import annotations

import io
import logging
import socket
import socketserver
import threading
import time
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ..config import is_loopback
from .access import cookie_header, host_header_allowed, presented_token, token_matches
from .history import FigureSampler, History
from .live import LiveView
from .metrics import DaemonCollector, Metrics
from .responses import Response, Stream, error
from .routes import DaemonView, Routes

log = logging.getLogger("edgewatch.web")

# Sent to every response: the page is its own origin's only, never sniffed, never framed.
COMMON_HEADERS = (("X-Content-Type-Options", "nosniff"), ("X-Frame-Options", "DENY"), ("Referrer-Policy", "no-referrer"))
BUSY = (b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 5\r\n"
        b"Connection: close\r\nContent-Length: 33\r\n\r\n{\"error\": \"too many connections\"}")
POLL_S = 0.25  # how soon stop() is noticed by the accepting loop
# Per connection, fixed (no autotuning to megabytes): what a client that stops reading can make the
# kernel hold for it, and still a second of the live view over a slow tunnel.
SEND_BUFFER = 256 * 1024


class _HeadReader(io.RawIOBase):
    """The socket as the request reader sees it: every read must finish by one deadline, so a
    request head that trickles in byte by byte cannot hold a place for long."""

    def __init__(self, sock: socket.socket, deadline: float):
        self._sock = sock
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("request head not complete in time")
        self._sock.settimeout(left)
        return self._sock.recv_into(buffer)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    server_version = "edgewatch"
    sys_version = ""
    server: _Server

    def setup(self) -> None:
        self.timeout = self.server.io_timeout
        super().setup()
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
        self.rfile = io.BufferedReader(_HeadReader(self.connection, time.monotonic() + self.timeout))

    def do_GET(self) -> None:  # noqa: N802 - the standard library's name
        self.connection.settimeout(self.timeout)  # from here on: the write timeout
        web = self.server.web
        try:
            result = web.check_access(self) or web.routes.get(self.path, self.headers)
        except Exception:  # noqa: BLE001 - one bad request must not end the server
            log.exception("web: GET %s failed", self.path[:200])
            result = error(500, "internal error")
        if isinstance(result, Stream):
            self._stream(result)
        else:
            self._send(result)

    def _send(self, r: Response) -> None:
        try:
            self.send_response(r.status)
            self.send_header("Content-Type", r.content_type)
            self.send_header("Content-Length", str(len(r.body)))
            self.send_header("Cache-Control", r.cache)
            for name, value in COMMON_HEADERS + r.headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(r.body)
        except OSError:  # the client left, or stopped reading past the write timeout
            self.close_connection = True

    def _stream(self, s: Stream) -> None:
        try:
            self.send_response(200)
            self.send_header("Content-Type", s.content_type)
            self.send_header("Cache-Control", "no-store")
            for name, value in COMMON_HEADERS:
                self.send_header(name, value)
            self.end_headers()
            for chunk in s.chunks:
                self.wfile.write(chunk)
        except OSError:
            pass  # the viewer left, or stopped reading: its place is freed below
        finally:
            close = getattr(s.chunks, "close", None)
            if close is not None:
                close()
            s.close()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the standard library's signature
        log.debug("web %s: " + format, self.client_address[0], *args)


class _Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True  # not tracked for joining either, so finished threads leave nothing behind
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 16

    def __init__(self, address: tuple[str, int], web: WebServer, max_connections: int, io_timeout: float):
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.web = web
        self.io_timeout = io_timeout
        self._places = threading.BoundedSemaphore(max_connections)
        self._count_lock = threading.Lock()  # guards the two counts below
        self.connections = 0
        self.refused = 0
        super().__init__(address, _Handler)

    def process_request(self, request, client_address) -> None:
        if not self._places.acquire(blocking=False):
            with self._count_lock:
                self.refused += 1
            try:
                request.setblocking(False)
                request.send(BUSY)
            except OSError:
                pass
            self.shutdown_request(request)
            return
        with self._count_lock:
            self.connections += 1
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._leave()
            self.shutdown_request(request)
            raise

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._leave()

    def _leave(self) -> None:
        with self._count_lock:
            self.connections -= 1
        self._places.release()

    def handle_error(self, request, client_address) -> None:
        log.debug("web: connection from %s failed", client_address[0], exc_info=True)


class WebServer:
    """The page, its API and /metrics for one daemon. start() binds (OSError when it cannot),
    stop() ends it within about a second; neither waits on the pipeline."""

    def __init__(self, view: DaemonView, *, host: str = "127.0.0.1", port: int = 8090, token: str | None = None,
                 max_viewers: int = 5, live_fps: float = 5.0, live_width: int = 640, timeout_s: float = 10.0,
                 history_interval_s: float = 10.0, sensors_root: str = "/"):
        if not is_loopback(host) and not token:
            raise ValueError(f"web: listening on {host} needs a token")
        self.host, self.port, self.token = host, port, token or None
        self.loopback = is_loopback(host)
        self.max_connections = max_viewers + 8  # the viewers, and the page's own requests beside them
        self.timeout_s = timeout_s
        self.live = LiveView(view.feed, fps=live_fps, width=live_width, max_viewers=max_viewers)
        self.history = History(history_interval_s)
        self.sampler = FigureSampler(view.status, sensors_root)
        metrics = Metrics(DaemonCollector(view.status, view.health, lambda: self.sampler.latest, lambda: self.live.viewers))
        self.routes = Routes(view, self.live, self.history, metrics, self.info)
        self._server: _Server | None = None
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()

    # -- life ---------------------------------------------------------------------------------

    def start(self) -> None:
        self._server = _Server((self.host.strip("[]"), self.port), self, self.max_connections, self.timeout_s)
        self.port = self._server.server_address[1]
        self._threads = [
            threading.Thread(target=self._server.serve_forever, args=(POLL_S,), name="edgewatch-web", daemon=True),
            threading.Thread(target=self._sample_loop, name="edgewatch-web-history", daemon=True),
        ]
        for t in self._threads:
            t.start()
        log.info("web page on %s", self.url)

    def stop(self, timeout: float = 1.0) -> None:
        self._stop.set()
        self.routes.closing.set()
        self.live.close()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        for t in self._threads:
            t.join(timeout)

    def _sample_loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.history.add(time.time(), self.sampler.sample(time.monotonic()))
            except Exception:  # noqa: BLE001 - a missing plot point is no reason to stop sampling
                log.debug("web: history sample failed", exc_info=True)
            self._stop.wait(self.history.interval_s)

    # -- what the daemon reports ------------------------------------------------------------------

    @property
    def url(self) -> str:
        host = self.host.strip("[]")
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}/"

    def info(self) -> dict[str, Any]:
        s = self._server
        return {"url": self.url, "token": self.token is not None, "viewers": self.live.viewers,
                "connections": s.connections if s else 0, "refused": s.refused if s else 0}

    # -- who may read ------------------------------------------------------------------------------

    def check_access(self, handler: BaseHTTPRequestHandler) -> Response | None:
        """None when the request may be served, else the refusal to send."""
        if self.loopback and not host_header_allowed(handler.headers.get("Host")):
            return error(403, "this page answers to loopback names only (use ssh -L and http://localhost:PORT/)")
        if self.token is None:
            return None
        url = urlsplit(handler.path)
        if url.path == "/" and url.query:
            try:
                given = parse_qs(url.query, max_num_fields=8).get("token", [None])[0]
            except ValueError:
                given = None
            if token_matches(self.token, given):  # the page's entry: keep the token as a cookie, drop it from the address
                return Response(303, b"", "text/plain", (("Location", "/"), ("Set-Cookie", cookie_header(self.token))))
        if token_matches(self.token, presented_token(handler.headers.get("Authorization"), handler.headers.get("Cookie"))):
            return None
        return Response(401, b'{"error": "a token is needed: open /?token=TOKEN, or send Authorization: Bearer TOKEN"}',
                        headers=(("WWW-Authenticate", "Bearer"),))
