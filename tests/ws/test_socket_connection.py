"""A socket's bounded queue (``SocketConnection``) and how the hub closes one that overflows."""

from __future__ import annotations

from app.realtime.hub import CLOSE_SESSION_ENDED, CLOSE_SLOW_CONSUMER, Hub
from app.ws.endpoint import SocketConnection
from tests.realtime.test_hub import message_event


async def test_socket_connection_queue_is_bounded() -> None:
    conn = SocketConnection(1, "s", queue_size=2)
    assert conn.offer("a") and conn.offer("b")
    assert conn.offer("c") is False  # full: the caller closes it as a slow consumer
    assert conn.queue.qsize() == 2
    conn.close_soon(CLOSE_SLOW_CONSUMER, "slow consumer, resync")
    conn.close_soon(CLOSE_SESSION_ENDED, "later reason")  # the first reason stays
    assert conn.closing == (CLOSE_SLOW_CONSUMER, "slow consumer, resync") and conn.closed.is_set()
    assert conn.offer("d") is True and conn.queue.qsize() == 2  # closing: dropped quietly


async def test_socket_connection_holds_frames_while_resuming_within_the_same_bound() -> None:
    conn = SocketConnection(1, "s", queue_size=2)
    conn.resuming = True
    assert conn.offer("a", 7) and conn.offer("b")
    assert conn.offer("c", 8) is False
    # Held with their positions (a stream change's, None for other frames): the resume skips
    # exactly the changes its pages carried.
    assert conn.queue.qsize() == 0 and conn.held[:2] == [("a", 7), ("b", None)]


async def test_hub_closes_a_real_socket_connection_that_overflows() -> None:
    hub = Hub()
    slow, fine = SocketConnection(1, "s1", queue_size=4), SocketConnection(2, "s2", queue_size=4)
    hub.add(slow)
    hub.add(fine)
    for n in range(5):
        await hub.handle(message_event((1,), n))
        await hub.handle(message_event((2,), n))
        if n % 2:
            while not fine.queue.empty():  # fine reads as it goes
                fine.queue.get_nowait()
    assert slow.closing is not None and slow.closing[0] == CLOSE_SLOW_CONSUMER and slow.closed.is_set()
    assert fine.closing is None
