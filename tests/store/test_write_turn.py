"""SQLite writers of one process take turns (``Database._write_turn``) instead of napping in
SQLite's busy handler, the stalled seconds of docs/performance.md ("Stalls")."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text

import app.store.db as dbmod
from app.lib.errors import Unavailable
from app.store.db import Database


async def _table(db: Database) -> None:
    async with db.transaction() as s:
        await s.execute(text("CREATE TABLE t (n INTEGER)"))


async def test_a_second_writer_waits_its_turn_and_commits_right_after_the_first(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'turn.db'}")
    try:
        await _table(db)
        order: list[str] = []
        first_wrote = asyncio.Event()
        release = asyncio.Event()

        async def first() -> None:
            async with db.transaction() as s:
                await s.execute(text("INSERT INTO t VALUES (1)"))  # holds SQLite's write lock
                first_wrote.set()
                await release.wait()  # across an await, as a unit of work does
            order.append("first committed")

        async def second() -> None:
            await first_wrote.wait()
            async with db.transaction() as s:
                order.append("second began")
                await s.execute(text("INSERT INTO t VALUES (2)"))
            order.append("second committed")

        tasks = [asyncio.create_task(first()), asyncio.create_task(second())]
        await first_wrote.wait()
        for _ in range(20):
            await asyncio.sleep(0)
        assert order == []  # the second waits for its turn, not inside SQLite
        release.set()
        await asyncio.gather(*tasks)
        assert order == ["first committed", "second began", "second committed"]
        async with db.reading() as s:
            assert [r[0] for r in (await s.execute(text("SELECT n FROM t ORDER BY n"))).all()] == [1, 2]
    finally:
        await db.dispose()


async def test_a_turn_not_come_in_time_is_unavailable_and_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dbmod, "WRITE_TURN_SECONDS", 0.05)
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'turn.db'}")
    try:
        await _table(db)
        holding = asyncio.Event()
        release = asyncio.Event()

        async def hold() -> None:
            async with db.transaction() as s:
                await s.execute(text("INSERT INTO t VALUES (1)"))
                holding.set()
                await release.wait()

        task = asyncio.create_task(hold())
        await holding.wait()
        with pytest.raises(Unavailable):
            async with db.transaction() as s:
                await s.execute(text("INSERT INTO t VALUES (2)"))
        release.set()
        await task
        async with db.reading() as s:
            assert [r[0] for r in (await s.execute(text("SELECT n FROM t"))).all()] == [1]
    finally:
        await db.dispose()
