"""Gather many callers' questions for a moment and answer them with one call.

``Batcher(answer, window)``: ``await batcher.ask(key)`` waits up to ``window`` seconds for
other callers, then ``answer(keys)`` runs once for all the keys asked meanwhile and each
caller gets its own key's value; ``batcher.tell(key)`` adds a key without waiting for
its answer (a failure is logged). Used where many tasks ask the database the same kind of
question at a steady rate (1000 sockets re-checking their sessions every 20 s: one query
a batch instead of one each). A failure of ``answer`` reaches every caller of that batch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

log = logging.getLogger("medchat.batch")


class Batcher(Generic[K, V]):
    def __init__(self, answer: Callable[[list[K]], Awaitable[dict[K, V]]], window: float, max_keys: int = 500) -> None:
        self._answer = answer
        self.window = window
        self.max_keys = max_keys
        self._waiting: dict[K, list[asyncio.Future[V]]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._running: set[asyncio.Task[None]] = set()
        self.calls = 0  # how many times ``answer`` ran (tests, benchmarks)

    async def ask(self, key: K) -> V:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[V] = loop.create_future()
        self._waiting.setdefault(key, []).append(future)
        self._schedule(loop)
        return await future

    def tell(self, key: K) -> None:
        """Add ``key`` to the next batch and return at once: its answer is not wanted."""
        self._waiting.setdefault(key, [])
        self._schedule(asyncio.get_running_loop())

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        if len(self._waiting) >= self.max_keys:
            self._flush()
        elif self._timer is None:
            self._timer = loop.call_later(self.window, self._flush)

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        waiting, self._waiting = self._waiting, {}
        if waiting:
            task = asyncio.get_running_loop().create_task(self._run(waiting), name="batcher")
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def drain(self) -> None:
        """Answer what is asked now and wait until every batch has its answer (the app stops
        serving: no batch is left reading the database when its pool closes)."""
        self._flush()
        while self._running:
            await asyncio.wait(set(self._running))

    async def _run(self, waiting: dict[K, list[asyncio.Future[V]]]) -> None:
        self.calls += 1
        try:
            answers = await self._answer(list(waiting))
        except BaseException as exc:  # noqa: BLE001 - every caller of the batch hears of it
            if isinstance(exc, Exception) and any(not futures for futures in waiting.values()):
                log.warning("a batch of %d told keys failed: %s", sum(not f for f in waiting.values()), exc, exc_info=exc)
            for futures in waiting.values():
                for future in futures:
                    if not future.done():
                        future.set_exception(exc if isinstance(exc, Exception) else asyncio.CancelledError())
            if not isinstance(exc, Exception):
                raise
            return
        for key, futures in waiting.items():
            for future in futures:
                if future.done():
                    continue  # its caller stopped waiting (cancelled)
                if key in answers:
                    future.set_result(answers[key])
                else:
                    future.set_exception(KeyError(key))
