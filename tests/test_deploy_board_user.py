"""The board's own user reads what the service writes: install.sh into a root folder, the daemon run
as the service's user with the service's folders, then `edgewatch events`, `status` and `monitor`
run over "ssh" as the board's user (not root, no flags) and find the service's real state.

The root's folders are bind-mounted where a board has them (/opt/edgewatch, /var/lib/edgewatch)
in a private mount namespace, over tmpfs, so nothing of this machine changes. Users are switched
with setpriv, as systemd's User= and an ssh login would.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from test_daemon_process import clip  # noqa: F401 - a fixture
from test_deploy_install import install, new_root, source, user  # noqa: F401 - source is a fixture

SYSTEM_PYTHON = Path("/usr/bin/python3")
NEEDS = ("useradd", "usermod", "systemctl", "unshare", "setpriv", "mount")

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or any(shutil.which(t) is None for t in NEEDS) or not SYSTEM_PYTHON.exists(),
    reason="needs root, " + ", ".join(NEEDS) + " and Debian's python3 (CI runs as root on Debian)")


def group_id(root: Path, name: str) -> int:
    for line in (root / "etc/group").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == name:
            return int(fields[2])
    raise AssertionError(f"no group {name}")


def group_members(root: Path, name: str) -> list[str]:
    for line in (root / "etc/group").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == name:
            return [m for m in fields[3].split(",") if m]
    return []


@pytest.fixture(scope="module")
def board(tmp_path_factory, source):
    """A root installed by install.sh as `sudo` run by user pi, with Debian's python3 (which users
    other than root may run: this machine's own Python lives under /root)."""
    base = tmp_path_factory.mktemp("board")
    root = new_root(base / "root")
    r = install(root, source, python=str(SYSTEM_PYTHON), env={"SUDO_USER": "pi"})
    assert r.returncode == 0, r.stderr
    assert "group: pi added to group edgewatch" in r.stderr
    return root


def in_namespace(root: Path, clip: Path, script: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run `script` (bash) in a private mount namespace where the root's service folders are at the
    paths a board has them, and the clip at /opt/media/clip.avi."""
    setup = f"""
set -euo pipefail
mount --make-rprivate /
mount -t tmpfs -o mode=0755 tmpfs /opt
mkdir -p /opt/edgewatch /opt/media /opt/etc-edgewatch
mount --bind {shlex.quote(str(root / 'opt/edgewatch'))} /opt/edgewatch
mount --bind {shlex.quote(str(root / 'etc/edgewatch'))} /opt/etc-edgewatch
cp {shlex.quote(str(clip))} /opt/media/clip.avi && chmod 0644 /opt/media/clip.avi
mount -t tmpfs -o mode=0755 tmpfs /var/lib
mkdir -p /var/lib/edgewatch
mount --bind {shlex.quote(str(root / 'var/lib/edgewatch'))} /var/lib/edgewatch
"""
    env = {k: v for k, v in os.environ.items() if k not in ("STATE_DIRECTORY", "CONFIGURATION_DIRECTORY", "XDG_STATE_HOME")}
    if sys.prefix != sys.base_prefix:  # the venv lends its packages, as the install did (readable by all in CI)
        import site

        env["PYTHONPATH"] = os.pathsep.join(site.getsitepackages())
    return subprocess.run(["unshare", "--mount", "bash", "-c", setup + script], capture_output=True, text=True,
                          timeout=timeout, env=env)


def test_events_status_and_monitor_as_the_boards_user_read_the_services_state(board, clip):
    root = board
    # The admin's edit of /etc/edgewatch/config.toml: the clip as the camera, looped.
    config = root / "etc/edgewatch/config.toml"
    config.write_text(config.read_text().replace('source = "0"', 'source = "/opt/media/clip.avi"')
                      .replace("loop = false", "loop = true"))
    svc = user(root, "edgewatch")
    svc_uid, svc_gid = int(svc[2]), int(svc[3])
    assert group_members(root, "edgewatch") == ["pi"]
    video_gid = group_id(root, "video")
    state = root / "var/lib/edgewatch"
    as_service = (f"setpriv --reuid={svc_uid} --regid={svc_gid} --groups={video_gid} --inh-caps=-all "
                  "env HOME=/var/lib/edgewatch STATE_DIRECTORY=/var/lib/edgewatch CONFIGURATION_DIRECTORY=/opt/etc-edgewatch")
    # pi's groups on the board: its own and those /etc/group lists it in (edgewatch among them)
    as_pi = f"setpriv --reuid=1000 --regid=1000 --groups=1000,{video_gid},{group_id(root, 'edgewatch')} --inh-caps=-all env HOME=/tmp"
    as_stranger = "setpriv --reuid=1001 --regid=1001 --clear-groups --inh-caps=-all env HOME=/tmp"
    out = "/var/lib/edgewatch/../out"  # results, written by root into the tmpfs beside the state
    ready = ("import glob, json, sys; s = json.load(open('/var/lib/edgewatch/status.json')); "
             "sys.exit(not (s['healthy'] and s['events']['written'] >= 1 and glob.glob('/var/lib/edgewatch/snapshots/*.jpg')))")
    script = f"""
set +e
ready={shlex.quote(ready)}
mkdir -p {out}
{as_service} /opt/edgewatch/venv/bin/edgewatch run > {out}/daemon.log 2>&1 &
daemon=$!
# Healthy, with a batch of events written and its snapshots (written counts the "started" note too).
deadline=$((SECONDS + 240))
until /usr/bin/python3 -I -c "$ready" 2>/dev/null; do
    kill -0 $daemon 2>/dev/null || break
    (( SECONDS < deadline )) || break
    sleep 0.5
done
cd /tmp
{as_pi} /opt/edgewatch/venv/bin/edgewatch status --json > {out}/status.json 2> {out}/status.err; echo $? > {out}/status.rc
{as_pi} /opt/edgewatch/venv/bin/edgewatch monitor --once --json > {out}/monitor.json 2> {out}/monitor.err; echo $? > {out}/monitor.rc
kill -TERM $daemon; wait $daemon || true
{as_pi} /opt/edgewatch/venv/bin/edgewatch events --json > {out}/events.json 2> {out}/events.err; echo $? > {out}/events.rc
{as_stranger} /opt/edgewatch/venv/bin/edgewatch events > {out}/stranger.out 2> {out}/stranger.err; echo $? > {out}/stranger.rc
cp -r {out} /opt/etc-edgewatch/results
"""
    r = in_namespace(root, clip, script, timeout=600)
    results = root / "etc/edgewatch/results"
    assert r.returncode == 0 and results.is_dir(), r.stderr
    read = lambda name: (results / name).read_text()  # noqa: E731
    log = read("daemon.log")

    # the service wrote its state as its own user, readable by its group only
    db = state / "events.db"
    assert db.stat().st_uid == svc_uid and db.stat().st_mode & 0o777 == 0o640, log
    assert (state / "status.json").stat().st_mode & 0o777 == 0o640
    snapshots = list((state / "snapshots").glob("*.jpg"))
    assert snapshots and all(p.stat().st_mode & 0o777 == 0o640 for p in snapshots)

    # pi, in group edgewatch, found it with no flags
    assert read("status.rc").strip() == "0", read("status.err") + log
    status = json.loads(read("status.json"))
    assert status["healthy"] and status["source"]["name"] == "clip" and status["frames"]["inferred"] > 0
    assert status["config"] == "/opt/etc-edgewatch/config.toml" and status["model"]["name"] == "person-ssdlite"
    assert read("monitor.rc").strip() == "0", read("monitor.err")
    assert json.loads(read("monitor.json").splitlines()[0])["daemon"]["state"] in ("running", "degraded")
    assert read("events.rc").strip() == "0", read("events.err")
    events = [json.loads(line) for line in read("events.json").splitlines()]
    assert events and all(e["source"] == "clip" and e["end"] is not None for e in events)

    # someone outside the group: one line saying so, with the fix
    assert read("stranger.rc").strip() == "1"
    err = read("stranger.err").strip()
    assert len(err.splitlines()) == 1
    assert "/var/lib/edgewatch" in err and "permission denied" in err and "usermod -aG edgewatch" in err
