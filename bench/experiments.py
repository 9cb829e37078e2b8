"""Bench-only what-if patches, applied around ``app.create_app`` without touching app/.

They exist to size a suggestion in docs/performance.md, never to produce the headline
figures. Pick them with ``MEDCHAT_BENCH_EXPERIMENTS`` (comma-separated) and serve
``bench.experiments:create_app()`` instead of ``app:create_app()``
(``python bench/server.py start --experiment sqlite-write-lock``).

- ``sqlite-write-lock``: one asyncio.Lock around ``Database.transaction()`` on SQLite, so
  write transactions queue in the event loop instead of colliding on SQLite's write lock and
  sleeping in its busy handler (sqlite3InvokeBusyHandler -> usleep, seen with py-spy).
- ``sqlite-pool``: a pool of 20 connections without overflow on SQLite (default: 5 + 10
  overflow connections that are opened, given a thread and PRAGMAs, and closed again).
- ``ssl-buffer-32k``: asyncio's per-connection TLS read buffer of 32 KiB instead of 256 KiB.
- ``gc-freeze``: ``gc.freeze()`` once the app serves, so the objects of start-up (modules,
  SQLAlchemy's mappers and compiled caches, Jinja) leave the generations a full (gen-2)
  collection walks; only what the run itself keeps is walked then.
- ``count-sql``: count the statements the worker runs into ``bench/results/sql-counts.json``.
- ``gc-thresholds``: ``gc.set_threshold(50_000, 50, 100)`` (default 700, 10, 10).
- ``switch-interval``: ``sys.setswitchinterval(0.0005)`` (default 5 ms): how long the event
  loop thread may hold the GIL while an aiosqlite thread waits to hand back a result.
- ``tracemalloc``: trace Python allocations (10 frames) from the worker's start; SIGUSR1
  writes a snapshot to ``bench/results/tracemalloc-<pid>-<n>.snap`` (bench/idle_memory.py
  diffs two of them: where an idle socket's memory goes).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any


def _write_lock() -> None:
    from app.store import db as dbmod

    original = dbmod.Database.transaction

    @asynccontextmanager
    async def transaction(self: Any, **kwargs: Any) -> AsyncIterator[Any]:
        if not self.is_sqlite:
            async with original(self, **kwargs) as session:
                yield session
            return
        lock = self.__dict__.setdefault("_bench_write_lock", asyncio.Lock())
        async with lock, original(self, **kwargs) as session:
            yield session

    dbmod.Database.transaction = transaction  # type: ignore[method-assign]


def _pool() -> None:
    from sqlalchemy.ext import asyncio as sa_asyncio

    from app.store import db as dbmod

    original = sa_asyncio.create_async_engine

    def create(url: str, **kwargs: Any) -> Any:
        if str(url).startswith("sqlite"):
            kwargs.update(pool_size=20, max_overflow=0)
        return original(url, **kwargs)

    dbmod.create_async_engine = create  # type: ignore[assignment]


def _ssl_buffer() -> None:
    import asyncio.sslproto

    # Python 3.11's asyncio gives every TLS connection a 256 KiB read buffer
    # (SSLProtocol.max_size, a zero-filled bytearray: resident at once). A TLS record is at
    # most 16 KiB, so 32 KiB loses nothing but a few more read calls on big bursts.
    asyncio.sslproto.SSLProtocol.max_size = 32 * 1024


FREEZE_AFTER_START = False


def _gc_freeze() -> None:
    global FREEZE_AFTER_START
    FREEZE_AFTER_START = True


def _gc_thresholds() -> None:
    """Young collections every 50,000 allocations instead of 700, and fewer promotions to the
    old generation: objects of a frame's or a batch's lifetime die before a collection
    promotes them, so gen-2 collections (which walk the whole heap) come far less often."""
    import gc

    gc.set_threshold(50_000, 50, 100)


def _switch_interval() -> None:
    import sys

    sys.setswitchinterval(0.0005)


def _count_sql() -> None:
    """Count the statements the worker runs, by their first 120 characters, into
    bench/results/sql-counts.json every 5 s (which queries a scenario costs)."""
    import collections
    import json
    import threading
    from pathlib import Path

    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    counts: collections.Counter[str] = collections.Counter()

    @event.listens_for(Engine, "before_cursor_execute")
    def _count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        counts[" ".join(statement.split())[:120]] += 1

    out = Path(__file__).parent / "results" / "sql-counts.json"

    def dump() -> None:
        out.write_text(json.dumps(counts.most_common(), indent=1))
        timer = threading.Timer(5.0, dump)
        timer.daemon = True
        timer.start()

    dump()


def _tracemalloc() -> None:
    import signal
    import tracemalloc
    from pathlib import Path

    tracemalloc.start(10)
    taken = [0]

    def snapshot(_signum: int, _frame: Any) -> None:
        taken[0] += 1
        out = Path(__file__).parent / "results" / f"tracemalloc-{os.getpid()}-{taken[0]}.snap"
        tracemalloc.take_snapshot().dump(str(out))

    signal.signal(signal.SIGUSR1, snapshot)


PATCHES = {"gc-thresholds": _gc_thresholds, "tracemalloc": _tracemalloc, "count-sql": _count_sql, "switch-interval": _switch_interval, "gc-freeze": _gc_freeze, "sqlite-write-lock": _write_lock, "sqlite-pool": _pool, "ssl-buffer-32k": _ssl_buffer}


def create_app() -> Any:
    for name in filter(None, os.environ.get("MEDCHAT_BENCH_EXPERIMENTS", "").split(",")):
        PATCHES[name.strip()]()
    from app import create_app as real

    app = real()
    if FREEZE_AFTER_START:
        import gc

        @app.before_serving
        async def _freeze() -> None:
            gc.collect()
            gc.freeze()

    # The per-second event-loop trace (bench/loopmon.py), also without any experiment.
    if os.environ.get("MEDCHAT_BENCH_LOOPMON"):
        from bench.loopmon import install

        install(app, os.environ["MEDCHAT_BENCH_LOOPMON"])
    return app
