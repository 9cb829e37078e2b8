"""Where an idle socket's memory goes: a tracemalloc diff of the bench worker (bench only).

Needs a bench server started with the ``tracemalloc`` experiment (bench/experiments.py):

    .venv/bin/python bench/server.py start --experiment tracemalloc
    taskset -c 1 .venv/bin/python bench/idle_memory.py --users 300            # wss://
    taskset -c 1 .venv/bin/python bench/idle_memory.py --users 300 --plain    # ws://
    .venv/bin/python bench/server.py stop

It warms the worker up with a few sockets, takes a snapshot (SIGUSR1), opens N idle sockets
the way ``loadgen.py idle`` does, takes a second snapshot and prints the allocations that
grew, per connection, grouped by the line that allocated them (and by package). tracemalloc
sees only Python's allocator: OpenSSL's own memory (the SSL object, its record buffers) is
the part of the RSS growth it does not explain. Tracing costs memory itself, so the RSS
figures of such a run are not the headline (that is ``loadgen.py idle`` without it).
"""

from __future__ import annotations

import argparse
import asyncio
import linecache
import os
import signal
import sys
import time
import tracemalloc
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loadgen import RESULTS, Generator, parse_args  # noqa: E402


async def snapshot(pid: int) -> tracemalloc.Snapshot:
    before = set(RESULTS.glob(f"tracemalloc-{pid}-*.snap"))
    os.kill(pid, signal.SIGUSR1)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        new = set(RESULTS.glob(f"tracemalloc-{pid}-*.snap")) - before
        if new:
            path = new.pop()
            size = -1
            while size != path.stat().st_size:  # written in one go, but wait for it to end
                size = path.stat().st_size
                await asyncio.sleep(0.5)
            return tracemalloc.Snapshot.load(str(path))
        await asyncio.sleep(0.2)
    raise RuntimeError("no snapshot: was the server started with --experiment tracemalloc?")


def package(filename: str) -> str:
    parts = Path(filename).parts
    if "site-packages" in parts:
        return parts[parts.index("site-packages") + 1]
    if "app" in parts:
        return "app/" + "/".join(parts[parts.index("app") + 1:])
    return Path(filename).name


async def amain(opts: argparse.Namespace) -> None:
    argv = ["--instance", str(opts.instance)] + (["--plain"] if opts.plain else []) + ["idle", "--users", str(opts.users)]
    args = parse_args(argv)
    gen = Generator(args)
    pid = gen.worker_pid()
    assert pid, "no bench worker running"
    users = [u["id"] for u in gen.users[: opts.users]]
    await gen.connect_users(users[:10], settle=1.0)
    for c in list(gen.clients.values()):
        await c.close()
    gen.clients.clear()
    await asyncio.sleep(opts.settle)
    rss0 = gen.server_rss()
    first = await snapshot(pid)
    conn = await gen.connect_users(users, settle=2.0)
    await asyncio.sleep(opts.settle)
    rss1 = gen.server_rss()
    second = await snapshot(pid)
    await gen.close_all()
    n = conn["connected"]
    ignore = [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, "<frozen importlib._bootstrap>")]
    first, second = first.filter_traces(ignore), second.filter_traces(ignore)
    stats = second.compare_to(first, "traceback")
    total = sum(s.size_diff for s in stats)
    print(f"{'ws' if opts.plain else 'wss'}: {n} idle sockets; RSS {rss0} -> {rss1} KiB = {(rss1 - rss0) / n:.1f} KiB each "
          f"(with tracing); Python allocations +{total / n / 1024:.1f} KiB each")
    by_pkg: Counter[str] = Counter()
    for s in stats:
        by_pkg[package(s.traceback[-1].filename)] += s.size_diff  # frames run oldest first
    print("\nby package of the allocating line (KiB per connection):")
    for name, size in by_pkg.most_common(12):
        print(f"  {size / n / 1024:7.2f}  {name}")
    print(f"\ntop {opts.top} allocation sites (KiB and blocks per connection; innermost frame first):")
    for s in stats[: opts.top]:
        if s.size_diff <= 0:
            break
        print(f"  {s.size_diff / n / 1024:7.2f} KiB {s.count_diff / n:5.1f} blocks")
        for frame in list(reversed(s.traceback))[: opts.frames]:
            print(f"        {package(frame.filename)}:{frame.lineno}  {linecache.getline(frame.filename, frame.lineno).strip()[:90]}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--instance", type=Path, default=RESULTS / "instance-sqlite")
    p.add_argument("--users", type=int, default=300)
    p.add_argument("--plain", action="store_true", help="ws:// instead of wss://")
    p.add_argument("--settle", type=float, default=5.0)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--frames", type=int, default=4)
    asyncio.run(amain(p.parse_args()))


if __name__ == "__main__":
    main()
