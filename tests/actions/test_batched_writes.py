"""Sends and receipts that share one group-writer batch are written by one bulk call each
(app/actions/messages.py ``_store_sends``, app/actions/receipts.py ``_store_receipts``):
each caller still gets exactly its own answer, refusals stay per caller, and the stream
gets one change per message and one per member's moved watermarks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import pytest

from app.actions import conversations, messages, receipts, stream
from app.actions.errors import NotFound
from app.realtime.events import Event
from app.records import Staff
from app.services import Services
from tests.helpers import actor_for, all_messages, new_id

pytestmark = pytest.mark.usefixtures("database_kind")


@asynccontextmanager
async def one_batch(svc: Services) -> AsyncIterator[list[Awaitable[Any]]]:
    """Hold the writer on a unit of its own while the body's calls queue, so that they all
    run in the one batch after it; the body's calls are started (as tasks) on exit and their
    results, or errors, replace them in the list."""
    release = asyncio.Event()

    async def hold(_s: Any) -> None:
        await release.wait()

    calls: list[Awaitable[Any]] = []
    holding = asyncio.create_task(svc.writer.submit(hold))
    while svc.writer.stats.batches == 0 or svc.writer._queue.qsize():
        await asyncio.sleep(0)
    batches = svc.writer.stats.batches
    yield calls
    tasks = [asyncio.ensure_future(c) for c in calls]
    while svc.writer._queue.qsize() < len(tasks):
        await asyncio.sleep(0)
    release.set()
    await holding
    results = await asyncio.gather(*tasks, return_exceptions=True)
    calls[:] = results
    assert svc.writer.stats.batches == batches + 1  # they did share one batch


async def test_sends_of_one_batch_each_get_their_own_answer(
    svc: Services, staff: dict[str, Staff], group: int, events: list[Event]
) -> None:
    alice, bob, dave = (actor_for(staff[n]) for n in ("alice", "bob", "dave"))
    direct = await conversations.do_open_direct(svc, bob, "dave")
    twice = new_id()
    events.clear()
    async with one_batch(svc) as calls:
        calls += [
            messages.do_send_message(svc, alice, group, "one", new_id()),
            messages.do_send_message(svc, dave, group, "not a member", new_id()),
            messages.do_send_message(svc, bob, direct, "to dave", new_id()),
            messages.do_send_message(svc, bob, group, "once", twice),
            messages.do_send_message(svc, bob, group, "once", twice),
            messages.do_send_message(svc, alice, group, "two", new_id()),
        ]
    one, refused, to_dave, first, repeat, two = calls
    assert isinstance(refused, NotFound)
    assert first.created and not repeat.created and repeat.message.id == first.message.id
    assert repeat.position == first.position
    stored = [one, to_dave, first, two]
    assert [s.message.id for s in stored] == sorted(s.message.id for s in stored)
    assert [s.position for s in stored] == sorted(s.position for s in stored)
    assert [m.body for m in await all_messages(svc, group) if m.kind == "text"] == ["one", "once", "two"]
    assert [m.body for m in await all_messages(svc, direct) if m.kind == "text"] == ["to dave"]
    # One event per stored message, to that conversation's members only.
    assert [(e.data["message"]["body"], e.position) for e in events] == [
        (s.message.body, s.position) for s in sorted(stored, key=lambda s: s.position)
    ]
    assert staff["dave"].id not in next(e for e in events if e.data["message"]["body"] == "one").user_ids
    # The senders' own watermarks moved to their newest message (read by the sender).
    detail = await conversations.conversation_detail(svc, staff["alice"], group)
    me = detail.member(staff["alice"].id)
    assert me is not None and me.last_read_id == two.message.id
    assert detail.last_message_id == two.message.id
    # Resume gets each exactly once, in position order.
    missed = await stream.missed_changes(svc, staff["bob"], min(s.position for s in stored) - 1, 100, 1000)
    assert [f["message"]["id"] for f in missed.frames if f["type"] == "message"] == [s.message.id for s in stored]


async def test_receipts_of_one_batch_collapse_per_member(
    svc: Services, staff: dict[str, Staff], group: int, events: list[Event]
) -> None:
    alice, bob, carol, dave = (actor_for(staff[n]) for n in ("alice", "bob", "carol", "dave"))
    m1 = (await messages.do_send_message(svc, alice, group, "one", new_id())).message.id
    m2 = (await messages.do_send_message(svc, alice, group, "two", new_id()))
    events.clear()
    async with one_batch(svc) as calls:
        calls += [
            receipts.do_mark_delivered(svc, bob, group, m1),
            receipts.do_mark_read(svc, dave, group, m1),
            receipts.do_mark_read(svc, bob, group, m2.message.id),
            receipts.do_mark_delivered(svc, carol, group, 10**9),  # clamped to the newest
            receipts.do_mark_delivered(svc, bob, group, m1),  # behind: nothing moves
        ]
    assert calls[0] is True and isinstance(calls[1], NotFound) and calls[2] is True
    assert calls[3] is True and calls[4] is False
    # Bob's two moves are one change and one event, with his final watermarks.
    by_user = {e.data["user_id"]: e for e in events}
    assert len(events) == 2 and set(by_user) == {staff["bob"].id, staff["carol"].id}
    bob_event = by_user[staff["bob"].id].data
    assert (bob_event["read_id"], bob_event["delivered_id"]) == (m2.message.id, m2.message.id)
    carol_event = by_user[staff["carol"].id].data
    assert carol_event["delivered_id"] == m2.message.id and carol_event["read_id"] < m1
    detail = await conversations.conversation_detail(svc, staff["alice"], group)
    bob_now, carol_now = detail.member(staff["bob"].id), detail.member(staff["carol"].id)
    assert bob_now is not None and (bob_now.last_read_id, bob_now.last_delivered_id) == (m2.message.id, m2.message.id)
    assert carol_now is not None and carol_now.last_delivered_id == m2.message.id
    assert carol_now.last_read_id < m2.message.id
    missed = await stream.missed_changes(svc, staff["alice"], m2.position, 100, 1000)
    assert sorted((f["user_id"], f["read_id"], f["delivered_id"]) for f in missed.frames) == sorted(
        (e.data["user_id"], e.data["read_id"], e.data["delivered_id"]) for e in events
    )
    assert missed.positions == sorted(e.position for e in events if e.position is not None)


@pytest.mark.parametrize("span", [2000, 0], ids=["one-read", "read-per-receipt"])
async def test_receipts_of_one_batch_in_a_big_group_reach_the_senders_of_their_own_range(
    svc: Services, staff: dict[str, Staff], events: list[Event], monkeypatch: pytest.MonkeyPatch, span: int
) -> None:
    """Each receipt tells the senders of the messages it newly covers, even when the batch
    reads the senders of every receipt's range at once (or, for a long range, one by one)."""
    monkeypatch.setattr(receipts, "_ONE_READ_SPAN", span)
    svc.settings = replace(svc.settings, receipts_all_members_max=3)
    alice, bob, carol, dave = (actor_for(staff[n]) for n in ("alice", "bob", "carol", "dave"))
    big = await conversations.do_create_group(svc, alice, "Whole ward", ["bob", "carol", "dave"])
    m1 = (await messages.do_send_message(svc, bob, big, "from bob", new_id())).message.id
    m2 = (await messages.do_send_message(svc, alice, big, "from alice", new_id())).message.id
    events.clear()
    async with one_batch(svc) as calls:
        calls += [receipts.do_mark_delivered(svc, carol, big, m1), receipts.do_mark_read(svc, dave, big, m2)]
    assert calls == [True, True]
    told = {e.data["user_id"]: sorted(e.user_ids) for e in events}
    ids = {n: staff[n].id for n in staff}
    assert told == {
        ids["carol"]: sorted([ids["bob"], ids["carol"]]),  # m1 only: bob's tick
        ids["dave"]: sorted([ids["alice"], ids["bob"], ids["dave"]]),  # m1 and m2
    }


async def test_a_batch_costs_a_few_statements_whatever_its_size(svc: Services, staff: dict[str, Staff], make_user: Any) -> None:
    """20 sends, then 20 receipts, each in one batch: a handful of statements each, not
    20 x 6 (on SQLite every statement is a trip to aiosqlite's thread)."""
    from sqlalchemy import event

    alice = actor_for(staff["alice"])
    others = [await make_user(f"nurse{i}") for i in range(20)]
    ward = await conversations.do_create_group(svc, alice, "Ward 9", [u.username for u in others])
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(svc.db.engine.sync_engine, "before_cursor_execute", count)
    try:
        async with one_batch(svc) as calls:
            calls += [messages.do_send_message(svc, actor_for(u), ward, f"obs {u.username}", new_id()) for u in others]
        sends = [s for s in seen if not s.lstrip().upper().startswith(("BEGIN", "SELECT PG_ADVISORY", "SAVEPOINT"))]
        newest = max(sent.message.id for sent in calls)
        seen.clear()
        async with one_batch(svc) as receipts_done:
            receipts_done += [receipts.do_mark_delivered(svc, actor_for(u), ward, newest) for u in others]
        moves = [s for s in seen if not s.lstrip().upper().startswith(("BEGIN", "SELECT PG_ADVISORY", "SAVEPOINT"))]
    finally:
        event.remove(svc.db.engine.sync_engine, "before_cursor_execute", count)
    newest_sender = max(calls, key=lambda sent: sent.message.id).message.sender_id
    # Every member's delivered mark moved but the newest message's sender's (read already).
    assert all(sent.created for sent in calls)
    assert receipts_done == [u.id != newest_sender for u in others]
    # The hold unit's batch and the statements outside the writer are not in these counts
    # only because nothing else ran: a duplicate check, the member versions, the messages,
    # the newest ids, the watermarks, the changes (and the member list once, uncached).
    assert len(sends) <= 8, sends
    # The watermarks, the members' versions, the update, the times, the delete and insert of
    # receipt changes (and the senders of a big group's range).
    assert len(moves) <= 8, moves


async def test_a_delivered_receipt_tells_only_the_senders_of_the_newly_delivered_messages(
    svc: Services, staff: dict[str, Staff], events: list[Event]
) -> None:
    """A member who reads nothing but whose device keeps saying "delivered": each receipt
    reaches the senders of what it newly delivers, not everyone who wrote since the member
    last read (the range from the read watermark covered the whole history)."""
    alice, bob, carol, dave = (actor_for(staff[n]) for n in ("alice", "bob", "carol", "dave"))
    ward = await conversations.do_create_group(svc, alice, "Ward 3", ["bob", "carol", "dave"])
    await messages.do_send_message(svc, bob, ward, "early, from bob", new_id())
    m1 = (await messages.do_send_message(svc, alice, ward, "from alice", new_id())).message.id
    assert await receipts.do_mark_delivered(svc, dave, ward, m1)  # read stays before both
    m2 = (await messages.do_send_message(svc, carol, ward, "from carol", new_id())).message.id
    events.clear()
    assert await receipts.do_mark_delivered(svc, dave, ward, m2)
    [event] = events
    assert sorted(event.user_ids) == sorted([staff["carol"].id, staff["dave"].id])
    # Reading everything changes the read ticks of every sender since his read watermark.
    events.clear()
    assert await receipts.do_mark_read(svc, dave, ward, m2)
    [event] = events
    assert sorted(event.user_ids) == sorted([staff[n].id for n in ("alice", "bob", "carol", "dave")])
