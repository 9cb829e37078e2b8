"""Time: every datetime in MedChat is timezone-aware UTC.

Code that waits (the socket heartbeat, the presence grace, the presence batch window) waits
with ``clock.sleep``, so a test's ``FrozenClock`` decides when the wait is over.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from datetime import UTC, datetime, timedelta


class Clock:
    """The wall clock. Tests swap in a ``FrozenClock``."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        """Seconds for measuring intervals (rate limits): never jumps with the wall clock."""
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time."""
        await asyncio.sleep(seconds)


class FrozenClock(Clock):
    """A clock that moves only when told to.

    ``sleep`` waits until ``advance`` moves the clock to (or past) its deadline; a sleep of
    zero or less only yields. ``sleeping(n)`` waits (in real time, bounded) until ``n``
    sleepers are waiting, so a test can advance the clock knowing who will wake.
    """

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._changed: asyncio.Event | None = None

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return (self._now - datetime(2000, 1, 1, tzinfo=UTC)).total_seconds()

    def advance(self, seconds: float) -> None:
        """Move the clock; every sleep whose deadline has come is woken (in deadline order)."""
        self._now += timedelta(seconds=seconds)
        now = self.monotonic()
        while self._sleepers and self._sleepers[0][0] <= now:
            _, _, waiter = heapq.heappop(self._sleepers)
            if not waiter.done():
                waiter.set_result(None)

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (self.monotonic() + seconds, next(self._order), waiter)
        heapq.heappush(self._sleepers, entry)
        self._signal()
        try:
            await waiter
        finally:
            if entry in self._sleepers:  # cancelled before its time
                self._sleepers.remove(entry)
                heapq.heapify(self._sleepers)
            self._signal()

    def pending(self) -> list[float]:
        """Seconds until each waiting sleeper wakes, soonest first."""
        now = self.monotonic()
        return sorted(deadline - now for deadline, _, w in self._sleepers if not w.done())

    async def sleeping(self, count: int, due_within: float | None = None) -> None:
        """Wait until at least ``count`` sleepers wait on this clock (at most 5 s, real time).

        ``due_within``: count only those that wake within that many seconds.
        """
        async with asyncio.timeout(5.0):
            while len([p for p in self.pending() if due_within is None or p <= due_within]) < count:
                self._changed = self._changed or asyncio.Event()
                self._changed.clear()
                await self._changed.wait()

    def _signal(self) -> None:
        if self._changed is not None:
            self._changed.set()


def as_utc(value: datetime) -> datetime:
    """Return ``value`` as aware UTC; SQLite hands back naive datetimes that are UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
