"""Receipts (watermarks), typing and presence over /ws."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from app.actions import conversations, messages
from app.actions.accounts import get_staff
from app.lib.clock import FrozenClock
from app.services import Services
from app.store import conversations as store_conversations
from app.store import staff as store_staff
from tests.helpers import actor_for, new_id
from tests.ws.conftest import People
from tests.ws.wsclient import Sock, increasing, live_positions, unpositioned, ws_open

pytestmark = pytest.mark.usefixtures("database_kind")


async def say(svc: Services, user_id: int, conversation_id: int, body: str) -> int:
    user = await get_staff(svc, user_id)
    assert user is not None
    return (await messages.do_send_message(svc, actor_for(user), conversation_id, body, new_id())).message.id


async def watermarks(svc: Services, conversation_id: int, user_id: int) -> tuple[int, int]:
    """(last_read_id, last_delivered_id) as stored."""
    async with svc.db.reading() as s:
        row = await store_conversations.membership(s, conversation_id, user_id)
    assert row is not None
    return row.last_read_id, row.last_delivered_id


def receipt(conversation_id: int, user_id: int, read_id: int, delivered_id: int) -> dict[str, Any]:
    return {"type": "receipt", "conversation_id": conversation_id, "user_id": user_id, "read_id": read_id, "delivered_id": delivered_id}


# Receipts


async def test_delivered_and_read_move_watermarks_and_tell_every_member(people: People, svc: Services) -> None:
    a, b = people.ids["alice"], people.ids["bob"]
    async with ws_open(people.alice) as alice, ws_open(people.bob) as bob:
        m1 = await say(svc, b, people.ab, "one")
        m2 = await say(svc, b, people.ab, "two")
        assert await watermarks(svc, people.ab, a) == (0, 0)
        await alice.send({"type": "delivered", "conversation_id": people.ab, "up_to_id": m2})
        assert unpositioned(await bob.expect("receipt")) == receipt(people.ab, a, 0, m2)
        assert unpositioned(await alice.expect("receipt")) == receipt(people.ab, a, 0, m2)  # my other tabs
        assert await watermarks(svc, people.ab, a) == (0, m2)
        await alice.send({"type": "read", "conversation_id": people.ab, "up_to_id": m1})
        assert unpositioned(await bob.expect("receipt")) == receipt(people.ab, a, m1, m2)
        await alice.send({"type": "read", "conversation_id": people.ab, "up_to_id": m2})
        assert unpositioned(await bob.expect("receipt")) == receipt(people.ab, a, m2, m2)
        assert await watermarks(svc, people.ab, a) == (m2, m2)
        # The sender's own watermarks: sending read my own message.
        assert await watermarks(svc, people.ab, b) == (m2, m2)
        # Each move is a newer change than the one it replaces, and both tabs saw the same.
        assert len(bob.taken("receipt")) == 3 and increasing(live_positions(bob)), live_positions(bob)
        assert alice.taken("receipt")[0]["position"] == bob.taken("receipt")[0]["position"]


async def test_read_implies_delivered(people: People, svc: Services) -> None:
    a, b = people.ids["alice"], people.ids["bob"]
    async with ws_open(people.alice) as alice, ws_open(people.bob) as bob:
        m1 = await say(svc, b, people.ab, "one")
        await alice.send({"type": "read", "conversation_id": people.ab, "up_to_id": m1})
        assert unpositioned(await bob.expect("receipt")) == receipt(people.ab, a, m1, m1)
        assert await watermarks(svc, people.ab, a) == (m1, m1)


async def test_watermarks_never_move_back_nor_past_the_newest_message(people: People, svc: Services) -> None:
    a, b = people.ids["alice"], people.ids["bob"]
    async with ws_open(people.alice) as alice, ws_open(people.bob) as bob:
        m1 = await say(svc, b, people.ab, "one")
        m2 = await say(svc, b, people.ab, "two")
        await alice.send({"type": "read", "conversation_id": people.ab, "up_to_id": 10**15})
        assert unpositioned(await bob.expect("receipt")) == receipt(people.ab, a, m2, m2)  # capped at the newest
        for kind in ("read", "delivered"):
            await alice.send({"type": kind, "conversation_id": people.ab, "up_to_id": m1})
            await alice.send({"type": kind, "conversation_id": people.ab, "up_to_id": m2})
        assert await watermarks(svc, people.ab, a) == (m2, m2)
        # Nothing moved, so nothing was published: bob's next receipt is about a new message.
        m3 = await say(svc, b, people.ab, "three")
        await alice.send({"type": "delivered", "conversation_id": people.ab, "up_to_id": m3})
        assert unpositioned(await bob.expect("receipt")) == receipt(people.ab, a, m2, m3)
        assert len(bob.taken("receipt")) == 2
        # A later message elsewhere does not let the watermark run past this chat's newest.
        other = await people.direct(people.alice, "carol")
        m4 = await say(svc, a, other, "elsewhere")
        await alice.send({"type": "read", "conversation_id": people.ab, "up_to_id": m4})
        assert unpositioned(await bob.expect("receipt")) == receipt(people.ab, a, m3, m3)


async def test_receipts_for_a_conversation_i_am_not_in_are_not_found(people: People, svc: Services) -> None:
    a, b, c = people.ids["alice"], people.ids["bob"], people.ids["carol"]
    async with ws_open(people.alice) as alice, ws_open(people.carol) as carol:
        m1 = await say(svc, b, people.ab, "private")
        for kind in ("read", "delivered"):
            for conversation_id in (people.ab, people.ab + 1000):
                await carol.send({"type": kind, "conversation_id": conversation_id, "up_to_id": m1})
                error = await carol.error("not_found")
                assert error["ref"] == str(conversation_id)
        assert await watermarks(svc, people.ab, a) == (0, 0)
        async with svc.db.reading() as s:
            assert await store_conversations.membership(s, people.ab, c, include_left=True) is None
        # alice heard nothing of it: her next receipt is her own.
        await alice.send({"type": "read", "conversation_id": people.ab, "up_to_id": m1})
        assert unpositioned(await alice.expect("receipt")) == receipt(people.ab, a, m1, m1)
        assert len(alice.taken("receipt")) == 1


async def test_viewing_the_no_js_page_sends_a_read_receipt(people: People, svc: Services) -> None:
    a, b = people.ids["alice"], people.ids["bob"]
    async with ws_open(people.bob) as bob:
        m1 = await say(svc, b, people.ab, "one")
        # The automatic refresh only moves delivered.
        response = await people.alice.get(f"/chats/{people.ab}?auto=1")
        assert response.status_code == 200
        assert unpositioned(await bob.expect("receipt")) == receipt(people.ab, a, 0, m1)
        response = await people.alice.get(f"/chats/{people.ab}")
        assert response.status_code == 200
        assert unpositioned(await bob.expect("receipt")) == receipt(people.ab, a, m1, m1)
        assert await watermarks(svc, people.ab, a) == (m1, m1)


async def test_receipts_in_a_group_reach_the_senders_and_the_readers_tabs_only(people: People, svc: Services) -> None:
    """Ticks are drawn under one's own messages only: in a group a receipt goes to the
    senders of the messages it newly covers and to the reader's own devices, not to every
    member (which cost members x members frames a message); a direct chat tells both."""
    a, b, c = people.ids["alice"], people.ids["bob"], people.ids["carol"]
    alice_staff = await get_staff(svc, a)
    assert alice_staff is not None
    group = await conversations.do_create_group(svc, actor_for(alice_staff), "Ward 7", ["bob", "carol"])
    async with ws_open(people.alice) as alice, ws_open(people.carol) as carol, ws_open(people.bob) as bob:
        m1 = await say(svc, a, group, "hello all")
        await bob.send({"type": "read", "conversation_id": group, "up_to_id": m1})
        for sock in (alice, bob):
            assert unpositioned(await sock.expect("receipt")) == receipt(group, b, m1, m1)
        assert alice.taken("receipt")[0]["position"] == bob.taken("receipt")[0]["position"]
        # Carol sent nothing it covers: she hears of the next message, never of the receipt.
        m2 = await say(svc, b, group, "seen, on my way")
        assert (await carol.expect("message"))["message"]["id"] == m1
        assert (await carol.expect("message"))["message"]["id"] == m2
        await processed(carol)
        assert carol.taken("receipt") == []
        assert (await watermarks(svc, group, c))[0] < m1
        # In a direct chat the receipt reaches the other member.
        m3 = await say(svc, a, people.ab, "bed 4?")
        await bob.send({"type": "read", "conversation_id": people.ab, "up_to_id": m3})
        assert unpositioned(await alice.expect("receipt", conversation_id=people.ab)) == receipt(people.ab, b, m3, m3)


# Typing


def typing(conversation_id: int, user_id: int, name: str, on: bool) -> dict[str, Any]:
    return {"type": "typing", "conversation_id": conversation_id, "user_id": user_id, "name": name, "typing": on, "ttl": 6}


async def processed(sock: Sock) -> None:
    """Wait until the server has handled every frame ``sock`` sent so far: frames are
    handled in order, and one about a conversation that does not exist is answered."""
    await sock.send({"type": "typing", "conversation_id": 2**40, "typing": True})
    await sock.error("not_found")


async def test_typing_reaches_the_other_member_and_is_throttled(people: People, clock: FrozenClock) -> None:
    a = people.ids["alice"]
    async with ws_open(people.alice) as alice, ws_open(people.alice) as alice2, ws_open(people.bob) as bob:
        start = {"type": "typing", "conversation_id": people.ab, "typing": True}
        stop = {**start, "typing": False}
        await alice.send(start)
        assert await bob.expect("typing") == typing(people.ab, a, "Alice", True)
        await alice.send(start)  # within 2 s: not passed on
        await alice.send(stop)  # nor is a stop
        await alice2.send(start)  # nor the same person's other tab
        await processed(alice)
        await processed(alice2)
        clock.advance(2)
        await alice.send(stop)  # 2 s later, the stop goes out
        assert await bob.expect("typing") == typing(people.ab, a, "Alice", False)
        await processed(alice)
        clock.advance(2)
        await alice.send(stop)  # a stop without a start before it: nothing
        await alice.send(start)  # after a stop, a start is new
        assert await bob.expect("typing") == typing(people.ab, a, "Alice", True)
        await processed(alice)
        clock.advance(2.5)
        await alice2.send(start)  # a start after the interval refreshes the indicator
        assert await bob.expect("typing") == typing(people.ab, a, "Alice", True)
        assert [f for f in await bob.quiet() if f["type"] == "typing"] == []
        assert [f["typing"] for f in bob.taken("typing")] == [True, False, True, True]
        # Never to my own sockets: the tab that typed, nor my other tab.
        await bob.send({"type": "typing", "conversation_id": people.ab, "typing": True})
        assert await alice.expect("typing") == typing(people.ab, people.ids["bob"], "Bob", True)
        assert await alice2.expect("typing") == typing(people.ab, people.ids["bob"], "Bob", True)
        assert alice.taken("typing") == alice2.taken("typing") == [typing(people.ab, people.ids["bob"], "Bob", True)]
        assert [f["user_id"] for f in bob.taken("typing")] == [a, a, a, a]


async def test_alternating_typing_frames_pass_one_change_per_interval(people: People, clock: FrozenClock) -> None:
    """Bursts of 200 frames alternating start/stop (the outside test saw 200 of 200 passed
    on): each 2 s interval passes exactly one change."""
    async with ws_open(people.alice) as alice, ws_open(people.bob) as bob:
        passed: list[bool] = []
        for burst in range(4):
            first_on = burst % 2 == 0  # a stop leads every other burst: it follows a start
            for i in range(200):
                await alice.send({"type": "typing", "conversation_id": people.ab, "typing": (i % 2 == 0) == first_on})
            await processed(alice)
            passed += [f["typing"] for f in await bob.quiet() if f["type"] == "typing"]
            clock.advance(2)
        assert passed == [True, False, True, False]


async def test_typing_throttle_is_per_conversation(people: People) -> None:
    other = await people.direct(people.alice, "carol")
    async with ws_open(people.alice) as alice, ws_open(people.bob) as bob, ws_open(people.carol) as carol:
        await alice.send({"type": "typing", "conversation_id": people.ab, "typing": True})
        await alice.send({"type": "typing", "conversation_id": other, "typing": True})
        assert (await bob.expect("typing"))["conversation_id"] == people.ab
        assert (await carol.expect("typing"))["conversation_id"] == other


async def test_typing_where_i_am_not_a_member_is_not_found(people: People) -> None:
    theirs = await people.direct(people.carol, "bob")
    async with ws_open(people.alice) as alice, ws_open(people.bob) as bob, ws_open(people.carol) as carol:
        await alice.send({"type": "typing", "conversation_id": theirs, "typing": True})
        error = await alice.error("not_found")
        assert error["ref"] == str(theirs)
        await alice.send({"type": "typing", "conversation_id": theirs, "typing": False})
        assert [f for f in await alice.quiet() if f["type"] == "error"] == []  # a stop after no start that went out: nothing at all
        # Neither of them heard it: the next typing frame bob gets is carol's.
        await carol.send({"type": "typing", "conversation_id": theirs, "typing": True})
        assert (await bob.expect("typing"))["user_id"] == people.ids["carol"]
        assert len(bob.taken("typing")) == 1


# Presence


GRACE = 5.0  # PRESENCE_GRACE_SECONDS


async def grace_started(clock: FrozenClock) -> None:
    """The last socket closed: its grace timer waits on the clock."""
    await clock.sleeping(1, due_within=GRACE)


async def presence_frames(sock: Sock) -> list[dict[str, Any]]:
    return sock.taken("presence")


async def test_presence_online_goes_to_contacts_only(people: People, login_as: Any) -> None:
    a, b = people.ids["alice"], people.ids["bob"]
    async with ws_open(people.alice) as alice, ws_open(people.carol) as carol:
        snapshot = await alice.expect("presence_snapshot")
        assert snapshot["users"] == [{"user_id": b, "online": False, "last_seen": None}]
        assert (await carol.expect("presence_snapshot"))["users"] == []
        async with ws_open(people.bob) as bob:
            assert await alice.expect("presence") == {"type": "presence", "user_id": b, "online": True, "last_seen": None}
            snapshot = await bob.expect("presence_snapshot")
            assert snapshot["users"] == [{"user_id": a, "online": True, "last_seen": None}]
            # carol shares nothing with bob: her next presence frame is about someone she knows.
            dave = await login_as("dave")
            await people.direct(dave, "carol")
            async with ws_open(dave) as d:
                assert (await carol.expect("presence"))["user_id"] == d.hello["user_id"]
                assert len(carol.taken("presence")) == 1


async def test_presence_changes_only(people: People, clock: FrozenClock) -> None:
    b = people.ids["bob"]
    async with ws_open(people.alice) as alice:
        async with ws_open(people.bob):
            assert (await alice.expect("presence"))["online"] is True
            async with ws_open(people.bob):
                pass  # a second tab opens and closes: no change, no grace timer
            assert clock.pending() == [20.0]  # only the heartbeat waits (one for every socket)
        await grace_started(clock)
        clock.advance(GRACE - 0.5)
        assert [t for t in clock.pending() if t <= GRACE] == [0.5]  # not offline yet
        clock.advance(0.5)
        offline = await alice.expect("presence")
        assert offline["user_id"] == b and offline["online"] is False
        assert [f["online"] for f in alice.taken("presence")] == [True, False]


async def test_offline_after_the_grace_with_last_seen(people: People, svc: Services, clock: FrozenClock) -> None:
    b = people.ids["bob"]
    async with ws_open(people.alice) as alice:
        async with ws_open(people.bob):
            await alice.expect("presence")
        closed_at = clock.now()
        await grace_started(clock)
        clock.advance(GRACE)  # the announcement says when: at the end of the grace
        offline = await alice.expect("presence")
        assert offline == {"type": "presence", "user_id": b, "online": False, "last_seen": (closed_at + timedelta(seconds=GRACE)).isoformat()}
        assert clock.now() == closed_at + timedelta(seconds=GRACE)
        async with svc.db.reading() as s:
            seen = await store_staff.last_seen(s, [b])
        assert seen[b] is not None and seen[b].replace(tzinfo=None) == clock.now().replace(tzinfo=None)
    # A new socket's snapshot says when bob was last seen.
    async with ws_open(people.alice) as alice:
        snapshot = await alice.expect("presence_snapshot")
        assert snapshot["users"] == [{"user_id": b, "online": False, "last_seen": clock.now().isoformat()}]


async def test_a_reload_within_the_grace_is_not_a_change(people: People, clock: FrozenClock) -> None:
    async with ws_open(people.alice) as alice:
        async with ws_open(people.bob):
            await alice.expect("presence")
        await grace_started(clock)
        clock.advance(GRACE - 1)
        async with ws_open(people.bob):  # the reloaded page
            clock.advance(1)  # the first socket's grace is over: bob is here again
            assert [t for t in clock.pending() if t <= GRACE] == []
            assert [f for f in await alice.quiet() if f["type"] == "presence"] == []
        await grace_started(clock)
        clock.advance(GRACE)
        offline = await alice.expect("presence")
        assert offline["online"] is False
        assert [f["online"] for f in alice.taken("presence")] == [True, False]
