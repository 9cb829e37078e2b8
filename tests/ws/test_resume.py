"""Resume: ``?since=P`` / ``?after=N`` (legacy) and ``sync`` frames send exactly what was
missed, in order, in pages.

Tests parametrized with ``how`` run both ways: ``since`` (v2: a stream position, pages carry
``changes`` and ``position``) and ``after`` (v1: a message id, pages also carry ``messages``
and ``last_id``). tests/ws/test_change_stream.py covers the v2 changes other than messages.
"""

from __future__ import annotations

from typing import Any

import pytest

import app.ws.endpoint as endpoint
from app.actions import conversations, messages
from app.actions.accounts import get_staff
from app.actions.messages import Sent
from app.realtime.events import Event
from app.services import Services
from tests.helpers import actor_for, new_id
from tests.ws.conftest import People
from tests.ws.wsclient import Sock, increasing, position_of, ws_open

pytestmark = [pytest.mark.usefixtures("database_kind"), pytest.mark.app_config(MESSAGE_BURST=10_000)]


async def said(svc: Services, user_id: int, conversation_id: int, body: str) -> Sent:
    user = await get_staff(svc, user_id)
    assert user is not None
    return await messages.do_send_message(svc, actor_for(user), conversation_id, body, new_id())


async def say(svc: Services, user_id: int, conversation_id: int, body: str) -> int:
    return (await said(svc, user_id, conversation_id, body)).message.id


async def pages(sock: Sock) -> list[dict[str, Any]]:
    """Every sync frame up to the one with done: true, each checked for its shape: its
    changes in position order, none past the page's position; a legacy page's ``messages``
    are exactly the messages of its changes."""
    out = [await sock.expect("sync")]
    while not out[-1]["done"]:
        out.append(await sock.expect("sync"))
    for frame in out:
        positions = [position_of(c) for c in frame["changes"]]
        assert increasing(positions) and all(p <= frame["position"] for p in positions), frame
        if "messages" in frame:
            assert frame["messages"] == [c["message"] for c in frame["changes"] if c["type"] == "message"]
    assert increasing([f["position"] for f in out if f["changes"]])
    return out


def ids_of(frames: list[dict[str, Any]]) -> list[int]:
    """The ids of the messages the pages carried (the same either way; see ``pages``)."""
    return [c["message"]["id"] for f in frames for c in f["changes"] if c["type"] == "message"]


@pytest.fixture(params=["since", "after"])
def how(request: pytest.FixtureRequest) -> str:
    """Resume by stream position (v2) or by message id (legacy)."""
    return str(request.param)


def resume_query(how: str, sent: Sent | None) -> str:
    """The handshake's query: resume after ``sent`` (None: from the start)."""
    if how == "since":
        return f"?since={sent.position if sent else 0}"
    return f"?after={sent.message.id if sent else 0}"


def sync_frame(how: str, sent: Sent | None) -> dict[str, Any]:
    if how == "since":
        return {"type": "sync", "since": sent.position if sent else 0}
    return {"type": "sync", "after_id": sent.message.id if sent else 0}


def empty_page(how: str, last: Sent) -> dict[str, Any]:
    """The page that says "nothing (more) after ``last``"."""
    page: dict[str, Any] = {"type": "sync", "changes": [], "done": True, "position": last.position}
    if how == "after":
        page.update(messages=[], last_id=last.message.id)
    return page


def conversation_of(change: dict[str, Any]) -> int:
    if change["type"] == "message":
        return int(change["message"]["conversation_id"])
    if change["type"] == "conversation":
        return int(change["conversation"]["id"])
    return int(change["conversation_id"])


async def test_resume_sends_exactly_the_missed_messages_of_my_conversations(people: People, svc: Services, how: str) -> None:
    a, b, c = people.ids["alice"], people.ids["bob"], people.ids["carol"]
    cb = await people.direct(people.carol, "bob")
    group = await conversations.do_create_group(svc, actor_for(await get_staff(svc, b)), "Ward 7", ["alice"])
    seen = await said(svc, a, people.ab, "seen before")
    missed = []
    for n in range(3):
        missed.append(await say(svc, b, people.ab, f"ab {n}"))
        await say(svc, c, cb, f"not for alice {n}")
        missed.append(await say(svc, b, group, f"group {n}"))
    async with ws_open(people.alice, resume_query(how, seen)) as sock:
        [page] = await pages(sock)
        assert page["done"] is True
        assert ids_of([page]) == missed  # in order, nothing of carol's chat
        assert [c["type"] for c in page["changes"]] == ["message"] * len(missed)  # nothing else happened
        assert {conversation_of(c) for c in page["changes"]} == {people.ab, group}
        assert page["position"] == position_of(page["changes"][-1])
        first = page["changes"][0]["message"]
        assert first["body"] == "ab 0" and first["sender_name"] == "Bob"
        if how == "after":
            assert [m["id"] for m in page["messages"]] == missed  # the v1 shape
            assert page["last_id"] == missed[-1]
        # Then live events as usual.
        live = await said(svc, b, people.ab, "live")
        frame = await sock.expect("message")
        assert frame["message"]["id"] == live.message.id and position_of(frame) == live.position > page["position"]
        assert [f["message"]["id"] for f in sock.taken("message")] == [live.message.id]
    # Everything, from the start: my messages too; the group's creation line included.
    async with ws_open(people.alice, resume_query(how, None)) as sock:
        [page] = await pages(sock)
        everything = ids_of([page])
        assert everything == sorted(everything) and seen.message.id in everything and live.message.id in everything
        assert cb not in {conversation_of(c) for c in page["changes"]}
        # The conversations' creations too (after=0 is position 0 as well).
        created = [c["conversation"]["id"] for c in page["changes"] if c["type"] == "conversation"]
        assert created == [people.ab, group]


@pytest.mark.app_config(WS_RESUME_PAGE=3)
async def test_pages_of_ws_resume_page(people: People, svc: Services, how: str) -> None:
    a, b = people.ids["alice"], people.ids["bob"]
    start = await said(svc, a, people.ab, "start")
    missed = [await said(svc, b, people.ab, f"m{n}") for n in range(8)]
    async with ws_open(people.alice, resume_query(how, start)) as sock:
        got = await pages(sock)
        assert [len(p["changes"]) for p in got] == [3, 3, 2]
        assert [p["done"] for p in got] == [False, False, True]
        assert [p["position"] for p in got] == [missed[2].position, missed[5].position, missed[7].position]
        assert [position_of(c) for p in got for c in p["changes"]] == [m.position for m in missed]
        assert ids_of(got) == [m.message.id for m in missed]
        if how == "after":
            assert [len(p["messages"]) for p in got] == [3, 3, 2]
            assert [p["last_id"] for p in got] == [missed[2].message.id, missed[5].message.id, missed[7].message.id]
        else:
            assert all("messages" not in p and "last_id" not in p for p in got)
    # A multiple of the page size ends with an empty page that says done.
    async with ws_open(people.alice, resume_query(how, missed[1])) as sock:
        got = await pages(sock)
        assert [len(p["changes"]) for p in got] == [3, 3, 0]
        assert got[-1] == empty_page(how, missed[7])
    # Nothing missed: one empty page at the position (and message id) the client gave.
    async with ws_open(people.alice, resume_query(how, missed[7])) as sock:
        assert await pages(sock) == [empty_page(how, missed[7])]


@pytest.mark.app_config(WS_RESUME_MAX=5, WS_RESUME_PAGE=2)
async def test_too_far_behind_gets_resync(people: People, svc: Services, how: str) -> None:
    a, b = people.ids["alice"], people.ids["bob"]
    start = await said(svc, a, people.ab, "start")
    sent = [await said(svc, b, people.ab, f"m{n}") for n in range(6)]
    missed = [m.message.id for m in sent]
    async with ws_open(people.alice, resume_query(how, start)) as sock:
        resync = await sock.expect("resync")
        assert resync == {"type": "resync", "reason": "too_far_behind"}
        assert sock.taken("sync") == []
        # The socket still works: live events and a sync from closer by.
        live = await say(svc, b, people.ab, "live")
        assert (await sock.expect("message"))["message"]["id"] == live
        await sock.send(sync_frame(how, sent[1]))
        assert ids_of(await pages(sock)) == [*missed[2:], live]  # 5: not too many
        await sock.send(sync_frame(how, sent[0]))
        assert (await sock.expect("resync"))["reason"] == "too_far_behind"
        # What was held during the resume is not lost: the presence snapshot still came.
        assert (await sock.expect("presence_snapshot"))["users"] == [{"user_id": b, "online": False, "last_seen": None}]


async def test_a_sync_frame_mid_connection(people: People, svc: Services, how: str) -> None:
    a, b = people.ids["alice"], people.ids["bob"]
    cb = await people.direct(people.carol, "bob")
    async with ws_open(people.alice) as sock:
        first = await said(svc, a, people.ab, "one")
        await say(svc, people.ids["carol"], cb, "not mine")
        second = await said(svc, b, people.ab, "two")
        await sock.send(sync_frame(how, None))
        got = await pages(sock)
        assert ids_of(got) == [first.message.id, second.message.id]
        if how == "since":  # from the start of the stream: the direct chat's creation first
            assert [(c["type"], c.get("event")) for c in got[0]["changes"]][0] == ("conversation", "created")
        await sock.send(sync_frame(how, first))
        assert ids_of(await pages(sock)) == [second.message.id]
        # Live events came as well, each once, at the positions the pages gave them.
        assert [f["message"]["id"] for f in sock.taken("message")] == [first.message.id, second.message.id]
        assert [position_of(f) for f in sock.taken("message")] == [first.position, second.position]


async def test_messages_after_i_left_a_group_are_not_resent(people: People, svc: Services, how: str) -> None:
    a, b = people.ids["alice"], people.ids["bob"]
    alice = await get_staff(svc, a)
    assert alice is not None
    group = await conversations.do_create_group(svc, actor_for(alice), "Ward 7", ["bob", "carol"])
    start = await said(svc, b, group, "before")
    await conversations.do_remove_member(svc, actor_for(alice), group, b)
    await say(svc, a, group, "after bob left")
    async with ws_open(people.bob, resume_query(how, start)) as sock:
        [page] = await pages(sock)
        assert ids_of([page]) == []
        if how == "after":
            assert page["messages"] == []
        # Only the change that removed him (its system line is for those who stay).
        [removed] = page["changes"]
        assert removed["type"] == "conversation" and removed["event"] == "member_removed" and removed["user_ids"] == [b]


async def test_live_events_during_a_resume_are_held_and_not_doubled(
    people: People, svc: Services, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """A message committed during the resume comes once: in the page or as an event after it."""
    a, b = people.ids["alice"], people.ids["bob"]
    start = await said(svc, a, people.ab, "start")
    old = await say(svc, b, people.ab, "old")
    original = endpoint.missed_changes
    during: dict[str, int] = {}

    async def racing(*args: Any) -> Any:
        if not during:
            during["before_read"] = await say(svc, b, people.ab, "committed before the page was read")
            result = await original(*args)
            during["after_read"] = await say(svc, b, people.ab, "committed after the page was read")
            return result
        return await original(*args)

    monkeypatch.setattr(endpoint, "missed_changes", racing)
    async with ws_open(people.alice, resume_query(how, start)) as sock:
        [page] = await pages(sock)
        assert ids_of([page]) == [old, during["before_read"]]
        event = await sock.expect("message")
        assert event["message"]["id"] == during["after_read"]
        assert position_of(event) > page["position"]  # the client resumes from it next time
        # Order on the wire: the page, then the held event; the first message never twice.
        order = [f["type"] for f in sock.seen if f["type"] in ("sync", "message")]
        assert order == ["sync", "message"]
        rest = await sock.quiet()
        assert [f for f in rest if f["type"] in ("sync", "message")] == []


async def test_sync_needed_reaches_every_socket(people: People, svc: Services) -> None:
    """What the Redis broker publishes after it lost its subscription: ask the store."""
    before = await said(svc, people.ids["alice"], people.ab, "seen before")
    async with ws_open(people.alice) as alice, ws_open(people.alice) as alice2, ws_open(people.carol) as carol:
        missed = await say(svc, people.ids["bob"], people.ab, "sent while the broker was away")
        await svc.broker.publish(Event("sync_needed"))
        for sock in (alice, alice2, carol):
            assert await sock.expect("sync_needed") == {"type": "sync_needed"}
        await alice.send({"type": "sync", "after_id": missed - 1})
        assert ids_of(await pages(alice)) == [missed]
        # A v2 client answers with its position: the last it saw before the broker was away.
        await alice2.send({"type": "sync", "since": before.position})
        assert ids_of(await pages(alice2)) == [missed]
