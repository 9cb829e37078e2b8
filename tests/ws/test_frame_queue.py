"""A socket's light frame queue and closed flag (app/ws/frame_queue.py) behave as the
asyncio.Queue and asyncio.Event they replace, for what the endpoint uses."""

from __future__ import annotations

import asyncio
import tracemalloc

import pytest

from app.ws.frame_queue import Flag, FrameQueue


async def settle() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


async def test_fifo_bounded_and_nowait_errors() -> None:
    q: FrameQueue[str] = FrameQueue(2)
    assert q.empty() and q.qsize() == 0
    q.put_nowait("a")
    q.put_nowait("b")
    with pytest.raises(asyncio.QueueFull):
        q.put_nowait("c")
    assert q.qsize() == 2 and q.full()
    assert [q.get_nowait(), q.get_nowait()] == ["a", "b"]
    with pytest.raises(asyncio.QueueEmpty):
        q.get_nowait()


async def test_get_waits_for_a_frame_and_put_for_a_free_slot() -> None:
    q: FrameQueue[str] = FrameQueue(1)
    getter = asyncio.create_task(q.get())
    await settle()
    assert not getter.done()
    q.put_nowait("x")
    assert await asyncio.wait_for(getter, 1) == "x"
    q.put_nowait("y")
    putter = asyncio.create_task(q.put("z"))
    await settle()
    assert not putter.done() and q.qsize() == 1
    assert q.get_nowait() == "y"
    await asyncio.wait_for(putter, 1)
    assert q.get_nowait() == "z"


async def test_a_cancelled_getter_passes_its_wake_up_on() -> None:
    q: FrameQueue[str] = FrameQueue(4)
    first, second = asyncio.create_task(q.get()), asyncio.create_task(q.get())
    await settle()
    q.put_nowait("only")  # wakes the first getter...
    first.cancel()  # ...which is cancelled before it runs
    assert await asyncio.wait_for(second, 1) == "only"
    assert first.cancelled()


async def test_a_cancelled_putter_leaves_no_waiter_behind() -> None:
    q: FrameQueue[str] = FrameQueue(1)
    q.put_nowait("a")
    putter = asyncio.create_task(q.put("b"))
    await settle()
    putter.cancel()
    await settle()
    assert q.get_nowait() == "a" and q.empty()
    await asyncio.wait_for(q.put("c"), 1)
    assert q.get_nowait() == "c"


async def test_flag_wakes_every_waiter_and_stays_set() -> None:
    flag = Flag()
    waiters = [asyncio.create_task(flag.wait()) for _ in range(2)]
    await settle()
    assert not flag.is_set() and not any(w.done() for w in waiters)
    flag.set()
    await asyncio.wait_for(asyncio.gather(*waiters), 1)
    assert flag.is_set()
    await asyncio.wait_for(flag.wait(), 1)  # already set: returns at once


async def test_an_idle_queue_and_flag_are_lighter_than_asyncio_queue_and_event() -> None:
    def allocated(make: object) -> int:
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            kept = [make() for _ in range(100)]  # type: ignore[operator]
            size = tracemalloc.get_traced_memory()[0] - before
            del kept
            return size // 100
        finally:
            tracemalloc.stop()

    light = allocated(lambda: (FrameQueue(256), Flag()))
    stock = allocated(lambda: (asyncio.Queue(maxsize=256), asyncio.Event()))
    assert light * 3 < stock, (light, stock)
