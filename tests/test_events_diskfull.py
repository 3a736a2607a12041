"""A full disk under the event log, on a real size-capped file system (a small tmpfs): events are
dropped and counted, one warning per episode, the writer lives on, nothing committed is damaged,
and writing resumes by itself once space is freed."""

from __future__ import annotations

import errno
import json
import logging
import os
import sqlite3
import subprocess
import tempfile
import time
from pathlib import Path

import cv2
import pytest

from runtime.events import Event, EventLog, Retention

pytestmark = pytest.mark.board  # runs on the emulated arm64 root too (deploy/arm64/check.py)


@pytest.fixture
def small_disk():
    """A 3 MiB tmpfs (needs root or CAP_SYS_ADMIN, as on the CI box)."""
    mount_point = Path(tempfile.mkdtemp(prefix="edgewatch-full-"))
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m,mode=0755", "tmpfs", str(mount_point)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        mount_point.rmdir()
        pytest.skip(f"cannot mount a tmpfs here ({result.stderr.strip() or result.returncode}): needs root or CAP_SYS_ADMIN")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)
        mount_point.rmdir()


def _fill(path: Path) -> None:
    """Take every free byte, the way another process filling the disk would."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        size = 64 * 1024
        while size:
            try:
                os.write(fd, bytes(size))
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                size //= 2
    finally:
        os.close(fd)


def _stored(db: Path) -> set[str]:
    with sqlite3.connect(db) as reader:
        return {i for (i,) in reader.execute("SELECT id FROM events")}


def test_full_disk_drops_counts_warns_once_frees_its_oldest_snapshots_and_recovers(small_disk, astronaut_bgr, caplog):
    caplog.set_level(logging.WARNING, logger="runtime.events.writer")
    ok, data = cv2.imencode(".jpg", cv2.resize(astronaut_bgr, (400, 400)))
    assert ok
    jpeg = data.tobytes()
    db = small_disk / "events.db"
    filler = small_disk / "filler"
    log = EventLog(db, retention=Retention(None, None), batch_seconds=0.05, retention_seconds=0.2, journal_lines=False)
    try:
        before = [f"before{i}" for i in range(20)]
        for i, event_id in enumerate(before):
            log.upsert(Event(event_id, "person", 0, 0.8, 1000.0 + i, None, (0, 0, 5, 5)), jpeg)
        assert log.flush()
        assert _stored(db) == set(before)

        _fill(filler)  # another process takes every free byte, and keeps it
        full = 0
        while log.stats["dropped"] == 0 and full < 200:  # until the log cannot write
            for _ in range(25):
                log.upsert(Event(f"full{full}", "person", 0, 0.8, time.time(), None, (0, 0, 5, 5)), jpeg)
                full += 1
            assert log.flush()
        stats = log.stats
        assert stats["dropped"] > 0 and stats["failing"] is not None and "disk full" in stats["failing"], stats
        # The log frees its own oldest snapshots (at most once per retention period) and goes on
        # writing, with the disk still full of somebody else's file.
        deadline = time.monotonic() + 60
        resumed = []
        while log.stats["failing"] is not None and time.monotonic() < deadline:
            time.sleep(0.25)
            resumed.append(f"resumed{len(resumed)}")
            log.upsert(Event(resumed[-1], "person", 0, 0.8, time.time(), None, (0, 0, 5, 5)), jpeg)
            assert log.flush()
        assert log.stats["failing"] is None and filler.exists()
        assert resumed[-1] in _stored(db)
        stats = log.stats
        assert stats["written"] + stats["dropped"] + stats["pending"] == len(before) + full + len(resumed)  # every record accounted for
        warnings = [r.getMessage() for r in caplog.records if "dropping what cannot be written" in r.getMessage()]
        assert len(warnings) == 1, warnings  # once per episode, not once per batch

        with sqlite3.connect(db) as reader:  # nothing committed is damaged; the oldest lost only their pictures
            assert reader.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            rows = dict(reader.execute("SELECT id, snapshot FROM events WHERE id LIKE 'before%'").fetchall())
            freed = reader.execute("SELECT kind, detail FROM system_events WHERE kind = 'retention.disk_full'").fetchall()
        assert set(rows) == set(before)
        emptied = [i for i in before if rows[i] is None]
        assert emptied and emptied == before[:len(emptied)]  # oldest first
        for event_id in emptied:
            assert not (small_disk / "snapshots" / f"{event_id}.jpg").exists()
        for event_id in before[len(emptied):]:
            assert (small_disk / "snapshots" / f"{event_id}.jpg").read_bytes() == jpeg
        assert freed and sum(json.loads(detail)["snapshots"] for _, detail in freed) >= len(emptied)

        filler.unlink()  # space returns
        after = [f"after{i}" for i in range(20)]
        for event_id in after:
            log.upsert(Event(event_id, "person", 0, 0.8, time.time(), None, (0, 0, 5, 5)), jpeg)
        assert log.flush()
        assert log.stats["failing"] is None
        assert set(after) <= _stored(db)
        assert any("writing again" in r.getMessage() for r in caplog.records)
        # Snapshots of batches that never committed are swept (at a retention pass); every row's file is whole.
        def referenced() -> set[str]:
            reader = sqlite3.connect(db)
            try:
                return {s for (s,) in reader.execute("SELECT snapshot FROM events WHERE snapshot IS NOT NULL")}
            finally:
                reader.close()

        def files() -> set[str]:
            return {f"snapshots/{n}" for n in os.listdir(small_disk / "snapshots")}

        deadline = time.monotonic() + 60
        while files() != referenced() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert files() == referenced()
        with sqlite3.connect(db) as reader:
            assert reader.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        for event_id in after:
            assert (small_disk / "snapshots" / f"{event_id}.jpg").read_bytes() == jpeg
    finally:
        log.close()
