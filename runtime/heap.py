"""Giving freed memory back to the system.

glibc keeps freed heap pages (per-thread arenas above all) for reuse, so a daemon whose frames,
JPEGs and detections come and go sees its RSS creep up with fragmentation though nothing leaks.
`malloc_trim(0)` returns those pages; it costs a few milliseconds, so the daemon calls it now and
then, and the resource monitor's shed_caches calls it on a soft memory breach.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools


@functools.lru_cache(maxsize=1)
def _libc():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "malloc_trim") else None
    except OSError:  # not glibc (musl, macOS): nothing to trim
        return None


def trim() -> bool:
    """Return free heap pages to the system; False where the C library cannot."""
    libc = _libc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True
