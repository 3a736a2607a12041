"""`[budget]` parsing: documented defaults, and errors that name the field."""

from __future__ import annotations

import tomllib

import pytest

from pathlib import Path

from runtime import config
from runtime.config import Budgets
from runtime.table import SchemaError

pytestmark = pytest.mark.board  # runs on the emulated arm64 root too (deploy/arm64/check.py)


def parse(text: str) -> Budgets:
    return config.parse(tomllib.loads(text), "config.toml", Path(".")).budget


def test_defaults():
    b = parse("[budget]\n")
    assert b == Budgets()
    assert (b.memory_mb, b.memory_hard_mb, b.power_w) == (None, None, None)
    assert (b.power_window_s, b.power_scope, b.board, b.temperature_c, b.min_fps) == (30.0, "board", "auto", 75.0, 1.0)


def test_all_keys():
    b = parse("""[budget]
memory_mb = 300
memory_hard_mb = 420
power_w = 4.5
power_window_s = 20
power_scope = "process"
board = "pi-5"
temperature_c = 70
min_fps = 2
""")
    assert b == Budgets(300.0, 420.0, 4.5, 20.0, "process", "pi-5", 70.0, 2.0)


def test_hard_memory_defaults_to_a_quarter_over_soft():
    assert parse("[budget]\nmemory_mb = 200\n").memory_hard_mb == 250.0
    assert parse("[budget]\nmemory_hard_mb = 500\n").memory_mb is None


def test_temperature_can_be_turned_off():
    assert parse("[budget]\ntemperature_c = false\n").temperature_c is None


@pytest.mark.parametrize(
    "text, message",
    [
        ("memory_mb = 300\nmemory_hard_mb = 300", "config.toml: budget.memory_hard_mb: must be above memory_mb (300), got 300"),
        ("power_w = 0", "config.toml: budget.power_w: must be > 0, got 0"),
        ("power_w = '4'", "config.toml: budget.power_w: must be a number, got '4'"),
        ("power_scope = 'cluster'", "config.toml: budget.power_scope: 'cluster' is not one of board, process"),
        ("board = 'pi-6'", "config.toml: budget.board: 'pi-6' is not one of auto, pi-zero-2w, pi-3b+, pi-4b, pi-5, generic"),
        ("temperature_c = 200", "config.toml: budget.temperature_c: must be <= 110, got 200"),
        ("power_window_s = 1", "config.toml: budget.power_window_s: must be >= 5, got 1"),
        ("powr_w = 3", "config.toml: budget.powr_w: unknown key"),
    ],
)
def test_bad_values_name_the_field(text, message):
    with pytest.raises(SchemaError) as info:
        parse("[budget]\n" + text + "\n")
    assert str(info.value) == message
