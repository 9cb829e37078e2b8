"""RedisBroker's gap handling: a lost wake-up costs latency, never a message.

Against ``FakeRedisServer`` (tests/realtime/fake_redis.py), which can go down, drop its
subscribers and disconnect one that falls behind; one test runs against the real Redis of
MEDCHAT_TEST_REDIS_URL on a channel of its own.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as redis

from app.realtime import redis_broker
from app.realtime.events import Event
from app.realtime.redis_broker import RedisBroker
from tests.realtime.fake_redis import FakeRedisServer

REDIS_URL = os.environ.get("MEDCHAT_TEST_REDIS_URL")


class Received:
    """What one process's hub was handed, with a way to wait for it."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._new = asyncio.Event()
        self.gate: asyncio.Event | None = None  # set: the hub is stuck until the gate opens

    async def __call__(self, event: Event) -> None:
        if self.gate is not None:
            await self.gate.wait()
        self.events.append(event)
        self._new.set()

    async def until(self, check: Callable[[list[Event]], bool]) -> list[Event]:
        async with asyncio.timeout(5):
            while not check(self.events):
                self._new.clear()
                await self._new.wait()
        return self.events

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> FakeRedisServer:
    fake = FakeRedisServer(buffer_limit=5)
    monkeypatch.setattr(redis_broker.redis.Redis, "from_url", fake.from_url)
    return fake


@pytest.fixture
async def pair(server: FakeRedisServer) -> AsyncIterator[tuple[RedisBroker, Received, RedisBroker, Received]]:
    """Two processes' brokers on one (fake) Redis."""
    a, b = RedisBroker("redis://fake"), RedisBroker("redis://fake")
    got_a, got_b = Received(), Received()
    await a.start(got_a)
    await b.start(got_b)
    yield a, got_a, b, got_b
    await a.stop()
    await b.stop()


def message(n: int) -> Event:
    return Event("message", (1,), {"type": "message", "message": {"id": n}})


async def resubscribed(server: FakeRedisServer, broker: RedisBroker, count: int = 2) -> None:
    async with asyncio.timeout(5):
        while server.subscribed(broker.channel) < count:
            await asyncio.sleep(0.01)


async def test_events_reach_every_process_through_redis(pair: tuple[RedisBroker, Received, RedisBroker, Received], server: FakeRedisServer) -> None:
    a, got_a, b, got_b = pair
    await a.publish(message(1))
    for got in (got_a, got_b):
        assert [e.data for e in await got.until(lambda ev: len(ev) == 1)] == [message(1).data]
    assert len(server.published) == 1


async def test_a_lost_subscription_tells_this_process_sockets_to_sync(pair: tuple[RedisBroker, Received, RedisBroker, Received], server: FakeRedisServer) -> None:
    a, got_a, b, got_b = pair
    server.down = True
    server.drop_subscribers()  # both subscriptions are gone; a wake-up sent now is lost
    await b.publish(message(1))  # Redis is down: b's own sockets still get it
    assert got_b.kinds() == ["message"] and got_a.kinds() == []
    server.down = False
    await resubscribed(server, a)
    # Back: each process tells its own sockets to ask the store (their subscription was down),
    # and b tells every process, since a never got b's event.
    await got_a.until(lambda ev: "sync_needed" in [e.kind for e in ev])
    await got_b.until(lambda ev: "sync_needed" in [e.kind for e in ev])
    await a.publish(message(2))  # and live again
    await got_a.until(lambda ev: ev[-1].kind == "message")
    assert "message" not in got_a.kinds()[:-1]  # the lost wake-up was never replayed: sync covers it


async def test_a_publish_that_never_reached_redis_makes_the_other_processes_sync(pair: tuple[RedisBroker, Received, RedisBroker, Received], server: FakeRedisServer, monkeypatch: pytest.MonkeyPatch) -> None:
    a, got_a, b, got_b = pair
    fail_once = [True]
    real_publish = server.from_url("x").publish.__func__  # type: ignore[attr-defined]

    async def flaky(self: object, channel: str, data: str) -> int:
        if fail_once.pop() if fail_once else False:
            raise redis_broker.RedisError("write failed (fake)")
        return int(await real_publish(self, channel, data))

    from tests.realtime import fake_redis

    monkeypatch.setattr(fake_redis.FakeRedis, "publish", flaky)
    await a.publish(message(1))  # never reached Redis: only a's own sockets have it
    assert got_a.kinds() == ["message"]
    await a.publish(message(2))  # the next publish first tells everyone to sync
    await got_b.until(lambda ev: len(ev) == 2)
    assert got_b.kinds() == ["sync_needed", "message"]
    assert got_b.events[0].origin is not None  # from a: a ignores its own
    await got_a.until(lambda ev: len(ev) == 2)
    assert got_a.kinds() == ["message", "message"]  # not its own sync_needed


async def test_a_subscriber_that_falls_behind_is_cut_off_and_syncs(pair: tuple[RedisBroker, Received, RedisBroker, Received], server: FakeRedisServer) -> None:
    a, got_a, b, got_b = pair
    got_a.gate = asyncio.Event()  # a's hub is stuck: its subscription backs up
    for n in range(8):  # more than the fake's buffer limit of 5
        await b.publish(message(n))
        await got_b.until(lambda ev, n=n: len(ev) == n + 1)  # b keeps up
    assert server.subscribed(a.channel) == 1  # Redis cut a off
    got_a.gate.set()
    await resubscribed(server, a)
    events = await got_a.until(lambda ev: ev and ev[-1].kind == "sync_needed")
    # The one a was handling when cut off, then one sync_needed for the backlog lost with it.
    assert [e.kind for e in events] == ["message", "sync_needed"]
    assert events[0].data["message"]["id"] == 0


async def test_a_malformed_event_is_skipped(pair: tuple[RedisBroker, Received, RedisBroker, Received], server: FakeRedisServer) -> None:
    a, got_a, b, got_b = pair
    await server.from_url("x").publish(a.channel, "{not json")
    await b.publish(message(1))
    await got_a.until(lambda ev: len(ev) == 1)
    assert got_a.kinds() == ["message"]


@pytest.mark.skipif(not REDIS_URL, reason="MEDCHAT_TEST_REDIS_URL is not set")
async def test_against_the_real_redis() -> None:
    assert REDIS_URL
    channel = "medchat:test:" + uuid.uuid4().hex  # not the shared channel
    a, b = RedisBroker(REDIS_URL, channel), RedisBroker(REDIS_URL, channel)
    got_a, got_b = Received(), Received()
    await a.start(got_a)
    await b.start(got_b)
    raw = redis.Redis.from_url(REDIS_URL)
    try:
        await raw.publish(channel, "{not json")  # skipped
        await a.publish(message(1))
        await b.publish(Event("sync_needed", origin=b._origin))  # b's own: b skips it
        await a.publish(message(2))
        await got_b.until(lambda ev: len(ev) == 2)
        assert [e.data["message"]["id"] for e in got_b.events] == [1, 2]
        await got_a.until(lambda ev: len(ev) == 3)
        assert got_a.kinds() == ["message", "sync_needed", "message"]
    finally:
        await raw.aclose()
        await a.stop()
        await b.stop()
