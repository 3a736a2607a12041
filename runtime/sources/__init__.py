"""Camera sources (Frigate-style: one small module per backend, chosen by name from config).

`camera.source` picks the backend: "picamera2" or "picamera2:N" is the Pi camera; anything else
goes to OpenCV (a V4L2 index or /dev path, an rtsp/http URL, or a video file).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from .base import Frame, Source, SourceEnded, SourceError

if TYPE_CHECKING:
    from ..config import CameraConfig

__all__ = ["Frame", "Source", "SourceEnded", "SourceError", "source_factory"]


def source_factory(camera: CameraConfig) -> Callable[[], Source]:
    """A function making a fresh, unopened source for `camera`; the capture supervisor calls it
    for every (re)connection."""
    spec = camera.source
    if spec == "picamera2" or spec.startswith("picamera2:"):
        index = spec.partition(":")[2] or "0"
        if not index.isdigit():
            raise SourceError(f"camera.source: {spec!r}: the picamera2 camera number must be an integer")

        def make() -> Source:
            from .picamera2 import Picamera2Source

            return Picamera2Source(int(index), width=camera.width, height=camera.height, lores=camera.lores,
                                   fps=camera.fps, read_timeout_s=camera.read_timeout_s)

        return make

    def make_opencv() -> Source:
        from .opencv import OpenCVSource

        return OpenCVSource(spec, width=camera.width, height=camera.height, fps=camera.fps, loop=camera.loop,
                            as_fast_as_possible=camera.as_fast_as_possible,
                            open_timeout_s=camera.open_timeout_s, read_timeout_s=camera.read_timeout_s)

    return make_opencv
