"""A per-second timeline: the load generator's latencies beside the server's event-loop trace.

Reads an open-loop result of bench/loadgen.py (ward, capacity, mixed: its ``per_second``
windows and ``origin_monotonic``) and the JSON lines bench/loopmon.py wrote in the worker
(``python bench/server.py start --monitor``), and prints one row per second of each run,
aligned on CLOCK_MONOTONIC (both processes read the same clock):

    .venv/bin/python bench/timeline.py bench/results/ward-stalls.json [--monitor FILE] [--worst 8] [--csv out.csv]

Columns: messages sent in the second; ack p50/p99 and delivery (to every member) p99 and max,
from the scheduled send time; the event loop's worst lag (how late a 10 ms sleep woke) and the
ms of lag over 20 ms added up (the loop blocked); garbage collections (all / gen 2) and the
longest gen-2 pause; the worker's CPU (whole process, event-loop thread) and the loop thread's
run-queue wait (runnable, core taken by another thread or process); SQLite commits, WAL
checkpoints and the longest commit; the longest statement run in an aiosqlite thread and the
number of statements over 100 ms (time in SQLite's busy handler: another connection held the
write lock); how busy the server's core was (every process) and the load average.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def load_monitor(path: Path) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    with path.open() as handle:
        for line in handle:
            try:
                ev = json.loads(line)
            except ValueError:
                continue  # a line cut by a kill
            out.setdefault(ev["k"], []).append(ev)
    for events in out.values():
        events.sort(key=lambda e: e["t"])
    return out


def _in(events: list[dict[str, Any]], t0: float, t1: float) -> list[dict[str, Any]]:
    return [e for e in events if t0 <= e["t"] < t1]


def _sec_overlap(secs: list[dict[str, Any]], t0: float, t1: float) -> dict[str, Any] | None:
    """The monitor's one-second row that overlaps [t0, t1) the most."""
    best, best_overlap = None, 0.0
    for s in secs:
        overlap = min(t1, s["t"] + s["span"]) - max(t0, s["t"])
        if overlap > best_overlap:
            best, best_overlap = s, overlap
    return best


def rows_for(result: dict[str, Any], mon: dict[str, list[dict[str, Any]]], server_core: int) -> list[dict[str, Any]]:
    rows = []
    runs = result.get("runs") or [result.get("result", {})]
    for run in runs:
        origin = run.get("origin_monotonic")
        if origin is None:
            raise SystemExit("this result has no origin_monotonic (made before bench/loopmon.py): re-run it")
        for w in run.get("per_second", []):
            t0 = origin + w["second"]
            t1 = t0 + 1.0
            lags = [e["ms"] for e in _in(mon.get("lag", []), t0, t1)]
            gcs = _in(mon.get("gc", []), t0, t1)
            gen2 = [g for g in gcs if g["gen"] == 2]
            dbs = _in(mon.get("db", []), t0, t1)
            commits = [d for d in dbs if d["fn"] == "commit"]
            sec = _sec_overlap(mon.get("sec", []), t0, t1) or {}
            busy = sec.get("cores_busy") or []
            other = [b for i, b in enumerate(busy) if i != server_core and b is not None]
            rows.append({
                "rate": run.get("rate"), "second": w["second"], "sent": w["sent"],
                "ack_p50": w["ack_p50_ms"], "ack_p99": w["ack_p99_ms"], "dlv_p99": w["delivery_p99_ms"],
                "dlv_max": w["delivery_max_ms"], "undelivered": w["undelivered"],
                "lag_max": round(max(lags), 1) if lags else None,
                "lag_blocked": round(sum(x for x in lags if x > 20), 1),
                "gc": len(gcs), "gc2": len(gen2), "gc2_ms": round(max((g["ms"] for g in gen2), default=0.0), 1),
                "gc_ms": round(sum(g["ms"] for g in gcs), 1),
                "cpu": sec.get("cpu"), "loop_cpu": sec.get("loop_cpu"), "loop_wait": sec.get("loop_wait"),
                "commits": len(commits), "ckpt": sum(1 for d in commits if d.get("ckpt")),
                "commit_max": round(max((d["ms"] for d in commits), default=0.0), 1),
                "db_ms": sec.get("db_ms"),
                # statements that sat in SQLite's busy handler (another connection held the write lock)
                "db_exec_max": round(max((d["ms"] for d in dbs if d["fn"] != "commit"), default=0.0), 1),
                "db_slow": sum(1 for d in dbs if d["fn"] != "commit" and d["ms"] >= 100), "db_wait_max": round(max((d["wait_ms"] for d in dbs), default=0.0), 1),
                "wal_frames": sec.get("wal_frames"), "threads": sec.get("threads"),
                "server_core_busy": busy[server_core] if len(busy) > server_core else None,
                "other_core_busy": max(other) if other else None, "loadavg": sec.get("loadavg"),
            })
    return rows


COLUMNS = [
    ("rate", "rate"), ("second", "s"), ("sent", "sent"), ("ack_p50", "ack p50"), ("ack_p99", "ack p99"),
    ("dlv_p99", "dlv p99"), ("dlv_max", "dlv max"), ("lag_max", "lag max"), ("lag_blocked", "blocked ms"),
    ("gc", "gc"), ("gc2", "gc2"), ("gc2_ms", "gc2 ms"), ("cpu", "cpu"), ("loop_cpu", "loop cpu"),
    ("loop_wait", "loop wait"), ("commits", "commits"), ("ckpt", "ckpt"), ("commit_max", "commit max ms"),
    ("db_exec_max", "stmt max ms"), ("db_slow", "stmts >= 100 ms"), ("server_core_busy", "core busy"), ("loadavg", "load"),
]


def print_table(rows: list[dict[str, Any]]) -> None:
    print("| " + " | ".join(title for _, title in COLUMNS) + " |")
    print("|" + " --- |" * len(COLUMNS))
    for r in rows:
        print("| " + " | ".join("" if r[key] is None else str(r[key]) for key, _ in COLUMNS) + " |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("result", type=Path, help="a loadgen result JSON")
    p.add_argument("--monitor", type=Path, default=None, help="default: bench/results/loopmon-<instance>.jsonl")
    p.add_argument("--worst", type=int, default=0, help="only the N seconds with the highest ack/delivery p99")
    p.add_argument("--csv", type=Path, default=None, help="also write every row as CSV")
    p.add_argument("--server-core", type=int, default=None, help="the server's CPU (default: from the result)")
    args = p.parse_args()
    result = json.loads(args.result.read_text())
    monitor = args.monitor
    if monitor is None:
        instance = Path(result.get("command", "").split("--instance ")[-1].split()[0]) if "--instance " in result.get("command", "") else None
        name = instance.name if instance else "instance-sqlite"
        monitor = RESULTS / f"loopmon-{name}.jsonl"
    core = args.server_core
    if core is None:
        try:
            core = int(str(result.get("env", {}).get("server_core", "0")).split(",")[0])
        except ValueError:
            core = 0
    rows = rows_for(result, load_monitor(monitor), core)
    if args.csv:
        with args.csv.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else [])
            writer.writeheader()
            writer.writerows(rows)
    shown = rows
    if args.worst:
        shown = sorted(rows, key=lambda r: -max(r["ack_p99"] or 0, r["dlv_p99"] or 0))[: args.worst]
    print_table(shown)
    if not args.worst and rows:
        lagged = [r for r in rows if (r["lag_max"] or 0) > 100]
        print(f"\n{len(rows)} seconds; {len(lagged)} with an event-loop lag over 100 ms", file=sys.stderr)


if __name__ == "__main__":
    main()
