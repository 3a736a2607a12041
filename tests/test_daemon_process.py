"""The daemon as systemd runs it: a real child process `python -m runtime.cli run`, sd_notify on a
real AF_UNIX datagram socket, SIGTERM and SIGHUP, a camera that disappears and comes back.

The camera is a short real clip (vtest.avi's first frames) played at its own rate and looped;
the model is BlazeFace (few detections on this footage; these tests are about the service).
"""

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import pytest

from runtime.cli import main

from conftest import WAIT_S

REPO = Path(__file__).resolve().parents[1]
STOP_TIMEOUT_S = 20.0  # the unit's TimeoutStopSec=: what a stop must stay within, on any machine


@pytest.fixture(scope="module")
def clip(tmp_path_factory, vtest_avi):
    """vtest.avi's first 30 frames at half size, MJPG, at vtest's own 10 fps."""
    path = tmp_path_factory.mktemp("clip") / "clip.avi"
    cap = cv2.VideoCapture(str(vtest_avi))
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (384, 288))
    for _ in range(30):
        ok, frame = cap.read()
        assert ok
        out.write(cv2.resize(frame, (384, 288), interpolation=cv2.INTER_AREA))
    out.release()
    return path


class Daemon:
    def __init__(self, tmp_path, config_text, *, watchdog_usec=None, args=(), state=None, env=None):
        self.dir = tmp_path
        self.state = state or tmp_path / "state"
        self.config = tmp_path / "config.toml"
        self.config.write_text(config_text)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(tmp_path / "notify.sock"))
        self.sock.settimeout(0.2)
        self.messages: list[str] = []
        self._seen = 0
        self._idle = 0  # reads that found the socket empty for a whole timeout
        self._closed = False
        # Drained all along, as systemd does: an unread datagram queue fills in seconds.
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()
        extra_env = env
        env = {k: v for k, v in os.environ.items() if k not in ("STATE_DIRECTORY", "CONFIGURATION_DIRECTORY", "RUNTIME_DIRECTORY")}
        env["NOTIFY_SOCKET"] = str(tmp_path / "notify.sock")
        env["PYTHONPATH"] = str(REPO)
        if watchdog_usec:
            env["WATCHDOG_USEC"] = str(watchdog_usec)
        env.update(extra_env or {})
        self.stderr = open(tmp_path / "stderr.txt", "w+")
        self.proc = subprocess.Popen(
            [sys.executable, "-X", "faulthandler", "-m", "runtime.cli", "run", "--config", str(self.config), "--state-dir", str(self.state), *args],
            cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=self.stderr)

    def _drain(self):
        while not self._closed:
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except socket.timeout:
                self._idle += 1
            except OSError:
                continue

    def receive(self, until, timeout=WAIT_S):
        """Wait for a notify message not seen by an earlier call for which `until` is true. Once the
        daemon has exited, what it sent is still read: until a read after the exit finds nothing more."""
        deadline = time.monotonic() + timeout
        idle_at_exit = None
        while time.monotonic() < deadline:
            while self._seen < len(self.messages):
                msg = self.messages[self._seen]
                self._seen += 1
                if until(msg):
                    return msg
            if idle_at_exit is None and self.proc.poll() is not None:
                idle_at_exit = self._idle
            elif idle_at_exit is not None and self._idle > idle_at_exit and self._seen == len(self.messages):
                raise AssertionError(f"daemon exited {self.proc.returncode}: {self.log()}")
            time.sleep(0.05)
        raise AssertionError(f"no such notify message in {timeout} s; got {self.messages[-5:]}; {self.log()}")

    def status(self):
        return json.loads((self.state / "status.json").read_text())

    def wait_status(self, cond, timeout=WAIT_S):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                s = self.status()
                if cond(s):
                    return s
            except (FileNotFoundError, json.JSONDecodeError):
                pass
            assert self.proc.poll() is None, f"daemon exited {self.proc.returncode}: {self.log()}"
            time.sleep(0.1)
        raise AssertionError(f"status never matched; last: {self.status()}; {self.log()}")

    def log(self):
        self.stderr.flush()
        return (self.dir / "stderr.txt").read_text()[-3000:]

    def terminate(self):
        """SIGTERM; the exit code and how long the stop took (systemd waits TimeoutStopSec=20 s)."""
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(STOP_TIMEOUT_S)
        return code, time.monotonic() - t0

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._closed = True
        self._reader.join(1)
        self.sock.close()
        (self.dir / "notify.sock").unlink(missing_ok=True)  # a restart in the same folder binds it again
        self.stderr.close()


def config_text(source, model, extra=""):
    return (f'[camera]\nsource = "{source}"\nloop = true\nread_timeout_s = 1.0\nreconnect_min_s = 0.2\n'
            f'reconnect_max_s = 0.5\n[model]\npath = "{model}"\nthreads = 1\n[events]\nbatch_seconds = 0.5\n{extra}')


def test_sd_notify_ready_watchdog_status_and_sigterm(tmp_path, clip, blazeface_bundle):
    d = Daemon(tmp_path, config_text(clip, blazeface_bundle), watchdog_usec=1_000_000)
    try:
        ready = d.receive(lambda m: "READY=1" in m)
        assert "STATUS=" in ready
        s = d.status()
        assert s["frames"]["inferred"] >= 1  # READY only after a successful inference
        d.receive(lambda m: m == "WATCHDOG=1")
        d.receive(lambda m: m == "WATCHDOG=1")  # repeatedly, at a fraction of WATCHDOG_USEC
        line = d.receive(lambda m: m.startswith("STATUS=running"))
        assert " fps, " in line and "camera streaming" in line
        # fps needs two inferences within its window: on a loaded (or emulated) machine, a moment later
        s = d.wait_status(lambda s: s["state"] == "running" and s["fps"] > 0)
        assert s["healthy"] and s["pid"] == d.proc.pid
        assert s["model"]["name"] == "blazeface-short-range" and len(s["model"]["sha256"]) == 64
        assert s["source"]["state"] == "streaming"
        # healthy and fresh when `status` reads it too (a loaded machine may stall a status between)
        d.wait_status(lambda s: main(["status", "--state-dir", str(d.state)]) == 0)

        code, took = d.terminate()
        assert code == 0 and took < STOP_TIMEOUT_S, d.log()
        d.receive(lambda m: m == "STOPPING=1")
        assert d.status()["state"] == "stopping" and not d.status()["healthy"]
        assert main(["status", "--state-dir", str(d.state)]) == 1
        db = sqlite3.connect(d.state / "events.db")
        kinds = [k for (k,) in db.execute("SELECT kind FROM system_events ORDER BY id")]
        assert kinds[0] == "started"
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute('SELECT COUNT(*) FROM events WHERE "end" IS NULL').fetchone()[0] == 0  # all ended, flushed
    finally:
        d.close()


def test_sighup_reload_good_then_bad_keeps_serving(tmp_path, clip, blazeface_bundle):
    d = Daemon(tmp_path, config_text(clip, blazeface_bundle))
    try:
        d.receive(lambda m: "READY=1" in m)
        # A good reload: another bundle (same model file, another name) and a new filter.
        other = tmp_path / "other"
        shutil.copytree(blazeface_bundle, other)
        manifest = json.loads((other / "model.json").read_text())
        manifest["name"] = "blazeface-renamed"
        (other / "model.json").write_text(json.dumps(manifest))
        d.config.write_text(config_text(clip, other, "[detect]\nmin_score = 0.6\n"))
        d.proc.send_signal(signal.SIGHUP)
        d.wait_status(lambda s: s["model"]["name"] == "blazeface-renamed" and s["last_error"] is None)

        # A bad model: truncated. The old one keeps running, the failure is logged and shown.
        broken = tmp_path / "broken"
        shutil.copytree(blazeface_bundle, broken)
        (broken / "model.tflite").write_bytes((broken / "model.tflite").read_bytes()[:20000])
        d.config.write_text(config_text(clip, broken))
        d.proc.send_signal(signal.SIGHUP)
        s = d.wait_status(lambda s: s["last_error"] and "reload failed" in s["last_error"])
        assert "truncated or corrupt" in s["last_error"] and s["model"]["name"] == "blazeface-renamed"
        n = s["frames"]["inferred"]
        d.wait_status(lambda s: s["frames"]["inferred"] > n + 5 and s["healthy"])  # still serving

        # A bad config: refused the same way.
        d.config.write_text("[camera]\nfps = 0\n")
        d.proc.send_signal(signal.SIGHUP)
        s = d.wait_status(lambda s: s["last_error"] and "camera.fps: must be > 0" in s["last_error"])
        assert s["model"]["name"] == "blazeface-renamed"
        assert "reload failed" in d.log()

        code, took = d.terminate()
        assert code == 0 and took < STOP_TIMEOUT_S
        db = sqlite3.connect(d.state / "events.db")
        # (a loaded machine may add a camera loss and recovery in between: not what is tested here)
        kinds = [k for (k,) in db.execute("SELECT kind FROM system_events ORDER BY id") if not k.startswith("source_")]
        assert kinds == ["started", "reload", "reload_failed", "reload_failed"], kinds
    finally:
        d.close()


def test_sighup_with_new_budgets_and_a_new_bundle_reloads_the_monitor_it_has(tmp_path, clip, blazeface_bundle, person_bundle):
    """The monitor is reloaded, not rebuilt: it carries on (its tick count goes on rising), takes
    the new budgets, and its ladder is the new bundle's, read after the new model serves."""
    budget = '[budget]\npower_w = {}\npower_scope = "process"\nboard = "pi-4b"\n'
    d = Daemon(tmp_path, config_text(clip, blazeface_bundle, budget.format(50)))
    try:
        s = d.wait_status(lambda s: s["budget"].get("ticks", 0) >= 2)
        assert s["budget"]["controller"]["ladder"] == ["default/1t"]
        ticks = s["budget"]["ticks"]
        d.config.write_text(config_text(clip, person_bundle, budget.format(40)))
        d.proc.send_signal(signal.SIGHUP)
        s = d.wait_status(lambda s: s["model"]["name"] == "person-ssdlite" and s["budget"]["budgets"]["power_w"] == 40)
        ladder = s["budget"]["controller"]["ladder"]
        # topped by the most accurate variant; the smaller inputs (fidelity < min_fidelity 0.9) are no steps
        assert ladder[0] == "float32/1t" and {lv.split("/")[0] for lv in ladder} <= {"float32", "int8", "int8-postprocess"}, ladder
        assert s["budget"]["knobs"]["variant"] == "float32" and s["budget"]["ticks"] >= ticks
        code, _ = d.terminate()
        assert code == 0
        db = sqlite3.connect(d.state / "events.db")
        rows = db.execute("SELECT kind, detail FROM system_events WHERE kind LIKE '%reload%' ORDER BY id").fetchall()
        assert [k for k, _ in rows] == ["budget.reload", "reload"], rows
        assert json.loads(rows[0][1])["ladder"][0] == "float32/1t"  # the new bundle's, not the old one's
    finally:
        d.close()


def test_camera_lost_then_recovered_daemon_stays_up(tmp_path, clip, blazeface_bundle):
    cam = tmp_path / "cam.avi"
    shutil.copy(clip, cam)
    # The loss is the file gone at the end of a loop; no read timeout a loaded machine could trip.
    d = Daemon(tmp_path, config_text(cam, blazeface_bundle).replace("read_timeout_s = 1.0", "read_timeout_s = 60.0"))
    try:
        d.wait_status(lambda s: s["state"] == "running")
        cam.rename(tmp_path / "away.avi")  # the camera dies mid-stream (at the end of this loop)
        s = d.wait_status(lambda s: s["source"]["state"] == "lost")
        assert s["state"] == "degraded" and not s["healthy"] and "no such file" in s["last_error"]
        assert main(["status", "--state-dir", str(d.state)]) == 1
        (tmp_path / "away.avi").rename(cam)
        s = d.wait_status(lambda s: s["state"] == "running" and s["source"]["losses"] == 1)
        assert s["healthy"] and s["last_error"] is None
        code, _ = d.terminate()
        assert code == 0
        db = sqlite3.connect(d.state / "events.db")
        kinds = [k for (k,) in db.execute("SELECT kind FROM system_events ORDER BY id")]
        assert kinds == ["started", "source_lost", "source_recovered"], kinds
        assert "camera lost" in d.log() and "camera recovered" in d.log()
    finally:
        d.close()


def test_duration_and_a_file_that_ends(tmp_path, clip, blazeface_bundle):
    """--duration stops cleanly; a file that does not loop stops the daemon at its end, exit 0."""
    text = config_text(clip, blazeface_bundle).replace("loop = true", "loop = false")
    d = Daemon(tmp_path, text, args=["--as-fast-as-possible", "--duration", "60"])
    try:
        assert d.proc.wait(WAIT_S) == 0, d.log()  # start-up, the clip, the stop: a loaded machine's time
        assert "the source ended: stopping" in d.log()
        s = d.status()
        assert s["frames"]["captured"] == 30
    finally:
        d.close()
    (tmp_path / "timed").mkdir()
    d = Daemon(tmp_path / "timed", config_text(clip, blazeface_bundle), args=["--duration", "2"])
    try:
        t0 = time.monotonic()
        assert d.proc.wait(WAIT_S) == 0, d.log()
        assert "--duration 2.0 s reached" in d.log() and time.monotonic() - t0 >= 2.0
    finally:
        d.close()


def test_bad_config_at_start_is_a_one_line_error(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("[camera]\nfps = 0\n")
    r = subprocess.run([sys.executable, "-X", "faulthandler", "-m", "runtime.cli", "run", "--config", str(path), "--state-dir", str(tmp_path / "s")],
                       capture_output=True, text=True, cwd=REPO, timeout=WAIT_S)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1] == f"edgewatch run: error: {path}: camera.fps: must be > 0, got 0"


def test_watchdog_is_fed_only_while_the_pipeline_beats():
    from runtime.service.notify import Notifier, WatchdogFeeder

    feeder = WatchdogFeeder(2.0)
    assert feeder.due(10.0, heartbeat=9.9)
    assert not feeder.due(10.2, heartbeat=10.1)  # too soon after the last ping
    assert feeder.due(10.6, heartbeat=10.5)
    assert not feeder.due(11.8, heartbeat=10.5)  # heartbeat 1.3 s old: the pipeline is stuck
    assert not feeder.due(20.0, heartbeat=10.5)
    assert feeder.due(20.1, heartbeat=20.0)  # it beats again
    # WATCHDOG_PID naming another process: the watchdog is not ours.
    assert Notifier({"WATCHDOG_USEC": "3000000", "WATCHDOG_PID": "1"}).watchdog_s is None
    assert Notifier({"WATCHDOG_USEC": "3000000"}).watchdog_s == 3.0


@pytest.fixture
def small_fs(tmp_path):
    """A 2 MB tmpfs: a disk that really fills up (needs root, as CI runs)."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_full_disk_detection_goes_on_and_writing_resumes(tmp_path, small_fs, clip, blazeface_bundle):
    d = Daemon(tmp_path, config_text(clip, blazeface_bundle), args=["--state-dir", str(small_fs)])
    d.state = small_fs
    try:
        d.wait_status(lambda s: s["state"] == "running")
        filler = small_fs / "filler"
        said = lambda: any(m in (tmp_path / "stderr.txt").read_text() for m in ("cannot write", "disk full", "snapshots wait"))  # noqa: E731
        deadline = time.monotonic() + WAIT_S
        with open(filler, "wb", buffering=0) as f:
            # Filled to the last byte, and topped up until the daemon says so in its log: each
            # status rewrite (temp file, then rename) frees the old file's page for a moment.
            while True:
                for block in (65536, 512, 1):
                    try:
                        while f.write(b"\0" * block):
                            pass
                    except OSError:
                        pass
                if said():
                    break
                assert time.monotonic() < deadline, f"the daemon never said the disk was full: {d.log()}"
                time.sleep(0.1)
        frozen = d.status()
        # the daemon runs on, whatever the disk: STATUS= keeps counting
        inferred = lambda m: int(m.split(", ")[1].split()[0]) if m.startswith("STATUS=") and " inferred" in m else -1  # noqa: E731
        d.receive(lambda m: inferred(m) > frozen["frames"]["inferred"])
        counts = [inferred(m) for m in d.messages if inferred(m) >= 0]
        assert d.proc.poll() is None
        filler.unlink()  # space returns
        s = d.wait_status(lambda s: s["updated"] > frozen["updated"] + 3)
        assert s["frames"]["inferred"] > counts[-1] - 1
        code, _ = d.terminate()
        assert code == 0, d.log()
    finally:
        d.close()


def test_embedded_default_person_model_on_vtest(tmp_path, person_bundle):
    """The README's main command: no config, no camera: the bundled person model on the bundled
    video, events in the per-user state folder, where `edgewatch events` and `status` look."""
    for system in (Path("/etc/edgewatch/config.toml"), Path("/var/lib/edgewatch")):
        if system.exists():
            pytest.skip(f"this machine has {system} (an installed service), which `edgewatch run` would use")
    env = {k: v for k, v in os.environ.items() if k not in ("STATE_DIRECTORY", "CONFIGURATION_DIRECTORY", "NOTIFY_SOCKET", "RUNTIME_DIRECTORY")}
    env.update(XDG_STATE_HOME=str(tmp_path / "xdg"), PYTHONPATH=str(REPO))
    state = tmp_path / "xdg" / "edgewatch"
    with open(tmp_path / "stderr.txt", "w+") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "runtime.cli", "run"], env=env, cwd=tmp_path,
                                stdout=subprocess.DEVNULL, stderr=stderr)
        try:
            deadline = time.monotonic() + WAIT_S
            status = {}
            while not (status.get("frames", {}).get("inferred", 0) >= 5 and status.get("events", {}).get("written", 0) >= 2):
                assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "stderr.txt").read_text()[-2000:]
                time.sleep(0.2)
                try:
                    status = json.loads((state / "status.json").read_text())
                except (FileNotFoundError, json.JSONDecodeError):
                    pass
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(STOP_TIMEOUT_S) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
        stderr.seek(0)
        log = stderr.read()
    assert status["model"]["name"] == "person-ssdlite" and status["source"]["name"] == "vtest"
    db = sqlite3.connect(state / "events.db")
    labels = {label for (label,) in db.execute("SELECT label FROM events")}
    assert labels == {"person"}  # vtest.avi is people walking
    journal = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert journal and all(j["label"] == "person" for j in journal)
    snaps = [s for (s,) in db.execute("SELECT snapshot FROM events WHERE snapshot IS NOT NULL")]
    assert snaps and cv2.imread(str(state / snaps[0])).shape == (576, 768, 3)
