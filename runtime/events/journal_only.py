"""The event log's stand-in when the database cannot be opened (a read-only or full card at start).

Detection goes on and every event still reaches the journal as a JSON line; nothing is stored,
and `stats["failing"]` says why, so status.json shows the degradation instead of the daemon dying.
"""

from __future__ import annotations

from typing import Any

from . import journal
from .model import Event


class JournalOnlyLog:
    def __init__(self, reason: str, journal_lines: bool = True):
        self._reason = reason
        self._journal = journal.logger() if journal_lines else None
        self._started: set[str] = set()
        self._counts = {"written": 0, "dropped": 0, "pending": 0, "snapshots_dropped": 0, "batches": 0, "deleted": 0}

    def upsert(self, event: Event, snapshot_jpeg: bytes | None = None) -> None:
        self._counts["dropped"] += 1
        if snapshot_jpeg is not None:
            self._counts["snapshots_dropped"] += 1
        if self._journal is None:
            return
        if event.end is not None:
            self._started.discard(event.id)
            journal.emit(self._journal, {"state": "end", **event.to_dict(trajectory=False)})
        elif event.id not in self._started:
            self._started.add(event.id)
            journal.emit(self._journal, {"state": "start", **event.to_dict(trajectory=False)})

    def record_system(self, kind: str, message: str, detail: dict[str, Any]) -> None:
        self._counts["dropped"] += 1

    def flush(self, timeout: float | None = 10.0) -> bool:
        return True

    def close(self, timeout: float = 10.0) -> None:
        self._started.clear()

    @property
    def stats(self) -> dict[str, Any]:
        return {**self._counts, "failing": self._reason}
