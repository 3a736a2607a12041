"""EventLog: the daemon's writer. Callers queue events; one thread writes them in batches.

A batch is one transaction, taken every `batch_seconds` or `batch_max` records, never one per
frame: an SD card wears out under per-frame commits. `upsert` never blocks: when the queue is
full the event is dropped and counted. A failing write (a full disk above all) drops that batch,
counts it, warns once per episode, and the next batch simply tries again, so writing resumes by
itself when space returns. Nothing already committed is touched by a failure: SQLite rolls the
batch back.
"""

from __future__ import annotations

import errno
import json
import logging
import queue
import sqlite3
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from . import journal, query, retention, snapshots
from . import database
from .model import Event, Retention, SystemEvent

_log = logging.getLogger(__name__)

UPSERT_SQL = """
INSERT INTO events (id, label, class_id, score, start, "end", box, snapshot, snapshot_bytes, source, model, updated, rev, last_seen,
                    trajectory, zones, stationary)
VALUES (:id, :label, :class_id, :score, :start, :end, :box, :snapshot, :snapshot_bytes, :source, :model, :updated, :rev, :last_seen,
        :trajectory, :zones, :stationary)
ON CONFLICT(id) DO UPDATE SET
    label = excluded.label,
    class_id = excluded.class_id,
    box = CASE WHEN excluded.score >= score THEN excluded.box ELSE box END,
    score = MAX(score, excluded.score),
    start = MIN(start, excluded.start),
    "end" = excluded."end",
    snapshot = COALESCE(excluded.snapshot, snapshot),
    snapshot_bytes = CASE WHEN excluded.snapshot IS NULL THEN snapshot_bytes ELSE excluded.snapshot_bytes END,
    source = excluded.source,
    model = excluded.model,
    updated = excluded.updated,
    rev = excluded.rev,
    trajectory = excluded.trajectory,
    zones = excluded.zones,
    stationary = MAX(stationary, excluded.stationary),
    last_seen = MAX(COALESCE(last_seen, excluded.last_seen), COALESCE(excluded.last_seen, last_seen))
"""
# An event a crash (a kill, an OOM kill, a power cut) left open ends when it was last seen.
_CLOSE_LEFT_OPEN_SQL = """
UPDATE events SET "end" = MAX(start, COALESCE(last_seen, updated)), recovered = 1, rev = ? WHERE id = ? AND "end" IS NULL
"""
_INSERT_SYSTEM = "INSERT INTO system_events (kind, message, detail, time) VALUES (?, ?, ?, ?)"

# Ids whose start went to the journal, so that their end line follows; bounded, oldest forgotten.
_JOURNAL_OPEN_MAX = 4096
_DISK_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
_SQLITE_FULL = 13


@dataclass(frozen=True, slots=True)
class _Upsert:
    event: Event
    jpeg: bytes | None


@dataclass(frozen=True, slots=True)
class _Flush:
    done: threading.Event


_STOP = object()


class EventLog:
    """The local event log: `upsert` and `record_system` queue, a writer thread commits in batches.

    `snapshots_dir` defaults to `snapshots/` beside the database. Snapshot JPEG bytes given to
    `upsert` are written by the writer thread as `<snapshots_dir>/<event id>.jpg` and the event row
    refers to that file; a path given in `Event.snapshot` instead is recorded as is. Either way
    retention deletes the file with its event.
    """

    def __init__(
        self,
        path: str | Path,
        snapshots_dir: str | Path | None = None,
        retention: Retention = Retention(),
        batch_seconds: float = 2.0,
        *,
        batch_max: int = 100,
        queue_max: int = 2000,
        queue_max_bytes: int = 32 * 1024 * 1024,
        retention_seconds: float = 60.0,
        journal_lines: bool = True,
    ):
        if batch_seconds <= 0 or batch_max < 1 or queue_max < 1 or retention_seconds <= 0:
            raise ValueError("EventLog: batch_seconds, batch_max, queue_max and retention_seconds must be > 0")
        self.path = Path(path).resolve()
        self.snapshots_dir = Path(snapshots_dir).resolve() if snapshots_dir is not None else self.path.parent / "snapshots"
        self._db_dir = self.path.parent
        self._retention = retention
        self._batch_seconds = batch_seconds
        self._batch_max = batch_max
        self._queue_max_bytes = queue_max_bytes
        self._retention_seconds = retention_seconds
        self._journal = journal.logger() if journal_lines else None

        self._conn = database.connect(self.path)
        try:
            self.snapshots_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self._conn.close()
            raise database.EventLogError(f"{self.snapshots_dir}: cannot create the snapshots folder: {exc}") from exc
        self._rev = self._conn.execute("SELECT COALESCE(MAX(rev), 0) FROM events").fetchone()[0]
        # Events a cut-short run left open (read now, before this run writes any): closed by the writer.
        self._left_open = [i for (i,) in self._conn.execute('SELECT id FROM events WHERE "end" IS NULL')]

        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_max)
        self._lock = threading.Lock()
        self._counts = {"written": 0, "dropped": 0, "pending": 0, "snapshots_dropped": 0, "batches": 0, "deleted": 0}
        self._pending_bytes = 0
        self._failure: str | None = None  # the cause of the current failing episode
        self._failure_kind = ""  # what failed last in it: "database" or "snapshot"
        self._failed_in_episode = 0
        self._snapshots_paused: str | None = None  # why snapshots wait (low disk space), else None
        self._sweep_needed = True  # a crash may have left temp or orphan snapshot files
        self._journal_open: OrderedDict[str, None] = OrderedDict()
        self._next_maintenance = 0.0  # at once: retention and the sweep run when the writer starts
        self._next_free_space = 0.0  # a full disk frees space at most once per retention period
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="edgewatch-events", daemon=True)
        self._thread.start()

    # -- the caller's side: never blocks -------------------------------------------------------

    def upsert(self, event: Event, snapshot_jpeg: bytes | None = None) -> None:
        """Queue a new or updated event (same `id` = same object); a snapshot replaces the last one.
        Never blocks: with the queue full the event is dropped and counted."""
        size = len(snapshot_jpeg) if snapshot_jpeg is not None else 0
        with self._lock:
            if self._closing:
                self._counts["dropped"] += 1
                return
            if size and self._pending_bytes + size > self._queue_max_bytes:
                # Snapshots waiting on a slow card must not eat the board's memory: keep the event.
                snapshot_jpeg, size = None, 0
                self._counts["snapshots_dropped"] += 1
            self._counts["pending"] += 1
            self._pending_bytes += size
        try:
            self._queue.put_nowait(_Upsert(event, snapshot_jpeg))
        except queue.Full:
            with self._lock:
                self._counts["pending"] -= 1
                self._pending_bytes -= size
                self._counts["dropped"] += 1

    def record_system(self, kind: str, message: str, detail: dict[str, Any]) -> None:
        """Queue a system event (budget decision, lost source, reload); same batching as events."""
        # Serialised here so that a bad detail is never the writer thread's problem.
        note = SystemEvent(kind, message, json.loads(json.dumps(detail, default=str)), time.time())
        with self._lock:
            if self._closing:
                self._counts["dropped"] += 1
                return
            self._counts["pending"] += 1
        try:
            self._queue.put_nowait(note)
        except queue.Full:
            with self._lock:
                self._counts["pending"] -= 1
                self._counts["dropped"] += 1

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Commit everything queued so far now; True once it has been written (or dropped)."""
        if not self._thread.is_alive():
            return self._counts["pending"] == 0
        marker = _Flush(threading.Event())
        try:
            self._queue.put(marker, timeout=timeout)
        except queue.Full:
            return False
        return marker.done.wait(timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, stop the writer, close the database. Later upserts are dropped."""
        with self._lock:
            if self._closing:
                return
            self._closing = True
        try:
            self._queue.put(_STOP, timeout=timeout)
        except queue.Full:
            _log.warning("event log: writer did not take the stop request within %.0f s", timeout)
        self._thread.join(timeout)
        if self._thread.is_alive():
            _log.warning("event log: writer still busy after %.0f s; %d records not written", timeout, self._counts["pending"])
            return
        self._conn.close()

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def stats(self) -> dict[str, Any]:
        """Records (events and system events) written, dropped and pending; snapshots dropped,
        batches committed, events deleted by retention; `failing`: the cause while writes fail, else None;
        `snapshots_paused`: why snapshots wait while rows are still written (low disk space), else None."""
        with self._lock:
            figures: dict[str, Any] = dict(self._counts)
            figures["failing"] = self._failure
            figures["snapshots_paused"] = self._snapshots_paused
        return figures

    # -- the writer thread ----------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            try:
                if time.monotonic() >= self._next_maintenance:
                    self._maintain()
            except Exception:  # noqa: BLE001 - the writer must outlive anything retention meets
                _log.exception("event log: unexpected error in retention")
            records, waiters, stop = self._collect()
            if records:
                self._write(records)
            for waiter in waiters:
                waiter.done.set()
            if stop:
                return

    def _collect(self) -> tuple[list[Any], list[_Flush], bool]:
        """Block for a first record, then gather until the batch is old or big enough, a flush, or stop."""
        records: list[Any] = []
        waiters: list[_Flush] = []
        deadline: float | None = None
        while len(records) < self._batch_max:
            now = time.monotonic()
            wait = (deadline if deadline is not None else self._next_maintenance) - now
            try:
                item = self._queue.get(timeout=max(wait, 0.0)) if wait > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                # Whatever slipped in behind the stop request still gets written.
                records += self._drain()
                return records, waiters, True
            if isinstance(item, _Flush):
                waiters.append(item)
                break
            records.append(item)
            if deadline is None:  # a batch's age counts from its first record, not from the wait for it
                deadline = time.monotonic() + self._batch_seconds
        return records, waiters, False

    def _drain(self) -> list[Any]:
        rest = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return rest
            if isinstance(item, _Flush):
                item.done.set()
            elif item is not _STOP:
                rest.append(item)

    def _write(self, records: list[Any]) -> None:
        jpeg_bytes = sum(len(r.jpeg) for r in records if isinstance(r, _Upsert) and r.jpeg is not None)
        try:
            snapshot_failure, snapshots_written = self._commit(records)
        except sqlite3.Error as exc:
            _rollback(self._conn)
            self._sweep_needed = True  # this batch's snapshot files may now belong to no row
            self._settle(len(records), jpeg_bytes, written=False)
            self._failing("database", exc, len(records))
        except Exception:  # noqa: BLE001 - a bug must cost one batch, never the writer
            _rollback(self._conn)
            self._settle(len(records), jpeg_bytes, written=False)
            _log.exception("event log: unexpected error writing a batch of %d records", len(records))
        else:
            self._settle(len(records), jpeg_bytes, written=True)
            if snapshot_failure is not None:
                self._failing("snapshot", snapshot_failure, dropped=0)
            elif snapshots_written or self._failure_kind != "snapshot":
                # Over only once the kind of write that failed has worked again.
                self._recovered()

    def _commit(self, records: list[Any]) -> tuple[OSError | None, int]:
        """Write the batch's snapshot files, then its rows in one transaction. Returns the first
        snapshot error (that snapshot is dropped, its event is still written) and how many
        snapshots were written."""
        upserts = [r for r in records if isinstance(r, _Upsert)]
        notes = [r for r in records if isinstance(r, SystemEvent)]
        # Only an event's last snapshot in the batch is written: the earlier ones would be replaced
        # at once. Rows go in order and the upsert statement merges them, as across batches.
        last_snapshot = {u.event.id: i for i, u in enumerate(upserts) if u.jpeg is not None}
        low = self._low_space()
        failure: OSError | None = None
        written = 0
        rows = []
        ended: dict[str, Event] = {}
        self._rev += 1
        now = time.time()
        for i, upsert in enumerate(upserts):
            event, size = upsert.event, 0
            if upsert.jpeg is not None and low is not None:
                # Below the low-water mark snapshots wait, so that rows still fit in what is left.
                with self._lock:
                    self._counts["snapshots_dropped"] += 1
            elif upsert.jpeg is not None and last_snapshot[event.id] == i:
                path = snapshots.file_for(self.snapshots_dir, event.id)
                try:
                    snapshots.write(path, upsert.jpeg)
                except OSError as exc:
                    failure = failure or exc
                    with self._lock:
                        self._counts["snapshots_dropped"] += 1
                else:
                    event, size = replace(event, snapshot=str(path)), len(upsert.jpeg)
                    written += 1
            elif event.snapshot is not None:
                size = _file_size(event.snapshot)
            self._journal_start(event)
            if event.end is not None:
                ended[event.id] = event
            rows.append(row_values(event, self._db_dir, size, now, self._rev))
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.executemany(UPSERT_SQL, rows)
            self._conn.executemany(_INSERT_SYSTEM, [(n.kind, n.message, json.dumps(n.detail), n.time) for n in notes])
            self._conn.execute("COMMIT")
        except BaseException:
            # The journal is other storage: it still gets the events the database could not take.
            self._journal_ends(list(ended.values()), committed=False)
            raise
        self._journal_ends(list(ended.values()), committed=True)
        return failure, written

    def _low_space(self) -> str | None:
        """Why snapshots wait (the disk is below the low-water mark), else None. The log's own
        oldest are freed meanwhile, at most once per retention period."""
        try:
            free, target = retention.free_target(self._db_dir)
        except OSError:
            return None
        if free >= target:
            self._snapshots_paused = None
            return None
        # Every commit appends to the WAL until a checkpoint; near a full disk that growth is what
        # fills it. Folded back into the database file, the WAL starts again from nothing.
        self._checkpoint()
        free, target = retention.free_target(self._db_dir)
        if free >= target:
            self._snapshots_paused = None
            return None
        if time.monotonic() >= self._next_free_space:
            self._free_space(rows=False)  # not full yet: snapshots are what is worth freeing
            free, target = retention.free_target(self._db_dir)
            if free >= target:
                self._snapshots_paused = None
                return None
        if self._snapshots_paused is None:
            _log.warning("event log: %d KiB free at %s (below %d KiB): snapshots wait, events are still written",
                         free // 1024, self._db_dir, target // 1024)
        self._snapshots_paused = f"low disk space ({free // 1024} KiB free): snapshots paused"
        return self._snapshots_paused

    def _checkpoint(self) -> None:
        try:
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:
            _log.debug("event log: checkpoint failed: %s", exc)

    def _settle(self, count: int, jpeg_bytes: int, written: bool) -> None:
        with self._lock:
            self._counts["pending"] -= count
            self._pending_bytes -= jpeg_bytes
            self._counts["written" if written else "dropped"] += count
            self._counts["batches"] += written

    def _failing(self, what: str, exc: BaseException, dropped: int) -> None:
        disk_full = _is_disk_full(exc)
        if disk_full and time.monotonic() >= self._next_free_space:
            self._free_space()
        cause = f"{'disk full' if disk_full else 'cannot write'} ({what}: {exc})"
        self._failed_in_episode += dropped
        self._failure_kind = what
        if self._failure is None:
            # Once per episode: a full disk would otherwise log every two seconds until fixed.
            _log.warning("event log: %s at %s; dropping what cannot be written until it can write again (detection goes on)",
                         cause, self._db_dir)
        with self._lock:
            self._failure = cause

    def _recovered(self) -> None:
        if self._failure is None:
            return
        _log.warning("event log: writing again; %d records were dropped meanwhile", self._failed_in_episode)
        self._failed_in_episode = 0
        with self._lock:
            self._failure = None

    def _journal_start(self, event: Event) -> None:
        """A line when an event is first written; its end line follows from `_journal_ends`."""
        if self._journal is None or event.end is not None or event.id in self._journal_open:
            return
        self._journal_open[event.id] = None
        if len(self._journal_open) > _JOURNAL_OPEN_MAX:
            self._journal_open.popitem(last=False)
        journal.emit(self._journal, {"state": "start", **event.to_dict(trajectory=False)})

    def _journal_ends(self, ended: list[Event], committed: bool) -> None:
        """A line when an event ends: as stored (best score, first start) once committed, else as given."""
        if self._journal is None or not ended:
            return
        if committed:
            try:
                ended = [row.event for row in query.by_id(self._conn, self._db_dir, [e.id for e in ended])]
            except sqlite3.Error:
                pass  # committed all the same: the line goes out as given
        for event in ended:
            self._journal_open.pop(event.id, None)
            journal.emit(self._journal, {"state": "end", **event.to_dict(trajectory=False)})

    def _close_left_open(self) -> None:
        """Close the events a cut-short run left open (at their last sight, flagged), once; retried
        at the next maintenance while the database cannot be written (a full disk)."""
        ids = self._left_open
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.executemany(_CLOSE_LEFT_OPEN_SQL, [(self._rev + 1, i) for i in ids])
            self._conn.execute(_INSERT_SYSTEM, ("recovered", f"closed {len(ids)} events left open by a run that did not stop cleanly",
                                                json.dumps({"events": len(ids), "ids": ids[:50]}), time.time()))
            self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            _rollback(self._conn)
            _log.warning("event log: cannot close the events left open yet: %s", exc)
            return
        self._rev += 1
        self._left_open = []
        _log.warning("event log: closed %d events left open by a run that did not stop cleanly", len(ids))

    def _free_space(self, rows: bool = True) -> None:
        """A full disk: the log's own oldest snapshots (then, with `rows`, rows) go, down to the
        low-water mark, so new events can be written without anyone stepping in; said as a system event."""
        self._next_free_space = time.monotonic() + self._retention_seconds
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            pruned = retention.free_space(self._conn, self._db_dir, rows)
            if pruned.snapshots or pruned.events:
                free, target = retention.free_target(self._db_dir)
                message = (f"disk full: deleted the oldest {pruned.snapshots} snapshots and {pruned.events} events "
                           f"to free space ({free // 1024} KiB free now)")
                self._conn.execute(_INSERT_SYSTEM, ("retention.disk_full", message, json.dumps(
                    {"snapshots": pruned.snapshots, "events": pruned.events, "free_bytes": free, "target_bytes": target}), time.time()))
            self._conn.execute("COMMIT")
        except (sqlite3.Error, OSError) as exc:
            _rollback(self._conn)
            self._sweep_needed = True  # files may be gone whose rows still name them
            _log.warning("event log: freeing space failed: %s", exc)
            return
        snapshots.remove(pruned.files)
        self._checkpoint()
        with self._lock:
            self._counts["deleted"] += pruned.events
        if pruned.snapshots or pruned.events:
            _log.warning("event log: disk full: deleted the oldest %d snapshots and %d events to free space",
                         pruned.snapshots, pruned.events)

    def _maintain(self) -> None:
        """Events left open by a crash, retention, then (after a crash or a failed batch) a sweep of
        unreferenced snapshot files."""
        self._next_maintenance = time.monotonic() + self._retention_seconds
        if self._left_open:
            self._close_left_open()
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            pruned = retention.prune(self._conn, self._db_dir, self._retention, time.time())
            self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            _rollback(self._conn)
            if self._failure is None:
                _log.warning("event log: retention failed: %s", exc)
            return
        snapshots.remove(pruned.files)
        self._checkpoint()
        with self._lock:
            self._counts["deleted"] += pruned.events
        if pruned.events or pruned.system_events:
            _log.info("event log: retention deleted %d events, %d system events", pruned.events, pruned.system_events)
        if self._sweep_needed:
            stored = self._conn.execute("SELECT snapshot FROM events WHERE snapshot IS NOT NULL").fetchall()
            snapshots.sweep(self.snapshots_dir, {snapshots.resolve(self._db_dir, value) for (value,) in stored})
            self._sweep_needed = False


def row_values(event: Event, db_dir: Path, snapshot_bytes: int, now: float, rev: int) -> dict[str, Any]:
    return {
        "id": event.id,
        "label": event.label,
        "class_id": int(event.class_id),
        "score": float(event.score),
        "start": float(event.start),
        "end": None if event.end is None else float(event.end),
        "box": json.dumps([round(float(v), 2) for v in event.box]),
        "snapshot": None if event.snapshot is None else snapshots.stored(db_dir, Path(event.snapshot)),
        "snapshot_bytes": snapshot_bytes,
        "source": event.source,
        "model": event.model,
        "updated": now,
        "rev": rev,
        "last_seen": None if event.last_seen is None else float(event.last_seen),
        "trajectory": json.dumps([list(p) for p in event.trajectory], separators=(",", ":")),
        "zones": json.dumps(list(event.zones)),
        "stationary": int(bool(event.stationary)),
    }


def _file_size(path: str) -> int:
    try:
        return Path(path).stat().st_size
    except OSError:
        return 0


def _rollback(conn: sqlite3.Connection) -> None:
    try:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
    except sqlite3.Error:
        pass  # SQLite has already rolled back after some errors (SQLITE_FULL among them)


def _is_disk_full(exc: BaseException) -> bool:
    if isinstance(exc, OSError):
        return exc.errno in _DISK_FULL_ERRNOS
    return isinstance(exc, sqlite3.Error) and getattr(exc, "sqlite_errorcode", None) == _SQLITE_FULL
