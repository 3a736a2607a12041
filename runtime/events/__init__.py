"""The local event log: SQLite (WAL) written in batches by one thread, snapshots as files,
retention by age and size, one JSON line per event in the journal, and queries for `edgewatch events`."""

from .model import Event, Retention, SystemEvent
from .database import EventLogError
from .writer import EventLog

__all__ = ["Event", "EventLog", "EventLogError", "Retention", "SystemEvent"]
