"""Decoders by name (as `output.decoder` in model.json names them), one small module each."""

from __future__ import annotations

from typing import Any

from ..table import SchemaError
from .base import Decoder, DecoderContext, DecoderError


def create_decoder(name: str, params: dict[str, Any], ctx: DecoderContext) -> Decoder:
    from . import ssd_anchors, ssd_postprocess, yolo

    registry = {
        "ssd_postprocess": ssd_postprocess.SsdPostprocessDecoder,
        "ssd_anchors": ssd_anchors.SsdAnchorsDecoder,
        "yolo": yolo.YoloDecoder,
    }
    if name not in registry:
        raise DecoderError(f"{ctx.where}: output.decoder: {name!r} is not one of {', '.join(registry)}")
    try:
        return registry[name](params, ctx)
    except SchemaError as exc:
        raise DecoderError(str(exc)) from None


__all__ = ["Decoder", "DecoderContext", "DecoderError", "create_decoder"]
