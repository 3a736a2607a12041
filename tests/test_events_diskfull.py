"""A full disk under the event log, on a real size-capped file system (a small tmpfs): events are
dropped and counted, one warning per episode, the writer lives on, nothing committed is damaged,
and writing resumes by itself once space is freed."""

from __future__ import annotations

import errno
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


def test_full_disk_drops_counts_warns_once_and_recovers(small_disk, astronaut_bgr, caplog):
    caplog.set_level(logging.WARNING, logger="runtime.events.writer")
    ok, data = cv2.imencode(".jpg", cv2.resize(astronaut_bgr, (200, 200)))
    assert ok
    jpeg = data.tobytes()
    db = small_disk / "events.db"
    filler = small_disk / "filler"
    log = EventLog(db, retention=Retention(None, None), batch_seconds=0.05, retention_seconds=0.2, journal_lines=False)
    try:
        before = [f"before{i}" for i in range(20)]
        for event_id in before:
            log.upsert(Event(event_id, "person", 0, 0.8, time.time(), None, (0, 0, 5, 5)), jpeg)
        assert log.flush()
        assert _stored(db) == set(before)

        _fill(filler)
        full = 0
        while log.stats["dropped"] == 0 and full < 200:  # until the database itself cannot grow
            for _ in range(25):
                log.upsert(Event(f"full{full}", "person", 0, 0.8, time.time(), None, (0, 0, 5, 5)), jpeg)
                full += 1
            assert log.flush()
        for _ in range(3):  # three more batches, each failing
            log.upsert(Event(f"full{full}", "person", 0, 0.8, time.time(), None, (0, 0, 5, 5)), jpeg)
            full += 1
            assert log.flush()
        stats = log.stats
        assert stats["dropped"] > 3 and stats["snapshots_dropped"] > 3, stats
        assert stats["failing"] is not None and "disk full" in stats["failing"]
        assert stats["written"] + stats["dropped"] == len(before) + full  # every record accounted for
        warnings = [r.getMessage() for r in caplog.records if "disk full" in r.getMessage()]
        assert len(warnings) == 1, warnings  # once per episode, not once per batch

        with sqlite3.connect(db) as reader:  # what was written before is intact and readable
            assert reader.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert set(before) <= _stored(db)
        for event_id in before:
            assert (small_disk / "snapshots" / f"{event_id}.jpg").read_bytes() == jpeg

        filler.unlink()  # space returns
        after = [f"after{i}" for i in range(20)]
        for event_id in after:
            log.upsert(Event(event_id, "person", 0, 0.8, time.time(), None, (0, 0, 5, 5)), jpeg)
        assert log.flush()
        assert log.stats["failing"] is None
        assert set(after) <= _stored(db)
        assert any("writing again" in r.getMessage() for r in caplog.records)
        # Snapshots of batches that never committed are swept; every row's file is whole.
        time.sleep(0.5)
        assert log.flush()
        with sqlite3.connect(db) as reader:
            assert reader.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            referenced = {s for (s,) in reader.execute("SELECT snapshot FROM events WHERE snapshot IS NOT NULL")}
        assert {f"snapshots/{n}" for n in os.listdir(small_disk / "snapshots")} == referenced
        for event_id in after:
            assert (small_disk / "snapshots" / f"{event_id}.jpg").read_bytes() == jpeg
    finally:
        log.close()
