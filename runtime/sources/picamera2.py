"""The Raspberry Pi camera through picamera2 (libcamera). Imported only when configured: it
exists only on a Pi (Raspberry Pi OS's `python3-picamera2`, seen through a venv made with
`--system-site-packages`). Not exercised by the test suite: there is no Pi camera in CI.

Two streams of one sensor readout: `main` (BGR, "RGB888" is B,G,R in memory) for snapshots and,
when `lores` is set, a small YUV420 stream sized to the model so inference needs no big resize.
"""

from __future__ import annotations

import cv2
import numpy as np

from .base import Source, SourceError


class Picamera2Source(Source):
    def __init__(self, camera: int = 0, *, width: int = 0, height: int = 0, lores: tuple[int, int] | None = None,
                 fps: float | None = None, read_timeout_s: float = 5.0):
        self.camera = camera
        self.name = f"picamera2:{camera}"
        self.size = (width, height) if width and height else (1280, 720)
        self.lores = lores
        self.fps = fps
        self.read_timeout_s = read_timeout_s
        self._cam = None

    def describe(self) -> str:
        return f"picamera2 camera {self.camera} main {self.size[0]}x{self.size[1]}" + (
            f" lores {self.lores[0]}x{self.lores[1]}" if self.lores else "")

    def open(self) -> None:
        try:
            from picamera2 import Picamera2
        except ImportError as exc:
            raise SourceError(f"{self.name}: picamera2 is not installed (apt install python3-picamera2; "
                              f"the venv needs --system-site-packages): {exc}") from None
        cam = None
        try:
            cam = Picamera2(self.camera)
            streams = {"main": {"size": self.size, "format": "RGB888"}}
            if self.lores:
                streams["lores"] = {"size": self.lores, "format": "YUV420"}
            controls = {"FrameRate": self.fps} if self.fps else {}
            # Few buffers: we want the newest frame, not a backlog.
            cam.configure(cam.create_video_configuration(**streams, controls=controls, buffer_count=3))
            cam.start()
        except Exception as exc:  # noqa: BLE001 - libcamera raises RuntimeError, OSError, IndexError...
            if cam is not None:  # an opened camera left unclosed stays "busy" until a reboot
                try:
                    cam.close()
                except Exception:  # noqa: BLE001
                    pass
            raise SourceError(f"{self.name}: cannot start ({' '.join(str(exc).split())})") from None
        self._cam = cam

    def read(self) -> tuple[np.ndarray, np.ndarray | None]:
        if self._cam is None:
            raise SourceError(f"{self.name}: not open")
        try:
            job = self._cam.capture_request(wait=False)
            request = self._cam.wait(job, timeout=self.read_timeout_s)
        except Exception as exc:  # noqa: BLE001 - a timeout or a dead camera: the supervisor reconnects
            raise SourceError(f"{self.name}: capture failed ({exc})") from None
        try:
            main = request.make_array("main")
            if not self.lores:
                return main, None
            yuv = request.make_array("lores")
            return cv2.cvtColor(yuv, cv2.COLOR_YUV2BGR_I420), main
        finally:
            request.release()

    def close(self) -> None:
        if self._cam is not None:
            cam, self._cam = self._cam, None
            try:
                cam.stop()
            finally:
                cam.close()
