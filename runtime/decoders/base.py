"""What every decoder is: it names the outputs it reads and turns them into normalised Detections."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from ..detections import Detections
from ..interpreter import TensorInfo


@dataclass(frozen=True)
class DecoderContext:
    """What a decoder may know besides its parameters."""

    outputs: list[TensorInfo]  # the model's outputs
    input_size: tuple[int, int]  # (width, height) of the model input
    bundle_dir: Path | None  # for files the parameters name (anchors.npy)
    where: str  # the manifest (or model) path, for error messages


class Decoder(Protocol):
    tensors: list[TensorInfo]  # the outputs to fetch, in the order decode() takes them

    def decode(self, arrays: list[np.ndarray]) -> Detections:
        """Raw output arrays (as stored, possibly quantized) -> Detections, xyxy normalised 0..1."""
        ...


class DecoderError(ValueError):
    """The model's outputs do not fit the decoder, or its parameters are wrong (one line)."""


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def find_output(ctx: DecoderContext, name: str | None, role: str, predicate=None) -> TensorInfo:
    """An output by exact name, else the unique one whose shape fits `predicate`."""
    if name is not None:
        for t in ctx.outputs:
            if t.name == name:
                return t
        raise DecoderError(f"{ctx.where}: output.params.{role}: no output named {name!r} (outputs: {', '.join(t.name for t in ctx.outputs)})")
    matches = [t for t in ctx.outputs if predicate(t)]
    if len(matches) != 1:
        shapes = ", ".join(f"{t.name} {list(t.shape)}" for t in ctx.outputs)
        raise DecoderError(f"{ctx.where}: cannot tell which output holds the {role} ({shapes}); name it in output.params.{role}")
    return matches[0]
