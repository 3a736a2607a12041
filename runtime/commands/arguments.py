"""Bounded numbers on the command line: the one rule for every command's numeric options.

`type=number(gt=0, le=86400)` rejects what is not a finite number inside its bounds, with the
option named by argparse (`argument --duration: must be > 0, got nan`), exit 2.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def number(*, integer: bool = False, gt: float | None = None, ge: float | None = None,
           lt: float | None = None, le: float | None = None) -> Callable[[str], float | int]:
    def parse(text: str) -> float | int:
        try:
            value = int(text) if integer else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {'a whole number' if integer else 'a number'}, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
        for bound, ok, op in ((gt, value > (gt or 0), ">"), (ge, value >= (ge or 0), ">="),
                              (lt, value < (lt or 0), "<"), (le, value <= (le or 0), "<=")):
            if bound is not None and not ok:
                raise argparse.ArgumentTypeError(f"must be {op} {bound:g}, got {text}")
        return value

    parse.__name__ = "whole number" if integer else "number"
    return parse


def thread_counts(text: str) -> list[int]:
    """`1,2,4`: interpreter thread counts, each within what LiteRT takes."""
    from ..config.sections import MAX_THREADS

    one = number(integer=True, ge=1, le=MAX_THREADS)
    return [one(part.strip()) for part in text.split(",") if part.strip()]
