"""sd_notify(3) without libsystemd: one datagram per message to $NOTIFY_SOCKET.

The protocol is a datagram of newline-separated `KEY=value` lines to an AF_UNIX socket; a path
starting with '@' names the abstract namespace. With no NOTIFY_SOCKET (not under systemd, or
Type= is not notify) every call is a no-op, so the daemon runs the same by hand.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Mapping

log = logging.getLogger("edgewatch.notify")


class Notifier:
    def __init__(self, environ: Mapping[str, str] | None = None):
        env = os.environ if environ is None else environ
        addr = env.get("NOTIFY_SOCKET", "")
        self.address = ("\0" + addr[1:]) if addr.startswith("@") else addr
        self._sock: socket.socket | None = None
        if self.address:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            # Never block: a busy (or gone) systemd must not stall the daemon; a lost STATUS= is fine.
            self._sock.setblocking(False)
        # The watchdog applies to us only if WATCHDOG_PID is unset or names this process.
        self.watchdog_s: float | None = None
        usec, pid = env.get("WATCHDOG_USEC", ""), env.get("WATCHDOG_PID", "")
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            self.watchdog_s = int(usec) / 1e6

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    def send(self, *lines: str) -> bool:
        if self._sock is None:
            return False
        try:
            self._sock.sendto("\n".join(lines).encode(), self.address)
            return True
        except OSError as exc:  # systemd gone or its queue full (EAGAIN): never the daemon's death
            log.debug("sd_notify failed: %s", exc)
            return False

    def ready(self, status: str | None = None) -> bool:
        return self.send("READY=1", *([f"STATUS={status}"] if status else []))

    def reloading(self) -> bool:
        # MONOTONIC_USEC lets Type=notify-reload match this to the reload it asked for.
        return self.send("RELOADING=1", f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}")

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def status(self, text: str) -> bool:
        return self.send(f"STATUS={text}")

    def stopping(self) -> bool:
        return self.send("STOPPING=1")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


class WatchdogFeeder:
    """When to send WATCHDOG=1: every quarter interval, and only while the pipeline's heartbeat
    is younger than half the interval. A stuck inference thus stops the pings and systemd
    restarts the service; a live pipeline waiting for a lost camera keeps them going."""

    def __init__(self, interval_s: float):
        self.interval_s = interval_s
        self._last = float("-inf")

    def due(self, now: float, heartbeat: float) -> bool:
        if now - self._last < self.interval_s / 4 or now - heartbeat >= self.interval_s / 2:
            return False
        self._last = now
        return True
