"""deploy/install.sh into a throwaway root folder: the real script, real useradd, venv, pip, systemctl.

`--root DIR` acts on a root filesystem in DIR (no apt, no running systemd; `systemctl --root`
enables the unit offline). `--offline` installs this checkout with no index and no dependencies:
the venv sees numpy, LiteRT and OpenCV through --system-site-packages, as a board sees picamera2.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, WAIT_S

INSTALL = REPO / "deploy" / "install.sh"
OS_RELEASE = 'PRETTY_NAME="Raspbian GNU/Linux 12 (bookworm)"\nID=raspbian\nID_LIKE=debian\nVERSION_CODENAME=bookworm\n'

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("useradd") is None or shutil.which("systemctl") is None,
                                reason="needs root, useradd and systemctl (CI runs as root on Debian)")


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """A copy of the checkout: pip builds in the source folder, and must not litter the shared tree."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        if (REPO / name).exists():
            shutil.copy(REPO / name, src / name)
    if not (src / "README.md").exists():
        (src / "README.md").write_text("edgewatch\n")
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    for name in ("runtime", "converters", "deploy", "systemd"):
        shutil.copytree(REPO / name, src / name, ignore=ignore)
    return src


def new_root(folder: Path) -> Path:
    """The few files of a fresh Raspberry Pi OS root that the script reads and edits."""
    etc = folder / "etc"
    etc.mkdir(parents=True)
    (etc / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\npi:x:1000:1000::/home/pi:/bin/bash\n")
    (etc / "group").write_text("root:x:0:\nvideo:x:44:pi\npi:x:1000:\n")
    (etc / "shadow").write_text("root:*:19000:0:99999:7:::\npi:*:19000:0:99999:7:::\n")
    (etc / "gshadow").write_text("root:*::\nvideo:!::pi\npi:!::\n")
    (etc / "os-release").write_text(OS_RELEASE)
    return folder


def install(root: Path, source: Path, *args: str, python: str = sys.executable, env: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, **(env or {})}
    if sys.prefix != sys.base_prefix:
        # Run from a venv (CI), the installed venv is based on the base interpreter and would not see
        # numpy/LiteRT/OpenCV that a board gets from pip: lend it this environment's, offline.
        import site

        env["PYTHONPATH"] = os.pathsep.join(site.getsitepackages())
    return subprocess.run(["bash", str(INSTALL), "--root", str(root), "--source", str(source), "--python", python,
                           "--offline", *args], capture_output=True, text=True, timeout=600, env=env)


def tree(root: Path) -> dict[str, bytes | str]:
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() and not p.is_symlink() else os.readlink(p) if p.is_symlink() else "dir")
            for p in sorted(root.rglob("*"))}


def user(root: Path, name: str) -> list[str] | None:
    for line in (root / "etc/passwd").read_text().splitlines():
        if line.split(":")[0] == name:
            return line.split(":")
    return None


def test_dry_run_prints_every_action_and_changes_nothing(tmp_path, source):
    root = new_root(tmp_path / "root")
    before = tree(root)
    r = install(root, source, "--dry-run")
    assert r.returncode == 0, r.stderr
    actions = [line[2:] for line in r.stderr.splitlines() if line.startswith("+ ")]
    text = "\n".join(actions)
    assert f"useradd --prefix {root} --system" in text and "--shell /usr/sbin/nologin" in text
    assert f"-m venv --system-site-packages --without-pip {root}/opt/edgewatch/venv" in text
    assert f"pip install --quiet --disable-pip-version-check --no-index --no-deps --no-build-isolation {source}" in text
    assert f"install -m 0644 {source}/systemd/edgewatch.service {root}/etc/systemd/system/edgewatch.service" in text
    assert f"systemctl --root={root} enable edgewatch.service" in text
    assert "tensorflow" not in text.lower() and "[convert]" not in text and "edgewatch-convert@" not in text
    assert "target: raspbian bookworm" in r.stderr
    assert tree(root) == before


def test_converter_host_gets_the_convert_extra_and_unit(tmp_path, source):
    root = new_root(tmp_path / "root")
    r = install(root, source, "--dry-run", "--converter")
    assert r.returncode == 0, r.stderr
    text = "\n".join(line[2:] for line in r.stderr.splitlines() if line.startswith("+ "))
    assert f"--no-build-isolation {source}\\[convert\\]" in text  # as the dry run prints it (printf %q)
    assert f"install -m 0644 {source}/systemd/edgewatch-convert@.service {root}/etc/systemd/system/edgewatch-convert@.service" in text


def test_dry_run_on_this_machine_lists_apt_and_touches_nothing(source):
    r = subprocess.run(["bash", str(INSTALL), "--dry-run", "--source", str(source), "--python", sys.executable],
                       capture_output=True, text=True, timeout=WAIT_S)
    assert r.returncode == 0, r.stderr
    assert "apt: " in r.stderr or "+ apt-get" in r.stderr
    assert "python3-picamera2 is not in this archive" in r.stderr or "python3-picamera2" in r.stderr
    assert not Path("/opt/edgewatch").exists()


def test_bad_option_is_one_line_and_exit_2(tmp_path):
    r = subprocess.run(["bash", str(INSTALL), "--frobnicate"], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.strip() == "install.sh: error: unknown option --frobnicate (see --help)"
    r = subprocess.run(["bash", str(INSTALL), "--root", str(tmp_path / "nowhere")], capture_output=True, text=True)
    assert r.returncode == 2 and "no such folder" in r.stderr


def test_install_reinstall_uninstall_purge(tmp_path, source):
    root = new_root(tmp_path / "root")
    r = install(root, source)
    assert r.returncode == 0, r.stderr

    # the user: a system account with no login, its own group; the camera group exists
    account = user(root, "edgewatch")
    assert account is not None and int(account[2]) < 1000 and account[6] == "/usr/sbin/nologin"
    uid, gid = int(account[2]), int(account[3])
    state = root / "var/lib/edgewatch"
    for folder in (state, state / "models", state / "staging"):
        st = folder.stat()
        assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (uid, gid, 0o750), folder

    # the venv: sees the system's packages, holds the runtime alone, and runs
    venv = root / "opt/edgewatch/venv"
    assert "include-system-site-packages = true" in (venv / "pyvenv.cfg").read_text()
    run = subprocess.run([str(venv / "bin/python"), "-m", "runtime.cli", "--version"], capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0 and run.stdout.startswith("edgewatch "), run.stderr
    code = "import importlib.metadata as m; print('\\n'.join(r for r in m.requires('edgewatch') if 'extra ==' not in r))"
    requires = subprocess.run([str(venv / "bin/python"), "-c", code], capture_output=True, text=True, cwd=tmp_path).stdout
    assert "numpy" in requires and "tensorflow" not in requires  # what the board's pip pulls in
    assert not list((venv / "lib").glob("python3*/site-packages/tensorflow*"))
    # no pip (or setuptools) of its own: the system's installed into it, 25 MB less on the SD card
    assert not list((venv / "lib").glob("python3*/site-packages/pip")) and not (venv / "bin/pip").exists()
    assert list((venv / "lib").glob("python3*/site-packages/edgewatch-*.dist-info"))
    assert os.readlink(root / "usr/local/bin/edgewatch") == "/opt/edgewatch/venv/bin/edgewatch"
    # scripts name the venv where the board has it, not the folder it was installed into
    assert (venv / "bin/edgewatch").read_text().startswith("#!/opt/edgewatch/venv/bin/python")
    assert not [p for p in (venv / "bin").iterdir() if p.is_file() and not p.is_symlink() and str(root) in p.read_text()]

    # the units: installed and enabled offline
    units = root / "etc/systemd/system"
    assert (units / "edgewatch.service").read_text() == (source / "systemd/edgewatch.service").read_text()
    assert not (units / "edgewatch-convert@.service").exists()  # conversions belong on a build host (--converter)
    assert os.readlink(units / "multi-user.target.wants/edgewatch.service") == "/etc/systemd/system/edgewatch.service"
    assert (root / "etc/edgewatch/convert").is_dir()
    # the config: the example, valid, with the model where rollouts put it
    from runtime import config as config_mod

    written = root / "etc/edgewatch/config.toml"
    changed = set(written.read_text().splitlines()) ^ set((source / "deploy/config.example.toml").read_text().splitlines())
    assert len(changed) == 2 and all("/var/lib/edgewatch/models/current" in line for line in changed)
    assert config_mod.load(written).model.path == Path("/var/lib/edgewatch/models/current")
    # the first model: the bundled person detector, received and checked like any rollout
    from runtime.bundle_digest import bundle_digest

    assert os.readlink(state / "models/current") == bundle_digest(source / "runtime/assets/person-ssdlite")
    assert (state / "models" / bundle_digest(source / "runtime/assets/person-ssdlite")).stat().st_uid == uid

    # again: nothing re-created, an edited config kept
    passwd = (root / "etc/passwd").read_text()
    (root / "etc/edgewatch/config.toml").write_text("# edited by the admin\n")
    r = install(root, source)
    assert r.returncode == 0, r.stderr
    assert "useradd" not in r.stderr and "-m venv" not in r.stderr
    assert "user: edgewatch exists" in r.stderr and "venv: /opt/edgewatch/venv exists" in r.stderr
    assert (root / "etc/passwd").read_text() == passwd
    assert (root / "etc/edgewatch/config.toml").read_text() == "# edited by the admin\n"

    # uninstall: the program and units go; the event log, snapshots, models, edited config and user stay
    (state / "events.db").write_bytes(b"SQLite format 3\x00")
    (state / "snapshots").mkdir()
    (state / "snapshots/1.jpg").write_bytes(b"\xff\xd8")
    r = install(root, source, "--uninstall")
    assert r.returncode == 0, r.stderr
    for gone in ("opt/edgewatch", "usr/local/bin/edgewatch", "etc/systemd/system/edgewatch.service",
                 "etc/systemd/system/edgewatch-convert@.service", "etc/systemd/system/multi-user.target.wants/edgewatch.service",
                 "var/lib/edgewatch/staging"):
        assert not os.path.lexists(root / gone), gone
    assert (state / "events.db").exists() and (state / "snapshots/1.jpg").exists()
    assert os.path.isdir(state / "models/current")  # rolled-out bundles survive a reinstall
    assert (root / "etc/edgewatch/config.toml").exists()
    assert user(root, "edgewatch") is not None

    # purge: everything, the user too
    r = install(root, source, "--uninstall", "--purge")
    assert r.returncode == 0, r.stderr
    assert not state.exists() and not (root / "etc/edgewatch").exists()
    assert user(root, "edgewatch") is None
    assert user(root, "pi") is not None
