from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from quart.testing import WebsocketResponseError


async def recv(ws: Any, kind: str, timeout: float = 3.0) -> dict[str, Any]:
    """Receive frames until one of type ``kind`` (skipping pings and presence)."""
    async with asyncio.timeout(timeout):
        while True:
            frame = json.loads(await ws.receive())
            if frame["type"] == kind:
                return frame


async def test_anonymous_handshake_refused(client: Any) -> None:
    with pytest.raises(WebsocketResponseError) as info:
        async with client.raw.websocket("/ws", scheme="wss") as ws:
            await ws.send("{}")
            await ws.receive()
    assert info.value.response.status_code == 401


async def test_send_ack_and_event(login_as: Any, svc: Any) -> None:
    alice = await login_as("alice")
    bob = await login_as("bob")
    r = await alice.submit("/chats/direct", {"username": "bob"})
    conv = int(r.headers["Location"].split("/")[2].split("#")[0])
    async with alice.raw.websocket("/ws", scheme="wss") as a_ws, bob.raw.websocket("/ws", scheme="wss") as b_ws:
        hello = await recv(a_ws, "hello")
        assert hello["user_id"]
        await recv(b_ws, "hello")
        cid = str(uuid.uuid4())
        await a_ws.send(json.dumps({"type": "send", "client_msg_id": cid, "conversation_id": conv, "body": "hi <b>"}))
        ack = await recv(a_ws, "ack")
        assert ack["client_msg_id"] == cid and ack["message"]["body"] == "hi <b>"
        event = await recv(b_ws, "message")
        assert event["message"]["id"] == ack["message"]["id"]
        await a_ws.send(json.dumps({"type": "send", "client_msg_id": cid, "conversation_id": conv, "body": "hi <b>"}))
        again = await recv(a_ws, "ack")
        assert again["duplicate"] is True and again["message"]["id"] == ack["message"]["id"]
        await a_ws.send("not json")
        err = await recv(a_ws, "error")
        assert err["code"] == "bad_json"
