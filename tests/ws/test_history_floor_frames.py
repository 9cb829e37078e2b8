"""A member added later never receives text from before their joining, through any door.

Issue 7, item 1: the live ``message`` frame of a reply carried the quoted text to every
member, also to one added after the quoted message. This walks every way text reaches a
member (live frames, the sender's other tabs, resume, the chat list, the conversation page,
the reply preview, the history JSON, and the published events themselves) and checks the
older text reaches only those who were there.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from app.realtime.events import Event
from app.services import Services
from tests.helpers import new_id
from tests.ws.conftest import People
from tests.ws.test_conversation_events import create_group
from tests.ws.wsclient import Sock, ws_open

pytestmark = pytest.mark.usefixtures("database_kind")

SECRET = "Bed 4 K+ 2.9 before carol joined"
SENDER_SECRET = "Alice"  # the quoted sender's name is older history too


async def until_message(sock: Sock, message_id: int) -> dict[str, Any]:
    while True:
        frame = await sock.expect("message")
        if frame["message"]["id"] == message_id:
            return dict(frame["message"])


async def test_no_frame_page_or_event_gives_a_later_member_older_text(people: People, svc: Services, events: list[Event]) -> None:
    group = await create_group(people.alice, "Ward 7", ["bob"])
    async with ws_open(people.alice) as alice_ws:
        cid = new_id()
        await alice_ws.send({"type": "send", "client_msg_id": cid, "conversation_id": group, "body": SECRET})
        old_id = (await alice_ws.expect("ack"))["message"]["id"]
    response = await people.alice.submit(f"/chats/{group}/members", {"username": "carol"}, page=f"/chats/{group}/info")
    assert response.status_code == 303

    async with ws_open(people.alice) as alice_ws, ws_open(people.bob) as bob_ws, ws_open(people.bob) as bob_tab2, ws_open(people.carol) as carol_ws:
        events.clear()
        # bob, a member from the start, replies to the old message over the socket...
        await bob_ws.send({"type": "send", "client_msg_id": new_id(), "conversation_id": group, "body": "agreed, repeat it", "reply_to": old_id})
        ack = (await bob_ws.expect("ack"))["message"]
        reply_id = ack["id"]
        assert ack["reply_to"] == {"id": old_id, "sender_name": SENDER_SECRET, "preview": SECRET}
        # ...and by the form.
        form = await people.bob.submit(f"/chats/{group}/messages", {"body": "second reply", "client_msg_id": new_id(), "reply_to": str(old_id)}, page=f"/chats/{group}")
        assert form.status_code == 303

        # Those who were there see the quote, live.
        for sock in (alice_ws, bob_tab2):
            seen = await until_message(sock, reply_id)
            assert seen["reply_to"] == {"id": old_id, "sender_name": SENDER_SECRET, "preview": SECRET}
        # carol gets the reply, its link to the quoted id, and nothing of the quoted text.
        live = await until_message(carol_ws, reply_id)
        assert live["body"] == "agreed, repeat it"
        assert live["reply_to"] == {"id": old_id, "sender_name": "", "preview": ""}
        await carol_ws.expect("message")  # the form's reply
        await carol_ws.quiet()
        carol_frames = json.dumps(carol_ws.seen, ensure_ascii=False)
        assert SECRET not in carol_frames

    # Every published event that names carol carries no older text.
    carol_id = people.ids["carol"]
    to_carol = [e for e in events if carol_id in e.user_ids]
    assert to_carol, "carol was sent nothing"
    assert all(SECRET not in json.dumps(e.data, ensure_ascii=False) for e in to_carol)
    to_bob = [e for e in events if people.ids["bob"] in e.user_ids and e.kind == "message"]
    assert any(SECRET in json.dumps(e.data, ensure_ascii=False) for e in to_bob)

    # Resume from the start, over a new socket and by a sync frame.
    async with ws_open(people.carol, "?after=0") as resumed:
        pages = []
        while True:
            page = await resumed.expect("sync")
            pages.append(page)
            if page["done"]:
                break
        await resumed.send({"type": "sync", "after_id": 0})
        pages.append(await resumed.expect("sync"))
    synced = json.dumps(pages, ensure_ascii=False)
    assert "agreed, repeat it" in synced and SECRET not in synced

    # The pages and the script's JSON.
    for path in ("/chats", f"/chats/{group}", f"/chats/{group}?reply_to={old_id}", f"/chats/{group}/messages.json?before={reply_id + 10}", f"/chats/{group}/info"):
        response = await people.carol.get(path)
        assert response.status_code in (200, 404), path
        assert SECRET not in await response.get_data(as_text=True), path
    # bob still sees it on his page.
    assert SECRET in await (await people.bob.get(f"/chats/{group}")).get_data(as_text=True)
