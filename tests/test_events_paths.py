"""The one rule for the state folder, shared by the daemon and `edgewatch events`."""

from __future__ import annotations

from pathlib import Path

from runtime.paths import state_dir


def test_systemd_state_directory_wins_and_its_first_entry_is_ours():
    env = {"STATE_DIRECTORY": "/var/lib/edgewatch:/var/lib/other", "XDG_STATE_HOME": "/x", "HOME": "/home/pi"}
    assert state_dir(env) == Path("/var/lib/edgewatch")


def test_xdg_state_home_then_home():
    assert state_dir({"XDG_STATE_HOME": "/srv/state", "HOME": "/home/pi"}) == Path("/srv/state/edgewatch")
    assert state_dir({"HOME": "/home/pi"}) == Path("/home/pi/.local/state/edgewatch")
    # A relative XDG_STATE_HOME is invalid by the XDG spec and ignored; so is an empty one.
    assert state_dir({"XDG_STATE_HOME": "state", "HOME": "/home/pi"}) == Path("/home/pi/.local/state/edgewatch")
    assert state_dir({"STATE_DIRECTORY": "", "XDG_STATE_HOME": "", "HOME": "/home/pi"}) == Path("/home/pi/.local/state/edgewatch")
