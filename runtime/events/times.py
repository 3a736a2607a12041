"""Event times: unix seconds in the database, ISO 8601 with an offset on the way out, and the
`--since`/`--until` grammar (ISO 8601 or a relative age such as `10m`) on the way in."""

from __future__ import annotations

import re
import time
from datetime import datetime

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_RELATIVE = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")


class TimeSpecError(ValueError):
    """A `--since`/`--until` value that is neither ISO 8601 nor a relative age."""


def parse_time(text: str, now: float | None = None) -> float:
    """`now`, `10m`/`2h`/`1d`/`1w`/`30s` ago, or ISO 8601 (naive means local time) -> unix seconds."""
    value = text.strip()
    now = time.time() if now is None else now
    if value == "now":
        return now
    relative = _RELATIVE.fullmatch(value)
    if relative:
        return now - float(relative.group(1)) * _UNITS[relative.group(2)]
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise TimeSpecError(
            f"{text!r} is not a time (ISO 8601 like 2026-11-26T08:00 or 2026-11-26, or relative like 30s, 10m, 2h, 1d, 1w)"
        ) from None
    # A naive value is local time, as the user reads a clock; astimezone() assumes exactly that.
    return parsed.astimezone().timestamp()


def iso(t: float | None) -> str | None:
    """Unix seconds -> local ISO 8601 with its UTC offset, to the millisecond."""
    if t is None:
        return None
    return datetime.fromtimestamp(t).astimezone().isoformat(timespec="milliseconds")
