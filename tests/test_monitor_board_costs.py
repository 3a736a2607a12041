"""Costs measured where they are paid: the board's figures per variant, cached per board and bundle
digest in the state folder. Unit checks of the cache, then the real daemon: it measures the bundle
it serves in the background after its first detection (each variant in a fresh `edgewatch bench`
process, its own pipeline at each thread count), orders its ladder by those figures, and a
restart reads them back instead of measuring again."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runtime.bundle_digest import bundle_digest
from runtime.monitor import board_costs
from runtime.monitor.board_costs import BoardCosts

REPO = Path(__file__).resolve().parents[1]
BOARD = {"model": "Raspberry Pi 4 Model B Rev 1.4", "cpu": "Cortex-A72", "cores": 4, "interpreter": "ai_edge_litert 1.4.0"}


def test_the_cache_is_per_board_and_bundle(tmp_path):
    costs = BoardCosts("a" * 64, BOARD, {"int8": {"threads": {"1": {"latency_ms": 9.0, "cpu_ms": 8.5}, "4": {"latency_ms": 4.0, "cpu_ms": 12.0}},
                                                 "peak_rss_mb": 95.0}},
                       {"1": {"fps": 30.1, "cpu_ms_per_frame": 40.0}, "4": {"fps": 29.5, "cpu_ms_per_frame": 55.0}})
    path = board_costs.save(tmp_path, costs)
    assert path == tmp_path / "costs" / ("a" * 64 + ".json")
    back = board_costs.load(tmp_path, "a" * 64, BOARD)
    assert back.variants == costs.variants and back.measured > 0
    assert back.cost_ms("int8", 4) == 12.0 and back.cost_ms("int8", 3) == 12.0 and back.cost_ms("int8", 1) == 8.5
    assert back.cost_ms("float32", 1) is None and back.peak_rss_mb("int8") == 95.0
    # within 3 % of the best rate, the setting that spends the least CPU per frame
    assert back.best_threads() == 1
    assert board_costs.load(tmp_path, "b" * 64, BOARD) is None  # another bundle
    assert board_costs.load(tmp_path, "a" * 64, {**BOARD, "model": "Raspberry Pi 5"}) is None  # another board
    path.write_text("{not json")
    assert board_costs.load(tmp_path, "a" * 64, BOARD) is None  # unreadable: measured again, never a crash


def test_a_variant_measured_in_a_fresh_process(person_bundle):
    figures = board_costs.measure_variant(person_bundle, "int8", [1], runs=5, nice=0)
    assert set(figures["threads"]) == {"1"}
    assert figures["threads"]["1"]["latency_ms"] > 0 and figures["threads"]["1"]["cpu_ms"] > 0
    assert figures["peak_rss_mb"] > 20
    with pytest.raises(RuntimeError, match="no-such-variant: bench exited 2"):
        board_costs.measure_variant(person_bundle, "no-such-variant", [1], runs=1, nice=0)


@pytest.fixture
def two_variant_bundle(tmp_path, person_bundle) -> Path:
    """The bundled person detector with two of its variants, so the survey has little to measure."""
    folder = tmp_path / "bundle"
    folder.mkdir()
    manifest = json.loads((person_bundle / "model.json").read_text())
    manifest["variants"] = [v for v in manifest["variants"] if v["name"] in ("int8", "float32")]
    for v in manifest["variants"]:
        shutil.copy(person_bundle / v["file"], folder / v["file"])
    shutil.copy(person_bundle / "anchors.npy", folder / "anchors.npy")
    (folder / "model.json").write_text(json.dumps(manifest, indent=1))
    return folder


def _status(state: Path) -> dict:
    try:
        return json.loads((state / "status.json").read_text())
    except (OSError, ValueError):
        return {}


def _run_until(config: Path, state: Path, done, timeout: float) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "STATE_DIRECTORY")}
    env["PYTHONPATH"] = str(REPO)
    (state / "status.json").unlink(missing_ok=True)
    proc = subprocess.Popen([sys.executable, "-m", "runtime.cli", "run", "--config", str(config), "--state-dir", str(state)],
                            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    status: dict = {}
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            status = _status(state)
            if status and done(status):
                break
            time.sleep(0.5)
        else:
            raise AssertionError(f"not done in {timeout:.0f} s (exit {proc.poll()}); last status: {status.get('survey')}, "
                                 f"{status.get('budget', {}).get('controller', {}).get('costs')}")
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err[-2000:]
    return status


def test_the_daemon_measures_its_bundle_once_and_a_restart_reads_it_back(tmp_path, two_variant_bundle, vtest_avi):
    state = tmp_path / "state"
    config = tmp_path / "config.toml"
    # a budget that never binds: the monitor runs, and measuring is allowed
    config.write_text(f'[camera]\nsource = "{vtest_avi}"\nloop = true\n\n[model]\npath = "{two_variant_bundle}"\n\n'
                      '[events]\njournal = false\n\n[budget]\npower_scope = "process"\npower_w = 1000\ntemperature_c = false\n')
    first = _run_until(config, state, lambda s: (s.get("survey") or {}).get("state") == "done", timeout=600)
    digest = bundle_digest(two_variant_bundle)
    cache = state / "costs" / f"{digest}.json"
    data = json.loads(cache.read_text())
    cores = len(os.sched_getaffinity(0))
    assert set(data["variants"]) == {"int8", "float32"}
    assert all(set(v["threads"]) == {str(t) for t in range(1, cores + 1)} and v["peak_rss_mb"] > 20 for v in data["variants"].values())
    assert set(data["pipeline"]) == {str(t) for t in range(1, cores + 1)}  # the thread trial, on its own pipeline
    assert data["board"] == board_costs.board_identity()
    best = BoardCosts(digest, data["board"], data["variants"], data["pipeline"]).best_threads()
    assert first["model"]["threads"] == best and first["survey"]["threads"]["chosen"] == best
    assert first["budget"]["controller"]["costs"] == "board"  # the ladder is ordered by this board's figures
    measured = data["measured"]

    second = _run_until(config, state, lambda s: (s.get("budget") or {}).get("controller") is not None
                        and (s.get("survey") or {}).get("state") == "done", timeout=120)
    assert json.loads(cache.read_text())["measured"] == measured  # read back, not measured again
    assert second["model"]["threads"] == best  # from its very start
    assert second["budget"]["controller"]["costs"] == "board"
    shown = subprocess.run([sys.executable, "-m", "runtime.cli", "status", "--state-dir", str(state)], cwd=REPO,
                           capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert "ordered by this board's own measurements" in shown.stdout, shown.stdout
