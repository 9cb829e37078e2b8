"""Summarise a py-spy speedscope profile: where each thread's samples are, by function.

    py-spy record --pid <worker> --duration 20 --idle --threads --format speedscope -o prof.json
    .venv/bin/python bench/profile_summary.py prof.json [--top 25]

For every thread group (the event loop "MainThread", aiosqlite's connection threads, the
rest) it prints the share of samples whose innermost frame is a function (self time), and
the share that pass through a function of the project or a library (inclusive time).
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path


def group_of(name: str) -> str:
    if "MainThread" in name or "Thread 0" in name:
        return "event loop (MainThread)"
    return "other threads (aiosqlite connections, executor)"


def category(files: list[str], names: list[str]) -> str:
    """Where one event-loop sample is, coarsely. SQLAlchemy runs its sync core inside a
    greenlet, so many database samples have no app frame above them: file names decide."""
    if any("EpollSelector.select" in n for n in names):
        return "idle (waiting in epoll)"
    if any(key in f for f in files for key in ("sqlalchemy", "aiosqlite", "asyncpg")) or any("_read_from_self" in n for n in names):
        return "database (SQLAlchemy, aiosqlite/asyncpg, thread wake-ups)"
    if any("sslproto" in f or f.endswith("/ssl.py") for f in files):
        return "TLS (asyncio sslproto, ssl)"
    if any(key in f for f in files for key in ("hypercorn", "wsproto", "/h11/", "/quart/", "werkzeug")):
        return "Hypercorn, wsproto, Quart, Werkzeug"
    if any("/app/" in f for f in files):
        return "app code (other)"
    return "asyncio and other"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    data = json.loads(args.profile.read_text())
    frames = data["shared"]["frames"]

    def label(i: int) -> str:
        f = frames[i]
        file = f.get("file") or ""
        short = file.split("site-packages/")[-1].split("/work/main/")[-1]
        return f"{f['name']} ({short}:{f.get('line', '')})" if short else f["name"]

    by_group: dict[str, dict[str, Counter[str]]] = {}
    totals: Counter[str] = Counter()
    categories: Counter[str] = Counter()
    for prof in data["profiles"]:
        group = group_of(prof.get("name", ""))
        stats = by_group.setdefault(group, {"self": Counter(), "incl": Counter()})
        for stack, weight in zip(prof["samples"], prof["weights"], strict=True):
            totals[group] += weight
            if not stack:
                continue
            if group.startswith("event loop"):
                categories[category([frames[i].get("file") or "" for i in stack], [frames[i]["name"] for i in stack])] += weight
            stats["self"][label(stack[-1])] += weight
            for name in {label(i) for i in stack}:
                stats["incl"][name] += weight
    loop_total = sum(categories.values()) or 1
    print("== event loop by category:")
    for name, n in categories.most_common():
        print(f"    {100 * n / loop_total:5.1f}%  {name}")
    for group, stats in by_group.items():
        total = totals[group] or 1
        print(f"\n== {group}: {totals[group]} samples")
        print("  self (innermost frame):")
        for name, n in stats["self"].most_common(args.top):
            print(f"    {100 * n / total:5.1f}%  {name}")
        print("  inclusive (app/ and selected libraries):")
        shown = 0
        for name, n in stats["incl"].most_common():
            if any(key in name for key in ("app/", "wsproto", "hypercorn/protocol", "sqlalchemy/orm/session", "ssl", "json")):
                print(f"    {100 * n / total:5.1f}%  {name}")
                shown += 1
                if shown >= args.top:
                    break


if __name__ == "__main__":
    main()
