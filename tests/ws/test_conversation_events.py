"""``conversation`` frames: created, renamed, member added or removed, sent by the form door."""

from __future__ import annotations

from typing import Any

import pytest

from app.services import Services
from tests.helpers import all_messages, conversation_id_of, new_id
from tests.support import Client
from tests.ws.conftest import People
from tests.ws.wsclient import Sock, increasing, live_positions, unpositioned, ws_open

pytestmark = pytest.mark.usefixtures("database_kind")


def conversation(event: str, conversation_id: int, title: str, kind: str = "group", **extra: Any) -> dict[str, Any]:
    return {"type": "conversation", "event": event, "conversation": {"id": conversation_id, "kind": kind, "title": title}, **extra}


async def create_group(client: Client, title: str, members: list[str]) -> int:
    response = await client.submit("/chats/group", {"title": title, "members": members}, page="/chats/new-group")
    assert response.status_code == 303, await response.get_data(as_text=True)
    return conversation_id_of(response.headers["Location"])


async def system_line(sock: Sock, conversation_id: int) -> str:
    message = (await sock.expect("message"))["message"]
    assert message["conversation_id"] == conversation_id and message["kind"] == "system"
    return str(message["body"])


async def test_a_direct_chat_is_announced_to_both(people: People) -> None:
    async with ws_open(people.alice) as alice, ws_open(people.carol) as carol, ws_open(people.bob) as bob:
        conv = await people.direct(people.alice, "carol")
        for sock in (alice, carol):
            assert unpositioned(await sock.expect("conversation")) == conversation("created", conv, "", "direct")
        # Opening it again creates nothing and announces nothing.
        assert await people.direct(people.carol, "alice") == conv
        again = await people.direct(people.bob, "carol")
        for sock in (bob, carol):
            assert unpositioned(await sock.expect("conversation")) == conversation("created", again, "", "direct")
        assert len(carol.taken("conversation")) == 2
        assert len(bob.taken("conversation")) == 1
        # alice is in neither of the later ones.
        assert [f for f in await alice.quiet() if f["type"] == "conversation"] == []
        assert len(alice.taken("conversation")) == 1
        # Both sockets got each change at the same position, the later chat at a later one.
        first, second = (f["position"] for f in carol.taken("conversation"))
        assert alice.taken("conversation")[0]["position"] == first < second == bob.taken("conversation")[0]["position"]


async def test_group_lifecycle_reaches_the_members_sockets(people: People, login_as: Any, svc: Services) -> None:
    dave_client = await login_as("dave")
    async with (
        ws_open(people.alice) as alice, ws_open(people.bob) as bob,
        ws_open(people.carol) as carol, ws_open(dave_client) as dave,
    ):
        ids = people.ids
        # Created (by the form): the members hear of it, dave does not.
        group = await create_group(people.alice, "Ward 7 <night>", ["bob", "carol"])
        for sock in (alice, bob, carol):
            assert unpositioned(await sock.expect("conversation")) == conversation("created", group, "Ward 7 <night>")
            assert "created the group" in await system_line(sock, group)
        # Renamed.
        response = await people.alice.submit(f"/chats/{group}/rename", {"title": "Ward 7 & 8"}, page=f"/chats/{group}/info")
        assert response.status_code == 303
        for sock in (alice, bob, carol):
            assert unpositioned(await sock.expect("conversation")) == conversation("renamed", group, "Ward 7 & 8")
            assert "Ward 7 & 8" in await system_line(sock, group)
        # dave added: he hears of it too, and from now on gets the group's messages.
        response = await people.alice.submit(f"/chats/{group}/members", {"username": "dave"}, page=f"/chats/{group}/info")
        assert response.status_code == 303
        for sock in (alice, bob, carol, dave):
            added = unpositioned(await sock.expect("conversation"))
            floor = added.pop("history_from_id")
            assert added == conversation("member_added", group, "Ward 7 & 8", user_ids=[dave.hello["user_id"]])
            line = (await sock.expect("message"))["message"]
            assert line["kind"] == "system" and "added Dave" in line["body"]
            # The new member's history starts at the line that added him: pages use it for ticks.
            assert floor == line["id"] - 1
        # carol removed: she is told, and then hears nothing more of the group.
        response = await people.alice.submit(f"/chats/{group}/members/{ids['carol']}/remove", page=f"/chats/{group}/info")
        assert response.status_code == 303
        for sock in (alice, bob, carol, dave):
            assert unpositioned(await sock.expect("conversation")) == conversation("member_removed", group, "Ward 7 & 8", user_ids=[ids["carol"]])
        for sock in (alice, bob, dave):
            assert "removed Carol" in await system_line(sock, group)
        # bob leaves.
        response = await people.bob.submit(f"/chats/{group}/leave", page=f"/chats/{group}/info")
        assert response.status_code == 303
        for sock in (alice, bob, dave):
            assert unpositioned(await sock.expect("conversation")) == conversation("member_removed", group, "Ward 7 & 8", user_ids=[ids["bob"]])
        for sock in (alice, dave):
            assert "left" in await system_line(sock, group)
        # Nothing of the group reaches the ones who left, and they cannot act in it.
        cid = new_id()
        await alice.send({"type": "send", "client_msg_id": cid, "conversation_id": group, "body": "after they left"})
        ack = await alice.expect("ack")
        assert (await dave.expect("message"))["message"]["id"] == ack["message"]["id"]
        for sock in (bob, carol):
            for frame in (
                {"type": "send", "client_msg_id": new_id(), "conversation_id": group, "body": "still here?"},
                {"type": "read", "conversation_id": group, "up_to_id": ack["message"]["id"]},
                {"type": "delivered", "conversation_id": group, "up_to_id": ack["message"]["id"]},
                {"type": "typing", "conversation_id": group, "typing": True},
            ):
                await sock.send(frame)
                assert (await sock.error("not_found"))["message"]
            await sock.send({"type": "sync", "after_id": ack["message"]["id"] - 1})
            assert (await sock.expect("sync"))["messages"] == []
            await sock.send({"type": "sync", "since": ack["position"] - 1})
            page = await sock.expect("sync")
            assert page["changes"] == [] and page["done"] is True and "messages" not in page
            assert ack["message"]["id"] not in [f["message"]["id"] for f in sock.taken("message")]
        assert [m.body for m in await all_messages(svc, group) if m.kind == "text"] == ["after they left"]
        # dave never heard of the group before he was added.
        assert [f["event"] for f in dave.taken("conversation")] == ["member_added", "member_removed", "member_removed"]
        # One action after the other: every socket got the changes in position order, and
        # the same change at the same position on every socket.
        by_position: dict[int, dict[str, Any]] = {}
        for sock in (alice, bob, carol, dave):
            assert increasing(live_positions(sock)), live_positions(sock)
            for frame in sock.seen:
                if frame["type"] in ("message", "conversation"):
                    assert by_position.setdefault(frame["position"], frame) == frame
