"""Summarise a py-spy chrometrace (``py-spy record --format chrometrace --threads --idle``)
per thread kind and per second: what the event loop and the aiosqlite threads were doing.

    .venv/bin/python bench/trace_summary.py bench/results/profiles/X.json [--t0 FILE] [--seconds]

py-spy writes a "B" event when a frame appears on a thread's stack and an "E" when it goes;
the time between two changes is given to the stack in force. Each stack gets one label, from
its innermost frame that says something (SQLite's busy handler, a SQLite statement, waiting
for work, GC, TLS, Hypercorn/wsproto, SQLAlchemy, the app, the loop idle in select).
``--t0`` names a file holding the CLOCK_MONOTONIC time py-spy was started at, so that
``--seconds`` prints monotonic seconds that line up with bench/timeline.py (roughly: py-spy's
own start-up is not counted).
"""

from __future__ import annotations

import argparse
import json
from collections import Counter, defaultdict
from pathlib import Path

RULES = [
    # (substring of a frame name or file, label); the first rule matching the innermost-first walk wins
    ("sqlite3InvokeBusyHandler", "sqlite busy handler (waiting for the write lock)"),
    ("sqliteDefaultBusyCallback", "sqlite busy handler (waiting for the write lock)"),
    ("walCheckpoint", "sqlite WAL checkpoint"),
    ("sqlite3WalCheckpoint", "sqlite WAL checkpoint"),
    ("sqlite3PagerSync", "sqlite fsync"),
    ("fsync", "sqlite fsync"),
    ("sqlite3_step", "sqlite statement"),
    ("pysqlite_", "sqlite statement"),
    ("_queuemodule", "thread idle (waiting for work)"),
    ("gc_collect", "gc"),
    ("collect_with_callback", "gc"),
    ("select (selectors.py", "loop idle (select)"),
    ("ssl.py", "TLS"),
    ("sslproto.py", "TLS"),
    ("wsproto", "Hypercorn/wsproto/Quart"),
    ("hypercorn", "Hypercorn/wsproto/Quart"),
    ("quart", "Hypercorn/wsproto/Quart"),
    ("aiosqlite", "aiosqlite hand-off"),
    ("sqlalchemy", "SQLAlchemy"),
    ("/app/", "app"),
    ("json", "json"),
    ("asyncio", "asyncio"),
]


def label(stack: list[tuple[str, str]]) -> str:
    for name, filename in reversed(stack):
        text = f"{name} ({filename.rsplit('/', 1)[-1]}" if "select" in name else f"{name} {filename}"
        for needle, lab in RULES:
            if needle in text:
                return lab
    return "other"


def kind(thread_name: str) -> str:
    if "_connection_worker_thread" in thread_name:
        return "aiosqlite threads"
    if "MainThread" in thread_name or "(main)" in thread_name:
        return "event loop"
    return "other threads"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("trace", type=Path)
    p.add_argument("--t0", type=Path, default=None)
    p.add_argument("--seconds", action="store_true", help="also one line per second for the event loop")
    args = p.parse_args()
    events = json.loads(args.trace.read_text())
    events = events if isinstance(events, list) else events["traceEvents"]
    stacks: dict[int, list[tuple[str, str]]] = defaultdict(list)
    names: dict[int, str] = {}
    last: dict[int, int] = {}
    total: dict[str, Counter[str]] = defaultdict(Counter)
    per_sec: dict[int, Counter[str]] = defaultdict(Counter)
    for ev in events:
        tid, ts = ev["tid"], ev["ts"]
        if tid in last and stacks[tid] and ts > last[tid]:
            lab = label(stacks[tid])
            k = kind(names.get(tid, ""))
            total[k][lab] += ts - last[tid]
            if k == "event loop":
                # split the interval over the seconds it spans
                a, b = last[tid], ts
                while a < b:
                    edge = min(b, (a // 1_000_000 + 1) * 1_000_000)
                    per_sec[a // 1_000_000][lab] += edge - a
                    a = edge
        last[tid] = ts
        if ev["ph"] == "B":
            if not stacks[tid] and ev["name"].startswith("thread ("):
                names[tid] = ev["name"]
            stacks[tid].append((ev["name"], ev["args"].get("filename", "")))
        elif stacks[tid]:
            stacks[tid].pop()
    for k, counter in sorted(total.items()):
        whole = sum(counter.values()) or 1
        print(f"{k}: {whole / 1e6:.1f} thread-seconds")
        for lab, us in counter.most_common(10):
            print(f"  {100 * us / whole:5.1f} %  {lab}")
    if args.seconds:
        t0 = float(args.t0.read_text()) if args.t0 else 0.0
        labels = [lab for lab, _ in total["event loop"].most_common(8)]
        print("\nevent loop per second (ms of the second):")
        print("t (monotonic) | " + " | ".join(labels))
        for sec in sorted(per_sec):
            c = per_sec[sec]
            print(f"{t0 + sec:.0f} | " + " | ".join(f"{c[lab] / 1000:.0f}" for lab in labels))


if __name__ == "__main__":
    main()
