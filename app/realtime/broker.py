"""The broker interface and the in-process broker.

The database is the source of truth; a broker only wakes sockets up. A dropped wake-up
costs latency, never a message: clients catch up from the store.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from app.realtime.events import Event

EventHandler = Callable[[Event], Awaitable[None]]


class Broker(Protocol):
    async def start(self, on_event: EventHandler) -> None:
        """Begin delivering every published event (from any process) to ``on_event``."""

    async def publish(self, event: Event) -> None:
        """Send an event to every process (this one included)."""

    async def stop(self) -> None:
        """Stop delivering and release connections."""


class LocalBroker:
    """One process: publishing hands the event straight to this process's hub."""

    def __init__(self) -> None:
        self._on_event: EventHandler | None = None

    async def start(self, on_event: EventHandler) -> None:
        self._on_event = on_event

    async def publish(self, event: Event) -> None:
        if self._on_event is not None:
            await self._on_event(event)

    async def stop(self) -> None:
        self._on_event = None
