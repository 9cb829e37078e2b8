"""Resume: ``?after=N`` and ``sync`` frames send exactly what was missed, in order, in pages."""

from __future__ import annotations

from typing import Any

import pytest

import app.ws.endpoint as endpoint
from app.actions import conversations, messages
from app.actions.accounts import get_staff
from app.realtime.events import Event
from app.services import Services
from tests.helpers import actor_for, new_id
from tests.ws.conftest import People
from tests.ws.wsclient import Sock, ws_open

pytestmark = [pytest.mark.usefixtures("database_kind"), pytest.mark.app_config(MESSAGE_BURST=10_000)]


async def say(svc: Services, user_id: int, conversation_id: int, body: str) -> int:
    user = await get_staff(svc, user_id)
    assert user is not None
    return (await messages.do_send_message(svc, actor_for(user), conversation_id, body, new_id())).message.id


async def pages(sock: Sock) -> list[dict[str, Any]]:
    """Every sync frame up to the one with done: true."""
    out = [await sock.expect("sync")]
    while not out[-1]["done"]:
        out.append(await sock.expect("sync"))
    return out


def ids_of(frames: list[dict[str, Any]]) -> list[int]:
    return [m["id"] for f in frames for m in f["messages"]]


async def test_after_sends_exactly_the_missed_messages_of_my_conversations(people: People, svc: Services) -> None:
    a, b, c = people.ids["alice"], people.ids["bob"], people.ids["carol"]
    cb = await people.direct(people.carol, "bob")
    group = await conversations.do_create_group(svc, actor_for(await get_staff(svc, b)), "Ward 7", ["alice"])
    seen = await say(svc, a, people.ab, "seen before")
    missed = []
    for n in range(3):
        missed.append(await say(svc, b, people.ab, f"ab {n}"))
        await say(svc, c, cb, f"not for alice {n}")
        missed.append(await say(svc, b, group, f"group {n}"))
    async with ws_open(people.alice, f"?after={seen}") as sock:
        [page] = await pages(sock)
        assert page["done"] is True
        assert ids_of([page]) == missed  # in order, nothing of carol's chat
        assert page["last_id"] == missed[-1]
        assert {m["conversation_id"] for m in page["messages"]} == {people.ab, group}
        assert page["messages"][0]["body"] == "ab 0" and page["messages"][0]["sender_name"] == "Bob"
        # Then live events as usual.
        live = await say(svc, b, people.ab, "live")
        assert (await sock.expect("message"))["message"]["id"] == live
        assert [f["message"]["id"] for f in sock.taken("message")] == [live]
    # Everything, from the start: my messages too; the group's creation line included.
    async with ws_open(people.alice, "?after=0") as sock:
        [page] = await pages(sock)
        everything = ids_of([page])
        assert everything == sorted(everything) and seen in everything and live in everything
        assert all(m["conversation_id"] != cb for m in page["messages"])


@pytest.mark.app_config(WS_RESUME_PAGE=3)
async def test_pages_of_ws_resume_page(people: People, svc: Services) -> None:
    a, b = people.ids["alice"], people.ids["bob"]
    start = await say(svc, a, people.ab, "start")
    missed = [await say(svc, b, people.ab, f"m{n}") for n in range(8)]
    async with ws_open(people.alice, f"?after={start}") as sock:
        got = await pages(sock)
        assert [len(p["messages"]) for p in got] == [3, 3, 2]
        assert [p["done"] for p in got] == [False, False, True]
        assert [p["last_id"] for p in got] == [missed[2], missed[5], missed[7]]
        assert ids_of(got) == missed
    # A multiple of the page size ends with an empty page that says done.
    async with ws_open(people.alice, f"?after={missed[1]}") as sock:
        got = await pages(sock)
        assert [len(p["messages"]) for p in got] == [3, 3, 0]
        assert got[-1] == {"type": "sync", "messages": [], "done": True, "last_id": missed[7]}
    # Nothing missed: one empty page, last_id is what the client gave.
    async with ws_open(people.alice, f"?after={missed[7]}") as sock:
        assert await pages(sock) == [{"type": "sync", "messages": [], "done": True, "last_id": missed[7]}]


@pytest.mark.app_config(WS_RESUME_MAX=5, WS_RESUME_PAGE=2)
async def test_too_far_behind_gets_resync(people: People, svc: Services) -> None:
    a, b = people.ids["alice"], people.ids["bob"]
    start = await say(svc, a, people.ab, "start")
    missed = [await say(svc, b, people.ab, f"m{n}") for n in range(6)]
    async with ws_open(people.alice, f"?after={start}") as sock:
        resync = await sock.expect("resync")
        assert resync == {"type": "resync", "reason": "too_far_behind"}
        assert sock.taken("sync") == []
        # The socket still works: live events and a sync from closer by.
        live = await say(svc, b, people.ab, "live")
        assert (await sock.expect("message"))["message"]["id"] == live
        await sock.send({"type": "sync", "after_id": missed[1]})
        assert ids_of(await pages(sock)) == [*missed[2:], live]  # 5: not too many
        await sock.send({"type": "sync", "after_id": missed[0]})
        assert (await sock.expect("resync"))["reason"] == "too_far_behind"
        # What was held during the resume is not lost: the presence snapshot still came.
        assert (await sock.expect("presence_snapshot"))["users"] == [{"user_id": b, "online": False, "last_seen": None}]


async def test_a_sync_frame_mid_connection(people: People, svc: Services) -> None:
    a, b = people.ids["alice"], people.ids["bob"]
    cb = await people.direct(people.carol, "bob")
    async with ws_open(people.alice) as sock:
        first = await say(svc, a, people.ab, "one")
        await say(svc, people.ids["carol"], cb, "not mine")
        second = await say(svc, b, people.ab, "two")
        await sock.send({"type": "sync", "after_id": 0})
        assert ids_of(await pages(sock)) == [first, second]
        await sock.send({"type": "sync", "after_id": first})
        assert ids_of(await pages(sock)) == [second]
        # Live events came as well, each once.
        assert [f["message"]["id"] for f in sock.taken("message")] == [first, second]


async def test_messages_after_i_left_a_group_are_not_resent(people: People, svc: Services) -> None:
    a, b = people.ids["alice"], people.ids["bob"]
    alice = await get_staff(svc, a)
    assert alice is not None
    group = await conversations.do_create_group(svc, actor_for(alice), "Ward 7", ["bob", "carol"])
    start = await say(svc, b, group, "before")
    await conversations.do_remove_member(svc, actor_for(alice), group, b)
    await say(svc, a, group, "after bob left")
    async with ws_open(people.bob, f"?after={start}") as sock:
        [page] = await pages(sock)
        assert page["messages"] == []


async def test_live_events_during_a_resume_are_held_and_not_doubled(people: People, svc: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    """A message committed during the resume comes once: in the page or as an event after it."""
    a, b = people.ids["alice"], people.ids["bob"]
    start = await say(svc, a, people.ab, "start")
    old = await say(svc, b, people.ab, "old")
    original = endpoint.missed_messages
    during: dict[str, int] = {}

    async def racing(*args: Any) -> Any:
        if not during:
            during["before_read"] = await say(svc, b, people.ab, "committed before the page was read")
            result = await original(*args)
            during["after_read"] = await say(svc, b, people.ab, "committed after the page was read")
            return result
        return await original(*args)

    monkeypatch.setattr(endpoint, "missed_messages", racing)
    async with ws_open(people.alice, f"?after={start}") as sock:
        [page] = await pages(sock)
        assert ids_of([page]) == [old, during["before_read"]]
        event = await sock.expect("message")
        assert event["message"]["id"] == during["after_read"]
        # Order on the wire: the page, then the held event; the first message never twice.
        order = [f["type"] for f in sock.seen if f["type"] in ("sync", "message")]
        assert order == ["sync", "message"]
        rest = await sock.quiet()
        assert [f for f in rest if f["type"] in ("sync", "message")] == []


async def test_sync_needed_reaches_every_socket(people: People, svc: Services) -> None:
    """What the Redis broker publishes after it lost its subscription: ask the store."""
    async with ws_open(people.alice) as alice, ws_open(people.alice) as alice2, ws_open(people.carol) as carol:
        missed = await say(svc, people.ids["bob"], people.ab, "sent while the broker was away")
        await svc.broker.publish(Event("sync_needed"))
        for sock in (alice, alice2, carol):
            assert await sock.expect("sync_needed") == {"type": "sync_needed"}
        await alice.send({"type": "sync", "after_id": missed - 1})
        assert ids_of(await pages(alice)) == [missed]
