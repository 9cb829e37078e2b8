"""An in-memory stand-in for the part of redis.asyncio that ``RedisBroker`` uses.

``FakeRedisServer`` is one Redis: ``from_url`` (patched over ``redis.Redis.from_url``)
hands out clients of it. ``down`` makes every command fail as a lost connection would; a
subscriber more than ``buffer_limit`` messages behind is disconnected, as Redis does with
``client-output-buffer-limit pubsub``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError


class FakeRedisServer:
    def __init__(self, buffer_limit: int = 1000) -> None:
        self.buffer_limit = buffer_limit
        self.down = False
        self.subscribers: list[FakePubSub] = []
        self.published: list[tuple[str, str]] = []

    def from_url(self, url: str, **kwargs: Any) -> FakeRedis:
        return FakeRedis(self)

    def check(self) -> None:
        if self.down:
            raise RedisConnectionError("Connection refused (fake)")

    def drop_subscribers(self) -> None:
        """Close every subscription (a restart, a network cut)."""
        for sub in list(self.subscribers):
            sub.kill()

    def subscribed(self, channel: str) -> int:
        return sum(1 for s in self.subscribers if channel in s.channels and not s.killed)


class FakeRedis:
    def __init__(self, server: FakeRedisServer) -> None:
        self.server = server

    async def publish(self, channel: str, data: str) -> int:
        self.server.check()
        self.server.published.append((channel, data))
        count = 0
        for sub in list(self.server.subscribers):
            if channel in sub.channels and not sub.killed:
                sub.deliver(channel, data)
                count += 1
        return count

    def pubsub(self, ignore_subscribe_messages: bool = False) -> FakePubSub:
        return FakePubSub(self.server)

    async def aclose(self) -> None:
        pass


class FakePubSub:
    def __init__(self, server: FakeRedisServer) -> None:
        self.server = server
        self.channels: set[str] = set()
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.killed = False
        self._wake = asyncio.Event()

    async def subscribe(self, channel: str) -> None:
        self.server.check()
        self.channels.add(channel)
        self.server.subscribers.append(self)

    def deliver(self, channel: str, data: str) -> None:
        if self.queue.qsize() >= self.server.buffer_limit:
            self.kill()  # fell behind: Redis closes the connection, the backlog is lost
            return
        self.queue.put_nowait({"type": "message", "channel": channel, "data": data})
        self._wake.set()

    def kill(self) -> None:
        self.killed = True
        if self in self.server.subscribers:
            self.server.subscribers.remove(self)
        self._wake.set()

    async def get_message(self, timeout: float = 0.0) -> dict[str, Any] | None:
        if self.killed:
            raise RedisConnectionError("Connection closed by server (fake)")
        if self.queue.empty():
            self._wake.clear()
            try:
                async with asyncio.timeout(timeout):
                    await self._wake.wait()
            except TimeoutError:
                return None
            if self.killed:
                raise RedisConnectionError("Connection closed by server (fake)")
        return self.queue.get_nowait()

    async def aclose(self) -> None:
        if self in self.server.subscribers:
            self.server.subscribers.remove(self)
