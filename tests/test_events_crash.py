"""kill -9 in the middle of writing: a real child process writing continuously is killed with
SIGKILL; the database must pass `PRAGMA integrity_check` and hold every confirmed batch, and only
whole batches (ids form a prefix), each row's snapshot whole on disk."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest

from runtime.events import Event, EventLog

pytestmark = pytest.mark.board  # runs on the emulated arm64 root too (deploy/arm64/check.py)

REPO = Path(__file__).resolve().parents[1]

_WRITER = """
import sys, time
from runtime.events import Event, EventLog
db, jpeg_path, prefix = sys.argv[1], sys.argv[2], sys.argv[3]
jpeg = open(jpeg_path, "rb").read()
log = EventLog(db, batch_seconds=0.02, batch_max=50, journal_lines=False)
i = 0
while True:
    log.upsert(Event(f"{prefix}{i:07d}", "person", 0, 0.9, 1.7e9 + i, None, (0, 0, 10, 10)), jpeg)
    i += 1
    if i % 100 == 0:
        assert log.flush() and log.stats["dropped"] == 0
        print(i, flush=True)  # confirmed: these are committed
"""


def _kill_mid_write(db: Path, jpeg_path: Path, prefix: str, at_least: int) -> int:
    child = subprocess.Popen([sys.executable, "-c", _WRITER, str(db), str(jpeg_path), prefix], cwd=REPO,
                             stdout=subprocess.PIPE, text=True)
    confirmed = 0
    try:
        while confirmed < at_least:
            line = child.stdout.readline()
            assert line, f"writer exited early with {child.wait()}"
            confirmed = int(line)
        # Land the kill anywhere in the next batches: in a snapshot write, a commit, a checkpoint.
        time.sleep(random.uniform(0, 0.3))
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
        for line in child.stdout:  # confirmations already printed before the kill
            confirmed = int(line)
    finally:
        if child.poll() is None:
            child.kill()
        child.stdout.close()
    return confirmed


def test_kill_9_loses_at_most_the_unflushed_batch_and_never_corrupts(tmp_path, astronaut_bgr):
    ok, data = cv2.imencode(".jpg", cv2.resize(astronaut_bgr, (96, 96)))
    assert ok
    jpeg = data.tobytes()
    jpeg_path = tmp_path / "frame.jpg"
    jpeg_path.write_bytes(jpeg)
    db = tmp_path / "events.db"
    snaps = tmp_path / "snapshots"
    for round_ in range(3):
        prefix = f"r{round_}-"
        confirmed = _kill_mid_write(db, jpeg_path, prefix, at_least=600)
        with sqlite3.connect(db) as reader:
            assert reader.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            rows = reader.execute("SELECT id, snapshot, snapshot_bytes FROM events WHERE id LIKE ?", (prefix + "%",)).fetchall()
        ids = sorted(r[0] for r in rows)
        assert len(ids) >= confirmed
        assert ids == [f"{prefix}{i:07d}" for i in range(len(ids))]  # whole batches, in order, no gaps
        for _, snapshot, size in rows:
            assert (tmp_path / snapshot).read_bytes() == jpeg and size == len(jpeg)

    # The next start sweeps what the kills left half-done and goes on writing.
    with EventLog(db, journal_lines=False) as log:
        log.upsert(Event("after", "person", 0, 0.5, 1.8e9, None, (0, 0, 1, 1)), jpeg)
        assert log.flush()
    with sqlite3.connect(db) as reader:
        assert reader.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        referenced = {s for (s,) in reader.execute("SELECT snapshot FROM events")}
    assert {f"snapshots/{name}" for name in os.listdir(snaps)} == referenced
