"""``?batch=1``: frames that queue up while a send is on the wire go out as one JSON array."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from app.actions import messages
from app.actions.accounts import get_staff
from app.services import Services
from tests.helpers import actor_for, new_id
from tests.ws.conftest import People

pytestmark = pytest.mark.usefixtures("database_kind")


async def _open_gated(people: People, query: str) -> tuple[Any, asyncio.Event, asyncio.Event]:
    """A socket whose transport holds the first frame after ``hello`` until ``gate`` is set;
    ``stuck`` is set once the server's send loop waits on it."""
    conn = people.alice.raw.websocket("/ws" + query, scheme="wss")
    deliver = conn._asgi_send
    gate, stuck = asyncio.Event(), asyncio.Event()
    sent = 0

    async def send(message: dict[str, Any]) -> None:
        nonlocal sent
        if message["type"] == "websocket.send":
            sent += 1
            if sent == 2:
                stuck.set()
                await gate.wait()
        await deliver(message)

    conn._asgi_send = send
    return conn, gate, stuck


async def _frames(conn: Any, want: int) -> tuple[list[Any], list[dict[str, Any]]]:
    """Read raw WebSocket messages until ``want`` message frames arrived; (raw, flattened)."""
    raw: list[Any] = []
    flat: list[dict[str, Any]] = []
    async with asyncio.timeout(5):
        while sum(1 for f in flat if f["type"] == "message") < want:
            data = json.loads(await conn.receive())
            raw.append(data)
            flat.extend(data if isinstance(data, list) else [data])
    return raw, flat


@pytest.mark.parametrize("batch", [True, False])
async def test_queued_frames_go_out_together_only_when_asked(people: People, svc: Services, batch: bool) -> None:
    bob = await get_staff(svc, people.ids["bob"])
    assert bob is not None
    conn, gate, stuck = await _open_gated(people, "?batch=1" if batch else "")
    async with conn:
        assert json.loads(await conn.receive())["type"] == "hello"
        ids = [(await messages.do_send_message(svc, actor_for(bob), people.ab, f"m{n}", new_id())).message.id for n in range(6)]
        # Each send queued its frame before returning; the send loop is stuck on frame 2 (after
        # the first sends or before them), so the rest wait in the queue together.
        await stuck.wait()
        gate.set()
        raw, flat = await _frames(conn, 6)
    assert [f["message"]["id"] for f in flat if f["type"] == "message"] == ids  # in order, once each
    arrays = [r for r in raw if isinstance(r, list)]
    if batch:
        assert arrays and max(len(a) for a in arrays) >= 2
    else:
        assert arrays == []
