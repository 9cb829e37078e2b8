"""Bench-only event-loop monitor for the Hypercorn worker: a per-second trace of stalls.

Started by ``bench/experiments.py:create_app()`` when ``MEDCHAT_BENCH_LOOPMON`` names an
output file (``python bench/server.py start --monitor``); nothing in app/ knows about it.
It writes JSON lines, one per event, flushed every second (the clock is CLOCK_MONOTONIC,
the same as the load generator's ``time.perf_counter``, so ``bench/timeline.py`` can put the
two side by side):

- ``{"k": "lag", "t": ..., "ms": ...}``: a task that sleeps 10 ms, and how late it woke
  (every tick; 100 lines a second). A tick late by 200 ms means nothing else ran on the
  event loop for 200 ms: every ack and delivery of that moment waits;
- ``{"k": "gc", "t": ..., "gen": 2, "ms": ..., "collected": ...}``: every garbage collection
  (``gc.callbacks``), with its pause;
- ``{"k": "db", "t": ..., "fn": "commit", "ms": ..., "wait_ms": ..., "ckpt": ...}``: every
  call aiosqlite ran in a connection thread that took >= 2 ms, or was a commit: how long the
  thread ran it (``ms``), how long it waited in the thread's queue before (``wait_ms``), and
  for commits whether SQLite check-pointed the WAL in it (``ckpt``: frames copied back, read
  from the -shm wal-index header before and after);
- ``{"k": "sec", "t": ..., ...}``: per second: process CPU, the loop thread's CPU and its
  run-queue wait (``/proc/thread-self/schedstat``: runnable but another thread or process had
  the core), threads alive, aiosqlite calls and their total thread time, the WAL's frames.
"""

from __future__ import annotations

import asyncio
import collections
import gc
import json
import os
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HEAP_EVERY = int(os.environ.get("MEDCHAT_BENCH_HEAP", "0") or 0)
TICK = 0.010
DB_SLOW_MS = 2.0


class LoopMonitor:
    def __init__(self, out: Path, shm: Path | None) -> None:
        self.out = out
        self.shm = shm
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._gc_start: float | None = None
        self._db_calls = 0
        self._db_ms = 0.0
        self._commits = 0
        self._ckpts = 0
        self._task: asyncio.Task[None] | None = None
        self._loop_thread = threading.get_ident()

    # -- events from any thread ----------------------------------------------------------
    def emit(self, **event: Any) -> None:
        line = json.dumps(event, separators=(",", ":"))
        with self._lock:
            self._lines.append(line)

    def flush(self) -> None:
        with self._lock:
            lines, self._lines = self._lines, []
        if lines:
            with self.out.open("a") as handle:
                handle.write("\n".join(lines) + "\n")

    # -- the WAL's state, from the -shm wal-index header (sqlite3 does not expose wal_hook) ---
    def wal_state(self) -> tuple[int, int] | None:
        """(mxFrame, nBackfill): frames in the WAL, and frames already check-pointed."""
        if self.shm is None:
            return None
        try:
            fd = os.open(self.shm, os.O_RDONLY)
        except OSError:
            return None
        try:
            head = os.pread(fd, 100, 0)
        finally:
            os.close(fd)
        if len(head) < 100:
            return None
        # WalIndexHdr: mxFrame is the u32 at byte 16 (native order); WalCkptInfo.nBackfill at 96.
        return struct.unpack_from("=I", head, 16)[0], struct.unpack_from("=I", head, 96)[0]

    # -- gc.callbacks -------------------------------------------------------------------
    def on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_start = time.perf_counter()
        elif self._gc_start is not None:
            now = time.perf_counter()
            self.emit(k="gc", t=round(self._gc_start, 4), gen=info["generation"], ms=round(1000 * (now - self._gc_start), 3),
                      collected=info["collected"], thread=threading.get_ident() == self._loop_thread)
            self._gc_start = None

    # -- aiosqlite: time every call its connection thread runs ------------------------------
    def patch_aiosqlite(self) -> None:
        import aiosqlite.core

        monitor = self
        original: Any = aiosqlite.core.Connection._execute

        async def _execute(self: Any, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
            queued = time.perf_counter()
            name = getattr(fn, "__name__", type(fn).__name__)

            def timed(*a: Any, **kw: Any) -> Any:
                start = time.perf_counter()
                before = monitor.wal_state() if name == "commit" else None
                try:
                    return fn(*a, **kw)
                finally:
                    end = time.perf_counter()
                    took = 1000 * (end - start)
                    monitor._db_calls += 1
                    monitor._db_ms += took
                    if name == "commit":
                        monitor._commits += 1
                        after = monitor.wal_state()
                        ckpt = 0
                        if before and after and after[1] != before[1]:
                            ckpt = after[1] - before[1] if after[1] > before[1] else after[1]
                            monitor._ckpts += 1
                        monitor.emit(k="db", t=round(start, 4), fn=name, ms=round(took, 3),
                                     wait_ms=round(1000 * (start - queued), 3), ckpt=ckpt,
                                     frames=after[0] if after else None)
                    elif took >= DB_SLOW_MS:
                        monitor.emit(k="db", t=round(start, 4), fn=name, ms=round(took, 3),
                                     wait_ms=round(1000 * (start - queued), 3))

            return await original(self, timed, *args, **kwargs)

        aiosqlite.core.Connection._execute = _execute  # type: ignore[method-assign]

    # -- the loop task ---------------------------------------------------------------------
    async def run(self) -> None:
        self._loop_thread = threading.get_ident()
        def proc_cpu() -> float:
            t = os.times()
            return t.user + t.system

        def sched() -> tuple[float, float]:
            try:
                with open("/proc/thread-self/schedstat") as handle:
                    run_ns, wait_ns, _ = handle.read().split()
                return int(run_ns) / 1e9, int(wait_ns) / 1e9
            except OSError:
                return 0.0, 0.0

        def cores() -> list[tuple[int, int]]:
            """(busy, total) jiffies per CPU from /proc/stat: what every process on the machine used."""
            out = []
            with open("/proc/stat") as handle:
                for line in handle:
                    if line.startswith("cpu") and line[3].isdigit():
                        v = [int(x) for x in line.split()[1:]]
                        idle = v[3] + v[4]
                        out.append((sum(v) - idle, sum(v)))
            return out

        sec_start = time.perf_counter()
        cores0 = cores()
        cpu0, (_run0, wait0) = proc_cpu(), sched()
        thread0 = time.thread_time()
        while True:
            t0 = time.perf_counter()
            await asyncio.sleep(TICK)
            t1 = time.perf_counter()
            self.emit(k="lag", t=round(t0, 4), ms=round(1000 * (t1 - t0 - TICK), 3))
            if t1 - sec_start >= 1.0:
                cpu1, (_run1, wait1) = proc_cpu(), sched()
                thread1 = time.thread_time()
                span = t1 - sec_start
                wal = self.wal_state()
                cores1 = cores()
                busy = [round((b1 - b0) / (t1_ - t0_), 3) if t1_ > t0_ else None
                        for (b0, t0_), (b1, t1_) in zip(cores0, cores1, strict=False)]
                self.emit(k="sec", t=round(sec_start, 4), span=round(span, 4),
                          cpu=round((cpu1 - cpu0) / span, 4),  # the whole process (all threads)
                          loop_cpu=round((thread1 - thread0) / span, 4),  # the event-loop thread
                          loop_wait=round((wait1 - wait0) / span, 4),  # runnable, core taken
                          threads=len(os.listdir("/proc/self/task")),
                          db_calls=self._db_calls, db_ms=round(self._db_ms, 2), commits=self._commits,
                          ckpts=self._ckpts, wal_frames=wal[0] if wal else None,
                          gc_counts=gc.get_count(),
                          cores_busy=busy,  # every process's share of each CPU (the machine is shared)
                          loadavg=os.getloadavg()[0])
                if HEAP_EVERY and int(t1) % HEAP_EVERY == 0:
                    # What a gen-2 collection has to walk (MEDCHAT_BENCH_HEAP=N: every N s;
                    # costs a walk of the heap itself, so only when asked).
                    census = collections.Counter(type(o).__name__ for o in gc.get_objects())
                    self.emit(k="heap", t=round(t1, 4), objects=sum(census.values()), top=census.most_common(12))
                self._db_calls = self._commits = self._ckpts = 0
                self._db_ms = 0.0
                sec_start, cpu0, wait0, thread0, cores0 = t1, cpu1, wait1, thread1, cores1
                self.flush()  # a few KiB a second, written from the loop (counted in the lag)

    def start(self) -> None:
        self._loop_thread = threading.get_ident()
        gc.callbacks.append(self.on_gc)
        self._task = asyncio.get_running_loop().create_task(self.run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self.on_gc in gc.callbacks:
            gc.callbacks.remove(self.on_gc)
        self.flush()


def install(app: Any, out: str) -> LoopMonitor:
    """Patch aiosqlite now and start the monitor when the app starts serving."""
    url = os.environ.get("MEDCHAT_DATABASE_URL") or ""
    instance = os.environ.get("MEDCHAT_INSTANCE_PATH", "")
    shm: Path | None = None
    if not url and instance:
        shm = Path(instance) / "medchat.db-shm"
    elif url.startswith("sqlite") and "///" in url:
        shm = Path(url.split("///", 1)[1].split("?", 1)[0] + "-shm")
    monitor = LoopMonitor(Path(out), shm)
    monitor.emit(k="start", t=round(time.perf_counter(), 4), wall=time.time(), pid=os.getpid(), shm=str(shm))
    monitor.patch_aiosqlite()

    async def _start_monitor() -> None:
        monitor.start()

    async def _stop_monitor() -> None:
        await monitor.stop()

    app.before_serving(_start_monitor)
    app.after_serving(_stop_monitor)

    return monitor
