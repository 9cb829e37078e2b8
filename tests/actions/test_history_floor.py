"""A colleague added to a group later sees the conversation from their joining on."""

from __future__ import annotations

from typing import Any

import pytest

from app.actions import access, conversations, messages
from app.actions.errors import ActionError, NotFound
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
    # Resume over the socket door: nothing from before either.
    missed = await messages.missed_messages(svc, dave, 0, 100, 1000)
    assert before.message.id not in [m.id for m in missed.messages]
    assert after.message.id in [m.id for m in missed.messages]
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


async def test_a_message_sent_while_a_member_is_being_added_stays_before_their_floor(
    svc: Services, staff: dict[str, Staff], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bob sends while Alice's "add Dave" is under way (after it read the group, before it
    wrote anything). Bob's message was live-delivered to the old members only, so Dave must
    not find it in his history either: the floor comes from the add's own system line."""
    alice, bob = actor_for(staff["alice"]), actor_for(staff["bob"])
    group = await conversations.do_create_group(svc, alice, "Ward 7", ["bob"])
    resolve = conversations._resolve_usernames
    sent: list[int] = []

    async def resolve_while_bob_sends(s: Any, usernames: list[str]) -> list[Staff]:
        sent.append((await messages.do_send_message(svc, bob, group, "bed 9: sent during the add", new_id())).message.id)
        return await resolve(s, usernames)

    monkeypatch.setattr(conversations, "_resolve_usernames", resolve_while_bob_sends)
    await conversations.do_add_members(svc, alice, group, ["dave"])
    monkeypatch.undo()

    dave = actor_for(staff["dave"])
    view = await messages.view_conversation(svc, dave, group, before_id=None, mark_read=False)
    assert sent and sent[0] not in [m.id for m in view.messages]
    # He sees the group from the line that added him.
    assert [m.kind for m in view.messages] == ["system"] and " added " in view.messages[0].body
    missed = await messages.missed_messages(svc, dave, 0, 100, 1000)
    assert sent[0] not in [m.id for m in missed.messages]
