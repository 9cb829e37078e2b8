"""A process that dies leaves no one "online": its claims expire after the TTL, and a process
that stops cleanly has them dropped at once (app/actions/presence.py).

Two apps (two processes) on one database, the real Redis of MEDCHAT_TEST_REDIS_URL (a channel
of their own) and one ``FrozenClock``: the heartbeats wait on it, so no real waiting.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from quart import Quart

from app.actions import conversations, presence
from app.actions.accounts import StaffFields, create_user_with_password
from app.lib.clock import FrozenClock
from app.services import Services
from app.store import staff
from tests.helpers import actor_for
from tests.realtime.conftest import needs_redis, quiet_login_store
from tests.realtime.test_hub import FakeConnection
from tests.support import PASSWORD

pytestmark = [needs_redis, quiet_login_store]


async def alice_online_on_first(two_processes: tuple[Quart, Quart]) -> tuple[Services, Services, int, FakeConnection]:
    """Alice has a socket on the first process; Bob (her contact) one on the second."""
    first, second = (app.extensions["medchat"] for app in two_processes)
    alice = await create_user_with_password(first, StaffFields("alice", "Alice", "Cardiology", "Nurse", "member"), PASSWORD)
    bob = await create_user_with_password(first, StaffFields("bob", "Bob", "Cardiology", "Nurse", "member"), PASSWORD)
    await conversations.do_open_direct(first, actor_for(alice), "bob")
    watcher = FakeConnection(bob.id, "bob-session", "bob-socket")
    second.hub.add(watcher)
    first.hub.add(FakeConnection(alice.id, "alice-session", "alice-socket"))
    await presence.socket_opened(first, alice.id, first=True)
    assert (await presence_frames(watcher, 1))[0]["online"] is True and second.hub.is_online(alice.id)
    return first, second, alice.id, watcher


async def presence_frames(watcher: FakeConnection, count: int) -> list[dict[str, Any]]:
    """Wait (at most 2 s, real time: Redis) for ``count`` presence frames; return them all."""
    async with asyncio.timeout(2):
        while True:
            frames = [json.loads(f) for f in watcher.frames]
            found = [f for f in frames if f["type"] == "presence"]
            if len(found) >= count:
                return found
            await watcher.arrived(len(watcher.frames) + 1)


def dies(app: Quart) -> None:
    """The process's heartbeat stops without a word (as when the process is killed)."""
    task: asyncio.Task[Any] = app.extensions.pop("medchat_presence_heartbeat")
    task.cancel()


async def test_the_users_of_a_dead_process_go_offline_after_the_ttl(two_processes: tuple[Quart, Quart], clock: FrozenClock) -> None:
    first, second, alice, watcher = await alice_online_on_first(two_processes)
    dies(two_processes[0])
    ttl = second.settings.presence_instance_ttl_seconds
    assert ttl == 30
    for _ in range(2):  # 20 s: still within the TTL
        await clock.sleeping(1)
        clock.advance(ttl / 3)
    await asyncio.sleep(0.05)
    assert len(await presence_frames(watcher, 1)) == 1 and second.hub.is_online(alice)
    await clock.sleeping(1)
    clock.advance(ttl / 3)  # 30 s without a word from the first process
    offline = (await presence_frames(watcher, 2))[1]
    assert offline == {"type": "presence", "user_id": alice, "online": False, "last_seen": clock.now().isoformat()}
    assert not second.hub.is_online(alice)
    async with second.db.reading() as s:
        seen = (await staff.last_seen(s, [alice]))[alice]
    assert seen is not None and seen.replace(tzinfo=None) == clock.now().replace(tzinfo=None)


async def test_a_process_that_stops_cleanly_has_its_claims_dropped_at_once(two_processes: tuple[Quart, Quart]) -> None:
    first, second, alice, watcher = await alice_online_on_first(two_processes)
    dies(two_processes[0])
    await presence.depart(first)  # what the first app's after_serving does
    assert (await presence_frames(watcher, 2))[1]["online"] is False  # no clock time passed
    assert not second.hub.is_online(alice)


async def test_a_live_process_keeps_its_users_online(two_processes: tuple[Quart, Quart], clock: FrozenClock) -> None:
    first, second, alice, watcher = await alice_online_on_first(two_processes)
    for _ in range(6):  # a minute: two TTLs, with both heartbeats going
        await clock.sleeping(2)
        clock.advance(10)
        await asyncio.sleep(0.05)  # the heartbeats cross Redis in real time
    assert len(await presence_frames(watcher, 1)) == 1 and second.hub.is_online(alice)
