"""store.db.select_any_of: any number of keys, on both databases (SQLite bounds an
expression's depth at 1000, so long key lists go in several statements)."""

from __future__ import annotations

from typing import Any

import pytest

from app.actions import conversations, messages
from app.services import Services
from app.store import messages as store_messages
from tests.helpers import actor_for, new_id

pytestmark = pytest.mark.usefixtures("database_kind")


@pytest.mark.parametrize("wanted", [1, 3, 256, 257, 1100])
async def test_every_stored_key_is_found_however_many_are_asked(svc: Services, make_user: Any, wanted: int) -> None:
    alice, bob = await make_user("alice"), await make_user("bob")
    chat = await conversations.do_open_direct(svc, actor_for(alice), "bob")
    stored = []
    for who in (alice, bob):
        cid = new_id()
        await messages.do_send_message(svc, actor_for(who), chat, "obs", cid)
        stored.append((who.id, cid))
    asked = [(alice.id, new_id()) for _ in range(wanted - 1)] + [stored[0]]
    async with svc.db.reading() as s:
        assert await store_messages.stored_client_ids(s, asked) == {stored[0]}
        assert await store_messages.stored_client_ids(s, asked + [stored[1]]) == set(stored)
        assert await store_messages.stored_client_ids(s, []) == set()
