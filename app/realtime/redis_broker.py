"""Redis pub/sub broker for several MedChat processes.

Redis carries wake-ups only. If Redis goes away, events still reach this process's own
sockets; when the subscription comes back, every socket that may have missed a wake-up is
told to ask the store (``sync_needed``): this process's sockets if its subscription was
down, and every process's sockets if events published here never reached Redis (the other
processes may have been subscribed all along). A lost wake-up costs latency, never a message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

import redis.asyncio as redis
from redis.exceptions import RedisError

from app.realtime.broker import EventHandler
from app.realtime.events import Event
from app.vocab import EventKind

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
        self._gap = False  # our subscription was down: our sockets may have missed events
        self._dropped = False  # an event of ours never reached Redis: other processes' sockets may have missed it
        # One publish in flight at a time, in the order they were asked for (the lock is
        # fair): commits publish in position order, and two commands on two pooled
        # connections could otherwise reach Redis the other way round.
        self._in_order = asyncio.Lock()
        self._origin = uuid.uuid4().hex

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
                async with self._in_order:
                    if self._dropped:
                        await self._publish_sync_needed()
                    await self._client.publish(self.channel, event.to_json())
                return
            except (RedisError, OSError) as exc:
                log.warning("redis publish failed (%s); delivering locally only", type(exc).__name__)
        # Other processes miss this wake-up; their sockets are told to sync once we are back.
        self._dropped = True
        await self._on_event(event)

    async def _publish_sync_needed(self) -> None:
        """Tell every other process's sockets to catch up from the store."""
        assert self._client is not None
        await self._client.publish(self.channel, Event(EventKind.SYNC_NEEDED, origin=self._origin).to_json())
        self._dropped = False

    async def _listen(self) -> None:
        assert self._client is not None and self._on_event is not None
        delay = 0.2
        while True:
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                self._subscribed.set()
                delay = 0.2
                if self._dropped:
                    await self._publish_sync_needed()
                if self._gap:
                    self._gap = False
                    await self._on_event(Event(EventKind.SYNC_NEEDED))
                while True:
                    message = await pubsub.get_message(timeout=5.0)
                    if message is None:
                        continue
                    try:
                        event = Event.from_json(message["data"])
                    except (ValueError, KeyError, TypeError):
                        log.warning("ignoring a malformed event on %s", self.channel)
                        continue
                    if event.kind == EventKind.SYNC_NEEDED and event.origin == self._origin:
                        continue  # ours: our own sockets had those events already
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
