"""`edgewatch events` as a user runs it: a real subprocess over a real database, filters, the
three output formats, bad input, a missing database, and --follow picking up another process's writes."""

from __future__ import annotations

import csv
import io
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest

from conftest import WAIT_S
from runtime.events import Event, EventLog

REPO = Path(__file__).resolve().parents[1]
HOUR = 3600.0


def _events(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "runtime.cli", "events", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=WAIT_S, env=env)


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> tuple[Path, float]:
    """Six events an hour apart (newest first: car, person, car, ...), the newest still in view."""
    folder = tmp_path_factory.mktemp("state")
    now = time.time()
    with EventLog(folder / "events.db", journal_lines=False) as log:
        for i in range(6):
            start = now - i * HOUR - 60
            end = None if i == 0 else start + 30
            label = "car" if i % 2 == 0 else "person"
            log.upsert(Event(f"ev{i}", label, i % 2, 0.5 + i / 20, start, end, (i, 2.0, i + 40.0, 80.0)), b"\xff\xd8\xff\xd9")
    return folder / "events.db", now


def test_json_lines_filtered_by_label_and_relative_since(db):
    path, _ = db
    result = _events("--db", str(path), "--json", "--label", "person", "--since", "4h")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["id"] for r in records] == ["ev3", "ev1"]  # oldest first; ev5 began 5 h ago
    first = records[0]
    assert {"id", "label", "score", "start", "end", "snapshot"} <= set(first)
    assert first["label"] == "person" and first["score"] == pytest.approx(0.65)
    assert datetime.fromisoformat(first["end"]) > datetime.fromisoformat(first["start"])
    assert Path(first["snapshot"]).read_bytes() == b"\xff\xd8\xff\xd9"


def test_iso_window_several_labels_and_limit(db):
    path, now = db
    since = datetime.fromtimestamp(now - 3.5 * HOUR).astimezone().isoformat()
    until = datetime.fromtimestamp(now - 0.5 * HOUR).isoformat()  # naive: local time
    result = _events("--db", str(path), "--json", "--since", since, "--until", until, "--label", "car", "--label", "person")
    assert [json.loads(line)["id"] for line in result.stdout.splitlines()] == ["ev3", "ev2", "ev1"]
    latest = _events("--db", str(path), "--json", "--limit", "2")
    records = [json.loads(line) for line in latest.stdout.splitlines()]
    assert [r["id"] for r in records] == ["ev1", "ev0"]
    assert records[1]["end"] is None  # still in view


def test_csv_has_a_header_and_one_row_per_event(db):
    path, _ = db
    result = _events("--state-dir", str(path.parent), "--csv", "--label", "car")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["id"] for r in rows] == ["ev4", "ev2", "ev0"]
    assert {"id", "label", "score", "start", "end", "x1", "y1", "x2", "y2", "snapshot"} <= set(rows[0])
    assert (float(rows[0]["x1"]), float(rows[0]["x2"])) == (4.0, 44.0)
    assert rows[2]["end"] == ""


def test_table_is_the_default_and_reads_the_state_folder_from_the_environment(db):
    path, _ = db
    env = {**os.environ, "STATE_DIRECTORY": str(path.parent)}
    result = _events(env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:4] == ["START", "END", "LABEL", "SCORE"]
    assert len(lines) == 7 and "in view" in lines[-1]


@pytest.mark.parametrize("flag, value", [("--since", "yesterday-ish"), ("--until", "10 parsecs"), ("--limit", "-3")])
def test_bad_values_are_one_line_errors_naming_them(db, flag, value):
    result = _events("--db", str(db[0]), flag, value)
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1
    assert flag in result.stderr and value in result.stderr


def test_a_missing_database_says_where_it_looked(tmp_path):
    result = _events("--db", str(tmp_path / "nope.db"))
    assert result.returncode == 2
    assert str(tmp_path / "nope.db") in result.stderr and "no event log" in result.stderr
    assert not (tmp_path / "nope.db").exists()  # reading never creates one
    env = {k: v for k, v in os.environ.items() if k not in ("STATE_DIRECTORY", "XDG_STATE_HOME")}
    env["HOME"] = str(tmp_path)
    result = _events(env=env)
    assert result.returncode == 2
    assert str(tmp_path / ".local/state/edgewatch/events.db") in result.stderr and "default state folder" in result.stderr


def _reader(stream) -> queue.Queue:
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in stream], daemon=True).start()
    return lines


def test_follow_prints_new_and_updated_events_written_by_another_process(tmp_path):
    path = tmp_path / "events.db"
    now = time.time()
    log = EventLog(path, batch_seconds=0.1, journal_lines=False)
    try:
        log.upsert(Event("walker", "person", 0, 0.6, now, None, (0, 0, 9, 9)))
        assert log.flush()
        # Ctrl-C as at a terminal: a runner started in the background (`cmd &`) hands its children
        # SIGINT ignored, and Python then never raises KeyboardInterrupt.
        follower = subprocess.Popen([sys.executable, "-m", "runtime.cli", "events", "--db", str(path), "--follow", "--json",
                                     "--label", "person"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                    preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        lines = _reader(follower.stdout)
        try:
            assert json.loads(lines.get(timeout=WAIT_S))["id"] == "walker"  # the listing so far
            log.upsert(Event("car", "car", 2, 0.9, now + 1, None, (0, 0, 9, 9)))  # filtered out
            log.upsert(Event("runner", "person", 0, 0.8, now + 2, None, (0, 0, 9, 9)))
            assert log.flush()
            assert json.loads(lines.get(timeout=WAIT_S))["id"] == "runner"
            log.upsert(Event("walker", "person", 0, 0.7, now, now + 5, (0, 0, 9, 9)))  # walker leaves
            assert log.flush()
            update = json.loads(lines.get(timeout=WAIT_S))
            assert (update["id"], update["score"]) == ("walker", 0.7) and update["end"] is not None
            follower.send_signal(signal.SIGINT)
            assert follower.wait(timeout=WAIT_S) == 0
            assert lines.empty()
        finally:
            if follower.poll() is None:
                follower.kill()
            follower.wait()
            follower.stderr.close()
    finally:
        log.close()
