"""The units, checked by Debian's own systemd tools (systemd is not PID 1 here, so nothing is started).

`systemd-analyze verify` wants every ExecStart binary to exist: the units are verified inside a temp
root holding the host's system units and an executable stand-in at each Exec path.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from conftest import REPO, WAIT_S

UNITS = REPO / "systemd"
SERVICE = "edgewatch.service"
CONVERT = "edgewatch-convert@.service"
ANALYZE = shutil.which("systemd-analyze")

pytestmark = pytest.mark.skipif(ANALYZE is None, reason="needs Debian's systemd package (systemd-analyze)")


def directives(unit: Path) -> dict[str, list[str]]:
    """key -> every value given, in order (systemd units repeat keys)."""
    found: dict[str, list[str]] = {}
    for line in unit.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def exec_paths(unit: Path) -> list[str]:
    d = directives(unit)
    return [d[k][0].split()[0].lstrip("-@:+!") for k in ("ExecStartPre", "ExecStart", "ExecReload") if k in d]


@pytest.fixture
def root(tmp_path) -> Path:
    """A root with the host's system units, our units in /etc/systemd/system and their binaries."""
    shutil.copytree("/usr/lib/systemd/system", tmp_path / "usr/lib/systemd/system", symlinks=True)
    (tmp_path / "etc/systemd/system").mkdir(parents=True)
    for unit in (SERVICE, CONVERT):
        shutil.copy(UNITS / unit, tmp_path / "etc/systemd/system" / unit)
        for path in exec_paths(UNITS / unit):
            stand_in = tmp_path / path.lstrip("/")
            stand_in.parent.mkdir(parents=True, exist_ok=True)
            stand_in.write_text("#!/bin/sh\n")
            stand_in.chmod(0o755)
    return tmp_path


def analyze(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([ANALYZE, *args, f"--root={root}"], capture_output=True, text=True, timeout=WAIT_S)


def test_both_units_verify_clean(root):
    r = analyze(root, "verify", "--man=no", SERVICE, "edgewatch-convert@job.service")
    # verify exits 0 on unknown keys and bad values too, and only says so: demand silence.
    assert r.returncode == 0 and r.stdout + r.stderr == "", r.stdout + r.stderr


def test_verify_as_used_here_catches_a_bad_unit(root):
    unit = root / "etc/systemd/system" / SERVICE
    unit.write_text(unit.read_text().replace("Restart=on-failure", "Restart=sometimes").replace("WatchdogSec=", "WatchdogSecs="))
    r = analyze(root, "verify", "--man=no", SERVICE)
    assert "Failed to parse" in r.stderr and "sometimes" in r.stderr and "WatchdogSecs" in r.stderr, r.stderr


def exposure(root: Path, unit: str) -> float:
    r = analyze(root, "security", "--offline=true", "--no-pager", unit)
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", r.stdout + r.stderr)
    assert match, r.stdout + r.stderr
    return float(match.group(1))


def test_exposure_scores(root):
    """The README records these (systemd/README.md); 10 is unconfined, below 2 is 'OK'/'SAFE'."""
    service = exposure(root, SERVICE)
    convert = exposure(root, "edgewatch-convert@job.service")
    print(f"systemd-analyze security: {SERVICE} {service}, edgewatch-convert@.service {convert}")
    assert service < 2.0
    assert convert < 2.0
    recorded = (UNITS / "README.md").read_text()
    assert f"{SERVICE}: {service}" in recorded, "update the score recorded in systemd/README.md"


def test_service_is_a_watched_hardened_camera_daemon():
    d = directives(UNITS / SERVICE)
    assert d["Type"] == ["notify"]
    assert float(d["WatchdogSec"][0]) > 0
    assert d["Restart"] == ["on-failure"]
    assert d["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert d["ExecStartPre"] == [d["ExecStart"][0].replace(" run", " activate --recover")]
    assert d["StateDirectory"] == ["edgewatch"] and d["ConfigurationDirectory"] == ["edgewatch"]
    assert d["User"] == ["edgewatch"] and "video" in d["SupplementaryGroups"][0].split()
    assert d["NoNewPrivileges"] == ["yes"] and d["ProtectSystem"] == ["strict"]
    # The camera stays visible: a closed device policy with the camera classes, never PrivateDevices.
    assert "PrivateDevices" not in d
    assert d["DevicePolicy"] == ["closed"]
    allowed = {v.split()[0] for v in d["DeviceAllow"]}
    assert {"char-video4linux", "char-media", "char-dma_heap", "char-vchiq"} <= allowed
    # 2 (bad config or model) is final; 75 (hard memory budget) must restart.
    assert "2" in d["RestartPreventExitStatus"][0].split() and "75" not in d["RestartPreventExitStatus"][0].split()


def test_memory_backstop_is_above_the_configured_hard_budget():
    d = directives(UNITS / SERVICE)
    value = d["MemoryMax"][0]
    units = {"K": 1 / 1024, "M": 1, "G": 1024}
    max_mb = float(value[:-1]) * units[value[-1]]
    # The example's [budget] block is commented out; enabled as a user would, by uncommenting it.
    lines = (REPO / "deploy" / "config.example.toml").read_text().splitlines()
    start = lines.index("# [budget]")
    block = [line[2:] for line in lines[start:] if line.startswith("# ") and ("=" in line or line == "# [budget]")]
    budget = tomllib.loads("\n".join(block))["budget"]
    hard = budget.get("memory_hard_mb") or budget["memory_mb"] * 1.25
    assert max_mb > hard, f"MemoryMax={value} must exceed the example's hard budget {hard} MB"


def test_convert_unit_runs_the_job_file_named_by_its_instance():
    d = directives(UNITS / CONVERT)
    argv = d["ExecStart"][0].split()
    assert argv[1:3] == ["-m", "runtime.rollout.convert_job"]
    assert argv[3] == "/etc/edgewatch/convert/%i.args" == d["AssertPathExists"][0]
    assert d["Type"] == ["exec"]  # `systemctl start` returns once it runs; the job outlives the ssh session
    assert (REPO / "runtime/rollout/convert_job.py").is_file()
