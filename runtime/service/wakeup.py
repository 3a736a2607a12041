"""A wakeup a signal handler may set: a non-blocking self-pipe.

A handler runs in the main thread between two bytecodes, possibly while that thread holds a
lock; `threading.Event.set()` there can deadlock against the main thread's own `Event.wait()`
(its condition's lock is not re-entrant). Writing a byte to a pipe takes no Python lock.
"""

from __future__ import annotations

import os
import select


class Wakeup:
    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)

    def set(self) -> None:
        """Safe from a signal handler and from any thread."""
        try:
            os.write(self._write, b"\0")
        except BlockingIOError:
            pass  # the pipe is full of wakeups already

    def wait(self, timeout: float) -> bool:
        """Sleep until set (or `timeout` seconds); True when set. Clears it."""
        ready, _, _ = select.select([self._read], [], [], timeout)
        if not ready:
            return False
        try:
            while os.read(self._read, 4096):
                pass
        except BlockingIOError:
            pass
        return True

    def close(self) -> None:
        os.close(self._read)
        os.close(self._write)
