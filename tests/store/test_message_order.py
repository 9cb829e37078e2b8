"""Message ids become visible in the order they are given ("everything after N" is sound)."""

from __future__ import annotations

import asyncio
from typing import Any

from app.actions import conversations
from app.services import Services
from app.store import messages as store_messages
from tests.helpers import actor_for


async def _insert(svc: Services, conversation_id: int, sender: int, body: str) -> int:
    async with svc.db.transaction() as s:
        return await store_messages.insert_message(
            s, conversation_id=conversation_id, sender_id=sender, kind="text", body=body,
            client_msg_id=None, reply_to_id=None, now=svc.clock.now(),
        )


async def test_a_second_insert_waits_for_the_first_to_commit(svc: Services, make_user: Any) -> None:
    alice, carol = await make_user("alice"), await make_user("carol")
    await make_user("bob")
    conv = await conversations.do_open_direct(svc, actor_for(alice), "bob")
    # Another conversation: no row the two transactions share, only the order lock.
    other = await conversations.do_open_direct(svc, actor_for(carol), "bob")
    async with svc.db.transaction() as s:
        first = await store_messages.insert_message(
            s, conversation_id=conv, sender_id=alice.id, kind="text", body="first",
            client_msg_id=None, reply_to_id=None, now=svc.clock.now(),
        )
        second = asyncio.create_task(_insert(svc, other, carol.id, "second"))
        await asyncio.sleep(0.5)
        # The second sender cannot draw an id, let alone commit, while the first is open.
        assert not second.done()
    assert await asyncio.wait_for(second, 10) > first
