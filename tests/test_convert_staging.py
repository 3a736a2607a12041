"""The bundle appears whole or not at all: staged beside the target, swapped in when complete."""

import os
import signal

import pytest

from converters.errors import SourceError
from converters.staging import Interrupted, staged_folder


def leftovers(parent):
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def test_new_bundle_appears_only_when_complete(tmp_path):
    target = tmp_path / "bundle"
    with staged_folder(target, "model.json") as folder:
        (folder / "model.tflite").write_bytes(b"x")
        assert not target.exists()
    assert (target / "model.tflite").read_bytes() == b"x"
    assert oct(target.stat().st_mode & 0o777) != oct(0o700)
    assert leftovers(tmp_path) == []


def test_existing_bundle_is_replaced_whole(tmp_path):
    target = tmp_path / "bundle"
    target.mkdir()
    (target / "model.json").write_text("{}")
    (target / "old.tflite").write_bytes(b"old")
    with staged_folder(target, "model.json") as folder:
        (folder / "new.tflite").write_bytes(b"new")
        assert (target / "old.tflite").exists()  # still there while the new one is built
    assert sorted(p.name for p in target.iterdir()) == ["new.tflite"]
    assert leftovers(tmp_path) == []


def test_failure_keeps_the_existing_bundle(tmp_path):
    target = tmp_path / "bundle"
    target.mkdir()
    (target / "model.json").write_text("{}")
    (target / "old.tflite").write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with staged_folder(target, "model.json") as folder:
            (folder / "half.tflite").write_bytes(b"half")
            raise RuntimeError("conversion failed")
    assert sorted(p.name for p in target.iterdir()) == ["model.json", "old.tflite"]
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_interrupt_cleanly(tmp_path, signum):
    target = tmp_path / "bundle"
    # a terminal session's disposition, whatever this test inherited (under nohup SIGHUP is ignored,
    # and staging rightly keeps it so: the test below)
    inherited = signal.signal(signum, signal.SIG_DFL)
    try:
        with pytest.raises(Interrupted, match=signal.Signals(signum).name):
            with staged_folder(target, "model.json") as folder:
                (folder / "half.tflite").write_bytes(b"half")
                os.kill(os.getpid(), signum)
        assert not target.exists()
        assert leftovers(tmp_path) == []
        assert signal.getsignal(signum) == signal.SIG_DFL
    finally:
        signal.signal(signum, inherited)


def test_a_folder_that_is_not_a_bundle_is_never_replaced(tmp_path):
    work = tmp_path / "projects"
    work.mkdir()
    (work / "thesis.tex").write_text("years of it")
    with pytest.raises(SourceError, match="is not a bundle \\(no model.json\\); not replacing it"):
        with staged_folder(work, "model.json"):
            pass
    assert (work / "thesis.tex").read_text() == "years of it"
    assert leftovers(tmp_path) == []
    afile = tmp_path / "model"
    afile.write_text("x")
    with pytest.raises(SourceError, match="is not a folder"):
        with staged_folder(afile, "model.json"):
            pass


def test_a_run_under_nohup_survives_the_session_hangup(tmp_path):
    """nohup (or a dropped ssh session's SIGHUP, ignored) must not be turned into an interruption."""
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with staged_folder(tmp_path / "bundle", "model.json") as folder:
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGHUP)
            (folder / "model.json").write_text("{}")
        assert (tmp_path / "bundle" / "model.json").read_text() == "{}"
    finally:
        signal.signal(signal.SIGHUP, previous)
