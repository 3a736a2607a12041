"""The event database's schema, its migrations, and how a connection to it is opened.

`PRAGMA user_version` is the schema version. `MIGRATIONS[n]` takes version n to n + 1; a new
version appends one script and never edits an old one, so every board can catch up from any age.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

MIGRATIONS: tuple[str, ...] = (
    # 0 -> 1. Times are unix seconds (REAL). `rev` is the writer's batch counter: `--follow` tails
    # by it, because a board without an RTC may step its wall clock backwards at NTP sync.
    """
    CREATE TABLE events (
        id TEXT PRIMARY KEY,
        label TEXT NOT NULL,
        class_id INTEGER NOT NULL,
        score REAL NOT NULL,
        start REAL NOT NULL,
        "end" REAL,
        box TEXT NOT NULL,
        snapshot TEXT,
        snapshot_bytes INTEGER NOT NULL DEFAULT 0,
        source TEXT NOT NULL DEFAULT '',
        model TEXT NOT NULL DEFAULT '',
        updated REAL NOT NULL,
        rev INTEGER NOT NULL
    );
    CREATE INDEX events_start ON events(start);
    CREATE INDEX events_label_start ON events(label, start);
    CREATE INDEX events_rev ON events(rev);
    CREATE TABLE system_events (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        message TEXT NOT NULL,
        detail TEXT NOT NULL,
        time REAL NOT NULL
    );
    CREATE INDEX system_events_time ON system_events(time);
    """,
    # 1 -> 2. `last_seen`: when the object was last detected, kept current while it is in view, so
    # that an event a crash left open can be closed at that time; `recovered`: closed that way.
    """
    ALTER TABLE events ADD COLUMN last_seen REAL;
    ALTER TABLE events ADD COLUMN recovered INTEGER NOT NULL DEFAULT 0;
    """,
    # 2 -> 3. What the tracker knows of each event: its path as JSON [[seconds since start, x1, y1,
    # x2, y2], ...], the zones it entered in order (JSON list of names), whether it stood still.
    """
    ALTER TABLE events ADD COLUMN trajectory TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE events ADD COLUMN zones TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE events ADD COLUMN stationary INTEGER NOT NULL DEFAULT 0;
    """,
)
VERSION = len(MIGRATIONS)


class EventLogError(Exception):
    """The event database cannot be opened or is not ours; the message names the file."""


def _configure(conn: sqlite3.Connection) -> None:
    # synchronous=NORMAL in WAL: a commit survives a crash or kill -9 of the process (it is in the
    # WAL, in the OS cache); a power cut may lose the last commits but never corrupts the file, and
    # the SD card is spared an fsync per batch.
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=5000")
    # Bounds the -wal file after each checkpoint, so it does not keep its high-water mark.
    conn.execute("PRAGMA journal_size_limit=4194304")


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating if needed) the database for writing, in WAL mode, migrated to `VERSION`."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit mode: the writer opens and ends every transaction itself.
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode.lower() != "wal":
            raise EventLogError(f"{path}: cannot use WAL mode (got {mode!r}); is it on a network file system?")
        _configure(conn)
        _migrate(conn, path)
    except (sqlite3.Error, OSError) as exc:
        raise EventLogError(f"{path}: cannot open the event log: {exc}") from exc
    return conn


def connect_readonly(path: Path) -> sqlite3.Connection:
    """Open an existing database to read, never creating or changing it (a reader beside the daemon)."""
    if not path.is_file():
        raise EventLogError(f"{path}: no event log here")
    uri = path.resolve().as_uri()
    try:
        try:
            conn = _open_uri(f"{uri}?mode=ro")
        except sqlite3.OperationalError:
            # A WAL reader needs the -shm file, and one who may not write in the folder cannot create
            # it. It exists whenever the daemon writes; without a -wal file nobody is writing, so
            # the file as it stands is the whole log.
            if path.with_name(path.name + "-wal").exists():
                raise
            conn = _open_uri(f"{uri}?immutable=1")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.Error as exc:
        raise EventLogError(f"{path}: cannot read the event log: {exc}") from exc
    if version == 0:
        raise EventLogError(f"{path}: not an edgewatch event log (schema version 0)")
    if version > VERSION:
        raise EventLogError(f"{path}: schema version {version} is newer than this edgewatch reads ({VERSION}); upgrade edgewatch")
    return conn


def _open_uri(uri: str) -> sqlite3.Connection:
    conn = sqlite3.connect(uri, uri=True, isolation_level=None)
    conn.execute("PRAGMA busy_timeout=5000")
    conn.execute("PRAGMA schema_version")  # opening is lazy: make it fail here if it must
    return conn


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > VERSION:
        raise EventLogError(f"{path}: schema version {version} is newer than this edgewatch writes ({VERSION}); upgrade edgewatch")
    for target in range(version + 1, VERSION + 1):
        # One transaction per step (SQLite DDL is transactional): a crash leaves a whole version.
        # Statement by statement, because executescript() would commit before running.
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in MIGRATIONS[target - 1].split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version={target}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
