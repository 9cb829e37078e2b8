"""Presence contacts of many users in one query (a restart's sockets opening together) are
exactly each user's own contacts, with and without the group-size limit."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from app.actions import conversations, presence
from app.records import Staff
from app.services import Services
from app.store import conversations as store_conversations
from tests.helpers import actor_for

pytestmark = pytest.mark.usefixtures("database_kind")


async def test_contacts_of_many_are_each_ones_contacts(svc: Services, staff: dict[str, Staff], make_user: Any) -> None:
    eve = await make_user("eve")
    alice, bob, carol = (actor_for(staff[n]) for n in ("alice", "bob", "carol"))
    await conversations.do_open_direct(svc, alice, "bob")
    await conversations.do_create_group(svc, carol, "Pair", ["dave"])
    await conversations.do_create_group(svc, alice, "Whole ward", ["bob", "carol", "dave", "eve"])
    left = await conversations.do_create_group(svc, bob, "Night", ["eve"])
    await conversations.do_leave_group(svc, actor_for(eve), left)
    users = [u.id for u in (*staff.values(), eve)]
    async with svc.db.reading() as s:
        for max_group in (None, 2, 4, 5):
            many = await store_conversations.contact_ids_many(s, users + [10**6], max_group)
            for user_id in users:
                assert sorted(many[user_id]) == sorted(await store_conversations.contact_ids(s, user_id, max_group)), (user_id, max_group)
            assert many[10**6] == []
        with_limit = await store_conversations.contact_ids_many(s, users, 2)
    # The limit leaves the 5-member group out: eve (only there and in the group she left) has nobody.
    assert with_limit[eve.id] == []
    assert sorted(with_limit[staff["carol"].id]) == [staff["dave"].id]
    # Callers in the same turn of the loop share one query.
    before = svc.contact_lookups.calls if svc.contact_lookups else 0
    found = await asyncio.gather(*(presence.contacts(svc, u) for u in users))
    assert svc.contact_lookups is not None and svc.contact_lookups.calls == before + 1
    assert [sorted(f) for f in found] == [sorted(c) for c in await _each(svc, users)]


async def _each(svc: Services, users: list[int]) -> list[list[int]]:
    async with svc.db.reading() as s:
        return [await store_conversations.contact_ids(s, u, svc.settings.presence_max_group) for u in users]
