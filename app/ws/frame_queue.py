"""A socket's outgoing frames: the part of ``asyncio.Queue`` the endpoint uses, lighter.

Every open socket holds one queue and one "closed" flag for its whole life, mostly idle.
``asyncio.Queue`` allocates four deques (items, getters, putters, and an Event's waiters for
``join``) and ``asyncio.Event`` one more: about 4 KiB per socket before a frame is queued
(tracemalloc, docs/performance.md "Idle memory (issue 10 §4)"). Here one deque holds the
frames; waiters are kept in lists made only while someone waits. Same behaviour as
``asyncio.Queue`` for what the endpoint calls: FIFO, ``put_nowait`` raises ``QueueFull``,
``get``/``put`` wait, and a cancelled waiter passes its wake-up on.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


def _wake_one(waiters: list[asyncio.Future[None]] | None) -> None:
    while waiters:
        waiter = waiters.pop(0)
        if not waiter.done():
            waiter.set_result(None)
            return


async def _wait(waiters: list[asyncio.Future[None]]) -> None:
    waiter = asyncio.get_running_loop().create_future()
    waiters.append(waiter)
    try:
        await waiter
    except BaseException:
        if waiter in waiters:
            waiters.remove(waiter)
        raise


class FrameQueue(Generic[T]):
    """A bounded FIFO for one consumer (the send loop) and producers in the same loop."""

    __slots__ = ("_getters", "_items", "_putters", "maxsize")

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._items: deque[T] = deque()
        self._getters: list[asyncio.Future[None]] | None = None
        self._putters: list[asyncio.Future[None]] | None = None

    def qsize(self) -> int:
        return len(self._items)

    def empty(self) -> bool:
        return not self._items

    def full(self) -> bool:
        return 0 < self.maxsize <= len(self._items)

    def put_nowait(self, item: T) -> None:
        if self.full():
            raise asyncio.QueueFull
        self._items.append(item)
        _wake_one(self._getters)

    def get_nowait(self) -> T:
        if not self._items:
            raise asyncio.QueueEmpty
        item = self._items.popleft()
        _wake_one(self._putters)
        return item

    async def put(self, item: T) -> None:
        while self.full():
            if self._putters is None:
                self._putters = []
            try:
                await _wait(self._putters)
            except BaseException:
                if not self.full():
                    _wake_one(self._putters)  # a slot this waiter was woken for
                raise
        self.put_nowait(item)

    async def get(self) -> T:
        while not self._items:
            if self._getters is None:
                self._getters = []
            try:
                await _wait(self._getters)
            except BaseException:
                if self._items:
                    _wake_one(self._getters)  # a frame this waiter was woken for
                raise
        return self.get_nowait()


class Flag:
    """``asyncio.Event`` (set, is_set, wait) without a deque until someone waits."""

    __slots__ = ("_set", "_waiters")

    def __init__(self) -> None:
        self._set = False
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    async def wait(self) -> None:
        if self._set:
            return
        if self._waiters is None:
            self._waiters = []
        await _wait(self._waiters)
