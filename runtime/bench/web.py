"""`edgewatch bench --web`: what the local page costs the pipeline, in one run.

A real daemon process (`edgewatch run`: the bundled person model on the bundled video, decoded as
fast as possible, so the pipeline uses every core and anything else it pays for shows in its
rate) is measured in alternating phases:
  none    nobody on the page;
  loaded  `--viewers` live viewers (MJPEG streams read as fast as they come) and a /metrics
          scrape every second, from a separate process (as browsers and Prometheus would be).
Phases alternate (none, loaded, loaded, none, ...) so that load from elsewhere falls on both
alike. The pipeline rate of a phase is inferences between two status.json snapshots divided by
the time between them. Target: loaded/none >= 0.95. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import psutil

from .. import exitcodes, paths, status_file
from ..errors import CommandError

DEFAULT_SECONDS = 15.0
DEFAULT_ROUNDS = 3
BOUNDARY = b"--edgewatch-frame"


def _viewer(port: int, stop: threading.Event, counts: list[int], i: int) -> None:
    """One live viewer: reads the MJPEG stream as fast as it comes, counting pictures."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"GET /api/live.mjpg HTTP/1.0\r\nHost: localhost\r\n\r\n")
            tail = b""
            while not stop.is_set():
                data = s.recv(1 << 16)
                if not data:
                    return
                counts[i] += (tail + data).count(BOUNDARY)
                tail = data[-len(BOUNDARY):]
    except OSError:
        return


def _clients(url: str, port: int, viewers: int, stop, result) -> None:
    """In its own process: `viewers` live viewers and one /metrics scrape a second until `stop`."""
    halt = threading.Event()
    counts = [0] * viewers
    threads = [threading.Thread(target=_viewer, args=(port, halt, counts, i), daemon=True) for i in range(viewers)]
    for t in threads:
        t.start()
    scrapes = failed = 0
    t0 = time.monotonic()
    while not stop.is_set():
        try:
            with urllib.request.urlopen(url + "metrics", timeout=10) as r:
                r.read()
            scrapes += 1
        except OSError:
            failed += 1
        stop.wait(1.0)
    halt.set()
    result.put({"pictures": counts, "scrapes": scrapes, "scrape_failures": failed, "seconds": time.monotonic() - t0})


class _Daemon:
    def __init__(self, workdir: Path):
        config = workdir / "bench.toml"
        config.write_text(f"""[camera]
source = {json.dumps(str(paths.BUNDLED_VIDEO))}
name = "vtest"
loop = true
as_fast_as_possible = true
[events]
journal = false
[web]
port = 0
""")
        self.state = workdir / "state"
        env = {k: v for k, v in os.environ.items() if k not in ("STATE_DIRECTORY", "CONFIGURATION_DIRECTORY")}
        env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[2]), env.get("PYTHONPATH", "")])
        self.log = open(workdir / "daemon.log", "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "runtime.cli", "run", "--config", str(config), "--state-dir", str(self.state)],
                                     env=env, stdout=subprocess.DEVNULL, stderr=self.log)
        self.ps = psutil.Process(self.proc.pid)

    def status(self) -> dict:
        return status_file.read(status_file.location(self.state))

    def ready(self, timeout: float = 900.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the daemon exited with {self.proc.returncode}")
            try:
                s = self.status()
                # The board survey measures the bundle after the first detection, in processes of its
                # own and at other thread counts: its load would fall on the first phases only.
                surveying = str((s.get("survey") or {}).get("state", "")).startswith(("waiting", "measuring"))
                if s.get("state") == "running" and (s.get("web") or {}).get("url") and s["frames"]["inferred"] > 20 and not surveying:
                    return s
            except (OSError, ValueError):
                pass
            time.sleep(0.5)
        raise RuntimeError("the daemon did not start in time")

    def next_status(self, after: float) -> dict:
        """The first status written after `after` (unix time)."""
        while True:
            try:
                s = self.status()
                if s["updated"] > after:
                    return s
            except (OSError, ValueError):
                pass
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


def _viewers(status: dict) -> int:
    return (status.get("web") or {}).get("viewers") or 0


def _phase(daemon: _Daemon, seconds: float, loaded: bool, viewers: int, url: str, port: int) -> dict:
    # The last phase's viewers hold their places until the page notices they left (its next write
    # to them fails): new viewers arriving before that would be turned away at the limit.
    deadline = time.monotonic() + 30
    while _viewers(daemon.next_status(time.time())) and time.monotonic() < deadline:
        time.sleep(0.2)
    ctx = multiprocessing.get_context("spawn")
    stop, result, clients = ctx.Event(), ctx.Queue(), None
    if loaded:
        clients = ctx.Process(target=_clients, args=(url, port, viewers, stop, result), daemon=True)
        clients.start()
        deadline = time.monotonic() + 30
        while _viewers(daemon.status()) < viewers and time.monotonic() < deadline:
            time.sleep(0.2)
    start = daemon.next_status(time.time())
    cpu0 = sum(daemon.ps.cpu_times()[:2])
    time.sleep(seconds)
    end = daemon.next_status(time.time())
    cpu = sum(daemon.ps.cpu_times()[:2]) - cpu0
    row = {"phase": "loaded" if loaded else "none", "inferred": end["frames"]["inferred"] - start["frames"]["inferred"],
           "seconds": round(end["updated"] - start["updated"], 3), "viewers_seen": (start.get("web") or {}).get("viewers")}
    row["fps"] = round(row["inferred"] / row["seconds"], 2)
    row["daemon_cpu_percent"] = round(100 * cpu / row["seconds"], 1)
    if clients is not None:
        stop.set()
        got = result.get(timeout=30)
        clients.join(10)
        row["live_pictures_per_viewer_s"] = round(sum(got["pictures"]) / viewers / got["seconds"], 2)
        row["scrapes"], row["scrape_failures"] = got["scrapes"], got["scrape_failures"]
    return row


def run_web_bench(args: argparse.Namespace) -> int:
    seconds = args.seconds or DEFAULT_SECONDS
    viewers = args.viewers
    if seconds <= 0 or viewers < 1:
        raise CommandError("--seconds must be > 0 and --viewers >= 1")
    with tempfile.TemporaryDirectory(prefix="edgewatch-bench-web-") as tmp:
        daemon = _Daemon(Path(tmp))
        try:
            status = daemon.ready()
            url = status["web"]["url"]
            port = int(url.rsplit(":", 1)[1].strip("/"))
            if not args.json:
                print(f"daemon pid {daemon.proc.pid}: {status['model']['name']} ({status['model']['variant']}) on vtest.avi, "
                      f"as fast as possible; page {url}; {DEFAULT_ROUNDS} rounds of {seconds:g} s per phase", flush=True)
            rows = []
            for r in range(DEFAULT_ROUNDS):
                order = (False, True) if r % 2 == 0 else (True, False)
                for loaded in order:
                    row = _phase(daemon, seconds, loaded, viewers, url, port)
                    row["round"] = r + 1
                    rows.append(row)
                    if args.json:
                        print(json.dumps(row), flush=True)
                    else:
                        extra = (f", {row['live_pictures_per_viewer_s']} pictures/s per viewer, {row['scrapes']} scrapes"
                                 if loaded else "")
                        print(f"  round {r + 1} {row['phase']:<6}: {row['fps']:6.2f} fps, daemon CPU {row['daemon_cpu_percent']:5.1f} %{extra}",
                              flush=True)
        finally:
            daemon.stop()
    total = {p: (sum(r["inferred"] for r in rows if r["phase"] == p), sum(r["seconds"] for r in rows if r["phase"] == p))
             for p in ("none", "loaded")}
    fps = {p: n / s for p, (n, s) in total.items()}
    ratio = fps["loaded"] / fps["none"]
    summary = {"measure": "web_cost", "viewers": viewers, "scrape_interval_s": 1.0, "fps_none": round(fps["none"], 2),
               "fps_loaded": round(fps["loaded"], 2), "ratio": round(ratio, 3),
               "round_ratios": [round(a["fps"] / b["fps"], 3) for a, b in zip([r for r in rows if r["phase"] == "loaded"],
                                                                              [r for r in rows if r["phase"] == "none"])],
               "target": ">= 0.95"}
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"pipeline fps with {viewers} live viewers and /metrics every 1 s: {summary['fps_loaded']} vs {summary['fps_none']} "
              f"with none = {summary['ratio']:.3f}x (target >= 0.95; per round {summary['round_ratios']})")
    return exitcodes.OK
