"""Write throughput of the event log: the batched writer against a naive commit per event, in one run.

    python -m runtime.bench.event_log [--upserts N] [--dir DIR] [--snapshot-bytes B]

The same upserts (each event updated 5 times, the last one closing it) go three ways: `EventLog`
(one transaction per batch, the product), a loop committing each upsert in WAL mode with the same
pragmas, and a loop committing each upsert with SQLite's defaults (rollback journal, fsync per
commit). Run it with `--dir` on the board's SD card for the figures that matter there.
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from ..events import snapshots
from ..events import database
from ..events.model import Event, Retention
from ..events.writer import UPSERT_SQL, EventLog, row_values

_UPDATES_PER_EVENT = 5


def _upserts(n: int) -> list[Event]:
    t0 = time.time()
    out = []
    for i in range(n):
        event, step = divmod(i, _UPDATES_PER_EVENT)
        start = t0 + event
        end = start + step if step == _UPDATES_PER_EVENT - 1 else None
        box = (10.0 + step, 20.0, 110.0 + step, 220.0)
        out.append(Event(f"ev{event:07d}", "person", 0, 0.5 + step / 20, start, end, box, None, "bench", "person-ssdlite"))
    return out


def _write_bytes() -> int | None:
    """Bytes this process caused to be written to storage (Linux task I/O accounting)."""
    try:
        for line in Path("/proc/self/io").read_text().splitlines():
            if line.startswith("write_bytes:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _batched(folder: Path, events: list[Event], jpeg: bytes | None) -> dict[str, float]:
    latencies = []
    log = EventLog(folder / "events.db", retention=Retention(None, None), queue_max=len(events) + 1,
                   queue_max_bytes=1 << 40, journal_lines=False)
    begin = time.perf_counter()
    for event in events:
        t = time.perf_counter()
        log.upsert(event, jpeg)
        latencies.append(time.perf_counter() - t)
    log.flush(timeout=None)
    elapsed = time.perf_counter() - begin
    stats = log.stats
    log.close()
    latencies.sort()
    return {
        "upserts": stats["written"], "seconds": elapsed, "commits": stats["batches"], "dropped": stats["dropped"],
        "upsert_p50_us": statistics.median(latencies) * 1e6, "upsert_p99_us": latencies[int(0.99 * len(latencies))] * 1e6,
    }


def _naive(folder: Path, events: list[Event], jpeg: bytes | None, wal: bool, budget_s: float) -> dict[str, float]:
    path = folder / "events.db"
    if wal:
        conn = database.connect(path)
    else:
        # SQLite's defaults, as a first attempt would use them: rollback journal, synchronous=FULL.
        database.connect(path).close()
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA journal_mode=DELETE")
    snaps = folder / "snapshots"
    snaps.mkdir(exist_ok=True)
    begin = time.perf_counter()
    done = 0
    for rev, event in enumerate(events, 1):
        size = 0
        if jpeg is not None:
            file = snapshots.file_for(snaps, event.id)
            snapshots.write(file, jpeg)
            event, size = replace(event, snapshot=str(file)), len(jpeg)
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(UPSERT_SQL, row_values(event, folder, size, time.time(), rev))
        conn.execute("COMMIT")
        done += 1
        if time.perf_counter() - begin > budget_s:
            break
    elapsed = time.perf_counter() - begin
    conn.close()
    return {"upserts": done, "seconds": elapsed, "commits": done}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runtime.bench.event_log", description=__doc__.splitlines()[0])
    parser.add_argument("--upserts", type=int, default=20000, help="upserts per method (default 20000)")
    parser.add_argument("--dir", type=Path, default=None, help="where to write (default: a temporary folder in /var/tmp)")
    parser.add_argument("--snapshot-bytes", type=int, default=0, help="a snapshot of this many bytes with every upsert (default none)")
    parser.add_argument("--naive-seconds", type=float, default=10.0, help="stop each naive loop after this long (default 10)")
    args = parser.parse_args(argv)
    events = _upserts(args.upserts)
    jpeg = b"\xff\xd8" + bytes(max(args.snapshot_bytes - 4, 0)) + b"\xff\xd9" if args.snapshot_bytes else None
    root = Path(tempfile.mkdtemp(prefix="edgewatch-bench-", dir=args.dir or "/var/tmp"))
    print(f"{args.upserts} upserts ({args.upserts // _UPDATES_PER_EVENT} events x {_UPDATES_PER_EVENT} updates), "
          f"snapshot {args.snapshot_bytes} B, in {root} (SQLite {sqlite3.sqlite_version})")
    print(f"{'method':<30} {'upserts':>8} {'upserts/s':>10} {'commits':>8} {'disk KB/upsert':>15}  notes")
    results = {}
    try:
        for name, run in (
            ("batched EventLog (WAL)", lambda d: _batched(d, events, jpeg)),
            ("naive commit/upsert (WAL)", lambda d: _naive(d, events, jpeg, True, args.naive_seconds)),
            ("naive commit/upsert (defaults)", lambda d: _naive(d, events, jpeg, False, args.naive_seconds)),
        ):
            folder = root / name.split()[0] / str(len(results))
            folder.mkdir(parents=True)
            before = _write_bytes()
            figures = run(folder)
            after = _write_bytes()
            rate = figures["upserts"] / figures["seconds"]
            results[name] = rate
            disk = f"{(after - before) / 1024 / figures['upserts']:.2f}" if before is not None and after is not None else "n/a"
            notes = ""
            if "upsert_p50_us" in figures:
                notes = f"upsert() p50 {figures['upsert_p50_us']:.1f} us, p99 {figures['upsert_p99_us']:.1f} us, dropped {figures['dropped']:.0f}"
            print(f"{name:<30} {figures['upserts']:>8.0f} {rate:>10.0f} {figures['commits']:>8.0f} {disk:>15}  {notes}", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    batched = results["batched EventLog (WAL)"]
    print(f"batched / naive WAL: {batched / results['naive commit/upsert (WAL)']:.1f}x; "
          f"batched / naive defaults: {batched / results['naive commit/upsert (defaults)']:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
