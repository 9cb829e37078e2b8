"""The change stream (issue 10): every change kind reaches a socket that was away, exactly
once and in order, when it resumes with ``?since=<position>``; never a non-member; a member
added later sees nothing from before the change that added them; a removed member gets the
removal and then nothing."""

from __future__ import annotations

from typing import Any

import pytest

from app.actions import conversations, messages, receipts
from app.actions.accounts import get_staff
from app.actions.errors import NotFound
from app.actions.stream import current_position
from app.records import Staff
from app.services import Services
from tests.helpers import actor_for, new_id
from tests.ws.conftest import People
from tests.ws.wsclient import Sock, ws_open

pytestmark = [pytest.mark.usefixtures("database_kind"), pytest.mark.app_config(MESSAGE_BURST=10_000)]


async def staff(svc: Services, user_id: int) -> Staff:
    user = await get_staff(svc, user_id)
    assert user is not None
    return user


async def say(svc: Services, user_id: int, conversation_id: int, body: str) -> int:
    return (await messages.do_send_message(svc, actor_for(await staff(svc, user_id)), conversation_id, body, new_id())).message.id


async def resumed(sock: Sock) -> tuple[list[dict[str, Any]], int]:
    """The changes of every sync page up to ``done``, and the position the last page names."""
    changes: list[dict[str, Any]] = []
    while True:
        page = await sock.expect("sync")
        assert "messages" not in page and "last_id" not in page  # v2: no legacy fields
        changes.extend(page["changes"])
        if page["done"]:
            return changes, page["position"]


async def changes_since(client: Any, since: int) -> tuple[list[dict[str, Any]], int]:
    async with ws_open(client, f"?since={since}") as sock:
        return await resumed(sock)


def positions(changes: list[dict[str, Any]]) -> list[int]:
    return [c["position"] for c in changes]


def in_order_once(changes: list[dict[str, Any]]) -> None:
    ps = positions(changes)
    assert ps == sorted(ps) and len(ps) == len(set(ps)), ps


def about(changes: list[dict[str, Any]], conversation_id: int) -> list[dict[str, Any]]:
    def conv(c: dict[str, Any]) -> int:
        if c["type"] == "message":
            return int(c["message"]["conversation_id"])
        if c["type"] == "conversation":
            return int(c["conversation"]["id"])
        return int(c["conversation_id"])

    return [c for c in changes if conv(c) == conversation_id]


async def test_a_message_missed_comes_once_in_order_and_never_to_an_outsider(people: People, svc: Services) -> None:
    a, b = people.ids["alice"], people.ids["bob"]
    start = await current_position(svc)
    sent = [await say(svc, b, people.ab, f"m{n}") for n in range(3)]
    sent.append(await say(svc, a, people.ab, "mine"))
    got, end = await changes_since(people.alice, start)
    in_order_once(got)
    assert [c["message"]["id"] for c in got if c["type"] == "message"] == sent
    assert end == max(positions(got))
    # Resuming from the end: nothing again.
    again, same = await changes_since(people.alice, end)
    assert [c for c in again if c["type"] == "message"] == [] and same >= end
    # Carol is in no conversation with them: nothing of it, whatever she asks for.
    outsider, _ = await changes_since(people.carol, 0)
    assert about(outsider, people.ab) == []


async def test_live_frames_and_resumed_ones_carry_the_same_positions(people: People, svc: Services) -> None:
    b = people.ids["bob"]
    start = await current_position(svc)
    async with ws_open(people.alice) as live:
        m = await say(svc, b, people.ab, "live and later")
        frame = await live.expect("message")
        assert frame["message"]["id"] == m
    got, _ = await changes_since(people.alice, start)
    [resumed_frame] = [c for c in got if c["type"] == "message"]
    assert resumed_frame == frame


async def test_receipts_missed_collapse_to_the_newest_per_member(people: People, svc: Services) -> None:
    a, b = people.ids["alice"], people.ids["bob"]
    m1 = await say(svc, a, people.ab, "one")
    m2 = await say(svc, a, people.ab, "two")
    start = await current_position(svc)
    bob = actor_for(await staff(svc, b))
    assert await receipts.do_mark_delivered(svc, bob, people.ab, m1)
    assert await receipts.do_mark_delivered(svc, bob, people.ab, m2)
    assert await receipts.do_mark_read(svc, bob, people.ab, m1)
    got, _ = await changes_since(people.alice, start)
    in_order_once(got)
    bobs = [c for c in got if c["type"] == "receipt" and c["user_id"] == b]
    assert len(bobs) == 1  # three moves, one change: the newest
    assert bobs[0]["read_id"] == m1 and bobs[0]["delivered_id"] == m2 and bobs[0]["conversation_id"] == people.ab
    outsider, _ = await changes_since(people.carol, start)
    assert outsider == []


async def test_a_group_created_and_renamed_while_away(people: People, svc: Services) -> None:
    b = people.ids["bob"]
    start = await current_position(svc)
    bob = actor_for(await staff(svc, b))
    group = await conversations.do_create_group(svc, bob, "Ward 7", ["alice"])
    await conversations.do_rename_group(svc, bob, group, "Ward 7 nights")
    got = about((await changes_since(people.alice, start))[0], group)
    in_order_once(got)
    kinds = [(c["type"], c.get("event")) for c in got]
    assert kinds == [("conversation", "created"), ("message", None), ("conversation", "renamed"), ("message", None)]
    assert got[0]["conversation"] == {"id": group, "kind": "group", "title": "Ward 7"}
    assert got[2]["conversation"]["title"] == "Ward 7 nights"
    assert "renamed" in got[3]["message"]["body"]
    # Carol is not a member: nothing of the group.
    assert about((await changes_since(people.carol, start))[0], group) == []


async def test_a_member_added_later_starts_at_the_change_that_added_them(people: People, svc: Services) -> None:
    b, c = people.ids["bob"], people.ids["carol"]
    bob = actor_for(await staff(svc, b))
    group = await conversations.do_create_group(svc, bob, "Ward 7", ["alice"])
    await say(svc, b, group, "before carol")
    receipts_before = await receipts.do_mark_read(svc, actor_for(await staff(svc, people.ids["alice"])), group, await say(svc, b, group, "also before"))
    assert receipts_before
    await conversations.do_add_members(svc, bob, group, ["carol"])
    after = await say(svc, b, group, "after carol")
    got = about((await changes_since(people.carol, 0))[0], group)
    in_order_once(got)
    assert got[0]["type"] == "conversation" and got[0]["event"] == "member_added" and got[0]["user_ids"] == [c]
    bodies = [x["message"]["body"] for x in got if x["type"] == "message"]
    assert bodies[0].endswith("added Carol") and bodies[-1] == "after carol"
    assert "before carol" not in bodies and "also before" not in bodies
    assert not [x for x in got if x["type"] == "receipt" and x["position"] < got[0]["position"]]
    assert [x["message"]["id"] for x in got if x["type"] == "message"][-1] == after
    # Alice, there from the start, got the addition too.
    alices = about((await changes_since(people.alice, 0))[0], group)
    assert [x for x in alices if x.get("event") == "member_added"] == [got[0]]


async def test_a_removed_member_gets_the_removal_and_then_nothing(people: People, svc: Services) -> None:
    a, b = people.ids["alice"], people.ids["bob"]
    bob = actor_for(await staff(svc, b))
    group = await conversations.do_create_group(svc, bob, "Ward 7", ["alice", "carol"])
    start = await current_position(svc)
    await say(svc, b, group, "still yours")
    await conversations.do_remove_member(svc, bob, group, a)
    await say(svc, b, group, "not for alice")
    await conversations.do_rename_group(svc, bob, group, "Without alice")
    got = about((await changes_since(people.alice, start))[0], group)
    in_order_once(got)
    assert [(x["type"], x.get("event")) for x in got] == [("message", None), ("conversation", "member_removed")]
    assert got[0]["message"]["body"] == "still yours" and got[1]["user_ids"] == [a]
    # Carol, still a member, sees all of it in order.
    carols = about((await changes_since(people.carol, start))[0], group)
    assert [(x["type"], x.get("event")) for x in carols] == [
        ("message", None), ("conversation", "member_removed"), ("message", None), ("message", None),
        ("conversation", "renamed"), ("message", None),
    ]
    assert [x["message"]["body"] for x in carols if x["type"] == "message"][1:3] == ["Bob removed Alice", "not for alice"]
    with pytest.raises(NotFound):
        await messages.do_send_message(svc, actor_for(await staff(svc, a)), group, "let me in", new_id())


async def test_a_member_who_left_gets_their_leaving_and_the_others_see_it(people: People, svc: Services) -> None:
    a, b = people.ids["alice"], people.ids["bob"]
    group = await conversations.do_create_group(svc, actor_for(await staff(svc, b)), "Ward 7", ["alice"])
    start = await current_position(svc)
    await conversations.do_leave_group(svc, actor_for(await staff(svc, a)), group)
    await say(svc, b, group, "after alice left")
    mine = about((await changes_since(people.alice, start))[0], group)
    assert [(x["type"], x.get("event"), x.get("user_ids")) for x in mine] == [("conversation", "member_removed", [a])]
    bobs = about((await changes_since(people.bob, start))[0], group)
    assert [(x["type"], x.get("event")) for x in bobs] == [("conversation", "member_removed"), ("message", None), ("message", None)]


async def test_a_direct_chat_opened_while_away(people: People, svc: Services) -> None:
    start = await current_position(svc)
    cb = await people.direct(people.carol, "bob")
    got = about((await changes_since(people.bob, start))[0], cb)
    assert [(x["type"], x.get("event")) for x in got] == [("conversation", "created")]
    assert got[0]["conversation"]["kind"] == "direct"
    assert about((await changes_since(people.alice, start))[0], cb) == []


@pytest.mark.app_config(WS_RESUME_MAX=5, WS_RESUME_PAGE=2)
async def test_more_changes_than_the_cap_is_resync_and_pages_cover_the_rest(people: People, svc: Services) -> None:
    a, b = people.ids["alice"], people.ids["bob"]
    start = await current_position(svc)
    bob = actor_for(await staff(svc, b))
    m = [await say(svc, b, people.ab, f"m{n}") for n in range(2)]
    await receipts.do_mark_read(svc, actor_for(await staff(svc, a)), people.ab, m[-1])
    group = await conversations.do_create_group(svc, bob, "G", ["alice"])  # two changes
    # Five changes for alice: paged by two, three pages, the last one done.
    async with ws_open(people.alice, f"?since={start}") as sock:
        pages = [await sock.expect("sync")]
        while not pages[-1]["done"]:
            pages.append(await sock.expect("sync"))
    assert [len(p["changes"]) for p in pages] == [2, 2, 1]
    assert [p["position"] for p in pages] == [p["changes"][-1]["position"] for p in pages]
    await conversations.do_rename_group(svc, bob, group, "G2")  # two more: seven > 5
    async with ws_open(people.alice, f"?since={start}") as sock:
        assert (await sock.expect("resync"))["reason"] == "too_far_behind"


async def test_a_legacy_message_id_resume_gets_the_v1_shape_and_every_change_after(people: People, svc: Services) -> None:
    a, b = people.ids["alice"], people.ids["bob"]
    seen = await say(svc, b, people.ab, "seen")
    m = await say(svc, b, people.ab, "missed")
    # Alice's own receipt from another device of hers is a change her tabs must learn of.
    assert await receipts.do_mark_delivered(svc, actor_for(await staff(svc, a)), people.ab, m)
    async with ws_open(people.alice, f"?after={seen}") as sock:
        page = await sock.expect("sync")
    assert page["done"] is True
    assert [x["id"] for x in page["messages"]] == [m] and page["last_id"] == m
    assert [x["type"] for x in page["changes"]] == ["message", "receipt"]
    assert page["position"] == page["changes"][-1]["position"]
    assert page["changes"][1]["user_id"] == a and page["changes"][1]["delivered_id"] == m
    # A v2 resume from the same point gets the same frames.
    got, _ = await changes_since(people.alice, page["changes"][0]["position"] - 1)
    assert got == page["changes"]


async def test_a_sync_frame_since_a_position(people: People, svc: Services) -> None:
    b = people.ids["bob"]
    async with ws_open(people.alice) as sock:
        first = await say(svc, b, people.ab, "first")
        p = (await sock.expect("message"))["position"]
        second = await say(svc, b, people.ab, "second")
        await sock.expect("message")
        await sock.send({"type": "sync", "since": p})
        page = await sock.expect("sync")
    assert [x["message"]["id"] for x in page["changes"] if x["type"] == "message"] == [second]
    assert first < second


async def test_the_member_list_cache_follows_every_change_of_members(people: People, svc: Services) -> None:
    """Sends read a cached member list while the conversation's members_version stands: a
    member removed after it was cached gets no frame of the next message, and one added
    gets it, live and on resume alike."""
    a, b = people.ids["alice"], people.ids["bob"]
    bob = actor_for(await staff(svc, b))
    group = await conversations.do_create_group(svc, bob, "Ward 7", ["alice"])
    await say(svc, b, group, "fills the cache")
    hits = svc.members.hits
    await say(svc, b, group, "from the cache")
    assert svc.members.hits == hits + 1
    start = await current_position(svc)
    async with ws_open(people.alice) as alice, ws_open(people.carol) as carol:
        await conversations.do_remove_member(svc, bob, group, a)
        await conversations.do_add_members(svc, bob, group, ["carol"])
        after = await say(svc, b, group, "after the changes")
        assert (await carol.expect("message", timeout=2.0))["message"]["body"].endswith("added Carol")
        assert (await carol.expect("message", timeout=2.0))["message"]["id"] == after
        alices = [f["message"]["id"] for f in await alice.quiet(0.2) if f["type"] == "message"]
        assert after not in alices
    assert after not in [x["message"]["id"] for x in (await changes_since(people.alice, start))[0] if x["type"] == "message"]
    assert after in [x["message"]["id"] for x in (await changes_since(people.carol, start))[0] if x["type"] == "message"]


async def test_a_refusal_in_the_writer_is_an_answer_not_a_rerun_of_the_batch(people: People, svc: Services) -> None:
    """A read receipt or a send for a conversation I am not in is refused without rolling
    back the group writer's batch (which any client could otherwise cause at will)."""
    carol = actor_for(await staff(svc, people.ids["carol"]))
    reruns = svc.writer.stats.reruns
    with pytest.raises(NotFound):
        await receipts.do_mark_read(svc, carol, people.ab, 1)
    with pytest.raises(NotFound):
        await messages.do_send_message(svc, carol, people.ab, "not mine", new_id())
    assert svc.writer.stats.reruns == reruns


@pytest.mark.app_config(RECEIPTS_ALL_MEMBERS_MAX=1, RECORD_EVENTS=True)
async def test_in_a_big_group_a_sender_who_left_hears_no_receipt(people: People, svc: Services) -> None:
    a, b = people.ids["alice"], people.ids["bob"]
    bob = actor_for(await staff(svc, b))
    group = await conversations.do_create_group(svc, bob, "Ward 7", ["alice", "carol"])  # 2 left > 1
    m = await say(svc, b, group, "from bob")
    await conversations.do_leave_group(svc, bob, group)
    svc.published.clear()
    assert await receipts.do_mark_read(svc, actor_for(await staff(svc, a)), group, m)
    [event] = [e for e in svc.published if e.kind == "receipt"]
    assert b not in event.user_ids and a in event.user_ids
