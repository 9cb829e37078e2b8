"""One heartbeat for every socket of the process (issue 10).

Each socket used to run its own heartbeat task: a task, its coroutines and a timer per idle
socket, all waking on their own. ``Heartbeat`` keeps one heap of due times and one task that
sleeps until the earliest; each due socket's ``beat`` runs there (the silence check and the
ping, synchronous) and may return a follow-up (the session re-check), which runs as a short
task of its own. The socket's next beat is one interval after its beat, or after its
follow-up ended (as the per-socket loop did: ``sleep(interval)`` after the check).

The first beat of a socket comes after a random share of the interval (``spread`` = 1: anywhere
in (0, interval]); later beats every interval. So sockets that opened in the same second (a
restart, a reconnect storm) do not all re-check their sessions in the same instant every
20 s. Time is the app's ``Clock``: a test's ``FrozenClock`` decides when beats are due.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import heapq
import itertools
import logging
import math
import random
from collections.abc import Callable, Coroutine
from typing import Any

from app.lib.clock import Clock

log = logging.getLogger("medchat.ws")

FollowUp = Coroutine[Any, Any, None]


class Beat:
    """One socket's place in the heartbeat; ``cancel`` takes it out (and stops its follow-up)."""

    __slots__ = ("active", "callback", "check")

    def __init__(self, callback: Callable[[], FollowUp | None]) -> None:
        self.callback = callback
        self.active = True
        self.check: asyncio.Task[None] | None = None

    def cancel(self) -> None:
        self.active = False
        if self.check is not None:
            self.check.cancel()
            self.check = None


class Heartbeat:
    def __init__(self, clock: Clock, interval: float, spread: float = 1.0, rng: random.Random | None = None) -> None:
        self.clock = clock
        self.interval = interval
        self.spread = min(1.0, max(0.0, spread))
        self._rng = rng or random.Random()  # noqa: S311 - spreading load, not a secret
        self._due: list[tuple[float, int, Beat]] = []
        self._order = itertools.count()
        self._task: asyncio.Task[None] | None = None
        self._nap: asyncio.Task[None] | None = None
        self._nap_until = math.inf
        self._idle: asyncio.Future[None] | None = None

    def add(self, callback: Callable[[], FollowUp | None]) -> Beat:
        """Beat ``callback`` every interval from now on, the first time after a random share
        of it; ``callback`` may return a coroutine to run before the next interval starts."""
        beat = Beat(callback)
        first = self.interval * (1.0 - self.spread * self._rng.random())
        self._schedule(beat, self.clock.monotonic() + first)
        if self._task is None or self._task.done():
            # An empty context: the task outlives the socket whose handler started it.
            self._task = asyncio.get_running_loop().create_task(self._run(), name="ws-heartbeat", context=contextvars.Context())
        return beat

    def stop(self) -> None:
        """Cancel the heartbeat task and every follow-up in flight (the app stops serving)."""
        for _, _, beat in self._due:
            beat.cancel()
        self._due.clear()
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def waiting(self) -> int:
        """Sockets with a beat to come (tests)."""
        return len({id(b) for _, _, b in self._due if b.active})

    def _schedule(self, beat: Beat, when: float) -> None:
        heapq.heappush(self._due, (when, next(self._order), beat))
        if when < self._nap_until:  # sooner than the task sleeps: wake it to sleep less
            if self._nap is not None:
                self._nap.cancel()
            if self._idle is not None and not self._idle.done():
                self._idle.set_result(None)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                self._beat_due()
                while self._due and not self._due[0][2].active:
                    heapq.heappop(self._due)  # sockets that closed
                if not self._due:
                    self._nap_until = math.inf
                    self._idle = loop.create_future()
                    await self._idle
                    continue
                self._nap_until = self._due[0][0]
                self._nap = loop.create_task(self.clock.sleep(self._nap_until - self.clock.monotonic()))
                await asyncio.wait([self._nap])
                self._nap = None
        finally:
            if self._nap is not None:
                self._nap.cancel()
            for _, _, beat in self._due:
                beat.cancel()

    def _beat_due(self) -> None:
        now = self.clock.monotonic()
        while self._due and self._due[0][0] <= now:
            _, _, beat = heapq.heappop(self._due)
            if not beat.active:
                continue
            try:
                follow_up = beat.callback()
            except Exception:
                log.exception("heartbeat of a socket failed")
                beat.active = False
                continue
            if follow_up is None:
                self._schedule(beat, now + self.interval)
                continue
            beat.check = asyncio.get_running_loop().create_task(follow_up)
            beat.check.add_done_callback(functools.partial(self._checked, beat))

    def _checked(self, beat: Beat, task: asyncio.Task[None]) -> None:
        if beat.check is task:
            beat.check = None
        if task.cancelled() or not beat.active:
            return
        if task.exception() is not None:
            log.error("heartbeat follow-up of a socket failed", exc_info=task.exception())
        self._schedule(beat, self.clock.monotonic() + self.interval)
