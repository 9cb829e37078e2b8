"""Message info times: the first watermark move of each recipient that reached a message,
read through an index, never a scan of the conversation's whole history of moves."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import event

from app.lib.clock import FrozenClock
from app.records import Staff
from app.services import Services
from app.store import receipts


async def _move(svc: Services, conversation_id: int, user_id: int, read_id: int, delivered_id: int) -> None:
    async with svc.db.transaction() as s:
        await receipts.record_watermark_moves(s, [(conversation_id, user_id, read_id, delivered_id)], svc.clock.now())


async def _conversation(svc: Services, staff: list[Staff]) -> int:
    from app.actions import conversations
    from tests.helpers import actor_for

    return await conversations.do_create_group(svc, actor_for(staff[0]), "Ward", [u.username for u in staff[1:]])


async def test_first_move_reaching_the_message_for_the_named_members_only(svc: Services, make_user: Any, clock: FrozenClock) -> None:
    alice, bob, carol = [await make_user(n) for n in ("alice", "bob", "carol")]
    conv = await _conversation(svc, [alice, bob, carol])
    start = clock.now()
    await _move(svc, conv, bob.id, 0, 5)  # t0: delivered below the message
    clock.advance(10)
    await _move(svc, conv, bob.id, 0, 10)  # t10: delivered reaches 10
    clock.advance(10)
    await _move(svc, conv, bob.id, 12, 12)  # t20: read passes 10
    clock.advance(10)
    await _move(svc, conv, bob.id, 20, 20)  # later moves do not count
    await _move(svc, conv, carol.id, 30, 30)  # carol: not asked for
    async with svc.db.reading() as s:
        delivered, read = await receipts.receipt_times(s, conv, 10, [bob.id])
        assert delivered == {bob.id: start + timedelta(seconds=10)}
        assert read == {bob.id: start + timedelta(seconds=20)}
        assert await receipts.receipt_times(s, conv, 10, []) == ({}, {})
        assert await receipts.receipt_times(s, conv, 31, [bob.id, carol.id]) == ({}, {})


async def test_each_side_is_a_range_on_its_own_index(svc: Services, make_user: Any) -> None:
    """SQLite's plan for both queries searches an index by conversation, user and id."""
    if not svc.db.is_sqlite:
        return  # the planner's choice on a tiny PostgreSQL table says nothing
    alice, bob = await make_user("alice"), await make_user("bob")
    conv = await _conversation(svc, [alice, bob])
    statements: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        if "watermark_moves" in statement:
            statements.append((statement, parameters))

    event.listen(svc.db.engine.sync_engine, "before_cursor_execute", capture)
    try:
        async with svc.db.reading() as s:
            await receipts.receipt_times(s, conv, 10, [bob.id])
    finally:
        event.remove(svc.db.engine.sync_engine, "before_cursor_execute", capture)
    assert len(statements) == 2
    plans = []
    async with svc.db.engine.connect() as conn:
        for statement, parameters in statements:
            rows = await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
            plans.append(" ".join(str(r[-1]) for r in rows.all()))
    assert "INDEX ix_watermark_moves_conversation_user (conversation_id=? AND user_id=? AND delivered_id>?)" in plans[0], plans[0]
    assert "INDEX ix_watermark_moves_conversation_user_read (conversation_id=? AND user_id=? AND read_id>?)" in plans[1], plans[1]
    assert "SCAN" not in " ".join(plans)
