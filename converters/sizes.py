"""Input-size variants: which sizes a conversion builds, what they are called, and why one is not.

`--sizes 300,256,224,192,160` asks for the model at each input size (`W` or `WxH`), every one in
each quantization asked. The source's own size is always built and keeps the plain names (`int8`,
`float32`); another size is named after it (`int8-224`, `float32-320x240`). A size the source
cannot take is reported with the reason (a fixed-size model, a network that does not run there,
anchors that cannot be laid out for it) and the other sizes are still built.

Variants of one quantization may share one model file whose input size is left free (`shared`,
the default): the file is converted once, the runtime resizes its input to each variant's size,
and int8 is calibrated on the calibration frames spread over the sizes asked. `separate` converts a file
per size, each calibrated at its own size.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .sources import SourceModel
from .sources.base import SizeError

SIZE_FILES = ("shared", "separate")


def parse_size(text: str) -> tuple[int, int]:
    """`224` (square) or `320x240` (width x height) -> (width, height)."""
    parts = text.lower().split("x")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise ValueError(f"expected W or WxH, got {text!r}") from None
    if len(values) == 1:
        values = values * 2
    if len(values) != 2 or min(values) <= 0:
        raise ValueError(f"expected a positive W or WxH, got {text!r}")
    return values[0], values[1]


def size_name(base: str, size: tuple[int, int]) -> str:
    w, h = size
    return f"{base}-{w}" if w == h else f"{base}-{w}x{h}"


@dataclass
class SizePlan:
    """The sizes asked for, the source at each size built, and the reason for each refused."""

    full: tuple[int, int]
    built: dict[tuple[int, int], SourceModel] = field(default_factory=dict)  # in the order asked, the source's own first
    refused: dict[tuple[int, int], str] = field(default_factory=dict)

    def report(self) -> list[dict]:
        rows = [{"size": list(s), "built": True, "why": None} for s in self.built]
        rows += [{"size": list(s), "built": False, "why": why} for s, why in self.refused.items()]
        return rows


def plan_sizes(source: SourceModel, sizes: list[tuple[int, int]]) -> SizePlan:
    full = (source.input.width, source.input.height)
    plan = SizePlan(full, {full: source})
    for size in dict.fromkeys(sizes):
        if size == full:
            continue
        if source.resized is None:
            plan.refused[size] = f"{source.path.name}: {source.fixed_size}"
            continue
        try:
            plan.built[size] = source.resized(*size)
        except SizeError as exc:
            plan.refused[size] = str(exc)
    return plan
