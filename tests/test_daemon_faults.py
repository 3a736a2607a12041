"""Faults on a real running daemon, each done for real: a SIGKILL with events open, a second
daemon on the same folder, a model changed after conversion, values no daemon could run with,
and a state folder on a real file system filled to the last byte."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from conftest import WAIT_S
from runtime.cli import main
from test_daemon_process import REPO, Daemon, clip, config_text  # noqa: F401 - clip is a fixture
from test_events_diskfull import _fill, small_disk  # noqa: F401 - small_disk is a fixture


def edgewatch(*args, cwd=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "runtime.cli", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


def wait_for(cond, d, timeout=WAIT_S):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"condition not met in {timeout} s; {d.log()}"
        assert d.proc.poll() is None, f"daemon exited {d.proc.returncode}: {d.log()}"
        time.sleep(0.1)


def open_rows(db) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute('SELECT id FROM events WHERE "end" IS NULL').fetchall()


def test_events_left_open_by_a_sigkill_are_closed_at_restart_and_flagged(tmp_path, clip, person_bundle):
    d = Daemon(tmp_path, config_text(clip, person_bundle))
    db = d.state / "events.db"
    try:
        while True:
            wait_for(lambda: db.exists() and open_rows(db), d)
            d.proc.send_signal(signal.SIGSTOP)  # frozen: what the database holds now is what the kill leaves
            left_open = {i for (i,) in open_rows(db)}
            if left_open:
                break
            d.proc.send_signal(signal.SIGCONT)  # they ended in between: again
        d.proc.kill()
        d.proc.wait()
    finally:
        d.close()

    again = Daemon(tmp_path, config_text(clip, person_bundle), state=d.state)
    try:
        again.wait_status(lambda s: s["pid"] == again.proc.pid and s["state"] == "running")
        code, _ = again.terminate()
        assert code == 0
    finally:
        again.close()
    assert open_rows(db) == []
    with sqlite3.connect(db) as conn:
        rows = {i: (start, end, recovered) for i, start, end, recovered in
                conn.execute('SELECT id, start, "end", recovered FROM events')}
        note = conn.execute("SELECT message, detail FROM system_events WHERE kind = 'recovered'").fetchall()
    for event_id in left_open:
        start, end, recovered = rows[event_id]
        assert recovered == 1 and end >= start
    assert sum(r for _, _, r in rows.values()) == len(left_open)  # only those: a clean stop flags nothing
    assert len(note) == 1 and json.loads(note[0][1])["events"] == len(left_open)
    listed = [json.loads(line) for line in edgewatch("events", "--json", "--state-dir", str(d.state)).stdout.splitlines()]
    assert {e["id"] for e in listed if e["recovered"]} == left_open


def test_a_second_daemon_on_the_same_folder_exits_2_naming_the_holder(tmp_path, clip, blazeface_bundle):
    d = Daemon(tmp_path, config_text(clip, blazeface_bundle))
    try:
        d.wait_status(lambda s: s["state"] == "running")
        second = edgewatch("run", "--config", str(d.config), "--state-dir", str(d.state))
        assert second.returncode == 2
        assert second.stderr.strip().splitlines()[-1] == (
            f"edgewatch run: error: {d.state}: another edgewatch daemon (pid {d.proc.pid}) runs on this state folder; "
            "stop it, or give this one another --state-dir")
        assert d.status()["pid"] == d.proc.pid  # the first one's status, untouched
        code, _ = d.terminate()
        assert code == 0
    finally:
        d.close()


def test_a_model_changed_after_conversion_is_refused_everywhere(tmp_path, clip, blazeface_bundle):
    changed = tmp_path / "changed"
    shutil.copytree(blazeface_bundle, changed)
    manifest = json.loads((changed / "model.json").read_text())
    from runtime.bundle import sha256_file

    # what the converter records: each variant's file and its digest
    manifest["variants"] = [{"name": "float32", "file": "model.tflite", "sha256": sha256_file(blazeface_bundle / "model.tflite")}]
    (blazeface_bundle / "model.json").write_text(json.dumps(manifest))
    (changed / "model.json").write_text(json.dumps(manifest))
    data = bytearray((changed / "model.tflite").read_bytes())
    data[-100] ^= 0xFF  # a weight's byte: the file still loads and runs
    (changed / "model.tflite").write_bytes(bytes(data))

    photo = tmp_path / "face.png"
    import cv2
    from skimage import data as skdata

    cv2.imwrite(str(photo), cv2.cvtColor(skdata.astronaut(), cv2.COLOR_RGB2BGR))
    r = edgewatch("detect", str(changed), str(photo))
    assert r.returncode == 2 and r.stderr.strip().splitlines()[-1].startswith(f"edgewatch detect: error: {changed / 'model.tflite'}: sha256 ")
    assert "the file changed after conversion" in r.stderr
    assert edgewatch("detect", str(blazeface_bundle), str(photo)).returncode == 0

    r = edgewatch("activate", "--stage-only", "--state-dir", str(tmp_path / "board"), str(changed))
    assert r.returncode == 2 and "the file changed after conversion" in r.stderr

    d = Daemon(tmp_path, config_text(clip, blazeface_bundle))
    try:
        d.wait_status(lambda s: s["state"] == "running")
        d.config.write_text(config_text(clip, changed))
        d.proc.send_signal(signal.SIGHUP)
        s = d.wait_status(lambda s: s["last_error"] and "reload failed" in s["last_error"])
        assert "the file changed after conversion" in s["last_error"] and s["model"]["path"] == str(blazeface_bundle)
        code, _ = d.terminate()
        assert code == 0
    finally:
        d.close()
    r = edgewatch("run", "--config", str(d.config), "--state-dir", str(tmp_path / "other"))
    assert r.returncode == 2 and "the file changed after conversion" in r.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("section, text, message", [
    ("model", "threads = 100000", "model.threads: must be <= 64, got 100000"),
    ("camera", "width = 100000\nheight = 100000", "camera.width: must be <= 8192, got 100000"),
    ("camera", "fps = nan", "camera.fps: must be"),
    ("events", "max_mb = inf", "events.max_mb: must be"),
])
def test_values_no_daemon_could_run_with_are_refused_by_check_and_run(tmp_path, blazeface_bundle, section, text, message):
    config = tmp_path / "config.toml"
    config.write_text(f'[model]\npath = "{blazeface_bundle}"\n' + (f"[{section}]\n{text}\n" if section != "model" else f"{text}\n"))
    for args in (["config", "check"], ["run", "--state-dir", str(tmp_path / "state")]):
        r = edgewatch(*args, "--config", str(config))
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and message in lines[-1] and str(config) in lines[-1], (args, r.stderr)
    assert not (tmp_path / "state").exists()  # refused before anything was written


def test_a_full_disk_keeps_the_status_current_and_healthy_and_recovers_by_itself(tmp_path, small_disk, clip, person_bundle):
    run = tmp_path / "run"  # the service's runtime folder (a tmpfs under systemd)
    run.mkdir()
    state = small_disk / "state"
    d = Daemon(tmp_path, config_text(clip, person_bundle), state=state, env={"RUNTIME_DIRECTORY": str(run)})
    try:
        d.wait_status(lambda s: s["state"] == "running" and s["events"]["written"] >= 1)
        assert (state / "status.json").is_symlink() and (run / "status.json").is_file()
        # Snapshots of its own to free: the rows alone of so young a log free too little.
        wait_for(lambda: len(list((state / "snapshots").glob("*.jpg"))) >= 4, d)
        _fill(small_disk / "filler")
        # Said, not fatal: full (a batch failed) or low (snapshots wait so that rows still fit), in a
        # status that says running too (on a loaded machine, a stall may make one say degraded).
        s = d.wait_status(lambda s: s["storage"] != "ok" and s["healthy"] and s["state"] == "running")
        assert s["storage"].startswith(("disk full", "low disk space"))
        updated = s["updated"]
        d.wait_status(lambda s: s["updated"] > updated + 2)  # still current
        said = []

        def status_says_running():  # healthy and fresh when it reads the file, however loaded the machine
            said.append(edgewatch("status", "--state-dir", str(state)))
            return said[-1].returncode == 0 and "state:   running" in said[-1].stdout

        wait_for(status_says_running, d)
        r = said[-1]
        if "disk" in r.stdout:  # (unless space was won back already)
            assert "running, disk full" in r.stdout or "running, low disk space" in r.stdout, r.stdout
        # The log frees its own oldest snapshots (and rows, if it must) and its WAL, and goes on
        # writing events with somebody else's file still filling the disk; nobody steps in.
        s = d.wait_status(lambda s: not s["storage"].startswith("disk full"))
        written = s["events"]["written"]
        s = d.wait_status(lambda s: s["events"]["written"] > written + 5)
        assert s["storage"] == "ok" or s["storage"].startswith("low disk space")
        assert (small_disk / "filler").exists()
        code, _ = d.terminate()
        assert code == 0
    finally:
        d.close()
    with sqlite3.connect(state / "events.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        kinds = {k for (k,) in conn.execute("SELECT kind FROM system_events")}
    assert "retention.disk_full" in kinds


def test_state_folder_and_files_are_the_services_and_its_groups_only(tmp_path, clip, blazeface_bundle):
    old = os.umask(0o022)  # a user's usual umask: the daemon must not make its state world-readable
    try:
        d = Daemon(tmp_path, config_text(clip, blazeface_bundle))
    finally:
        os.umask(old)
    try:
        d.wait_status(lambda s: s["events"]["written"] >= 1)
        code, _ = d.terminate()
        assert code == 0
    finally:
        d.close()
    assert d.state.stat().st_mode & 0o777 == 0o750
    for path in [d.state / "events.db", d.state / "status.json", *(d.state / "snapshots").glob("*.jpg")]:
        assert path.stat().st_mode & 0o777 == 0o640, path


def test_status_exit_code_says_health_even_when_the_reader_closes_early(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    (state / "status.json").write_text(json.dumps({"state": "degraded", "healthy": False, "updated": time.time(), "pid": 1}))
    r = subprocess.run(f"{sys.executable} -m runtime.cli status --state-dir {state} | head -c1 > /dev/null; exit ${{PIPESTATUS[0]}}",
                       shell=True, executable="/bin/bash", env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert main(["status", "--state-dir", str(state)]) == 1


@pytest.mark.parametrize("args, message", [
    (["run", "--duration", "nan"], "argument --duration: must be a finite number, got 'nan'"),
    (["run", "--duration", "0"], "argument --duration: must be > 0, got 0"),
    (["bench", "--frames", "0"], "argument --frames: must be >= 1, got 0"),
    (["bench", "--warmup", "-1"], "argument --warmup: must be >= 0, got -1"),
    (["bench", "--threads", "2,100000"], "argument --threads: must be <= 64, got 100000"),
    (["detect", "m", "x", "--every", "0"], "argument --every: must be >= 1, got 0"),
])
def test_numbers_on_the_command_line_are_bounded_with_one_line(args, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == f"edgewatch {args[0]}: error: {message} (see --help)"
