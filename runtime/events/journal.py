"""Events in the journal: one JSON line each, through the logger `edgewatch.events` at INFO.

The line goes to stderr, which under systemd is the journal (the unit's SyslogIdentifier= names
it), so `journalctl -u edgewatch -o cat | jq` reads events even when the database cannot.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import Any

LOGGER = "edgewatch.events"


class _JournalFormatter(logging.Formatter):
    """The bare JSON line; under journald prefixed `<6>` so the entry gets priority info."""

    def __init__(self, syslog_prefix: bool):
        super().__init__("%(message)s")
        self._prefix = "<6>" if syslog_prefix else ""

    def format(self, record: logging.LogRecord) -> str:
        return self._prefix + super().format(record)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is at the time, as logging's own last-resort handler does."""

    @property  # type: ignore[override]
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def _stderr_is_journal() -> bool:
    # systemd sets JOURNAL_STREAM=dev:inode for a service's stderr stream (systemd.exec(5)).
    stream = os.environ.get("JOURNAL_STREAM", "")
    try:
        st = os.fstat(sys.stderr.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return stream == f"{st.st_dev}:{st.st_ino}"


def logger() -> logging.Logger:
    """The journal logger, given its own stderr handler once: event lines must reach the journal
    whatever level the daemon logs at, and must not be reformatted by the root handler."""
    log = logging.getLogger(LOGGER)
    if not log.handlers:
        handler = _StderrHandler()
        handler.setFormatter(_JournalFormatter(_stderr_is_journal()))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False
    return log


def emit(log: logging.Logger, record: dict[str, Any]) -> None:
    log.info("%s", json.dumps(record, separators=(",", ":"), ensure_ascii=False))
