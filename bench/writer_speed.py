"""Micro-benchmark: group commit (app/store/writer.py) against one transaction per write.

N closed-loop submitters (default 200) each insert a small row, wait for its commit, and
insert the next, for ``--seconds`` per configuration, on a fresh SQLite file (WAL) with
``synchronous=FULL`` (what MedChat ships) and ``NORMAL`` (what it shipped before issue 10).
Modes: ``group`` (GroupWriter as shipped: savepoints only after a failure; this benchmark
has none), ``group-savepoints`` (GroupWriter with ``always_savepoints=True``: a SAVEPOINT
and RELEASE around each insert) and ``one-each`` (``db.transaction()`` per insert, as the
actions did before). Prints commits/s, rows/s and the per-write latency (submit to answer).

    .venv/bin/python bench/writer_speed.py [--senders 200] [--seconds 5] [--dir DIR]

The file goes in ``--dir`` (default: a temporary folder under bench/, on the same disk as the
project; a tmpfs would make every sync free). Run it on a quiet machine, or say it was not.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import event, text  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncSession  # noqa: E402

from app.store.db import Database  # noqa: E402
from app.store.writer import GroupWriter  # noqa: E402

INSERT = text("INSERT INTO bench_rows (sender, seq, body) VALUES (:sender, :seq, :body)")


async def run(folder: Path, synchronous: str, mode: str, senders: int, seconds: float) -> dict[str, Any]:
    path = folder / f"bench-{synchronous}-{mode}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    db = Database(f"sqlite+aiosqlite:///{path}")

    def pragma(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.close()

    # After Database's own connect hook (which sets FULL): this one has the last word.
    event.listen(db.engine.sync_engine, "connect", pragma)
    commits = 0

    def count(_conn: Any) -> None:
        nonlocal commits
        commits += 1

    async with db.transaction() as s:
        await s.execute(text("CREATE TABLE bench_rows (id INTEGER PRIMARY KEY, sender INTEGER, seq INTEGER, body TEXT)"))
    async with db.reading() as s:
        assert (await s.execute(text("PRAGMA synchronous"))).scalar_one() == {"FULL": 2, "NORMAL": 1}[synchronous]
    event.listen(db.engine.sync_engine, "commit", count)

    writer = GroupWriter(db, always_savepoints=mode == "group-savepoints")
    latencies: list[float] = []
    errors: dict[str, int] = {}
    stop_at = 0.0

    def work(sender: int, seq: int) -> Callable[[AsyncSession], Awaitable[None]]:
        async def insert(s: AsyncSession) -> None:
            await s.execute(INSERT, {"sender": sender, "seq": seq, "body": "K+ 3.2, repeat at 14:00"})

        return insert

    async def one_each(sender: int, seq: int) -> None:
        async with db.transaction() as s:
            await work(sender, seq)(s)

    async def sender(n: int) -> None:
        seq = 0
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            try:
                if mode.startswith("group"):
                    await writer.submit(work(n, seq))
                else:
                    await one_each(n, seq)
            except Exception as exc:  # noqa: BLE001 - count and go on, as a client would
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                continue
            latencies.append(time.perf_counter() - started)
            seq += 1

    started = time.perf_counter()
    stop_at = started + seconds
    await asyncio.gather(*(sender(n) for n in range(senders)))
    elapsed = time.perf_counter() - started
    await writer.stop()
    async with db.reading() as s:
        rows = (await s.execute(text("SELECT count(*) FROM bench_rows"))).scalar_one()
    await db.dispose()
    latencies.sort()
    return {
        "synchronous": synchronous, "mode": mode, "seconds": round(elapsed, 2), "rows": rows,
        "commits/s": round(commits / elapsed, 1), "rows/s": round(rows / elapsed, 1),
        "rows/commit": round(rows / commits, 1) if commits else 0,
        "p50 ms": round(statistics.median(latencies) * 1000, 1) if latencies else None,
        "p99 ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 1) if latencies else None,
        "errors": errors,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--senders", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    folder = args.dir or Path(tempfile.mkdtemp(prefix="writer-speed-", dir=Path(__file__).parent))
    try:
        print(f"{args.senders} closed-loop senders, {args.seconds} s each, SQLite file in {folder}; "
              f"load average before: {os.getloadavg()[0]:.2f}")
        print("| synchronous | mode | commits/s | rows/s | rows/commit | p50 ms | p99 ms | errors |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for synchronous in ("FULL", "NORMAL"):
            for mode in ("group", "group-savepoints", "one-each"):
                r = await run(folder, synchronous, mode, args.senders, args.seconds)
                print(f"| {r['synchronous']} | {r['mode']} | {r['commits/s']} | {r['rows/s']} | {r['rows/commit']} "
                      f"| {r['p50 ms']} | {r['p99 ms']} | {r['errors'] or '-'} |", flush=True)
        print(f"load average after: {os.getloadavg()[0]:.2f}")
    finally:
        if args.dir is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
