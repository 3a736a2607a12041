"""The local page's server in-process, over real sockets: the real pipeline (the bundled person
model on vtest.avi) filling the live feed, a real event log, prometheus_client's own parser.

What it must hold: loopback only by default, a token when one is set, no path from a request to
the filesystem, `/api/events` equal to `edgewatch events --json`, /metrics in the Prometheus
format with counters that rise, a live view that costs nothing unwatched, and clients that stall,
trickle or crowd in losing their place instead of holding the server (or the pipeline).
"""

from __future__ import annotations

import http.client
import json
import socket
import sqlite3
import time
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from urllib.parse import urlencode

import cv2
import numpy as np
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from runtime import config, paths
from runtime.cli import main
from runtime.events import Event, EventLog
from runtime.events.model import Retention
from runtime.pipeline import Pipeline
from runtime.pipeline.loader import load_and_test
from runtime.web.access import COOKIE
from runtime.web.routes import DaemonView
from runtime.web.server import WebServer

HOUR = 3600.0
TOKEN = "0123456789abcdef-token"


def wait_for(condition, timeout=30.0, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"not within {timeout} s")


def get(server: WebServer, path: str, headers: dict | None = None, timeout: float = 30.0):
    """(status, headers, body) for a raw path, sent exactly as given (no client-side normalising)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
    try:
        conn.putrequest("GET", path, skip_host=True, skip_accept_encoding=True)
        for name, value in {"Host": f"127.0.0.1:{server.port}", **(headers or {})}.items():
            if value is not None:
                conn.putheader(name, value)
        conn.endheaders()
        r = conn.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        conn.close()


def live_jpeg(server: WebServer, headers: dict | None = None):
    """GET /api/live.jpg, asked again while it says 503 for want of a frame: it waits LIVE_WAIT_S for
    the pipeline's next inference, which a loaded machine may not finish in time."""
    def answered():
        status, got_headers, body = get(server, "/api/live.jpg", headers)
        return None if status == 503 and b"no frame" in body else (status, got_headers, body)
    return wait_for(answered, 120)


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    """The real pipeline on the embedded default (vtest.avi at its own 10 fps), its event log, and
    the status the daemon would build from them."""
    state = tmp_path_factory.mktemp("state")
    cfg = config.embedded_default()
    detector = load_and_test(cfg.model)
    log = EventLog(state / "events.db", state / "snapshots", Retention(), 0.5, journal_lines=False)
    pipeline = Pipeline(cfg, detector, log)
    pipeline.start()

    def status():
        h = pipeline.health()
        return {"state": "running", "healthy": True, "fps": h.fps, "model": h.model.as_dict(),
                "frames": {"captured": h.frames.captured, "inferred": h.frames.inferred, "dropped": h.frames.dropped,
                           "errors": h.frames.errors},
                "events": {k: log.stats.get(k, 0) for k in ("written", "dropped", "pending")}}

    view = DaemonView(status, pipeline.health, pipeline.live, state / "events.db", state / "snapshots")
    wait_for(lambda: pipeline.stats.inferred > 0, 60)
    yield pipeline, view
    pipeline.stop()
    log.close()


@contextmanager
def serving(view: DaemonView, **options):
    server = WebServer(view, **{"port": 0, **options})
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def server(running):
    with serving(running[1], max_viewers=2) as s:
        yield s


@pytest.fixture(scope="module")
def strict(running):
    """A short timeout, for the clients that stall or trickle (not so short that a loaded machine's
    scheduling alone would trip it)."""
    with serving(running[1], timeout_s=3.0, max_viewers=2) as s:
        yield s


# -- where it listens, and who may read --------------------------------------------------------------


def test_listens_on_loopback_only_by_default(running):
    with serving(running[1]) as s:
        mine = [c for c in psutil.Process().net_connections("inet") if c.status == psutil.CONN_LISTEN and c.laddr.port == s.port]
        assert [c.laddr.ip for c in mine] == ["127.0.0.1"]
        assert s.url == f"http://127.0.0.1:{s.port}/"
        others = [a.address for addrs in psutil.net_if_addrs().values() for a in addrs
                  if a.family == socket.AF_INET and not a.address.startswith("127.")]
        for address in others:  # the machine's other addresses do not answer
            with pytest.raises(OSError):
                socket.create_connection((address, s.port), timeout=2).close()


def test_another_address_needs_a_token(running):
    with pytest.raises(ValueError, match="needs a token"):
        WebServer(running[1], host="0.0.0.0", port=0)


def test_a_token_when_set_is_needed_on_every_request(running):
    with serving(running[1], token=TOKEN) as s:
        assert get(s, "/api/status")[0] == 401
        assert get(s, "/metrics", {"Authorization": "Bearer wrong-token-0123456789"})[0] == 401
        status, _, body = get(s, "/metrics", {"Authorization": f"Bearer {TOKEN}"})
        assert status == 200 and b"edgewatch_frames_inferred_total" in body
        # A browser's way in: the token once in the address, then a cookie (images send no headers).
        status, headers, _ = get(s, f"/?token={TOKEN}")
        assert status == 303 and headers["Location"] == "/"
        cookie = headers["Set-Cookie"].split(";")[0]
        assert cookie == f"{COOKIE}={TOKEN}" and "HttpOnly" in headers["Set-Cookie"]
        assert live_jpeg(s, {"Cookie": cookie})[0] == 200
        assert get(s, "/?token=not-the-token-at-all")[0] == 401


def test_loopback_page_answers_loopback_host_names_only(server):
    """A page elsewhere that points its own name at 127.0.0.1 (DNS rebinding) gets nothing."""
    status, _, body = get(server, "/api/status", {"Host": f"attacker.example:{server.port}"})
    assert status == 403 and b"loopback" in body
    for host in (f"localhost:{server.port}", f"127.0.0.1:{server.port}", f"[::1]:{server.port}"):
        assert get(server, "/api/status", {"Host": host})[0] == 200, host


def test_read_only(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("POST", "/api/events", body=b"{}")
    assert conn.getresponse().status == 501
    conn.close()


# -- no path from a request reaches the filesystem ---------------------------------------------------------


@pytest.mark.parametrize("path", [
    "/../../etc/passwd", "/static/../../etc/passwd", "/static/..%2F..%2Fetc%2Fpasswd", "/%2e%2e/%2e%2e/etc/passwd",
    "/api/events/../../etc/passwd", "/api/events/..%2F..%2Fetc%2Fpasswd/snapshot", "/api/events/%2Fetc%2Fpasswd/snapshot",
    "/static/index.html", "/static/", "/api/events/no-such-event", "/api/events/no-such-event/snapshot",
    "/api/events/no-such-event/thumbnail",
])
def test_unknown_paths_and_traversal_get_404(server, path):
    status, _, body = get(server, path)
    assert status == 404, body
    assert b"root:" not in body


def test_a_snapshot_is_served_from_the_snapshots_folder_only(tmp_path, running):
    """Even a row that names a file elsewhere (the daemon never writes one) is not served."""
    db, snaps = make_log(tmp_path)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE events SET snapshot = '/etc/passwd' WHERE id = 'ev1'")
    with serving(DaemonView(lambda: None, lambda: None, running[0].live, db, snaps)) as s:
        assert get(s, "/api/events/ev1/snapshot")[0] == 404
        status, headers, body = get(s, "/api/events/ev2/snapshot")
        assert status == 200 and headers["Content-Type"] == "image/jpeg"
        assert body == (snaps / "ev2.jpg").read_bytes()
        status, _, thumb = get(s, "/api/events/ev2/thumbnail")
        image = cv2.imdecode(np.frombuffer(thumb, np.uint8), cv2.IMREAD_COLOR)
        assert status == 200 and image.shape[1] == 240 and len(thumb) < len(body)


# -- the event log over HTTP ----------------------------------------------------------------------------------


def make_log(folder: Path) -> tuple[Path, Path]:
    """Six events an hour apart, cars and people, the newest still in view; real JPEG snapshots
    (vtest.avi frames); one budget decision."""
    cap = cv2.VideoCapture(str(paths.BUNDLED_VIDEO))
    now = time.time()
    with EventLog(folder / "events.db", folder / "snapshots", journal_lines=False) as log:
        for i in range(6):
            ok, frame = cap.read()
            assert ok
            start = now - i * HOUR - 60
            log.upsert(Event(f"ev{i}", "car" if i % 2 == 0 else "person", i % 2, 0.5 + i / 20, start,
                             None if i == 0 else start + 30, (i, 2.0, i + 40.0, 80.0)),
                       cv2.imencode(".jpg", frame)[1].tobytes())
        log.record_system("budget.rate_limit", "rate_limit unlimited -> 5.0: power 4.2 W over 4.0 W", {"knob": "rate_limit"})
        log.record_system("reload", "reloaded", {})
    cap.release()
    return folder / "events.db", folder / "snapshots"


@pytest.mark.parametrize("filters", [
    [],
    [("label", "person"), ("since", "4h")],
    [("label", "car"), ("label", "person"), ("limit", "2")],
    [("since", "5h"), ("until", "1h")],
    [("until", "ISO")],
])
def test_api_events_equals_events_json(tmp_path, running, capsys, filters):
    db, snaps = make_log(tmp_path)
    until = datetime.fromtimestamp(time.time() - 2.5 * HOUR).isoformat()
    filters = [(k, until if v == "ISO" else v) for k, v in filters]
    assert main(["events", "--db", str(db), "--json", *[a for k, v in filters for a in (f"--{k}", v)]]) == 0
    cli = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    with serving(DaemonView(lambda: None, lambda: None, running[0].live, db, snaps)) as s:
        status, headers, body = get(s, "/api/events" + (f"?{urlencode(filters)}" if filters else ""))
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert json.loads(body) == cli
    assert cli, "each filter matches something"


def test_api_events_refuses_what_the_cli_refuses(tmp_path, running):
    db, snaps = make_log(tmp_path)
    with serving(DaemonView(lambda: None, lambda: None, running[0].live, db, snaps)) as s:
        for query, said in [("since=yesterdayish", "since: 'yesterdayish' is not a time"), ("limit=0", "positive whole number"),
                            ("lable=person", "unknown parameter 'lable'"), ("since=1h&since=2h", "since: given 2 times")]:
            status, _, body = get(s, f"/api/events?{query}")
            assert status == 400 and said in json.loads(body)["error"], query
        status, _, body = get(s, "/api/system?kind=budget.")
        notes = json.loads(body)
        assert status == 200 and [n["kind"] for n in notes] == ["budget.rate_limit"]
        assert notes[0]["message"].startswith("rate_limit unlimited -> 5.0")
        assert json.loads(get(s, "/api/events/ev3")[2])["label"] == "person"


def test_without_an_event_log_the_api_says_so(tmp_path, running):
    with serving(DaemonView(lambda: None, lambda: None, running[0].live, tmp_path / "events.db", tmp_path / "snapshots")) as s:
        status, _, body = get(s, "/api/events")
    assert status == 503 and "no event log here" in json.loads(body)["error"]


# -- /metrics -----------------------------------------------------------------------------------------------------


def scrape(server) -> dict:
    status, headers, body = get(server, "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    return {f.name: f for f in text_string_to_metric_families(body.decode())}


def test_metrics_parse_and_counters_rise(server):
    first = scrape(server)
    for name, kind in [("edgewatch_frames_captured", "counter"), ("edgewatch_frames_inferred", "counter"),
                       ("edgewatch_frames_dropped", "counter"), ("edgewatch_events_written", "counter"),
                       ("edgewatch_events_dropped", "counter"), ("edgewatch_invoke_seconds", "histogram"),
                       ("edgewatch_frame_age_seconds", "histogram"), ("edgewatch_fps", "gauge"),
                       ("edgewatch_model_info", "gauge"), ("process_resident_memory_bytes", "gauge")]:
        assert first[name].type == kind, name
    assert first["process_resident_memory_bytes"].samples[0].value > 50e6
    model = first["edgewatch_model_info"].samples[0].labels
    assert model["variant"] == server.routes.view.status()["model"]["variant"] and len(model["sha256"]) == 64
    buckets = [s for s in first["edgewatch_invoke_seconds"].samples if s.name.endswith("_bucket")]
    counts = [s.value for s in buckets]
    assert counts == sorted(counts) and buckets[-1].labels["le"] == "+Inf"
    count = next(s.value for s in first["edgewatch_invoke_seconds"].samples if s.name.endswith("_count"))
    assert counts[-1] == count > 0

    def risen(later):
        # Capture runs ahead of inference by a queued frame or so: each counter rises on its own schedule.
        return all(later[name].samples[0].value > first[name].samples[0].value
                   for name in ("edgewatch_frames_inferred", "edgewatch_frames_captured"))

    wait_for(lambda: risen(scrape(server)), 30, 0.5)


def test_metrics_negotiate_openmetrics(server):
    status, headers, body = get(server, "/metrics", {"Accept": "application/openmetrics-text; version=1.0.0"})
    assert status == 200 and headers["Content-Type"].startswith("application/openmetrics-text")
    assert body.rstrip().endswith(b"# EOF")


# -- the live view ------------------------------------------------------------------------------------------------


def test_live_view_costs_nothing_unwatched_and_changes_when_watched(running, server):
    pipeline = running[0]
    wait_for(lambda: server.live.viewers == 0)
    before, encoded = pipeline.stats.inferred, server.live.encoded
    wait_for(lambda: pipeline.stats.inferred >= before + 3)
    assert pipeline.live.latest() is None and server.live.encoded == encoded  # unwatched: nothing kept, nothing drawn
    status, headers, first = live_jpeg(server)
    assert status == 200 and headers["Content-Type"] == "image/jpeg"
    image = cv2.imdecode(np.frombuffer(first, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape[1] == 640  # vtest's 768 px scaled to live_width
    time.sleep(0.5)
    status, _, second = live_jpeg(server)
    assert status == 200 and second != first
    wait_for(lambda: server.live.viewers == 0)
    assert pipeline.live.latest() is None


def read_part(sock_file) -> bytes:
    """One JPEG part of a multipart/x-mixed-replace stream."""
    line = sock_file.readline()
    while line in (b"\r\n", b""):
        if line == b"":
            raise EOFError
        line = sock_file.readline()
    assert line.startswith(b"--edgewatch-frame"), line
    headers = {}
    while (line := sock_file.readline()) != b"\r\n":
        name, _, value = line.decode().partition(":")
        headers[name.lower()] = value.strip()
    assert headers["content-type"] == "image/jpeg"
    return sock_file.read(int(headers["content-length"]))


def open_stream(server, rcvbuf: int | None = None) -> socket.socket:
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(30)
    s.connect(("127.0.0.1", server.port))
    s.sendall(b"GET /api/live.mjpg HTTP/1.0\r\nHost: localhost\r\n\r\n")
    return s


def test_mjpeg_stream_of_changing_frames_and_a_viewer_cap(server):
    a, b = open_stream(server), open_stream(server)
    fa, fb = a.makefile("rb"), b.makefile("rb")
    assert fa.readline().startswith(b"HTTP/1.0 200") and fb.readline().startswith(b"HTTP/1.0 200")
    while fa.readline() != b"\r\n":
        pass
    seen = set()
    for _ in range(40):  # a picture repeats while no newer frame came (a slow pipeline): read on
        picture = read_part(fa)
        assert cv2.imdecode(np.frombuffer(picture, np.uint8), cv2.IMREAD_COLOR) is not None
        seen.add(picture)
        if len(seen) == 3:
            break
    assert len(seen) == 3
    wait_for(lambda: server.live.viewers == 2)
    status, _, body = get(server, "/api/live.mjpg")  # the third viewer: max_viewers is 2
    assert status == 503 and b"limit" in body
    for f, s in ((fa, a), (fb, b)):
        f.close()
        s.close()
    wait_for(lambda: server.live.viewers == 0, 15)  # found gone at their next frame
    assert live_jpeg(server)[0] == 200


# -- clients that stall, trickle or crowd in -------------------------------------------------------------------------


def test_a_viewer_that_never_reads_is_dropped_and_holds_nothing_up(running, strict):
    pipeline = running[0]
    stalled = open_stream(strict, rcvbuf=4096)  # reads nothing, ever
    wait_for(lambda: strict.live.viewers == 1)
    inferred = pipeline.stats.inferred
    assert get(strict, "/api/status")[0] == 200  # others are served meanwhile
    # The server's writes block once the socket buffers are full; its write timeout (3 s) drops it.
    # The pipeline goes on all along (on a loaded machine, its next inference may come after the drop).
    wait_for(lambda: strict.live.viewers == 0 and pipeline.stats.inferred > inferred, 60)
    stalled.settimeout(10)
    with pytest.raises((ConnectionError, EOFError)):
        while stalled.recv(1 << 20):  # what was buffered, then the server's close
            pass
        raise EOFError
    stalled.close()


def closed_by_server(sock: socket.socket) -> bool:
    """The server closed it without an answer (a reset when it closed with our bytes unread)."""
    try:
        return sock.recv(100) == b""
    except ConnectionResetError:
        return True


def test_a_request_that_trickles_in_loses_its_place(strict):
    silent = socket.create_connection(("127.0.0.1", strict.port), timeout=10)
    trickle = socket.create_connection(("127.0.0.1", strict.port), timeout=10)
    started = time.monotonic()
    for byte in b"GET /api/status HTTP/1.0\r\n":  # a byte every 0.2 s: each read is quick, the head never ends
        try:
            trickle.send(bytes([byte]))
        except OSError:
            break
        time.sleep(0.2)
        if time.monotonic() - started > 4:
            break
    assert closed_by_server(silent)  # nothing ever came
    assert closed_by_server(trickle)
    assert time.monotonic() - started < 20  # the 3 s head deadline, not the pace of the client
    silent.close()
    trickle.close()


def test_a_crowd_of_idle_connections_is_refused_not_queued(running):
    # A head deadline far beyond the test's pace: the idle ones must still hold every place when the
    # extra one comes, however slowly a loaded machine lets this test open them.
    with serving(running[1], timeout_s=120.0, max_viewers=2) as crowded:
        idle = [socket.create_connection(("127.0.0.1", crowded.port), timeout=10) for _ in range(crowded.max_connections)]
        wait_for(lambda: crowded.info()["connections"] == crowded.max_connections, 60)
        extra = socket.create_connection(("127.0.0.1", crowded.port), timeout=10)
        try:
            answer = extra.recv(200)
        except ConnectionResetError:
            answer = b"reset"
        assert answer.startswith(b"HTTP/1.0 503") or answer == b"reset"
        assert crowded.info()["refused"] >= 1
        for s in idle + [extra]:
            s.close()
        wait_for(lambda: crowded.info()["connections"] == 0, 60)
        assert get(crowded, "/api/status")[0] == 200


def test_stop_ends_open_streams(running):
    with serving(running[1]) as s:
        viewer = open_stream(s)
        wait_for(lambda: s.live.viewers == 1)
    wait_for(lambda: s.live.viewers == 0, 30)
    viewer.settimeout(30)
    while viewer.recv(1 << 20):  # what was sent before the stop, then the end of the stream
        pass
    viewer.close()
