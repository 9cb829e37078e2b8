"""The hub and a socket's bounded queue, without a network: routing, backpressure, presence.

No database here, so these run once (not per database kind).
"""

from __future__ import annotations

import json

from app.realtime.events import Event
from app.realtime.hub import CLOSE_SESSION_ENDED, CLOSE_SLOW_CONSUMER, Hub
from app.ws.endpoint import SocketConnection


class FakeConnection:
    def __init__(self, user_id: int, session_id: str, socket_id: str, room: int = 10) -> None:
        self.user_id, self.session_id, self.socket_id = user_id, session_id, socket_id
        self.room = room
        self.frames: list[str] = []
        self.closes: list[int] = []

    def offer(self, frame: str) -> bool:
        if len(self.frames) >= self.room:
            return False
        self.frames.append(frame)
        return True

    def close_soon(self, code: int, reason: str) -> None:
        self.closes.append(code)


def message_event(user_ids: tuple[int, ...], message_id: int = 1, **kwargs: object) -> Event:
    return Event("message", user_ids, {"type": "message", "message": {"id": message_id, "body": "K+ < 3.5"}}, **kwargs)  # type: ignore[arg-type]


async def test_an_event_reaches_every_socket_of_the_named_users_serialised_once() -> None:
    hub = Hub()
    a1, a2 = FakeConnection(1, "sa", "a1"), FakeConnection(1, "sa2", "a2")
    b, c = FakeConnection(2, "sb", "b"), FakeConnection(3, "sc", "c")
    for conn in (a1, a2, b, c):
        hub.add(conn)
    await hub.handle(message_event((1, 2)))
    assert a1.frames == a2.frames == b.frames and c.frames == []
    assert a1.frames[0] is b.frames[0]  # one JSON string for everyone
    assert json.loads(a1.frames[0]) == {"type": "message", "message": {"id": 1, "body": "K+ < 3.5"}}
    await hub.handle(message_event((1, 2), 2, except_socket="a1"))
    assert len(a1.frames) == 1 and len(a2.frames) == len(b.frames) == 2


async def test_a_full_socket_is_closed_as_slow_and_the_others_still_get_everything() -> None:
    hub = Hub()
    slow, fine = FakeConnection(1, "s1", "slow", room=2), FakeConnection(2, "s2", "fine")
    hub.add(slow)
    hub.add(fine)
    for n in range(5):
        await hub.handle(message_event((1, 2), n))
    assert len(slow.frames) == 2 and CLOSE_SLOW_CONSUMER in slow.closes
    assert len(fine.frames) == 5 and fine.closes == []


async def test_session_end_closes_that_sessions_sockets_only() -> None:
    hub = Hub()
    mine1, mine2 = FakeConnection(1, "s1", "x"), FakeConnection(1, "s1", "y")
    other_session, other_user = FakeConnection(1, "s2", "z"), FakeConnection(2, "s3", "w")
    for conn in (mine1, mine2, other_session, other_user):
        hub.add(conn)
    await hub.handle(Event("session_ended", session_ids=("s1",)))
    assert mine1.closes == mine2.closes == [CLOSE_SESSION_ENDED]
    assert other_session.closes == other_user.closes == []
    assert mine1.frames == []  # no frame, only the close


async def test_add_and_remove_tell_first_and_last() -> None:
    hub = Hub()
    one, two = FakeConnection(1, "s", "1"), FakeConnection(1, "s", "2")
    assert hub.add(one) is True
    assert hub.add(two) is False
    assert hub.connection_count() == 2 and hub.has_local(1)
    assert hub.remove(one) is False
    assert hub.remove(two) is True
    assert not hub.has_local(1) and hub.connection_count() == 0
    # A closed socket gets nothing more, and a session end finds nothing to close.
    await hub.handle(message_event((1,)))
    await hub.handle(Event("session_ended", session_ids=("s",)))
    assert one.frames == two.frames == [] and one.closes == two.closes == []


def presence(user_id: int, online: bool, origin: str) -> Event:
    frame = {"type": "presence", "user_id": user_id, "online": online, "last_seen": None if online else "2026-01-05T09:00:00+00:00"}
    return Event("presence", (2,), frame, origin=origin)


async def test_presence_is_passed_on_only_when_it_changes_across_instances() -> None:
    hub = Hub()
    watcher = FakeConnection(2, "s2", "w")
    hub.add(watcher)
    await hub.handle(presence(1, True, "instance-a"))
    await hub.handle(presence(1, True, "instance-a"))  # a second socket there
    await hub.handle(presence(1, True, "instance-b"))  # and one on another instance
    assert [json.loads(f)["online"] for f in watcher.frames] == [True]
    assert hub.is_online(1)
    await hub.handle(presence(1, False, "instance-a"))  # still on instance b
    assert len(watcher.frames) == 1 and hub.is_online(1)
    await hub.handle(presence(1, False, "instance-b"))
    assert [json.loads(f)["online"] for f in watcher.frames] == [True, False]
    assert not hub.is_online(1)


async def test_presence_with_no_contacts_still_counts() -> None:
    hub = Hub()
    await hub.handle(Event("presence", (), {"type": "presence", "user_id": 5, "online": True, "last_seen": None}, origin="x"))
    assert hub.is_online(5)


async def test_sync_needed_goes_to_every_socket() -> None:
    hub = Hub()
    conns = [FakeConnection(n, f"s{n}", f"c{n}") for n in range(3)]
    for conn in conns:
        hub.add(conn)
    await hub.handle(Event("sync_needed"))
    assert all([json.loads(f) for f in conn.frames] == [{"type": "sync_needed"}] for conn in conns)


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
    assert conn.offer("a") and conn.offer("b")
    assert conn.offer("c") is False
    assert conn.queue.qsize() == 0 and conn.held[:2] == ["a", "b"]


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


async def test_presence_changes_are_batched_per_recipient_and_coalesced() -> None:
    import asyncio

    hub = Hub(presence_batch_seconds=0.05)
    watcher, other = FakeConnection(2, "s2", "w"), FakeConnection(9, "s9", "o")
    hub.add(watcher)
    hub.add(other)
    for subject in (1, 3, 4):
        await hub.handle(Event("presence", (2,), {"type": "presence", "user_id": subject, "online": True, "last_seen": None}, origin="a"))
    # Subject 4 goes away again inside the window: only its newest state is sent.
    await hub.handle(Event("presence", (2,), {"type": "presence", "user_id": 4, "online": False, "last_seen": "2026-01-05T09:00:00+00:00"}, origin="a"))
    assert watcher.frames == []  # held for the window
    await asyncio.sleep(0.15)
    assert len(watcher.frames) == 1 and other.frames == []
    batch = json.loads(watcher.frames[0])
    assert batch["type"] == "presence_batch"
    assert {u["user_id"]: u["online"] for u in batch["users"]} == {1: True, 3: True, 4: False}
    # A single change in a window is an ordinary presence frame.
    await hub.handle(Event("presence", (2,), {"type": "presence", "user_id": 5, "online": True, "last_seen": None}, origin="a"))
    await asyncio.sleep(0.15)
    assert json.loads(watcher.frames[1]) == {"type": "presence", "user_id": 5, "online": True, "last_seen": None}


async def test_presence_batches_only_for_recipients_on_this_process() -> None:
    import asyncio

    hub = Hub(presence_batch_seconds=0.01)
    await hub.handle(Event("presence", (2,), {"type": "presence", "user_id": 1, "online": True, "last_seen": None}, origin="a"))
    await asyncio.sleep(0.05)
    assert hub.is_online(1)  # the claim is kept even with nobody here to tell
