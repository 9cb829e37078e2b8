"""A colleague added to a group later sees the conversation from their joining on."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from app.actions import access, conversations, messages, stream
from app.actions.errors import ActionError, NotFound
from app.actions.messages import Sent
from app.realtime.events import Event
from app.records import Staff
from app.services import Services
from tests.helpers import actor_for, new_id

pytestmark = pytest.mark.usefixtures("database_kind")


@pytest.fixture
async def staff(make_user: Any) -> dict[str, Staff]:
    return {name: await make_user(name) for name in ("alice", "bob", "dave")}


async def test_a_late_member_sees_nothing_from_before(svc: Services, staff: dict[str, Staff]) -> None:
    alice, dave = actor_for(staff["alice"]), actor_for(staff["dave"])
    group = await conversations.do_create_group(svc, alice, "Ward 7", ["bob"])
    before = await messages.do_send_message(svc, alice, group, "bed 4: confidential before dave", new_id())
    await conversations.do_add_members(svc, alice, group, ["dave"])
    after = await messages.do_send_message(svc, alice, group, "welcome dave", new_id(), reply_to=before.message.id)

    view = await messages.view_conversation(svc, dave, group, before_id=None, mark_read=True)
    bodies = [m.body for m in view.messages]
    assert "bed 4: confidential before dave" not in bodies
    assert "welcome dave" in bodies
    assert not view.has_older
    # The reply that quotes the older message shows no quoted text to dave...
    reply = next(m for m in view.messages if m.id == after.message.id)
    assert reply.reply_body == ""
    # ...while bob, a member from the start, sees the quote.
    bob_view = await messages.view_conversation(svc, actor_for(staff["bob"]), group, before_id=None, mark_read=True)
    assert next(m for m in bob_view.messages if m.id == after.message.id).reply_body == "bed 4: confidential before dave"

    # Paging back from the first visible message finds nothing older.
    older = await messages.view_conversation(svc, dave, group, before_id=view.messages[0].id, mark_read=False)
    assert older.messages == []
    # Resume over the socket door: nothing from before either, from the start of the
    # stream nor (legacy) after message 0; the change that added him comes first.
    for since in (0, await stream.legacy_position(svc, 0)):
        missed = await stream.missed_changes(svc, staff["dave"], since, 100, 1000)
        assert before.message.id not in [m.id for m in missed.messages]
        assert after.message.id in [m.id for m in missed.messages]
        assert missed.frames[0]["type"] == "conversation" and missed.frames[0]["event"] == "member_added"
        assert missed.frames[0]["user_ids"] == [staff["dave"].id]
        assert missed.positions == sorted(set(missed.positions))
    # Nor can dave quote it or open it as a reply preview.
    with pytest.raises(ActionError) as info:
        await messages.do_send_message(svc, dave, group, "re", new_id(), reply_to=before.message.id)
    assert info.value.code == "bad_reply_to"
    with pytest.raises(NotFound):
        await messages.message_for(svc, staff["dave"], group, before.message.id)


async def test_re_added_member_starts_again_from_the_re_adding(svc: Services, staff: dict[str, Staff]) -> None:
    alice, bob = actor_for(staff["alice"]), actor_for(staff["bob"])
    group = await conversations.do_create_group(svc, alice, "Ward 7", ["bob"])
    seen = await messages.do_send_message(svc, alice, group, "bob saw this", new_id())
    await conversations.do_leave_group(svc, bob, group)
    gone = await messages.do_send_message(svc, alice, group, "said while bob was away", new_id())
    await conversations.do_add_members(svc, alice, group, ["bob"])
    bodies = [m.body for m in (await messages.view_conversation(svc, bob, group, before_id=None, mark_read=True)).messages]
    assert gone.message.body not in bodies
    assert seen.message.body not in bodies


async def test_the_access_check_is_membership_and_the_floor(svc: Services, staff: dict[str, Staff]) -> None:
    """``access_conversation`` / ``access_message``: one rule for every action and door."""
    alice, dave = actor_for(staff["alice"]), staff["dave"]
    group = await conversations.do_create_group(svc, alice, "Ward 7", ["bob"])
    before = await messages.do_send_message(svc, alice, group, "before dave", new_id())
    for check in (
        access.access_conversation(svc, dave, group),
        access.access_message(svc, dave, group, before.message.id),
        access.access_conversation(svc, dave, 10**9),
    ):
        with pytest.raises(NotFound):
            await check
    await conversations.do_add_members(svc, alice, group, ["dave"])
    mine = await access.access_conversation(svc, dave, group)
    assert (mine.kind, mine.role, mine.history_from_id) == ("group", "member", before.message.id)
    with pytest.raises(NotFound, match="No such message"):
        await access.access_message(svc, dave, group, before.message.id)  # below my floor
    after = await messages.do_send_message(svc, alice, group, "after dave", new_id(), reply_to=before.message.id)
    async with svc.db.reading() as s:  # inside a unit of work too
        _mine, rec = await access.access_message(s, dave, group, after.message.id)
    assert rec.body == "after dave" and rec.reply_body == ""  # the quote is from before my floor
    other = await conversations.do_open_direct(svc, alice, "bob")
    elsewhere = await messages.do_send_message(svc, alice, other, "not in the group", new_id())
    with pytest.raises(NotFound):
        await access.access_message(svc, staff["bob"], group, elsewhere.message.id)  # wrong conversation


@pytest.mark.parametrize("first", ["add", "send"])
async def test_a_message_sent_while_a_member_is_being_added_reaches_them_live_and_on_resume_or_not_at_all(
    svc: Services, staff: dict[str, Staff], events: list[Event], monkeypatch: pytest.MonkeyPatch, first: str
) -> None:
    """Bob sends while Alice's "add Dave" is under way, from two tasks.

    ``first="add"``: the add has read the group (it is inside its transaction) when Bob's
    send starts and reaches the writer. ``first="send"``: Bob's send is inside the writer's
    transaction (it has read the members) when the add starts its transaction. Whatever
    order they commit in, Dave must see Bob's message everywhere or nowhere: live, on resume
    (by position and, legacy, by message id) and in his history. A message committed before
    the add was live-delivered to the old members only, so it stays below Dave's floor; one
    committed after it reached him live, so resume and history must have it too.
    """
    alice, bob, dave = actor_for(staff["alice"]), actor_for(staff["bob"]), actor_for(staff["dave"])
    group = await conversations.do_create_group(svc, alice, "Ward 7", ["bob"])
    events.clear()
    add_inside = asyncio.Event()  # the add holds its transaction open
    send_inside = asyncio.Event()  # the send's unit runs in the writer's transaction
    transaction_wanted = asyncio.Event()  # someone asked for a new transaction
    original_transaction = svc.db.transaction

    def transaction(*args: Any, **kwargs: Any) -> Any:
        transaction_wanted.set()
        return original_transaction(*args, **kwargs)

    monkeypatch.setattr(svc.db, "transaction", transaction)

    async def send() -> Sent:
        if first == "add":
            await add_inside.wait()
        return await messages.do_send_message(svc, bob, group, "bed 9: sent during the add", new_id())

    async def add() -> None:
        if first == "send":
            await send_inside.wait()
        transaction_wanted.clear()
        await conversations.do_add_members(svc, alice, group, ["dave"])

    resolve = conversations._resolve_usernames

    async def resolve_while_bob_sends(s: Any, usernames: list[str]) -> list[Staff]:
        if first == "add":
            transaction_wanted.clear()
            add_inside.set()
            async with asyncio.timeout(5):
                await transaction_wanted.wait()  # the writer starts the send's transaction
            for _ in range(5):
                await asyncio.sleep(0)  # and gets as far as it can without our lock
        return await resolve(s, usernames)

    members = access.members_at

    async def members_while_alice_adds(svc_: Services, s: Any, conversation_id: int, version: int) -> dict[int, int]:
        found = await members(svc_, s, conversation_id, version)
        if first == "send" and not send_inside.is_set():
            transaction_wanted.clear()  # (the writer's own transaction set it)
            send_inside.set()
            async with asyncio.timeout(5):
                await transaction_wanted.wait()  # the add starts its transaction
            for _ in range(5):
                await asyncio.sleep(0)
        return found

    monkeypatch.setattr(conversations, "_resolve_usernames", resolve_while_bob_sends)
    monkeypatch.setattr(messages, "members_at", members_while_alice_adds)
    async with asyncio.timeout(8):  # well under the 10 s write turn: no task waits on itself
        sent, _added = await asyncio.gather(send(), add())
    monkeypatch.undo()
    assert add_inside.is_set() or send_inside.is_set()  # the interleaving did happen
    assert sent.created and isinstance(sent.position, int)

    message_id = sent.message.id
    live = any(
        e.kind == "message" and staff["dave"].id in e.user_ids and e.data["message"]["id"] == message_id for e in events
    )
    added_at = next(
        e.position for e in events if e.kind == "conversation" and e.data["event"] == "member_added"
    )
    assert added_at is not None and (sent.position > added_at) == live  # live iff it committed after the add
    view = await messages.view_conversation(svc, dave, group, before_id=None, mark_read=False)
    in_history = message_id in [m.id for m in view.messages]
    resumed = {
        message_id in [m.id for m in (await stream.missed_changes(svc, staff["dave"], since, 100, 1000)).messages]
        for since in (0, await stream.legacy_position(svc, 0))
    }
    assert resumed == {live} and in_history == live
    # He sees the group from the line that added him (and Bob's message if it came after).
    assert view.messages[0].kind == "system" and " added " in view.messages[0].body
    assert [m.kind for m in view.messages] == (["system", "text"] if live else ["system"])
    # Bob and Alice have it whatever the order.
    for old in (alice, bob):
        old_view = await messages.view_conversation(svc, old, group, before_id=None, mark_read=False)
        assert message_id in [m.id for m in old_view.messages]
