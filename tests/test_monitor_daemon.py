"""The real closed loop on this machine: the daemon on the person model and vtest.avi, power
estimated from its own CPU use, the budget at half its unconstrained draw (tests/monitor_closed_loop.py
prints the full figures; this checks the loop holds the budget)."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor_closed_loop import VTEST, closed_loop, memory_loop


pytestmark = [pytest.mark.slow, pytest.mark.realtime]


@pytest.fixture(scope="module")
def person(person_bundle) -> Path:
    if not VTEST.is_file():
        pytest.fail(f"{VTEST} is missing: apt-get install opencv-doc")
    return person_bundle


def test_daemon_holds_half_its_unconstrained_power(person, tmp_path):
    figures = closed_loop(person, tmp_path, seconds=50, reference_s=16)
    free, held = figures["_runs"]
    assert figures["exit_codes"] == [0, 0], held.stderr[-2000:]
    assert figures["power_source"] == "estimate:pi-4b-profile(process cpu, above idle)"
    assert free.samples[-1].decisions == 0  # a budget that never binds changes nothing
    assert figures["decisions"] >= 1 and figures["knobs"]["rate_limit"] is not None
    # Unconstrained it drew twice the budget; held, the mean of the last 25 s is near the budget (above: the
    # loop failed; far below: other work on the two shared cores starved the daemon). The ±10% figure
    # comes from the benchmark's longer run: python tests/monitor_closed_loop.py.
    assert 0.5 <= figures["mean_over_budget"] <= 1.15, {k: v for k, v in figures.items() if k != "_runs"}
    assert 0 < figures["fps"] < figures["unconstrained_fps"]


def test_memory_budget_below_float32_loads_int8_and_rss_stays_under(person, tmp_path):
    figures = memory_loop(person, tmp_path, seconds=25, measure_s=12)
    assert figures["exit_code"] == 0
    assert figures["peak_rss_mb"]["float32"] > figures["memory_budget_mb"]
    assert figures["chosen"].startswith("int8")
    assert figures["rss_max_mb"] <= figures["memory_budget_mb"], figures
    assert figures["memory_state"] == "ok" and figures["decisions"] == 0
