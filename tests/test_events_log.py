"""The event log's writer against a real SQLite file: batching, upsert merging, the bounded queue,
schema versions, and the journal lines a real child process prints."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import WAIT_S
from runtime.events import Event, EventLog, EventLogError, Retention
from runtime.events import database

pytestmark = pytest.mark.board  # runs on the emulated arm64 root too (deploy/arm64/check.py)

REPO = Path(__file__).resolve().parents[1]


def _event(i: int, score: float = 0.8, start: float | None = None, end: float | None = None, label: str = "person") -> Event:
    start = time.time() if start is None else start
    return Event(f"ev{i}", label, 0, score, start, end, (10.0 * i, 20.0, 10.0 * i + 50, 120.0), source="vtest.avi", model="person-ssdlite")


def _count(db: Path) -> int:
    with sqlite3.connect(db) as reader:
        return reader.execute("SELECT COUNT(*) FROM events").fetchone()[0]


@pytest.fixture
def jpeg(astronaut_bgr) -> bytes:
    ok, data = cv2.imencode(".jpg", cv2.resize(astronaut_bgr, (128, 128)))
    assert ok
    return data.tobytes()


def test_unflushed_batch_is_invisible_until_flushed(tmp_path):
    db = tmp_path / "events.db"
    with EventLog(db, batch_seconds=60, batch_max=1000, journal_lines=False) as log:
        for i in range(10):
            log.upsert(_event(i))
        time.sleep(0.3)
        assert _count(db) == 0  # not one commit per event
        assert log.stats["pending"] == 10
        assert log.flush()
        assert _count(db) == 10
        assert log.stats | {"failing": None} == {"written": 10, "dropped": 0, "pending": 0, "snapshots_dropped": 0,
                                                 "batches": 1, "deleted": 0, "failing": None, "snapshots_paused": None}


def test_batch_commits_by_itself_after_batch_seconds(tmp_path):
    db = tmp_path / "events.db"
    with EventLog(db, batch_seconds=0.3, journal_lines=False) as log:
        time.sleep(0.5)  # idle first: a batch's age counts from its first record, not from the wait for it
        t0 = time.monotonic()
        log.upsert(_event(1))
        # Not at once: no commit before batch_seconds have passed (checked against the clock, since a
        # loaded machine may pause this thread past them).
        assert _count(db) == 0 or time.monotonic() - t0 >= 0.3
        deadline = time.monotonic() + WAIT_S
        # The count of batches rises just after the commit that makes the row visible: both waited for.
        while (_count(db), log.stats["batches"]) != (1, 1) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _count(db) == 1
        assert log.stats["batches"] == 1


def test_one_transaction_per_batch_max_records(tmp_path):
    db = tmp_path / "events.db"
    with EventLog(db, batch_seconds=60, batch_max=100, journal_lines=False) as log:
        for i in range(250):
            log.upsert(_event(i))
        assert log.flush()
        assert log.stats["batches"] == 3
    with sqlite3.connect(db) as reader:
        # Every row carries the counter of the batch that wrote it: one counter per transaction.
        sizes = [n for _, n in reader.execute("SELECT rev, COUNT(*) FROM events GROUP BY rev ORDER BY rev")]
    assert sizes == [100, 100, 50]


def test_upserts_merge_best_score_first_start_last_end(tmp_path, jpeg):
    db = tmp_path / "events.db"
    t = time.time()
    with EventLog(db, batch_seconds=60, journal_lines=False) as log:
        log.upsert(Event("a", "person", 0, 0.6, t, None, (1, 1, 5, 5)), jpeg)
        log.upsert(Event("a", "person", 0, 0.9, t + 1, None, (2, 2, 6, 6)))  # same batch
        assert log.flush()
        log.upsert(Event("a", "person", 0, 0.7, t + 2, t + 3, (3, 3, 7, 7)), jpeg[:-10] + jpeg[-2:])
        assert log.flush()
    with sqlite3.connect(db) as reader:
        score, start, end, box, snapshot, size = reader.execute(
            'SELECT score, start, "end", box, snapshot, snapshot_bytes FROM events WHERE id = ?', ("a",)).fetchone()
    assert (score, start, end) == (pytest.approx(0.9), pytest.approx(t), pytest.approx(t + 3))
    assert json.loads(box) == [2, 2, 6, 6]  # the box that goes with the best score
    assert snapshot == "snapshots/a.jpg"
    assert (tmp_path / snapshot).read_bytes() == jpeg[:-10] + jpeg[-2:]  # the latest snapshot replaced the first
    assert size == len(jpeg) - 8
    assert sorted(os.listdir(tmp_path / "snapshots")) == ["a.jpg"]


_UPSERT = st.tuples(st.sampled_from(["a", "b", "c"]), st.floats(0.05, 1.0), st.integers(0, 100),
                    st.one_of(st.none(), st.integers(101, 200)), st.integers(0, 50), st.booleans())


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_UPSERT, min_size=1, max_size=30))
def test_any_sequence_of_upserts_and_flushes_stores_the_fold(tmp_path_factory, upserts):
    """Wherever the batches fall, a row is: the best score with its box, the earliest start, the
    latest end and label."""
    db = tmp_path_factory.mktemp("fold") / "events.db"
    expected: dict[str, dict] = {}
    with EventLog(db, batch_seconds=60, journal_lines=False) as log:
        for event_id, score, start, end, x, flush in upserts:
            label = f"class{x % 3}"
            log.upsert(Event(event_id, label, x % 3, score, float(start), None if end is None else float(end), (x, 0, x + 1, 1)))
            row = expected.setdefault(event_id, {"score": -1.0, "start": start})
            if score >= row["score"]:
                row.update(score=score, box=[x, 0, x + 1, 1])
            row.update(start=min(row["start"], start), end=end, label=label)
            if flush:
                assert log.flush()
    with sqlite3.connect(db) as reader:
        stored = {i: {"score": s, "start": a, "end": e, "label": lb, "box": json.loads(b)}
                  for i, s, a, e, lb, b in reader.execute('SELECT id, score, start, "end", label, box FROM events')}
    assert stored == expected


def test_system_events_are_stored_with_their_detail(tmp_path):
    db = tmp_path / "events.db"
    with EventLog(db, journal_lines=False) as log:
        log.record_system("budget", "stepped down to int8", {"variant": "int8", "rss_mb": 141.5, "path": Path("/x")})
    with sqlite3.connect(db) as reader:
        kind, message, detail = reader.execute("SELECT kind, message, detail FROM system_events").fetchone()
    assert (kind, message, json.loads(detail)) == ("budget", "stepped down to int8", {"variant": "int8", "rss_mb": 141.5, "path": "/x"})


def test_full_queue_drops_and_counts_without_blocking_the_caller(tmp_path):
    db = tmp_path / "events.db"
    log = EventLog(db, batch_seconds=60, batch_max=10, queue_max=20, journal_lines=False)
    assert log.flush()  # the writer has started (and done its start-up retention pass)
    locker = sqlite3.connect(db, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")  # the writer now waits on its first commit, as on a stalled card
    try:
        for i in range(10):
            log.upsert(_event(i))  # taken by the writer as one batch
        deadline = time.monotonic() + WAIT_S
        while not log._queue.empty():  # the writer holds them (waiting on its commit), the queue is free
            assert time.monotonic() < deadline
            time.sleep(0.02)
        for i in range(10, 60):
            log.upsert(_event(i))  # 20 fit in the queue, 30 do not
        assert log.stats["dropped"] == 30
        assert log.stats["pending"] == 30
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert log.flush()
    log.close()
    assert log.stats["written"] == 30
    assert _count(db) == 30
    log.upsert(_event(99))  # after close: dropped, not an exception
    assert log.stats["dropped"] == 31


def test_reopening_keeps_rows_and_refuses_a_newer_schema(tmp_path):
    db = tmp_path / "events.db"
    with EventLog(db, journal_lines=False) as log:
        log.upsert(_event(1))
    with EventLog(db, journal_lines=False) as log:
        log.upsert(_event(2))
    assert _count(db) == 2
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == database.VERSION
        conn.execute(f"PRAGMA user_version={database.VERSION + 1}")
    with pytest.raises(EventLogError, match=f"{db}: .*schema version {database.VERSION + 1} is newer"):
        EventLog(db, journal_lines=False)


def test_bad_event_is_the_callers_error():
    with pytest.raises(ValueError, match="Event.id"):
        Event("", "person", 0, 0.5, time.time(), None, (0, 0, 1, 1))
    with pytest.raises(ValueError, match="box"):
        Event("x", "person", 0, 0.5, time.time(), None, (0, 0, 1))
    with pytest.raises(ValueError, match="max_bytes"):
        Retention(max_bytes=0)


_JOURNAL_CHILD = """
import sys, time
from runtime.events import Event, EventLog
t = time.time()
with EventLog(sys.argv[1], batch_seconds=0.05) as log:
    log.upsert(Event("walker-1", "person", 0, 0.7, t, None, (1, 2, 3, 4), source="cam0"))
    log.flush()
    log.upsert(Event("walker-1", "person", 0, 0.9, t, None, (1, 2, 3, 4), source="cam0"))
    log.flush()
    log.upsert(Event("walker-1", "person", 0, 0.8, t, t + 2, (1, 2, 3, 4), source="cam0"))
"""


def test_each_event_goes_to_stderr_as_json_lines(tmp_path):
    result = subprocess.run([sys.executable, "-c", _JOURNAL_CHILD, str(tmp_path / "events.db")], cwd=REPO,
                            capture_output=True, text=True, timeout=WAIT_S)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    assert [(r["state"], r["id"], r["label"], r["source"]) for r in lines] == [("start", "walker-1", "person", "cam0"),
                                                                            ("end", "walker-1", "person", "cam0")]
    assert lines[0]["end"] is None and lines[1]["end"] is not None
    assert lines[1]["score"] == 0.9  # the best score, as merged (the row holds the same)


def test_under_journald_lines_carry_the_info_priority_prefix(tmp_path):
    # systemd names the service's stderr stream in JOURNAL_STREAM; the child points it at its own stderr.
    child = (
        "import os, sys, time\n"
        "st = os.fstat(2)\n"
        "os.environ['JOURNAL_STREAM'] = f'{st.st_dev}:{st.st_ino}'\n"
        "from runtime.events import Event, EventLog\n"
        "with EventLog(sys.argv[1]) as log:\n"
        "    log.upsert(Event('e', 'person', 0, 0.5, time.time(), None, (0, 0, 1, 1)))\n"
    )
    result = subprocess.run([sys.executable, "-c", child, str(tmp_path / "events.db")], cwd=REPO,
                            capture_output=True, text=True, timeout=WAIT_S)
    assert result.returncode == 0, result.stderr
    line = result.stderr.strip()
    assert line.startswith("<6>{") and json.loads(line[3:])["state"] == "start"
