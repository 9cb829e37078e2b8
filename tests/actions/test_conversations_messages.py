"""Chat actions: what they write, what they refuse, and what they publish (after commit)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from app.actions import conversations, messages, receipts, stream
from app.actions.errors import ActionError, Forbidden, NotFound, RateLimited
from app.lib.clock import FrozenClock
from app.realtime.events import Event
from app.records import Staff
from app.services import Services
from app.store import conversations as store_conversations
from tests.helpers import actor_for, all_messages, new_id, snapshot

pytestmark = pytest.mark.usefixtures("database_kind")

CLINICAL = "K+ < 3.5 & BP > 140 <script>alert(1)</script>"


def kinds(events: list[Event]) -> list[str]:
    return [e.kind for e in events]


async def test_send_publishes_one_message_event_to_every_member(svc: Services, staff: dict[str, Staff], group: int, events: list[Event]) -> None:
    events.clear()
    cid = new_id()
    sent = await messages.do_send_message(svc, actor_for(staff["bob"]), group, CLINICAL, cid)
    assert sent.created
    assert len(events) == 1
    event = events[0]
    assert event.kind == "message"
    assert sorted(event.user_ids) == sorted(staff[n].id for n in ("alice", "bob", "carol"))
    assert event.data["type"] == "message"
    assert event.data["message"]["body"] == CLINICAL
    assert event.data["message"]["id"] == sent.message.id
    assert event.data["message"]["client_msg_id"] == cid
    # A repeat stores nothing new and publishes nothing.
    again = await messages.do_send_message(svc, actor_for(staff["bob"]), group, CLINICAL, cid)
    assert not again.created
    assert again.message.id == sent.message.id
    assert len(events) == 1
    assert [m.body for m in await all_messages(svc, group) if m.kind == "text"] == [CLINICAL]


async def test_the_event_comes_after_the_commit(svc: Services, staff: dict[str, Staff], group: int, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str]] = []
    original = svc.broker.publish

    async def publish(event: Event) -> None:
        # Another connection must already see what the event announces.
        seen.append([m.body for m in await all_messages(svc, group)])
        await original(event)

    monkeypatch.setattr(svc.broker, "publish", publish)
    await messages.do_send_message(svc, actor_for(staff["alice"]), group, "committed first", new_id())
    assert seen and "committed first" in seen[-1]


async def test_text_is_stored_exactly_as_typed(svc: Services, staff: dict[str, Staff], group: int) -> None:
    typed = "  <b>5 mg</b> & \"more\"\r\n\u00e9\u0301 \U0001f489  "
    sent = await messages.do_send_message(svc, actor_for(staff["alice"]), group, typed, new_id())
    expected = "<b>5 mg</b> & \"more\"\n\u00e9\u0301 \U0001f489"  # trimmed, CRLF -> LF, nothing else
    assert sent.message.body == expected
    assert (await all_messages(svc, group))[-1].body == expected


@pytest.mark.parametrize("body", ["", "   ", "x" * 4001, "a\x00b", "a\x1bb", "a\ud800b"])
async def test_bad_bodies_are_refused(svc: Services, staff: dict[str, Staff], group: int, events: list[Event], body: str) -> None:
    events.clear()
    before = await snapshot(svc)
    with pytest.raises(ActionError) as caught:
        await messages.do_send_message(svc, actor_for(staff["alice"]), group, body, new_id())
    assert caught.value.code == "bad_body" and caught.value.status == 400
    assert await snapshot(svc) == before
    assert events == []


@pytest.mark.parametrize("cid", ["", "nope", "A" * 36, "12345678123456781234567812345678"])
async def test_bad_client_msg_id(svc: Services, staff: dict[str, Staff], group: int, cid: str) -> None:
    with pytest.raises(ActionError) as caught:
        await messages.do_send_message(svc, actor_for(staff["alice"]), group, "hello", cid)
    assert caught.value.code == "bad_client_msg_id"


async def test_non_members_cannot_send_or_read(svc: Services, staff: dict[str, Staff], group: int, events: list[Event]) -> None:
    events.clear()
    dave = actor_for(staff["dave"])
    with pytest.raises(NotFound):
        await messages.do_send_message(svc, dave, group, "let me in", new_id())
    with pytest.raises(NotFound):
        await messages.view_conversation(svc, dave, group, before_id=None, mark_read=True)
    with pytest.raises(NotFound):
        await receipts.do_mark_read(svc, dave, group, 10**6)
    with pytest.raises(NotFound):
        await conversations.do_leave_group(svc, dave, group)
    with pytest.raises(NotFound):
        await conversations.do_add_members(svc, dave, group, ["dave"])
    with pytest.raises(NotFound):
        await messages.do_send_message(svc, dave, 10**9, "nowhere", new_id())
    assert events == []


async def test_reply_must_be_in_the_same_conversation(svc: Services, staff: dict[str, Staff], group: int) -> None:
    other = await conversations.do_open_direct(svc, actor_for(staff["alice"]), "dave")
    elsewhere = await messages.do_send_message(svc, actor_for(staff["alice"]), other, "private", new_id())
    with pytest.raises(ActionError) as caught:
        await messages.do_send_message(svc, actor_for(staff["bob"]), group, "re", new_id(), reply_to=elsewhere.message.id)
    assert caught.value.code == "bad_reply_to"
    here = await messages.do_send_message(svc, actor_for(staff["alice"]), group, "question", new_id())
    reply = await messages.do_send_message(svc, actor_for(staff["bob"]), group, "answer", new_id(), reply_to=here.message.id)
    assert reply.message.reply_to_id == here.message.id
    assert reply.message.reply_body == "question"


async def test_send_rate_limit(svc: Services, staff: dict[str, Staff], group: int, clock: Any) -> None:
    alice = actor_for(staff["alice"])
    burst = svc.settings.message_burst
    for i in range(burst):
        await messages.do_send_message(svc, alice, group, f"m{i}", new_id())
    with pytest.raises(RateLimited) as caught:
        await messages.do_send_message(svc, alice, group, "one too many", new_id())
    assert caught.value.status == 429 and caught.value.retry_after > 0
    # The bucket refills with time (the test clock drives it): one more is allowed, not two.
    clock.advance(caught.value.retry_after + 0.01)
    await messages.do_send_message(svc, alice, group, "after the wait", new_id())
    with pytest.raises(RateLimited):
        await messages.do_send_message(svc, alice, group, "too soon again", new_id())
    # Others are not slowed down by Alice.
    await messages.do_send_message(svc, actor_for(staff["bob"]), group, "bob is fine", new_id())


async def test_read_watermark_moves_forward_only(svc: Services, staff: dict[str, Staff], group: int, events: list[Event]) -> None:
    alice, bob = actor_for(staff["alice"]), actor_for(staff["bob"])
    first = (await messages.do_send_message(svc, alice, group, "one", new_id())).message.id
    sent = await messages.do_send_message(svc, alice, group, "two", new_id())
    second = sent.message.id
    events.clear()
    assert await receipts.do_mark_read(svc, bob, group, second)
    assert kinds(events) == ["receipt"]
    position = events[0].data["position"]
    assert isinstance(position, int) and position > sent.position  # a change after the message's
    assert events[0].position == position
    assert events[0].data == {
        "type": "receipt", "position": position, "conversation_id": group, "user_id": staff["bob"].id,
        "read_id": second, "delivered_id": second,
    }
    assert not await receipts.do_mark_read(svc, bob, group, first)  # never back
    assert not await receipts.do_mark_read(svc, bob, group, 10**9)  # never past the newest message
    detail = await conversations.conversation_detail(svc, staff["bob"], group)
    me = detail.member(staff["bob"].id)
    assert me is not None and me.last_read_id == second and me.last_delivered_id == second
    assert len(events) == 1


async def test_a_newer_receipt_gets_a_newer_position_than_the_one_it_replaces(
    svc: Services, staff: dict[str, Staff], group: int, events: list[Event]
) -> None:
    """A receipt change replaces the member's older one, but never reuses its position: a
    device that got the older receipt live resumes after its position and must get the newer."""
    alice, bob = actor_for(staff["alice"]), actor_for(staff["bob"])
    sent = (await messages.do_send_message(svc, alice, group, "one", new_id())).message.id
    events.clear()
    assert await receipts.do_mark_delivered(svc, bob, group, sent)
    assert await receipts.do_mark_read(svc, bob, group, sent)
    delivered, read = events
    assert delivered.position is not None and read.position is not None
    assert read.position > delivered.position
    # Alice's device saw the delivered receipt live, then was away.
    missed = await stream.missed_changes(svc, staff["alice"], delivered.position, 100, 1000)
    assert [(f["type"], f.get("user_id"), f.get("read_id")) for f in missed.frames] == [("receipt", staff["bob"].id, sent)]
    assert missed.positions == [read.position]


async def test_view_marks_read_or_only_delivered(svc: Services, staff: dict[str, Staff], group: int) -> None:
    alice, bob = actor_for(staff["alice"]), actor_for(staff["bob"])
    sent = (await messages.do_send_message(svc, alice, group, "hi", new_id())).message.id
    view = await messages.view_conversation(svc, bob, group, before_id=None, mark_read=False)
    assert view.my_last_read_id < sent
    me = (await conversations.conversation_detail(svc, staff["bob"], group)).member(staff["bob"].id)
    assert me is not None and me.last_read_id < sent and me.last_delivered_id == sent
    await messages.view_conversation(svc, bob, group, before_id=None, mark_read=True)
    me = (await conversations.conversation_detail(svc, staff["bob"], group)).member(staff["bob"].id)
    assert me is not None and me.last_read_id == sent


async def test_unread_counts(svc: Services, staff: dict[str, Staff], group: int) -> None:
    alice, bob = actor_for(staff["alice"]), actor_for(staff["bob"])
    for i in range(3):
        await messages.do_send_message(svc, alice, group, f"m{i}", new_id())
    summary = (await conversations.list_conversations(svc, staff["bob"]))[0]
    assert summary.unread == 3  # system lines do not count
    assert summary.last_message is not None and summary.last_message.body == "m2"
    await messages.do_send_message(svc, bob, group, "reply", new_id())
    summary = (await conversations.list_conversations(svc, staff["bob"]))[0]
    assert summary.unread == 0  # writing reads the conversation up to my message
    assert (await conversations.list_conversations(svc, staff["alice"]))[0].unread == 1


async def test_open_direct_creates_once(svc: Services, staff: dict[str, Staff], events: list[Event]) -> None:
    events.clear()
    first = await conversations.do_open_direct(svc, actor_for(staff["alice"]), "bob")
    assert kinds(events) == ["conversation"]
    assert sorted(events[0].user_ids) == sorted([staff["alice"].id, staff["bob"].id])
    assert await conversations.do_open_direct(svc, actor_for(staff["bob"]), "ALICE ") == first
    assert len(events) == 1
    with pytest.raises(ActionError):
        await conversations.do_open_direct(svc, actor_for(staff["alice"]), "alice")
    with pytest.raises(NotFound):
        await conversations.do_open_direct(svc, actor_for(staff["alice"]), "nobody")


async def test_create_group_publishes_and_writes_a_system_line(svc: Services, staff: dict[str, Staff], events: list[Event]) -> None:
    events.clear()
    conv = await conversations.do_create_group(svc, actor_for(staff["alice"]), "  Night shift  ", ["bob", "carol", "alice"])
    everyone = sorted(staff[n].id for n in ("alice", "bob", "carol"))
    assert kinds(events) == ["conversation", "message"]
    assert sorted(events[0].user_ids) == everyone and sorted(events[1].user_ids) == everyone
    assert events[0].data["conversation"]["title"] == "Night shift"
    messages = await all_messages(svc, conv)
    assert [m.kind for m in messages] == ["system"]
    assert messages[0].body == "Alice created the group \u201cNight shift\u201d with Bob, Carol"
    detail = await conversations.conversation_detail(svc, staff["alice"], conv)
    assert {m.username: m.role for m in detail.members} == {"alice": "owner", "bob": "member", "carol": "member"}


@pytest.mark.parametrize(("title", "members"), [("", ["bob"]), ("x" * 101, ["bob"]), ("Ward", ["bob", "ghost"])])
async def test_create_group_refuses(svc: Services, staff: dict[str, Staff], events: list[Event], title: str, members: list[str]) -> None:
    events.clear()
    before = await snapshot(svc)
    with pytest.raises(ActionError):
        await conversations.do_create_group(svc, actor_for(staff["alice"]), title, members)
    assert await snapshot(svc) == before
    assert events == []


async def test_membership_changes(svc: Services, staff: dict[str, Staff], group: int, events: list[Event]) -> None:
    alice, bob = actor_for(staff["alice"]), actor_for(staff["bob"])
    await messages.do_send_message(svc, alice, group, "before dave", new_id())
    events.clear()
    await conversations.do_add_members(svc, alice, group, ["dave"])
    assert kinds(events) == ["conversation", "message"]
    assert staff["dave"].id in events[0].user_ids
    dave_view = await conversations.list_conversations(svc, staff["dave"])
    assert dave_view[0].unread == 0  # a newcomer starts with nothing unread
    with pytest.raises(ActionError) as caught:
        await conversations.do_add_members(svc, alice, group, ["dave"])
    assert caught.value.code == "no_new_members"

    with pytest.raises(Forbidden):
        await conversations.do_rename_group(svc, bob, group, "Bob's")
    with pytest.raises(Forbidden):
        await conversations.do_add_members(svc, bob, group, ["dave"])
    with pytest.raises(Forbidden):
        await conversations.do_remove_member(svc, bob, group, staff["carol"].id)

    events.clear()
    await conversations.do_remove_member(svc, alice, group, staff["carol"].id)
    assert kinds(events) == ["conversation", "message"]
    assert staff["carol"].id in events[0].user_ids  # the removed member learns of it
    assert staff["carol"].id not in events[1].user_ids  # but gets no more messages
    with pytest.raises(NotFound):
        await messages.do_send_message(svc, actor_for(staff["carol"]), group, "still here?", new_id())

    await conversations.do_leave_group(svc, bob, group)
    lines = [m.body for m in await all_messages(svc, group) if m.kind == "system"]
    assert lines[-3:] == ["Alice added Dave", "Alice removed Carol", "Bob left"]


async def test_owner_cannot_be_removed(svc: Services, staff: dict[str, Staff], group: int) -> None:
    # Make Bob a group admin directly in the store (no action for it yet), then try to remove the owner.
    async with svc.db.transaction() as s:
        await store_conversations.set_role(s, group, staff["bob"].id, "admin")
    with pytest.raises(Forbidden):
        await conversations.do_remove_member(svc, actor_for(staff["bob"]), group, staff["alice"].id)


async def test_direct_chats_are_not_groups(svc: Services, staff: dict[str, Staff]) -> None:
    conv = await conversations.do_open_direct(svc, actor_for(staff["alice"]), "bob")
    for attempt in (
        conversations.do_rename_group(svc, actor_for(staff["alice"]), conv, "x"),
        conversations.do_add_members(svc, actor_for(staff["alice"]), conv, ["carol"]),
        conversations.do_leave_group(svc, actor_for(staff["alice"]), conv),
    ):
        with pytest.raises(ActionError) as caught:
            await attempt
        assert caught.value.code == "not_group"


async def test_missed_changes_only_cover_my_conversations(svc: Services, staff: dict[str, Staff], group: int) -> None:
    alice = actor_for(staff["alice"])
    secret = await conversations.do_open_direct(svc, alice, "dave")
    await messages.do_send_message(svc, alice, secret, "for dave only", new_id())
    await messages.do_send_message(svc, alice, group, "for the ward", new_id())
    missed = await stream.missed_changes(svc, staff["bob"], 0, 100, 1000)
    bodies = [m.body for m in missed.messages]
    assert "for the ward" in bodies and "for dave only" not in bodies
    # Nor any other change of that conversation (its creation, Alice's watermarks).
    assert secret not in {frame.get("conversation_id") for frame in missed.frames}
    assert secret not in {frame.get("message", {}).get("conversation_id") for frame in missed.frames}
    assert secret not in {frame.get("conversation", {}).get("id") for frame in missed.frames}
    assert missed.complete and not missed.too_many
    # From the newest position there is nothing more, for Bob, nor (legacy) after the newest message.
    assert missed.position == missed.positions[-1] == await stream.current_position(svc)
    assert (await stream.missed_changes(svc, staff["bob"], missed.position, 100, 1000)).frames == []
    newest = (await all_messages(svc))[-1].id
    after_newest = await stream.legacy_position(svc, newest)
    assert (await stream.missed_changes(svc, staff["bob"], after_newest, 100, 1000)).frames == []


async def test_pages_are_keyset_on_id(svc: Services, staff: dict[str, Staff], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(svc.message_buckets.local, "burst", 1000)  # a burst of 120 sends is the point here
    alice = actor_for(staff["alice"])
    conv = await conversations.do_open_direct(svc, alice, "bob")
    for i in range(120):
        await messages.do_send_message(svc, alice, conv, f"{i}", new_id())
    newest = await messages.view_conversation(svc, alice, conv, before_id=None, mark_read=False)
    assert [m.body for m in newest.messages] == [str(i) for i in range(70, 120)] and newest.has_older
    older = await messages.view_conversation(svc, alice, conv, before_id=newest.messages[0].id, mark_read=False)
    assert [m.body for m in older.messages] == [str(i) for i in range(20, 70)] and older.has_older
    oldest = await messages.view_conversation(svc, alice, conv, before_id=older.messages[0].id, mark_read=False)
    assert [m.body for m in oldest.messages] == [str(i) for i in range(20)] and not oldest.has_older


async def test_concurrent_double_submit_stores_one_message(svc: Services, staff: dict[str, Staff], group: int, events: list[Event]) -> None:
    import asyncio

    events.clear()
    cid = new_id()
    alice = actor_for(staff["alice"])
    results = await asyncio.gather(*(messages.do_send_message(svc, alice, group, "once", cid) for _ in range(4)))
    assert len({r.message.id for r in results}) == 1
    assert sum(r.created for r in results) == 1
    assert [m.body for m in await all_messages(svc, group) if m.kind == "text"] == ["once"]
    assert kinds(events) == ["message"]


async def test_concurrent_open_direct_makes_one_chat(svc: Services, staff: dict[str, Staff]) -> None:
    import asyncio

    ids = await asyncio.gather(
        conversations.do_open_direct(svc, actor_for(staff["alice"]), "bob"),
        conversations.do_open_direct(svc, actor_for(staff["bob"]), "alice"),
        conversations.do_open_direct(svc, actor_for(staff["alice"]), "bob"),
    )
    assert len(set(ids)) == 1
    assert len(await conversations.list_conversations(svc, staff["alice"])) == 1


async def test_receipts_in_a_big_group_reach_only_the_senders_whose_ticks_changed(svc: Services, staff: dict[str, Staff], events: list[Event]) -> None:
    svc.settings = replace(svc.settings, receipts_all_members_max=3)
    alice, bob, carol = (actor_for(staff[n]) for n in ("alice", "bob", "carol"))
    big = await conversations.do_create_group(svc, alice, "Whole ward", ["bob", "carol", "dave"])
    m1 = (await messages.do_send_message(svc, bob, big, "from bob", new_id())).message.id
    m2 = (await messages.do_send_message(svc, alice, big, "from alice", new_id())).message.id
    events.clear()
    assert await receipts.do_mark_delivered(svc, carol, big, m1)
    [first] = events
    assert first.kind == "receipt" and sorted(first.user_ids) == sorted([staff["bob"].id, staff["carol"].id])
    events.clear()
    assert await receipts.do_mark_read(svc, carol, big, m2)
    [second] = events
    # Read now covers both messages: bob's and alice's ticks change, dave hears nothing.
    assert sorted(second.user_ids) == sorted([staff["alice"].id, staff["bob"].id, staff["carol"].id])
    assert second.data["read_id"] == m2 and second.data["delivered_id"] == m2
    events.clear()
    assert not await receipts.do_mark_read(svc, carol, big, m2)
    assert events == []


async def _roles(svc: Services, conversation_id: int) -> dict[str, str]:
    async with svc.db.reading() as s:
        detail = await store_conversations.conversation_detail(s, conversation_id)
    assert detail is not None
    return {m.username: m.role for m in detail.members}


async def test_the_longest_standing_member_succeeds_the_last_admin(svc: Services, staff: dict[str, Staff], clock: FrozenClock) -> None:
    """When the last group admin goes, the member who joined first becomes admin, not the
    one whose name sorts first (Dave joined before Bob and Carol)."""
    alice = actor_for(staff["alice"])
    group = await conversations.do_create_group(svc, alice, "Night shift", ["dave"])
    clock.advance(60)
    await conversations.do_add_members(svc, alice, group, ["carol"])
    clock.advance(60)
    await conversations.do_add_members(svc, alice, group, ["bob"])
    await conversations.do_leave_group(svc, alice, group)
    assert await _roles(svc, group) == {"bob": "member", "carol": "member", "dave": "admin"}
    # Dave goes too: Carol (joined a minute before Bob) is next.
    await conversations.do_leave_group(svc, actor_for(staff["dave"]), group)
    assert await _roles(svc, group) == {"bob": "member", "carol": "admin"}


async def test_succession_ties_go_to_the_lowest_user_id_and_admins_stay(svc: Services, staff: dict[str, Staff]) -> None:
    alice = actor_for(staff["alice"])
    group = await conversations.do_create_group(svc, alice, "Ward 9", ["dave", "carol"])  # one joined_at
    async with svc.db.transaction() as s:
        await store_conversations.set_role(s, group, staff["dave"].id, "admin")
    await conversations.do_leave_group(svc, alice, group)
    assert await _roles(svc, group) == {"carol": "member", "dave": "admin"}  # an admin remains: no heir
    await conversations.do_leave_group(svc, actor_for(staff["dave"]), group)
    assert await _roles(svc, group) == {"carol": "admin"}
    group2 = await conversations.do_create_group(svc, alice, "Ward 10", ["dave", "carol"])
    await conversations.do_leave_group(svc, alice, group2)
    heir = min((staff["carol"], staff["dave"]), key=lambda u: u.id)
    assert (await _roles(svc, group2))[heir.username] == "admin"
