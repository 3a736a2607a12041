"""The one rule for the state folder and the config file, shared by the daemon and every command."""

from __future__ import annotations

from pathlib import Path

from runtime.paths import config_path, state_dir


def test_an_explicit_folder_wins_then_systemd_and_its_first_entry_is_ours(tmp_path):
    env = {"STATE_DIRECTORY": "/var/lib/edgewatch:/var/lib/other", "XDG_STATE_HOME": "/x", "HOME": "/home/pi"}
    assert state_dir("/srv/s", env, service_dir=tmp_path) == Path("/srv/s")
    assert state_dir(None, env, service_dir=tmp_path) == Path("/var/lib/edgewatch")


def test_the_service_folder_when_installed_else_xdg_state_home_then_home(tmp_path):
    service = tmp_path / "var-lib-edgewatch"
    env = {"XDG_STATE_HOME": "/srv/state", "HOME": "/home/pi"}
    assert state_dir(None, env, service_dir=service) == Path("/srv/state/edgewatch")
    service.mkdir()
    # A board with the service installed: its commands read what the service writes.
    assert state_dir(None, env, service_dir=service) == service
    missing = tmp_path / "none"
    assert state_dir(None, {"HOME": "/home/pi"}, service_dir=missing) == Path("/home/pi/.local/state/edgewatch")
    # A relative XDG_STATE_HOME is invalid by the XDG spec and ignored; so is an empty one.
    assert state_dir(None, {"XDG_STATE_HOME": "state", "HOME": "/home/pi"}, service_dir=missing) == Path("/home/pi/.local/state/edgewatch")
    assert state_dir(None, {"STATE_DIRECTORY": "", "XDG_STATE_HOME": "", "HOME": "/home/pi"}, service_dir=missing) == Path("/home/pi/.local/state/edgewatch")


def test_config_explicit_then_systemd_then_the_service_file_else_the_embedded_default(tmp_path):
    service = tmp_path / "config.toml"
    assert config_path("my.toml", {}, service_config=service) == Path("my.toml")
    assert config_path(None, {"CONFIGURATION_DIRECTORY": "/etc/edgewatch:/x"}, service_config=service) == Path("/etc/edgewatch/config.toml")
    assert config_path(None, {}, service_config=service) is None
    service.write_text("")
    assert config_path(None, {}, service_config=service) == service
