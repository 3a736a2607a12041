"""Raspberry Pi firmware throttling flags: `vcgencmd get_throttled` -> `throttled=0x50005`.

Bits 0-3 are "now", bits 16-19 the same conditions "since boot" (Raspberry Pi documentation,
vcgencmd get_throttled).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

FLAGS = {0: "under-voltage", 1: "arm-frequency-capped", 2: "throttled", 3: "soft-temperature-limit"}
_LINE = re.compile(r"throttled=(0x[0-9a-fA-F]+|\d+)")


@dataclass(frozen=True)
class Throttling:
    raw: int
    now: tuple[str, ...]
    since_boot: tuple[str, ...]
    source: str = "sensor:vcgencmd get_throttled"

    @property
    def hot(self) -> bool:
        """The firmware is holding clocks down for temperature right now."""
        return "throttled" in self.now or "soft-temperature-limit" in self.now

    @property
    def under_voltage(self) -> bool:
        return "under-voltage" in self.now


def parse_throttled(text: str) -> Throttling | None:
    match = _LINE.search(text or "")
    if not match:
        return None
    raw = int(match.group(1), 0)
    return Throttling(
        raw=raw,
        now=tuple(name for bit, name in FLAGS.items() if raw & (1 << bit)),
        since_boot=tuple(name for bit, name in FLAGS.items() if raw & (1 << (bit + 16))),
    )
