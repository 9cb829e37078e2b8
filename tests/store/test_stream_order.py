"""Stream positions become visible in the order they are given ("every change after P" is
sound), whatever kind of change draws them: sends and receipts through the group writer,
conversation changes through their own unit of work (app/actions/stream.py), on SQLite (one
writer at a time) and on PostgreSQL (the stream's advisory lock, app/store/messages.py
``commit_in_position_order``). The method of tests/store/test_message_order.py."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import select

from app.actions import conversations, messages, receipts
from app.actions.stream import current_position
from app.records import Staff
from app.services import Services
from app.store import changes
from app.store import messages as store_messages
from app.store.models import Change
from app.vocab import ChangeKind
from tests.helpers import actor_for, new_id


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    # The message limit has its own tests; here dozens of sends race.
    app_config.update(MESSAGE_BURST=10_000, MESSAGE_RATE=10_000)
    return app_config


async def _people(svc: Services, make_user: Any) -> tuple[Staff, Staff, Staff, int, int]:
    """Alice, Bob and Carol; Alice's group with Bob and her direct chat with Carol."""
    alice, bob, carol = await make_user("alice"), await make_user("bob"), await make_user("carol")
    group = await conversations.do_create_group(svc, actor_for(alice), "Ward 7", ["bob"])
    direct = await conversations.do_open_direct(svc, actor_for(alice), "carol")
    return alice, bob, carol, group, direct


async def _send(svc: Services, who: Staff, conversation_id: int, body: str) -> int:
    return (await messages.do_send_message(svc, actor_for(who), conversation_id, body, new_id())).position


@pytest.mark.parametrize("kind", ["send", "receipt", "rename"])
async def test_a_change_of_another_kind_waits_for_the_first_to_commit(svc: Services, make_user: Any, kind: str) -> None:
    alice, bob, carol, group, direct = await _people(svc, make_user)
    seen = (await messages.do_send_message(svc, actor_for(alice), group, "read me", new_id())).message.id
    second: Callable[[], Awaitable[Any]] = {
        # Another conversation (no row shared with the first transaction): only the order.
        "send": lambda: _send(svc, carol, direct, "second"),
        "receipt": lambda: receipts.do_mark_read(svc, actor_for(bob), group, seen),
        "rename": lambda: conversations.do_rename_group(svc, actor_for(alice), group, "Ward 7 nights"),
    }[kind]
    async with svc.db.transaction() as s:
        first = await changes.append(s, direct, ChangeKind.RENAMED, data={"note": "held open"})
        task = asyncio.create_task(second())
        await asyncio.sleep(0.5)
        # The second writer cannot draw a position, let alone commit, while the first is open.
        assert not task.done()
    await asyncio.wait_for(task, 10)
    async with svc.db.reading() as s:
        later = (await s.scalars(select(Change.position).where(Change.position > first))).all()
    assert later and min(later) > first


async def test_a_reader_polling_never_sees_a_position_commit_before_a_lower_one(svc: Services, make_user: Any) -> None:
    """Concurrent writers of every kind; a reader polls the committed positions. A position
    that appears must be above every position seen at the previous poll (receipts collapse,
    so a position may vanish; none may appear below one already visible)."""
    alice, bob, carol, group, direct = await _people(svc, make_user)
    start = await current_position(svc)
    stop = asyncio.Event()
    polls: list[set[int]] = []

    async def reader() -> None:
        while not stop.is_set():
            async with svc.db.reading() as s:
                polls.append(set((await s.scalars(select(Change.position).where(Change.position > start))).all()))
            await asyncio.sleep(0)

    async def sender(who: Staff, conversation_id: int, rounds: int) -> None:
        for n in range(rounds):
            await _send(svc, who, conversation_id, f"{who.username} {n}")

    async def reader_of(who: Staff, conversation_id: int, rounds: int) -> None:
        for _ in range(rounds):
            # Up to whatever is newest (the action caps it at the last message).
            await receipts.do_mark_delivered(svc, actor_for(who), conversation_id, 2**31)
            await asyncio.sleep(0)

    async def renamer(rounds: int) -> None:
        for n in range(rounds):
            await conversations.do_rename_group(svc, actor_for(alice), group, f"Ward 7 ({n})")

    watching = asyncio.create_task(reader())
    await asyncio.gather(
        sender(alice, group, 15), sender(bob, group, 15), sender(carol, direct, 15), sender(alice, direct, 15),
        reader_of(bob, group, 15), reader_of(carol, direct, 15), renamer(8),
    )
    stop.set()
    await watching
    assert len(polls) > 10, "the reader barely ran"
    for before, after in zip(polls, polls[1:], strict=False):
        appeared = after - before
        assert not before or not appeared or min(appeared) > max(before), (
            f"{sorted(p for p in appeared if p < max(before))} committed after {max(before)} was visible"
        )
    async with svc.db.reading() as s:
        final = set((await s.scalars(select(Change.position).where(Change.position > start))).all())
    assert len(final) >= 60 + 16


async def test_a_unit_of_work_waits_for_a_batch_holding_the_order_lock_without_deadlock(svc: Services, make_user: Any) -> None:
    """A rename (its own unit of work) while the group writer's batch holds the order lock
    and then moves the same conversation's row (as a send does). The rename must take the
    lock before it locks the conversation's row; the other way round PostgreSQL found a
    deadlock and failed one of them."""
    alice, _bob, _carol, group, _direct = await _people(svc, make_user)
    entered, release = asyncio.Event(), asyncio.Event()

    async def batch_unit(s: Any) -> int:
        # Test only: a unit that waits (units never do) to hold the batch open.
        await store_messages.commit_in_position_order(s)
        entered.set()
        await release.wait()
        msg_id = await store_messages.insert_message(
            s, conversation_id=group, sender_id=alice.id, kind="text", body="in the batch",
            client_msg_id=None, reply_to_id=None, now=svc.clock.now(),
        )
        return await changes.append(s, group, ChangeKind.MESSAGE, message_id=msg_id)

    batch = asyncio.create_task(svc.writer.submit(batch_unit))
    await entered.wait()
    rename = asyncio.create_task(conversations.do_rename_group(svc, actor_for(alice), group, "Ward 7 nights"))
    await asyncio.sleep(0.3)  # the rename goes as far as it can
    assert not rename.done()
    release.set()
    position = await asyncio.wait_for(batch, 10)
    await asyncio.wait_for(rename, 10)
    async with svc.db.reading() as s:
        renamed = await s.scalar(select(Change.position).where(Change.kind == ChangeKind.RENAMED).order_by(Change.position.desc()).limit(1))
    assert renamed is not None and renamed > position
