"""Redis pub/sub broker for several MedChat processes.

Redis carries wake-ups only. If Redis goes away, events still reach this process's own
sockets, and when the subscription comes back every local socket is told to ask the
store for what it missed (``sync_needed``): a lost wake-up costs latency, never a message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import redis.asyncio as redis
from redis.exceptions import RedisError

from app.realtime.broker import EventHandler
from app.realtime.events import Event

log = logging.getLogger("medchat.broker")

CHANNEL = "medchat:events"


class RedisBroker:
    def __init__(self, url: str, channel: str = CHANNEL) -> None:
        self.url = url
        self.channel = channel
        self._client: redis.Redis | None = None
        self._on_event: EventHandler | None = None
        self._listener: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()
        self._gap = False

    async def start(self, on_event: EventHandler) -> None:
        self._on_event = on_event
        self._client = redis.Redis.from_url(self.url, socket_connect_timeout=2, health_check_interval=10)
        self._listener = asyncio.create_task(self._listen(), name="redis-broker")
        # Wait briefly for the first subscription so early publishes are not missed.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(3):
                await self._subscribed.wait()

    async def publish(self, event: Event) -> None:
        assert self._client is not None and self._on_event is not None
        if self._subscribed.is_set():
            try:
                await self._client.publish(self.channel, event.to_json())
                return
            except (RedisError, OSError) as exc:
                log.warning("redis publish failed (%s); delivering locally only", type(exc).__name__)
                self._gap = True
        else:
            self._gap = True
        # Other processes miss this wake-up; their clients catch up after the reconnect.
        await self._on_event(event)

    async def _listen(self) -> None:
        assert self._client is not None and self._on_event is not None
        delay = 0.2
        while True:
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                self._subscribed.set()
                delay = 0.2
                if self._gap:
                    self._gap = False
                    await self._on_event(Event("sync_needed"))
                while True:
                    message = await pubsub.get_message(timeout=5.0)
                    if message is None:
                        continue
                    try:
                        event = Event.from_json(message["data"])
                    except (ValueError, KeyError, TypeError):
                        log.warning("ignoring a malformed event on %s", self.channel)
                        continue
                    await self._on_event(event)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                if self._subscribed.is_set():
                    log.warning("redis subscription lost (%s); retrying", type(exc).__name__)
                self._subscribed.clear()
                self._gap = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
        if self._client is not None:
            await self._client.aclose()
        self._on_event = None
