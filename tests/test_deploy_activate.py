"""The board side of a rollout on a real folder of bundles: what is refused before anything switches.

(Switching with a live daemon, health waits and rollbacks run in tests/test_deploy_rollout.py.)
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import threading
from pathlib import Path

import pytest

from conftest import BLAZEFACE_MANIFEST, REPO, WAIT_S
from runtime import exitcodes
from runtime import activation
from runtime.bundle_digest import DigestError, bundle_digest, listing
from runtime.rollout.remote import Remote, pack


@pytest.fixture
def bundle(tmp_path, blazeface_tflite) -> Path:
    folder = tmp_path / "blazeface"
    folder.mkdir()
    shutil.copy(blazeface_tflite, folder / "model.tflite")
    (folder / "model.json").write_text(json.dumps(BLAZEFACE_MANIFEST))
    return folder


@pytest.fixture
def paths(tmp_path) -> activation.BoardPaths:
    return activation.BoardPaths(tmp_path / "state")


def activate(paths: activation.BoardPaths, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "runtime.cli", "activate", "--state-dir", str(paths.state), *args],
                          cwd=REPO, input=stdin, capture_output=True, timeout=WAIT_S)


def test_digest_covers_every_file_and_its_name(bundle, tmp_path):
    first = bundle_digest(bundle)
    assert listing(bundle).splitlines()[0].endswith("  model.json")
    renamed = tmp_path / "renamed"
    shutil.copytree(bundle, renamed)
    assert bundle_digest(renamed) == first  # the folder's own name is not part of it
    (renamed / "labels.txt").write_text("face\n")
    assert bundle_digest(renamed) != first
    (renamed / "labels.txt").unlink()
    data = bytearray((renamed / "model.tflite").read_bytes())
    data[-1] ^= 1
    (renamed / "model.tflite").write_bytes(bytes(data))
    assert bundle_digest(renamed) != first
    os.symlink("model.tflite", renamed / "link.tflite")
    with pytest.raises(DigestError, match="symbolic links"):
        bundle_digest(renamed)


def test_tar_stream_is_received_into_models_by_digest(bundle, paths):
    r = activate(paths, "--stage-only", "--sha256", bundle_digest(bundle), "-", stdin=pack(bundle))
    assert r.returncode == 0, r.stderr
    digest = json.loads(r.stdout)["bundle"]
    assert digest == bundle_digest(bundle) == bundle_digest(paths.bundle(digest))
    assert (paths.bundle(digest) / "model.tflite").stat().st_mode & 0o777 == 0o644
    assert not paths.current.exists() and not list(paths.staging.iterdir())


def test_wrong_digest_is_refused_and_nothing_kept(bundle, paths):
    wrong = "0" * 64
    r = activate(paths, "--sha256", wrong, "-", stdin=pack(bundle))
    assert r.returncode == exitcodes.BAD_INPUT
    assert f"does not match the expected {wrong}" in r.stderr.decode()
    assert json.loads(r.stdout)["result"] == "refused"
    assert not [p for p in paths.models.iterdir() if not p.name.startswith(".")]
    assert not list(paths.staging.iterdir())


def _tar(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as archive:
        for info, data in members:
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _file(name: str, data: bytes = b"x") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def _link(name: str, target: str) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    return info, None


@pytest.mark.parametrize("members, reason", [
    ([_file("../evil.txt")], "unsafe member name"),
    ([_file("/etc/evil.txt")], "unsafe member name"),
    ([_link("model.tflite", "/etc/shadow")], "is not a regular file"),
    ([_file("model.tflite")], "no model.json"),
])
def test_hostile_or_incomplete_archives_are_refused(paths, tmp_path, members, reason):
    r = activate(paths, "-", stdin=_tar(members))
    assert r.returncode == exitcodes.BAD_INPUT and reason in r.stderr.decode(), r.stderr
    assert len(r.stderr.decode().strip().splitlines()) == 1
    assert not (tmp_path / "evil.txt").exists() and not list(paths.staging.iterdir())


def test_bad_manifest_is_refused_naming_the_field(bundle, paths):
    manifest = json.loads((bundle / "model.json").read_text())
    manifest["input"]["width"] = -1
    (bundle / "model.json").write_text(json.dumps(manifest))
    r = activate(paths, str(bundle))
    assert r.returncode == exitcodes.BAD_INPUT
    assert f"{bundle}/model.json: input.width" in r.stderr.decode()


def test_no_running_daemon_means_nothing_is_switched(bundle, paths):
    r = activate(paths, "--timeout", "2", str(bundle))
    assert r.returncode == exitcodes.FAILURE
    assert "no running daemon" in r.stderr.decode() and "nothing switched" in r.stderr.decode()
    assert not paths.current.exists()
    # a status.json left by a daemon that died long ago does not count as running
    paths.status.write_text(json.dumps({"pid": os.getpid(), "updated": 1.0, "healthy": True}))
    assert activate(paths, "--timeout", "2", str(bundle)).returncode == exitcodes.FAILURE
    assert not paths.current.exists()


def test_previous_without_history_is_a_clean_error(paths):
    r = activate(paths, "--previous")
    assert r.returncode == exitcodes.FAILURE and "no previous bundle" in r.stderr.decode()


def test_the_link_is_replaced_never_missing(paths, tmp_path):
    """point() renames a new link over the old: a reader never sees `current` absent."""
    paths.models.mkdir(parents=True)
    a, b = paths.bundle("a" * 64), paths.bundle("b" * 64)
    a.mkdir()
    b.mkdir()
    activation.point(paths.current, a)
    stop = threading.Event()
    missing = []

    def reader():
        while not stop.is_set():
            if not os.path.lexists(paths.current):
                missing.append(1)

    t = threading.Thread(target=reader)
    t.start()
    for i in range(200):
        activation.point(paths.current, b if i % 2 == 0 else a)
    stop.set()
    t.join()
    assert not missing
    assert activation.link_target(paths.current) == a
    (paths.models / "previous").mkdir()  # a folder where a link belongs is refused, not replaced
    with pytest.raises(activation.ActivationError, match="not a symbolic link"):
        activation.link_target(paths.previous)


def test_remote_command_quotes_every_word():
    remote = Remote(ssh=("ssh",), edgewatch=("sudo", "-n", "edgewatch"))
    argv = remote.command("pi@cam-1", ["activate", "--state-dir", "/srv/a b; rm -rf /", "-"])
    assert argv == ["ssh", "--", "pi@cam-1", "sudo -n edgewatch activate --state-dir '/srv/a b; rm -rf /' -"]
    with pytest.raises(ValueError):
        remote.command("-oProxyCommand=evil", ["activate"])


def test_deploy_refuses_bad_input_before_touching_any_host(bundle, tmp_path):
    def deploy(*args):
        return subprocess.run([sys.executable, "-m", "runtime.cli", "deploy", *args], cwd=REPO, capture_output=True, text=True)

    r = deploy(str(tmp_path / "missing"), "host")
    assert r.returncode == exitcodes.BAD_INPUT and "not a bundle folder" in r.stderr
    r = deploy(str(bundle), "--", "-oProxyCommand=x")
    assert r.returncode == exitcodes.BAD_INPUT and "cannot start with '-'" in r.stderr
    r = deploy(str(bundle), "--digest")
    assert r.returncode == 0 and r.stdout.strip() == bundle_digest(bundle)
    (bundle / "model.json").write_text("{")
    r = deploy(str(bundle), "host")
    assert r.returncode == exitcodes.BAD_INPUT and "model.json: not valid JSON" in r.stderr


def test_serving_tells_bundles_apart(bundle, tmp_path):
    """By the model file the daemon reports; by its folder when two bundles share the file."""
    from runtime.bundle import sha256_file

    sha = sha256_file(bundle / "model.tflite")
    same_file = tmp_path / "same-file"  # a manifest-only change: the model file is shared
    shutil.copytree(bundle, same_file)
    (same_file / "model.json").write_text(json.dumps({**BLAZEFACE_MANIFEST, "name": "renamed"}))
    other = tmp_path / "other"
    shutil.copytree(bundle, other)
    (other / "model.tflite").write_bytes((bundle / "model.tflite").read_bytes() + b"\0")

    def status(path: Path) -> dict:
        return {"model": {"path": str(path), "sha256": sha}}

    assert activation.serving(status(bundle), bundle, other)
    assert not activation.serving(status(other), other, bundle)
    assert activation.serving(status(bundle), bundle, same_file)
    assert not activation.serving(status(bundle), same_file, bundle)
    link = tmp_path / "current"
    os.symlink(same_file, link)
    # through the link the daemon's report cannot say which copy it loaded: not taken as the new one
    assert not activation.serving(status(link), same_file, bundle)
