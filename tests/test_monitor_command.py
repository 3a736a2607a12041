"""`edgewatch monitor` as a person and a script run it: a real process on fixture trees."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from conftest import WAIT_S

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "sysfs"


def edgewatch(*args: str, state_dir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "STATE_DIRECTORY": str(state_dir)}
    return subprocess.run([sys.executable, "-m", "runtime.cli", "monitor", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=WAIT_S)


def test_plain_line_names_every_source(tmp_path):
    done = edgewatch("--root", str(FIXTURES / "pi5"), "--once", "--interval", "0.2", state_dir=tmp_path)
    assert done.returncode == 0, done.stderr
    (line,) = done.stdout.splitlines()
    assert "power 3.59 W" in line and "[sensor:pmic(vcgencmd pmic_read_adc)]" in line
    assert "temp 58.4 C [sensor:thermal/thermal_zone0(cpu-thermal)]" in line
    assert "cgroup 192 MB (high 300, max max)" in line
    assert "throttled: no" in line
    assert line.endswith("daemon: not running")


def test_json_lines_for_scripts(tmp_path):
    done = edgewatch("--root", str(FIXTURES / "jetson-orin"), "--json", "--count", "2", "--interval", "0.2", state_dir=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(x) for x in done.stdout.splitlines()]
    assert len(lines) == 2
    assert lines[0]["power"]["source"] == "sensor:hwmon/ina3221(hwmon1)/VDD_IN"
    assert lines[0]["power"]["now_w"] == round(19.048 * 0.412, 3)
    assert lines[0]["board"] == "NVIDIA Jetson Orin NX Engineering Reference Developer Kit"
    assert [p["policy"] for p in lines[0]["cpufreq"]] == ["policy0", "policy4"]
    assert lines[1]["time"] > lines[0]["time"]


def test_shows_the_running_daemons_budget_state(tmp_path):
    budget = {"state": "limited", "knobs": {"rate_limit": 7.4, "threads": 4, "variant": "int8", "paused": False},
              "power": {"mean_w": 3.81, "budget_w": 4.0, "state": "ok"},
              "memory": {"rss_mb": 141.0, "budget_mb": 300, "state": "ok"},
              "last_decision": {"message": "rate_limit 12.3 -> 7.4: power 4.53 W over budget 4 W"}}
    (tmp_path / "status.json").write_text(json.dumps({"updated": time.time() + 30, "state": "running", "fps": 7.3, "budget": budget}))
    done = edgewatch("--root", str(FIXTURES / "pi4"), "--once", "--interval", "0.2", state_dir=tmp_path)
    assert done.returncode == 0, done.stderr
    line = done.stdout.strip()
    assert "throttled: under-voltage,throttled (since boot: under-voltage,throttled)" in line
    assert ("budget: daemon running 7.3 fps, power 3.81/4 W ok, rss 141/300 MB ok, knobs rate 7.4 threads 4 variant int8, "
            "last: rate_limit 12.3 -> 7.4: power 4.53 W over budget 4 W") in line


def test_stale_status_is_a_stopped_daemon(tmp_path):
    (tmp_path / "status.json").write_text(json.dumps({"updated": time.time() - 60, "state": "running", "budget": {}}))
    done = edgewatch("--root", str(FIXTURES / "ina219"), "--once", "--interval", "0.2", state_dir=tmp_path)
    assert done.stdout.strip().endswith("daemon: not running")


def test_bad_arguments_are_one_line_errors(tmp_path):
    done = edgewatch("--root", str(tmp_path / "nowhere"), "--once", state_dir=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == f"edgewatch monitor: error: --root: {tmp_path / 'nowhere'}: not a folder"
    done = edgewatch("--interval", "0", state_dir=tmp_path)
    assert done.returncode == 2 and "--interval: must be > 0" in done.stderr


def test_bench_prints_the_monitors_own_cost(tmp_path):
    done = edgewatch("--root", str(FIXTURES / "pi4"), "--bench", "3", "--json", state_dir=tmp_path)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["ticks"] == 3 and result["wall_s"] >= 2.9
    assert result["cpu_ms_per_tick"] > 0
    assert result["share_of_one_core_percent"] > 0
