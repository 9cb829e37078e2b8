"""The store queries the web pages are built on: the chat list (conversation summaries with
last message and unread count) and the message pages (keyset paging, floors of members who
joined late). The staff directory's page query is in test_staff_search.py."""

from __future__ import annotations

from typing import Any

import pytest

from app.actions import conversations, messages, receipts
from app.records import ConversationSummary, MessageRecord, Staff
from app.services import Services
from app.store import conversations as store_conversations
from app.store import messages as store_messages
from tests.helpers import actor_for, new_id

pytestmark = pytest.mark.usefixtures("database_kind")


@pytest.fixture
async def staff(make_user: Any) -> dict[str, Staff]:
    return {name: await make_user(name) for name in ("alice", "bob", "carol", "dave")}


async def _send(svc: Services, who: Staff, conversation_id: int, body: str, reply_to: int | None = None) -> int:
    sent = await messages.do_send_message(svc, actor_for(who), conversation_id, body, new_id(), reply_to=reply_to)
    return sent.message.id


async def _summaries(svc: Services, who: Staff) -> dict[int, ConversationSummary]:
    async with svc.db.reading() as s:
        listed = await store_conversations.conversation_summaries(s, who.id)
    return {c.id: c for c in listed}


async def _order(svc: Services, who: Staff) -> list[int]:
    async with svc.db.reading() as s:
        return [c.id for c in await store_conversations.conversation_summaries(s, who.id)]


async def _page(svc: Services, conversation_id: int, *, before_id: int | None, limit: int, history_from: int = 0) -> tuple[list[MessageRecord], bool]:
    async with svc.db.reading() as s:
        return await store_messages.messages_page(s, conversation_id, before_id=before_id, limit=limit, history_from=history_from)


async def test_chat_list_has_the_last_message_and_counts_only_others_unread_text(svc: Services, staff: dict[str, Staff]) -> None:
    alice, bob, carol = staff["alice"], staff["bob"], staff["carol"]
    direct = await conversations.do_open_direct(svc, actor_for(alice), "bob")
    first = await _send(svc, bob, direct, "bed 4 needs a review")
    second = await _send(svc, bob, direct, "and bed 5")

    ab = (await _summaries(svc, alice))[direct]
    assert (ab.kind, ab.title, ab.other_user_id, ab.my_role) == ("direct", "Bob", bob.id, "member")
    assert ab.unread == 2
    assert ab.last_message is not None and (ab.last_message.id, ab.last_message.body, ab.last_message.sender_name) == (second, "and bed 5", "Bob")
    # bob's own messages are never unread for him; the title is the other person's name.
    for_bob = (await _summaries(svc, bob))[direct]
    assert (for_bob.title, for_bob.unread, for_bob.other_user_id) == ("Alice", 0, alice.id)
    # carol shares nothing with them.
    assert direct not in await _summaries(svc, carol)

    await receipts.do_mark_read(svc, actor_for(alice), direct, first)
    assert (await _summaries(svc, alice))[direct].unread == 1
    mine = await _send(svc, alice, direct, "on my way")
    ab = (await _summaries(svc, alice))[direct]
    # Her reply is the preview; it is not unread for her (and answering read what it answered).
    assert ab.last_message is not None and (ab.last_message.id, ab.last_message.sender_name) == (mine, "Alice")
    assert ab.unread == 0
    assert (await _summaries(svc, bob))[direct].unread == 1


async def test_chat_list_is_ordered_by_latest_activity(svc: Services, staff: dict[str, Staff]) -> None:
    alice, bob = staff["alice"], staff["bob"]
    direct = await conversations.do_open_direct(svc, actor_for(alice), "bob")
    empty = await conversations.do_open_direct(svc, actor_for(alice), "dave")  # no message yet
    group = await conversations.do_create_group(svc, actor_for(alice), "Ward 7", ["bob", "carol"])
    await _send(svc, alice, direct, "first")
    order = await _order(svc, alice)
    # The direct chat's message is the newest activity; the group's creation came before it.
    assert order.index(direct) < order.index(group)
    assert set(order) == {direct, empty, group}
    # A conversation without any message comes after those with one.
    assert order[-1] == empty

    await _send(svc, bob, group, "ward round at 9")
    order = await _order(svc, alice)
    assert order[0] == group
    summary = (await _summaries(svc, alice))[group]
    assert (summary.kind, summary.title, summary.my_role, summary.other_user_id) == ("group", "Ward 7", "owner", None)
    assert summary.unread == 1
    assert summary.last_message is not None and summary.last_message.body == "ward round at 9"
    assert (await _summaries(svc, alice))[empty].last_message is None


async def test_chat_list_of_a_late_member_and_of_one_who_left(svc: Services, staff: dict[str, Staff]) -> None:
    alice, bob, dave = staff["alice"], staff["bob"], staff["dave"]
    group = await conversations.do_create_group(svc, actor_for(alice), "Ward 7", ["bob"])
    secret = await _send(svc, alice, group, "bed 4: before dave")
    await conversations.do_add_members(svc, actor_for(alice), group, ["dave"])

    joined = (await _summaries(svc, dave))[group]
    # Nothing from before dave joined: not counted unread, not shown as the preview.
    assert joined.unread == 0
    assert joined.last_message is None or joined.last_message.id > secret
    assert joined.last_message is None or "before dave" not in joined.last_message.body

    await _send(svc, bob, group, "welcome dave", reply_to=secret)
    joined = (await _summaries(svc, dave))[group]
    assert joined.unread == 1
    assert joined.last_message is not None and joined.last_message.body == "welcome dave"
    # The reply's quote is from before dave joined: its text and sender are not shown to him.
    assert joined.last_message.reply_to_id == secret
    assert joined.last_message.reply_body == "" and joined.last_message.reply_sender_name == ""
    # alice, a member from the start, sees the quote.
    for_alice = (await _summaries(svc, alice))[group]
    assert for_alice.last_message is not None and for_alice.last_message.reply_body == "bed 4: before dave"

    await conversations.do_leave_group(svc, actor_for(bob), group)
    assert group not in await _summaries(svc, bob)
    assert group in await _summaries(svc, dave)


async def test_messages_page_walks_back_in_pages_oldest_first(svc: Services, staff: dict[str, Staff]) -> None:
    alice = staff["alice"]
    direct = await conversations.do_open_direct(svc, actor_for(alice), "bob")
    ids = [await _send(svc, alice, direct, f"message {n}") for n in range(7)]

    newest, more = await _page(svc, direct, before_id=None, limit=3)
    assert [m.id for m in newest] == ids[4:] and more
    assert [m.body for m in newest] == ["message 4", "message 5", "message 6"]
    middle, more = await _page(svc, direct, before_id=newest[0].id, limit=3)
    assert [m.id for m in middle] == ids[1:4] and more
    oldest, more = await _page(svc, direct, before_id=middle[0].id, limit=3)
    assert [m.id for m in oldest] == ids[:1] and not more
    # Exactly a page left: no "older" link.
    last_three, more = await _page(svc, direct, before_id=ids[3], limit=3)
    assert [m.id for m in last_three] == ids[:3] and not more
    # Before the first message: an empty page.
    assert await _page(svc, direct, before_id=ids[0], limit=3) == ([], False)
    # Another conversation's messages never appear.
    other = await conversations.do_open_direct(svc, actor_for(alice), "carol")
    assert await _page(svc, other, before_id=None, limit=3) == ([], False)


async def test_messages_page_stops_at_a_late_members_floor(svc: Services, staff: dict[str, Staff]) -> None:
    alice, dave = staff["alice"], staff["dave"]
    group = await conversations.do_create_group(svc, actor_for(alice), "Ward 7", ["bob"])
    before = [await _send(svc, alice, group, f"before {n}") for n in range(3)]
    await conversations.do_add_members(svc, actor_for(alice), group, ["dave"])
    async with svc.db.reading() as s:
        floor = (await store_conversations.member_floors(s, group))[dave.id]
    assert floor >= before[-1]
    after = [await _send(svc, alice, group, f"after {n}", reply_to=before[0] if n == 0 else None) for n in range(3)]

    page, more = await _page(svc, group, before_id=None, limit=2, history_from=floor)
    assert [m.id for m in page] == after[1:] and more
    page, more = await _page(svc, group, before_id=page[0].id, limit=2, history_from=floor)
    # Whatever the page size, nothing at or below the floor, and no "older" link past it.
    assert all(m.id > floor for m in page) and not more
    assert after[0] in [m.id for m in page]
    quoted = next(m for m in page if m.id == after[0])
    assert quoted.reply_to_id == before[0] and quoted.reply_body == "" and quoted.reply_sender_name == ""
    assert not {m.id for m in page} & set(before)
    # Asking from before the floor gives nothing of what came before it either.
    assert await _page(svc, group, before_id=before[-1], limit=5, history_from=floor) == ([], False)
    # A member from the start (floor 0) sees it all, the quote with its text.
    everything, more = await _page(svc, group, before_id=None, limit=50)
    assert not more and set(before + after) <= {m.id for m in everything}
    assert next(m for m in everything if m.id == after[0]).reply_body == "before 0"
