"""The error a command raises for a clean one-line failure (printed by the CLI, no traceback)."""

from __future__ import annotations

from . import exitcodes


class CommandError(Exception):
    def __init__(self, message: str, code: int = exitcodes.BAD_INPUT):
        super().__init__(message)
        self.code = code


def one_line(exc: BaseException) -> str:
    """An exception as one line for logs, status.json and events (cv2.error spans several)."""
    return " ".join(str(exc).split()) or type(exc).__name__
