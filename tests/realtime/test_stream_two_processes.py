"""The change stream across two processes (issue 10): for every change kind, made through
the actions of process A, a member's socket on process B that was away gets it exactly once,
in order, when it resumes with ``?since=<position>``; a live socket of theirs on B gets it
live through Redis with the same position; an outsider on B never gets it.

Two apps on one database (SQLite, and PostgreSQL when MEDCHAT_TEST_DATABASE_URL is set) and
the real Redis of MEDCHAT_TEST_REDIS_URL (a channel of their own). No sleeps: a *fence* (a
message Alice sends through A in a group with Bob and Carol) follows every change; Redis
keeps the order of one publisher's events and B's hub delivers them in order, so once a
socket has the fence it has every frame of the change it will ever get live.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from quart import Quart

from app.actions import conversations, messages, receipts
from app.actions.accounts import StaffFields, create_user_with_password
from app.realtime.events import Event
from app.records import Staff
from app.services import Services
from tests.helpers import actor_for, new_id
from tests.realtime.conftest import needs_redis, quiet_login_store
from tests.support import PASSWORD, Client
from tests.ws.wsclient import Sock, ws_open

pytestmark = [needs_redis, quiet_login_store]

CHANGE_FRAMES = ("message", "receipt", "conversation")


@dataclass
class Scene:
    """Alice, Bob, Carol and Dave made on A; Bob and Carol logged in on B. Alice and Bob
    share the direct chat ``ab``; ``fence`` is a group of Alice, Bob and Carol."""

    a: Services
    b: Services
    users: dict[str, Staff]
    bob: Client  # on B
    carol: Client  # on B
    ab: int
    fence: int

    async def say(self, who: str, conversation_id: int, body: str) -> int:
        """``who`` sends through process A; the message id."""
        sent = await messages.do_send_message(self.a, actor_for(self.users[who]), conversation_id, body, new_id())
        return sent.message.id

    async def put_fence(self) -> int:
        return await self.say("alice", self.fence, "fence")


async def _logged_in(app: Quart, username: str) -> Client:
    client = Client(app)
    response = await client.login(username, PASSWORD)
    assert response.status_code == 303, await response.get_data(as_text=True)
    return client


@pytest.fixture
async def scene(two_processes_each_database: tuple[Quart, Quart]) -> Scene:
    app_a, app_b = two_processes_each_database
    a, b = app_a.extensions["medchat"], app_b.extensions["medchat"]
    users = {
        name: await create_user_with_password(a, StaffFields(name, name.title(), "Cardiology", "Nurse", "member"), PASSWORD)
        for name in ("alice", "bob", "carol", "dave")
    }
    ab = await conversations.do_open_direct(a, actor_for(users["alice"]), "bob")
    fence = await conversations.do_create_group(a, actor_for(users["alice"]), "Fence", ["bob", "carol"])
    return Scene(a, b, users, await _logged_in(app_b, "bob"), await _logged_in(app_b, "carol"), ab, fence)


def conversation_of(frame: dict[str, Any]) -> int:
    if frame["type"] == "message":
        return int(frame["message"]["conversation_id"])
    if frame["type"] == "conversation":
        return int(frame["conversation"]["id"])
    return int(frame["conversation_id"])


def about(frames: list[dict[str, Any]], conversation_id: int) -> list[dict[str, Any]]:
    """The change frames of one conversation, in the order received."""
    return [f for f in frames if f["type"] in CHANGE_FRAMES and conversation_of(f) == conversation_id]


def shape(frames: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    return [(f["type"], f.get("event")) for f in frames]


def in_order_once(frames: list[dict[str, Any]]) -> None:
    ps = [f["position"] for f in frames]
    assert ps == sorted(ps) and len(ps) == len(set(ps)), ps


async def until(sock: Sock, fence_id: int) -> list[dict[str, Any]]:
    """Every frame the socket gets up to the fence message (included); Redis in real time."""
    frames: list[dict[str, Any]] = []
    while True:
        frame = await sock.next(timeout=5)
        frames.append(frame)
        if frame["type"] == "message" and frame["message"]["id"] == fence_id:
            return frames


async def resume(scene: Scene, client: Client, since: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Open a socket on B with ``?since=``: the changes of its sync pages up to ``done``, and
    every frame it got after them until a fence put once the resume was over."""
    async with ws_open(client, f"?since={since}") as sock:
        changes: list[dict[str, Any]] = []
        while True:
            page = await sock.expect("sync", timeout=5)
            changes.extend(page["changes"])
            if page["done"]:
                assert page["position"] == (changes[-1]["position"] if changes else since)
                break
        return changes, await until(sock, await scene.put_fence())


@dataclass(frozen=True)
class Case:
    """One change kind: ``prepare`` (before Bob goes away) gives what ``change`` needs;
    ``change`` makes the change through A and names its conversation; ``bob_sees`` is what
    Bob gets of that conversation (frame type, conversation event)."""

    name: str
    prepare: Callable[[Scene], Awaitable[int]]
    change: Callable[[Scene, int], Awaitable[int]]
    bob_sees: list[tuple[str, str | None]]
    check: Callable[[Scene, int, list[dict[str, Any]]], None] = lambda scene, subject, frames: None


async def nothing(scene: Scene) -> int:
    return 0


async def group_of(scene: Scene, *usernames: str) -> int:
    return await conversations.do_create_group(scene.a, actor_for(scene.users["alice"]), "Ward 7", list(usernames))


async def bob_says(scene: Scene) -> int:
    return await scene.say("bob", scene.ab, "for alice")


async def alice_sends(scene: Scene, _: int) -> int:
    await scene.say("alice", scene.ab, "while you were away")
    return scene.ab


async def alice_reads(scene: Scene, message_id: int) -> int:
    assert await receipts.do_mark_read(scene.a, actor_for(scene.users["alice"]), scene.ab, message_id)
    return scene.ab


async def alice_creates(scene: Scene, _: int) -> int:
    return await group_of(scene, "bob")


async def alice_renames(scene: Scene, group: int) -> int:
    await conversations.do_rename_group(scene.a, actor_for(scene.users["alice"]), group, "Ward 7 nights")
    return group


async def alice_adds_bob(scene: Scene, group: int) -> int:
    await scene.say("alice", group, "before bob")
    await conversations.do_add_members(scene.a, actor_for(scene.users["alice"]), group, ["bob"])
    return group


async def alice_removes_bob(scene: Scene, group: int) -> int:
    await conversations.do_remove_member(scene.a, actor_for(scene.users["alice"]), group, scene.users["bob"].id)
    await scene.say("alice", group, "not for bob")  # after his removal: never his
    return group


async def bob_leaves(scene: Scene, group: int) -> int:
    await conversations.do_leave_group(scene.a, actor_for(scene.users["bob"]), group)  # Bob's action, on A
    await scene.say("alice", group, "after bob left")
    return group


def _message(scene: Scene, _: int, frames: list[dict[str, Any]]) -> None:
    assert frames[0]["message"]["body"] == "while you were away"
    assert frames[0]["message"]["sender_id"] == scene.users["alice"].id


def _receipt(scene: Scene, message_id: int, frames: list[dict[str, Any]]) -> None:
    assert frames[0]["user_id"] == scene.users["alice"].id and frames[0]["read_id"] == message_id


def _created(scene: Scene, _: int, frames: list[dict[str, Any]]) -> None:
    assert frames[0]["conversation"]["title"] == "Ward 7" and frames[0]["conversation"]["kind"] == "group"


def _renamed(scene: Scene, _: int, frames: list[dict[str, Any]]) -> None:
    assert frames[0]["conversation"]["title"] == "Ward 7 nights" and "renamed" in frames[1]["message"]["body"]


def _added(scene: Scene, _: int, frames: list[dict[str, Any]]) -> None:
    assert frames[0]["user_ids"] == [scene.users["bob"].id] and frames[1]["message"]["body"] == "Alice added Bob"


def _gone(scene: Scene, _: int, frames: list[dict[str, Any]]) -> None:
    assert frames[0]["user_ids"] == [scene.users["bob"].id]


CASES = [
    Case("message", nothing, alice_sends, [("message", None)], _message),
    Case("receipt", bob_says, alice_reads, [("receipt", None)], _receipt),
    Case("created", nothing, alice_creates, [("conversation", "created"), ("message", None)], _created),
    Case("renamed", lambda scene: group_of(scene, "bob"), alice_renames, [("conversation", "renamed"), ("message", None)], _renamed),
    # Bob's stream of the group starts at the change that added him: not "before bob".
    Case("member_added", lambda scene: group_of(scene, "dave"), alice_adds_bob, [("conversation", "member_added"), ("message", None)], _added),
    # The removal names Bob and is the last he hears of the group.
    Case("member_removed", lambda scene: group_of(scene, "bob", "dave"), alice_removes_bob, [("conversation", "member_removed")], _gone),
    Case("left", lambda scene: group_of(scene, "bob", "dave"), bob_leaves, [("conversation", "member_removed")], _gone),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_a_change_made_on_one_process_reaches_the_other_live_and_on_resume_once_never_an_outsider(
    scene: Scene, case: Case
) -> None:
    subject = await case.prepare(scene)
    # Bob's phone on B: it applied everything up to a fence, then went away.
    async with ws_open(scene.bob) as away:
        fence = await scene.put_fence()
        since = (await until(away, fence))[-1]["position"]
    # Meanwhile Bob's laptop and Carol (in no conversation of the change) are live on B.
    async with ws_open(scene.bob) as live, ws_open(scene.carol) as outsider:
        conversation = await case.change(scene, subject)
        fence = await scene.put_fence()
        bob_live = about(await until(live, fence), conversation)
        carol_live = about(await until(outsider, fence), conversation)
    assert shape(bob_live) == case.bob_sees
    in_order_once(bob_live)
    assert all(f["position"] > since for f in bob_live)
    case.check(scene, subject, bob_live)
    assert carol_live == []

    # The phone comes back: the change once, in order, the very frames the laptop got live
    # (same positions), then nothing more of it.
    got, after = await resume(scene, scene.bob, since)
    in_order_once(got)
    assert about(got, conversation) == bob_live
    assert got[-1]["type"] == "message" and got[-1]["message"]["id"] == fence
    assert {conversation_of(f) for f in got} == {conversation, scene.fence}
    assert about(after, conversation) == []
    # Carol, whatever position she asks from, gets nothing of it.
    for carol_since in (since, 0):
        carols, carol_after = await resume(scene, scene.carol, carol_since)
        assert about(carols + carol_after, conversation) == []


async def test_resumes_racing_a_burst_on_the_other_process_get_every_change_once_in_order(scene: Scene) -> None:
    """Sockets on B resume while A commits a burst of sends and receipts (group commit
    batches, concurrent senders): what each gets, sync pages then live frames, is every
    change once, in position order, whichever side of the resume it fell on."""
    a_actor, c_actor = actor_for(scene.users["alice"]), actor_for(scene.users["carol"])
    async with ws_open(scene.bob) as away:
        fence = await scene.put_fence()
        since = (await until(away, fence))[-1]["position"]
    rounds, sockets = 12, 4
    progress = [asyncio.Event() for _ in range(sockets)]

    async def burst() -> None:
        for n in range(rounds):
            sent = await asyncio.gather(
                scene.say("alice", scene.ab, f"ab {n}"), scene.say("alice", scene.fence, f"g {n}"),
                scene.say("carol", scene.fence, f"c {n}"),
                # Its own transaction, two changes (renamed, the system line), two events.
                conversations.do_rename_group(scene.a, a_actor, scene.fence, f"Fence {n}"),
            )
            await asyncio.gather(
                receipts.do_mark_read(scene.a, c_actor, scene.fence, sent[1]),
                receipts.do_mark_delivered(scene.a, a_actor, scene.fence, sent[2]),
            )
            for k in range(sockets):
                if n == k * rounds // sockets:
                    progress[k].set()

    paged: list[list[int]] = [[] for _ in range(sockets)]

    async def resumer(k: int, done: asyncio.Event) -> list[dict[str, Any]]:
        await progress[k].wait()
        async with ws_open(scene.bob, f"?since={since}") as sock:
            frames: list[dict[str, Any]] = []
            while True:
                page = await sock.expect("sync", timeout=5)
                frames.extend(page["changes"])
                if page["done"]:
                    break
            paged[k] = [f["position"] for f in frames]
            await done.wait()
            return frames + [f for f in await until(sock, final_fence[0]) if f["type"] in CHANGE_FRAMES]

    final_fence: list[int] = []
    finished = asyncio.Event()
    async with ws_open(scene.bob) as live:  # there all along: every change live
        tasks = [asyncio.create_task(resumer(k, finished)) for k in range(sockets)]
        await burst()
        final_fence.append(await scene.put_fence())
        finished.set()
        results = await asyncio.gather(*tasks)
        results.append([f for f in await until(live, final_fence[0]) if f["type"] in CHANGE_FRAMES])
    got, _ = await resume(scene, scene.bob, since)  # after it all: the reference
    # Receipts go live only to the senders whose ticks they change (Bob sends nothing here),
    # while a resume hands out every member's newest one: the other changes are the reference.
    expected = [f["position"] for f in got if f["type"] != "receipt"]
    assert len([f for f in got if f["type"] == "message"]) == rounds * 4 + 1
    for k, frames in enumerate(results):
        positions = [f["position"] for f in frames]
        assert len(positions) == len(set(positions)), f"socket {k}: a change twice {positions}"
        # The sync pages are in position order, and every live frame comes after them. Live
        # frames of concurrent commits may arrive slightly out of position order under load
        # (each commit publishes after its own commit; docs/protocol.md): the client's resume
        # point does not trust the last seconds' positions, so nothing is lost by it.
        if k < sockets:
            assert paged[k] == sorted(paged[k]), f"socket {k}: sync pages out of order {paged[k]}"
            live = positions[len(paged[k]):]
            assert not paged[k] or not live or min(live) > max(paged[k]), f"socket {k}: a live frame older than the pages {positions}"
        # Nothing but receipts is left out of what a socket got, live or paged.
        assert set(expected) <= set(positions), f"socket {k}: missed {sorted(set(expected) - set(positions))}"
        assert positions[0] > since


async def test_a_wake_up_that_reaches_the_other_process_after_a_resume_is_not_sent_twice(
    scene: Scene, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A commits a change; its event crosses Redis only after a socket on B has resumed with
    a page that carried it (Redis lag, a busy process). The socket gets it once: in the page."""
    async with ws_open(scene.bob) as away:
        fence = await scene.put_fence()
        since = (await until(away, fence))[-1]["position"]
    late: list[Event] = []
    publish = scene.a.publish

    async def hold(event: Event) -> None:
        late.append(event)

    monkeypatch.setattr(scene.a, "publish", hold)
    message = await scene.say("alice", scene.ab, "committed, wake-up late")
    monkeypatch.setattr(scene.a, "publish", publish)
    assert [e.kind for e in late] == ["message"]
    async with ws_open(scene.bob, f"?since={since}") as sock:
        page = await sock.expect("sync", timeout=5)
        assert page["done"] and [c["message"]["id"] for c in page["changes"]] == [message]
        for event in late:
            await publish(event)  # now the wake-up reaches B
        fence = await scene.put_fence()
        got = [f for f in await until(sock, fence) if f["type"] in CHANGE_FRAMES]
    assert [f["message"]["id"] for f in got] == [fence]  # the late wake-up: not again
