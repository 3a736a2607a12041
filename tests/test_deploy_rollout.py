"""Rollout to "boards" that are real: a real sshd on loopback, real daemons on real video.

Each board is a temp root (`<root>/var/lib/edgewatch`, `<root>/etc/edgewatch/config.toml`) with a
real `edgewatch run` on vtest.avi and `model.path = .../models/current`. The workstation reaches it
through Debian's sshd, started here on 127.0.0.1 with throwaway keys; ssh_config's SetEnv gives each
board alias its own state folder. Bundles are real models: BlazeFace short-range and back-camera
(MediaPipe's files, two different model files), and a truncated copy that no interpreter can load.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import BLAZEFACE_MANIFEST, REPO, WAIT_S
from runtime import exitcodes
from runtime.bundle import sha256_file
from runtime import activation as board_mod
from runtime.bundle_digest import bundle_digest
from runtime import status_file

SSHD = Path("/usr/sbin/sshd")
PLAYBOOK = REPO / "deploy" / "ansible" / "rollout.yml"
EDGEWATCH = [sys.executable, "-m", "runtime.cli"]
START_TIMEOUT_S = 60
# How long a board waits for health on a new bundle (the product's default). A good rollout ends as
# soon as the daemon reports healthy on it, a broken one as soon as it reports its reload failed:
# neither waits this out unless the machine is that slow.
HEALTH_TIMEOUT_S = 60

pytestmark = [
    pytest.mark.skipif(not SSHD.exists(), reason="needs Debian's openssh-server (.ci/setup.d/50-deploy.sh)"),
    pytest.mark.skipif(os.geteuid() != 0, reason="sshd on loopback with root login needs root (CI runs as root)"),
]


def edgewatch(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([*EDGEWATCH, *args], cwd=REPO, capture_output=True, text=True, timeout=180, **kw)


# -- bundles ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bundles(tmp_path_factory, blazeface_tflite) -> dict[str, Path]:
    """short (BlazeFace short range), back (BlazeFace back camera, 256x256), broken (truncated back)."""
    root = tmp_path_factory.mktemp("bundles")
    back_manifest = copy.deepcopy(BLAZEFACE_MANIFEST)
    back_manifest["name"] = "blazeface-back"
    back_manifest["input"].update(width=256, height=256)
    back_manifest["output"]["params"]["anchors"].update(strides=[16, 32, 32, 32], min_scale=0.15625)
    made = {}
    for name, model, manifest in [
        ("short", blazeface_tflite, BLAZEFACE_MANIFEST),
        ("back", blazeface_tflite.with_name("face_detection_back.tflite"), back_manifest),
    ]:
        folder = root / name
        folder.mkdir()
        shutil.copy(model, folder / "model.tflite")
        (folder / "model.json").write_text(json.dumps(manifest, indent=1))
        made[name] = folder
    broken = root / "broken"
    shutil.copytree(made["back"], broken)
    data = (made["back"] / "model.tflite").read_bytes()
    (broken / "model.tflite").write_bytes(data[: len(data) // 3])  # a copy cut short in transit
    made["broken"] = broken
    assert sha256_file(made["short"] / "model.tflite") != sha256_file(made["back"] / "model.tflite")
    return made


# -- boards ----------------------------------------------------------------------------------------


class Board:
    """A board's folders in a temp root, and its daemon started as systemd would (STATE_DIRECTORY)."""

    def __init__(self, root: Path, video: Path):
        self.root = root
        self.paths = board_mod.BoardPaths(root / "var/lib/edgewatch")
        self.config = root / "etc/edgewatch/config.toml"
        self.config.parent.mkdir(parents=True)
        self.paths.state.mkdir(parents=True)
        self.config.write_text(
            f'[camera]\nsource = "{video}"\nloop = true\n\n'
            f'[model]\npath = "{self.paths.current}"\nthreads = 1\n'
        )
        self.log = root / "daemon.log"
        self.proc: subprocess.Popen | None = None

    def install(self, bundle: Path) -> str:
        """The state install.sh leaves: models/<digest> and models/current pointing at it."""
        target = board_mod.receive(self.paths, expected=None, folder=bundle)
        board_mod.point(self.paths.current, target)
        return target.name

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
        env["STATE_DIRECTORY"] = str(self.paths.state)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([*EDGEWATCH, "run", "--config", str(self.config)], cwd=REPO, env=env,
                                         stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"daemon exited {self.proc.returncode}:\n{self.log.read_text()[-3000:]}"
            status = self.status()
            if status and status.get("pid") == self.proc.pid and status_file.is_healthy(status):
                return
            time.sleep(0.25)
        raise AssertionError(f"daemon not healthy after {START_TIMEOUT_S} s:\n{self.log.read_text()[-3000:]}")

    def status(self) -> dict | None:
        return board_mod.read_status(self.paths)

    def current(self) -> str:
        return os.readlink(self.paths.current)

    def serving(self, bundle: Path) -> bool:
        """Healthy, reporting now, and running the model file of `bundle`."""
        status = self.status()
        return (status is not None and status_file.is_healthy(status)
                and status["model"]["sha256"] == sha256_file(bundle / "model.tflite"))

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def boards(tmp_path_factory, bundles, vtest_avi):
    made = {}
    try:
        for name in ("board1", "board2"):
            b = Board(tmp_path_factory.mktemp(name), vtest_avi)
            b.install(bundles["short"])
            b.start()
            made[name] = b
        yield made
    finally:
        for b in made.values():
            b.stop()


# -- sshd ------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sshd:
    def __init__(self, folder: Path, boards: dict[str, Board]):
        self.folder = folder
        for key in ("host_key", "user_key"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", key, "-f", str(folder / key)], check=True)
        (folder / "authorized_keys").write_text((folder / "user_key.pub").read_text())
        self.port = _free_port()
        self.key = folder / "user_key"
        self.known_hosts = folder / "known_hosts"
        host_pub = (folder / "host_key.pub").read_text().split()
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {host_pub[0]} {host_pub[1]}\n")
        self.config = folder / "sshd_config"
        self.config.write_text("\n".join([
            "ListenAddress 127.0.0.1", f"Port {self.port}", f"HostKey {folder / 'host_key'}",
            f"PidFile {folder / 'sshd.pid'}", f"AuthorizedKeysFile {folder / 'authorized_keys'}",
            "StrictModes no", "UsePAM no", "PermitRootLogin prohibit-password", "PasswordAuthentication no",
            "KbdInteractiveAuthentication no", "AcceptEnv STATE_DIRECTORY PYTHONPATH",
            "Subsystem sftp /usr/lib/openssh/sftp-server", "LogLevel VERBOSE", "",
        ]))
        # The client side: one alias per board, each with its own state folder; "offline" has no sshd.
        common = ["  HostName 127.0.0.1", "  User root", f"  IdentityFile {self.key}", "  IdentitiesOnly yes",
                  f"  UserKnownHostsFile {self.known_hosts}", "  StrictHostKeyChecking yes", "  LogLevel ERROR"]
        lines = []
        for name, b in boards.items():
            lines += [f"Host {name}", f"  Port {self.port}", *common,
                      f"  SetEnv STATE_DIRECTORY={b.paths.state} PYTHONPATH={REPO}"]
        lines += ["Host offline", f"  Port {_free_port()}", *common, ""]
        self.client_config = folder / "ssh_config"
        self.client_config.write_text("\n".join(lines))
        self.log = folder / "sshd.log"
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation folder
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(self.config)], stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + WAIT_S
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.5).close()
                break
            except OSError:
                assert self.proc.poll() is None, f"sshd exited:\n{self.log.read_text()}"
                assert time.monotonic() < deadline, f"sshd does not listen:\n{self.log.read_text()}"
                time.sleep(0.1)

    def ssh(self, host: str, *argv: str, **kw) -> subprocess.CompletedProcess:
        return subprocess.run(["ssh", "-F", str(self.client_config), "-o", "BatchMode=yes", "--", host,
                               " ".join(shlex.quote(a) for a in argv)], capture_output=True, text=True, timeout=300, **kw)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture(scope="module")
def sshd(tmp_path_factory, boards):
    server = Sshd(tmp_path_factory.mktemp("sshd"), boards)
    yield server
    server.stop()


def deploy(sshd: Sshd, bundle: Path, *hosts: str, timeout: float = HEALTH_TIMEOUT_S) -> subprocess.CompletedProcess:
    remote = " ".join(EDGEWATCH)  # the board's edgewatch: this checkout, via SetEnv PYTHONPATH
    return edgewatch("deploy", str(bundle), *hosts, "--ssh-config", str(sshd.client_config),
                     "--remote-edgewatch", remote, "--timeout", f"{timeout:g}", "--parallel", "4")


# -- the tests -------------------------------------------------------------------------------------


def test_ssh_reaches_each_board_with_its_own_state(sshd, boards):
    for name, b in boards.items():
        r = sshd.ssh(name, *EDGEWATCH, "status", "--json")
        assert r.returncode == 0, r.stderr + sshd.log.read_text()[-2000:]
        assert json.loads(r.stdout)["pid"] == b.proc.pid


def test_rollout_to_two_boards_in_parallel(sshd, boards, bundles):
    digest = bundle_digest(bundles["back"])
    r = deploy(sshd, bundles["back"], "board1", "board2")
    assert r.returncode == exitcodes.OK, r.stdout + r.stderr
    rows = {line.split()[0]: line.split()[1] for line in r.stdout.splitlines()[1:-1]}
    assert rows == {"board1": "activated", "board2": "activated"}
    assert "2 host(s): 2 on the new bundle, 0 failed" in r.stdout
    for b in boards.values():
        assert b.current() == digest
        assert board_mod.link_target(b.paths.previous).name == bundle_digest(bundles["short"])
        assert b.serving(bundles["back"])
        assert b.status()["pid"] == b.proc.pid  # reloaded in place, not restarted
    assert not list(boards["board1"].paths.staging.iterdir())  # no partial copies left behind

    # by hand, back to the previous bundle; only current and previous stay on the card
    b = boards["board2"]
    r = sshd.ssh("board2", *EDGEWATCH, "activate", "--previous")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["result"] == "activated"
    assert b.current() == bundle_digest(bundles["short"]) and b.serving(bundles["short"])
    assert sorted(p.name for p in b.paths.models.iterdir() if not p.name.startswith(".")) == sorted(
        ["current", "previous", bundle_digest(bundles["short"]), bundle_digest(bundles["back"])])


def test_broken_bundle_is_rolled_back_and_the_old_model_keeps_serving(sshd, boards, bundles):
    b = boards["board1"]
    if not b.serving(bundles["back"]):
        assert deploy(sshd, bundles["back"], "board1").returncode == 0
    good = b.current()
    r = edgewatch("deploy", str(bundles["broken"]), "board1", "offline", "--json", "--ssh-config", str(sshd.client_config),
                  "--remote-edgewatch", " ".join(EDGEWATCH), "--timeout", f"{HEALTH_TIMEOUT_S:g}")
    assert r.returncode == exitcodes.ROLLOUT_FAILED, r.stdout + r.stderr
    results = {x["host"]: x for x in map(json.loads, r.stdout.splitlines())}
    assert results["board1"]["result"] == "rolled_back"
    # the daemon's own reason, carried back as soon as it gave it
    assert results["board1"]["error"].startswith("the daemon's reload failed") and "reload failed, still running" in results["board1"]["error"]
    assert results["offline"]["result"] == "unreachable"
    assert b.current() == good
    assert b.serving(bundles["back"])
    assert b.status()["pid"] == b.proc.pid


def test_power_cut_mid_rollout_boots_on_the_last_good_bundle(boards, bundles):
    """activate and the daemon killed between the switch and the health check, as by a power cut:
    the unit's ExecStartPre (`activate --recover`) puts the last good bundle back before the daemon starts."""
    b = boards["board1"]
    good = b.current()
    broken = bundle_digest(bundles["broken"])
    env = {**os.environ, "STATE_DIRECTORY": str(b.paths.state)}  # as systemd runs both
    activation = subprocess.Popen([*EDGEWATCH, "activate", "--timeout", "60", str(bundles["broken"])], cwd=REPO, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + WAIT_S
    while b.current() != broken:
        assert activation.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    activation.kill()
    b.proc.kill()
    activation.wait()
    b.proc.wait()
    assert b.current() == broken and board_mod.link_target(b.paths.fallback).name == good

    r = subprocess.run([*EDGEWATCH, "activate", "--recover"], cwd=REPO, env=env, capture_output=True, text=True, timeout=WAIT_S)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"result": "recovered", "ok": True, "bundle": good, "abandoned": broken}
    assert b.current() == good and not os.path.lexists(b.paths.fallback)
    b.start()
    assert b.serving(next(bundles[n] for n in ("short", "back") if bundle_digest(bundles[n]) == good))
    # and at an ordinary start there is nothing to undo
    r = subprocess.run([*EDGEWATCH, "activate", "--recover"], cwd=REPO, env=env, capture_output=True, text=True, timeout=WAIT_S)
    assert json.loads(r.stdout)["result"] == "nothing" and b.current() == good


def test_corrupted_transfer_is_refused_before_any_switch(sshd, boards, bundles):
    from runtime.rollout.remote import Remote, pack

    b = boards["board2"]
    before = b.current()
    wrong = bundle_digest(bundles["short"])  # what the sender claims; the stream holds `back`
    remote = Remote(ssh=("ssh", "-F", str(sshd.client_config), "-o", "BatchMode=yes"), edgewatch=tuple(EDGEWATCH))
    r = subprocess.run(remote.command("board2", ["activate", "--sha256", wrong, "-"]), input=pack(bundles["back"]),
                       capture_output=True, timeout=WAIT_S)
    assert r.returncode == exitcodes.BAD_INPUT, r.stderr
    assert b"does not match the expected" in r.stderr
    assert b.current() == before
    assert not list(b.paths.staging.iterdir())


def _ansible_playbook() -> str:
    found = shutil.which("ansible-playbook")
    if found is None:
        pytest.skip("ansible-core is not installed (.ci/setup.d/50-deploy.sh)")
    return found


def test_ansible_playbook_rolls_out_and_rolls_back(sshd, boards, bundles, tmp_path):
    playbook = _ansible_playbook()
    inventory = tmp_path / "inventory.ini"
    inventory.write_text(
        "[edgewatch]\n"
        + "".join(f"{name} ansible_host={name}\n" for name in boards)
        + f"\n[edgewatch:vars]\nansible_ssh_common_args='-F {sshd.client_config}'\n"
        f"ansible_python_interpreter={sys.executable}\n"
    )
    # Each board has its own state folder: given per host, as an inventory would.
    (tmp_path / "host_vars").mkdir()
    for name, b in boards.items():
        (tmp_path / "host_vars" / f"{name}.yml").write_text(f"edgewatch_state_dir: {b.paths.state}\n")
    # PYTHONPATH: the controller's `edgewatch deploy --digest` is this checkout too.
    env = {**os.environ, "ANSIBLE_HOME": str(tmp_path / "ansible"), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"), "PYTHONPATH": str(REPO),
           # ssh masters shared between tasks, gone soon after the test
           "ANSIBLE_SSH_ARGS": "-o ControlMaster=auto -o ControlPersist=5s"}
    extra = {"edgewatch_become": False, "edgewatch_timeout": HEALTH_TIMEOUT_S, "edgewatch_command": EDGEWATCH,
             "edgewatch_local_command": EDGEWATCH, "edgewatch_environment": {"PYTHONPATH": str(REPO)}}

    def play(bundle: Path, limit: str) -> subprocess.CompletedProcess:
        return subprocess.run([playbook, "-i", str(inventory), str(PLAYBOOK), "--limit", limit,
                               "-e", json.dumps({**extra, "bundle": str(bundle)})],
                              cwd=REPO, env=env, capture_output=True, text=True, timeout=300)

    r = play(bundles["short"], "all")
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert "failed=0" in r.stdout
    for b in boards.values():
        assert b.current() == bundle_digest(bundles["short"])
        assert b.serving(bundles["short"])
        assert not (b.paths.staging / bundle_digest(bundles["short"])).exists()  # staged copy removed

    r = play(bundles["broken"], "board2")
    assert r.returncode != 0
    assert "rolled_back" in r.stdout
    assert boards["board2"].current() == bundle_digest(bundles["short"])
    assert boards["board2"].serving(bundles["short"])


# -- ssh-triggered conversion ----------------------------------------------------------------------


def convert_unit_command(job_dir: Path, name: str) -> list[str]:
    """edgewatch-convert@NAME.service's ExecStart, with this machine's interpreter and job folder.

    systemd is not PID 1 here, so the test runs the unit's own command line over ssh; under systemd
    `ssh host sudo systemctl start edgewatch-convert@NAME` runs exactly this, detached from the session.
    """
    unit = (REPO / "systemd" / "edgewatch-convert@.service").read_text()
    exec_start = next(line.split("=", 1)[1] for line in unit.splitlines() if line.startswith("ExecStart="))
    argv = exec_start.replace("%i", name).split()
    assert argv[0] == "/opt/edgewatch/venv/bin/python" and argv[-1].startswith("/etc/edgewatch/convert/")
    return [sys.executable, *argv[1:-1], str(job_dir / Path(argv[-1]).name)]


def test_conversion_job_over_ssh_then_rollout_of_its_bundle(sshd, boards, ssdlite_graph, vtest_avi, tmp_path):
    if importlib.util.find_spec("tensorflow") is None:  # found, not imported: the job imports it, not pytest
        pytest.skip("the converter needs TensorFlow (the convert extra)")
    job_dir = tmp_path / "etc/edgewatch/convert"
    job_dir.mkdir(parents=True)
    out = tmp_path / "var/lib/edgewatch-convert/person"
    name = "person ssdlite; from a job"  # a space and a ';': one argument, never seen by a shell
    (job_dir / "person.args").write_text("\n".join([
        "# the person detector, float16, a quick calibration", str(ssdlite_graph), "-o", str(out),
        "--calibration", str(vtest_avi), "--quantize", "float16", "", "--samples", "4", "--held-out", "4",
        "--runs", "2", "--name", name, "--quiet", "",
    ]))
    r = sshd.ssh("board1", *convert_unit_command(job_dir, "person"))
    assert r.returncode == 0, r.stderr[-3000:]
    assert "convert job person: edgewatch convert" in r.stderr  # the journal's first line
    manifest = json.loads((out / "model.json").read_text())
    assert manifest["name"] == name

    # a job whose model is missing: the converter's own one-line error and exit status come back
    (job_dir / "typo.args").write_text(f"{tmp_path}/no-such-model.pb\n-o\n{tmp_path}/x\n--calibration\n{vtest_avi}\n")
    r = sshd.ssh("board1", *convert_unit_command(job_dir, "typo"))
    assert r.returncode == exitcodes.BAD_INPUT and "no-such-model.pb" in r.stderr
    r = sshd.ssh("board1", *convert_unit_command(job_dir, "absent"))
    assert r.returncode == exitcodes.BAD_INPUT and "absent.args: cannot read" in r.stderr

    # the fresh bundle goes to a board like any other
    d = deploy(sshd, out, "board1", timeout=WAIT_S)
    assert d.returncode == 0, d.stdout + d.stderr
    status = boards["board1"].status()
    assert status["model"]["name"] == name and status_file.is_healthy(status)
    assert boards["board1"].current() == bundle_digest(out)
