"""The hub without a network: claims, batching, delivery, overflow close.

No database and no app here, so these run once (not per database kind). Time is a
``FrozenClock``: the batch window ends when the test advances it.
"""

from __future__ import annotations

import asyncio
import json

from app.lib.clock import FrozenClock
from app.realtime.events import Event
from app.realtime.hub import CLOSE_SESSION_ENDED, CLOSE_SLOW_CONSUMER, Hub


class FakeConnection:
    def __init__(self, user_id: int, session_id: str, socket_id: str, room: int = 10) -> None:
        self.user_id, self.session_id, self.socket_id = user_id, session_id, socket_id
        self.room = room
        self.frames: list[str] = []
        self.positions: list[int | None] = []  # the stream position offered with each frame
        self.closes: list[int] = []
        self._new_frame = asyncio.Event()

    def offer(self, frame: str, position: int | None = None) -> bool:
        if len(self.frames) >= self.room:
            return False
        self.frames.append(frame)
        self.positions.append(position)
        self._new_frame.set()
        return True

    async def arrived(self, count: int) -> None:
        """Wait (at most 2 s) until ``count`` frames were offered."""
        async with asyncio.timeout(2):
            while len(self.frames) < count:
                self._new_frame.clear()
                await self._new_frame.wait()

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


async def test_a_stream_change_is_offered_with_its_position() -> None:
    """The socket learns the position of each change it is given (to hold or skip it while
    it resumes); frames that are not stream changes come without one."""
    hub = Hub()
    conn = FakeConnection(1, "s", "c")
    hub.add(conn)
    await hub.handle(message_event((1,), 1, position=7))
    await hub.handle(Event("sync_needed"))
    await hub.handle(online(5, recipient=1))
    assert conn.positions == [7, None, None]


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


def online(subject: int, recipient: int = 2, origin: str = "a") -> Event:
    return Event("presence", (recipient,), {"type": "presence", "user_id": subject, "online": True, "last_seen": None}, origin=origin)


async def test_presence_changes_are_batched_per_recipient_and_coalesced() -> None:
    clock = FrozenClock()
    hub = Hub(presence_batch_seconds=1.0, clock=clock)
    watcher, other = FakeConnection(2, "s2", "w"), FakeConnection(9, "s9", "o")
    hub.add(watcher)
    hub.add(other)
    for subject in (1, 3, 4):
        await hub.handle(online(subject))
    # Subject 4 goes away again inside the window: only its newest state is sent.
    await hub.handle(Event("presence", (2,), {"type": "presence", "user_id": 4, "online": False, "last_seen": "2026-01-05T09:00:00+00:00"}, origin="a"))
    await clock.sleeping(1)
    assert clock.pending() == [1.0]  # one window for all of them
    clock.advance(0.5)
    await asyncio.sleep(0)
    assert watcher.frames == [] and clock.pending() == [0.5]  # held for the window
    clock.advance(0.5)
    await watcher.arrived(1)
    assert len(watcher.frames) == 1 and other.frames == []
    batch = json.loads(watcher.frames[0])
    assert batch["type"] == "presence_batch"
    assert batch["users"] == [
        {"user_id": 1, "online": True, "last_seen": None},
        {"user_id": 3, "online": True, "last_seen": None},
        {"user_id": 4, "online": False, "last_seen": "2026-01-05T09:00:00+00:00"},
    ]
    # A single change in a window is an ordinary presence frame; the window starts anew.
    await hub.handle(online(5))
    await clock.sleeping(1)
    assert clock.pending() == [1.0]
    clock.advance(1.0)
    await watcher.arrived(2)
    assert json.loads(watcher.frames[1]) == {"type": "presence", "user_id": 5, "online": True, "last_seen": None}
    assert clock.pending() == []


async def test_presence_batches_only_for_recipients_on_this_process() -> None:
    clock = FrozenClock()
    hub = Hub(presence_batch_seconds=1.0, clock=clock)
    await hub.handle(online(1))
    assert hub.is_online(1)  # the claim is kept even with nobody here to tell
    await asyncio.sleep(0)
    assert clock.pending() == []  # and nothing waits to be sent


async def test_a_batch_still_waiting_is_dropped_when_the_hub_stops() -> None:
    clock = FrozenClock()
    hub = Hub(presence_batch_seconds=1.0, clock=clock)
    watcher = FakeConnection(2, "s2", "w")
    hub.add(watcher)
    await hub.handle(online(1))
    await clock.sleeping(1)
    await hub.stop()
    assert clock.pending() == []
    clock.advance(5)
    await asyncio.sleep(0)
    assert watcher.frames == []


async def test_without_a_window_presence_goes_out_at_once() -> None:
    hub = Hub()
    watcher = FakeConnection(2, "s2", "w")
    hub.add(watcher)
    await hub.handle(online(1))
    assert [json.loads(f) for f in watcher.frames] == [{"type": "presence", "user_id": 1, "online": True, "last_seen": None}]


# Instances that die: the hub names those not heard from; app/actions/presence.py takes back
# their claims (tests/realtime/test_presence_instances.py).


async def test_an_instance_not_heard_from_for_the_ttl_is_silent() -> None:
    clock = FrozenClock()
    hub = Hub(clock=clock)
    await hub.handle(presence(1, True, "x"))
    await hub.handle(presence(2, True, "y"))
    await hub.handle(presence(3, True, hub.instance_id))  # this process's own claim
    clock.advance(20)
    await hub.handle(Event("instance_alive", origin="y"))
    await hub.handle(Event("instance_alive", origin=hub.instance_id))
    clock.advance(9.5)
    assert hub.silent_instances(30) == {}
    clock.advance(0.5)
    assert hub.silent_instances(30) == {"x": [1]}  # y was heard 10 s ago; our own never counts
    assert hub.silent_instances(30) == {}  # forgotten once named
    assert hub.claims == {1: {"x"}, 2: {"y"}, 3: {hub.instance_id}}  # the caller takes them back
    # An "offline" is not a sign of life (claims taken back look like one).
    await hub.handle(presence(1, False, "x"))
    clock.advance(30)
    assert hub.silent_instances(30) == {"y": [2]}


async def test_a_departed_instance_is_silent_at_once_and_ends_the_wait() -> None:
    clock = FrozenClock()
    hub = Hub(clock=clock)
    await hub.handle(presence(1, True, "x"))
    waiting = asyncio.create_task(hub.until_departure(10))
    await clock.sleeping(1)
    await hub.handle(Event("instance_gone", origin="x"))
    async with asyncio.timeout(2):
        await waiting  # no clock time passed
    assert clock.pending() == []
    await hub.handle(presence(4, True, "x"))  # a late event of the departed one does not revive it
    assert hub.silent_instances(30) == {"x": [1, 4]}
    # Without a departure the wait is the clock's.
    waiting = asyncio.create_task(hub.until_departure(10))
    await clock.sleeping(1)
    clock.advance(10)
    async with asyncio.timeout(2):
        await waiting
