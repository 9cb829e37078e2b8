"""The group writer's batch statements look rows up by index on SQLite, whatever the size of
the tables: a batch's duplicate check and its members' watermarks are read pair by pair
from the two-column indexes, not by scanning messages or memberships (SQLAlchemy's
``tuple_(...).in_(...)`` did scan: ``(a, b) IN (VALUES ...)``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.services import Services
from app.store import messages, receipts


async def _plan_of(svc: Services, call: Callable[[AsyncSession], Awaitable[Any]]) -> str:
    """The SQLite query plan of the one statement ``call`` runs."""
    seen: list[tuple[str, Any]] = []

    def keep(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        seen.append((statement, parameters))

    event.listen(svc.db.engine.sync_engine, "before_cursor_execute", keep)
    try:
        async with svc.db.reading() as s:
            await call(s)
    finally:
        event.remove(svc.db.engine.sync_engine, "before_cursor_execute", keep)
    [(statement, parameters)] = [(st, p) for st, p in seen if st.lstrip().upper().startswith("SELECT")]
    async with svc.db.reading() as s:
        raw = await (await s.connection()).get_raw_connection()
        cursor = await raw.driver_connection.execute("EXPLAIN QUERY PLAN " + statement, parameters)  # type: ignore[union-attr]
        return "\n".join(str(row[-1]) for row in await cursor.fetchall())


@pytest.fixture(autouse=True)
def _sqlite_only(database_kind: str) -> None:
    if database_kind != "sqlite":
        pytest.skip("SQLite's query plans (PostgreSQL plans a 3-row table by scanning it, rightly)")


async def test_the_duplicate_check_of_a_batch_searches_the_unique_index(svc: Services) -> None:
    plan = await _plan_of(svc, lambda s: messages.stored_client_ids(s, [(1, "a"), (2, "b"), (3, "c")]))
    assert "SEARCH" in plan and "sender_id=? AND client_msg_id=?" in plan
    assert not _scans(plan), plan


async def test_the_watermarks_of_a_batch_are_read_by_primary_key(svc: Services) -> None:
    plan = await _plan_of(svc, lambda s: receipts.watermark_states(s, [(1, 2), (3, 4), (5, 6)]))
    assert "conversation_id=? AND user_id=?" in plan
    assert not _scans(plan), plan


async def test_the_senders_of_a_batchs_ranges_are_read_by_index_range(svc: Services) -> None:
    plan = await _plan_of(svc, lambda s: messages.text_senders_in(s, [(1, 0, 10), (2, 5, 9), (3, 1, 2)]))
    assert "ix_messages_conversation_id_id (conversation_id=? AND id>? AND id<?)" in plan
    assert not _scans(plan), plan


def _scans(plan: str) -> list[str]:
    """The plan's full-table scans."""
    return [line for line in plan.splitlines() if line.lstrip().startswith("SCAN")]


async def test_the_plan_helper_sees_a_scan(svc: Services) -> None:
    """The checks above can fail: the scan that tuple IN gave is visible to them."""

    async def scanning(s: AsyncSession) -> None:
        await s.execute(text("SELECT sender_id FROM messages WHERE (sender_id, client_msg_id) IN (VALUES (1, 'a'), (2, 'b'))"))

    assert _scans(await _plan_of(svc, scanning))
