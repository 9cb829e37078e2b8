"""The process's one heartbeat (app/ws/heartbeat.py): due times, spread, follow-ups, cancel.

The socket-level behaviour (pings, 4000 after silence, 4401 when the session ended) is in
tests/ws/test_session_and_liveness.py; here the scheduler alone, on a FrozenClock.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from app.lib.clock import FrozenClock
from app.ws.heartbeat import FollowUp, Heartbeat
from tests.ws.conftest import People, heartbeats_waiting
from tests.ws.wsclient import ws_open

INTERVAL = 20.0


class Rng:
    """random.Random's ``random()`` with chosen values."""

    def __init__(self, *values: float) -> None:
        self.values = list(values)

    def random(self) -> float:
        return self.values.pop(0)


class Recorder:
    def __init__(self, clock: FrozenClock, origin: float) -> None:
        self.clock, self.origin = clock, origin
        self.times: dict[str, list[float]] = {}

    def beat(self, name: str, follow_up: Any = None) -> Any:
        def callback() -> FollowUp | None:
            self.times.setdefault(name, []).append(round(self.clock.monotonic() - self.origin, 3))
            return follow_up() if follow_up is not None else None

        return callback


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def advance(clock: FrozenClock, seconds: float) -> None:
    await clock.sleeping(1)
    clock.advance(seconds)
    await settle()


async def test_one_task_beats_every_socket_one_interval_apart(clock: FrozenClock) -> None:
    heartbeat = Heartbeat(clock, INTERVAL, spread=0)
    rec = Recorder(clock, clock.monotonic())
    a, b = heartbeat.add(rec.beat("a")), heartbeat.add(rec.beat("b"))
    await advance(clock, 5)
    heartbeat.add(rec.beat("c"))
    await settle()
    assert clock.pending() == [15.0]  # one sleeper for all three
    for _ in range(4):
        await advance(clock, 5)
    assert rec.times == {"a": [20.0], "b": [20.0], "c": [25.0]}
    a.cancel()
    for _ in range(4):
        await advance(clock, 5)
    assert rec.times == {"a": [20.0], "b": [20.0, 40.0], "c": [25.0, 45.0]}
    assert heartbeat.waiting() == 2
    b.cancel()
    heartbeat.stop()


async def test_first_beats_are_spread_over_the_interval_then_one_interval_apart(clock: FrozenClock) -> None:
    import random

    heartbeat = Heartbeat(clock, INTERVAL, spread=1.0, rng=random.Random(5))
    rec = Recorder(clock, clock.monotonic())
    for n in range(200):  # opened in the same instant, as after a restart
        heartbeat.add(rec.beat(str(n)))
    for _ in range(40):
        await advance(clock, 1)
    firsts = sorted(times[0] for times in rec.times.values())
    assert len(firsts) == 200 and 0 < firsts[0] and firsts[-1] <= INTERVAL
    # Spread over the whole interval: every 2-second stretch has some, none has most.
    per_stretch = [sum(1 for t in firsts if s < t <= s + 2) for s in range(0, 20, 2)]
    assert min(per_stretch) > 5 and max(per_stretch) < 40
    for times in rec.times.values():
        assert len(times) == 2 and times[1] - times[0] == pytest.approx(INTERVAL, abs=1.0)  # the clock moves in 1 s steps
    heartbeat.stop()


async def test_a_socket_due_sooner_wakes_the_sleeping_heartbeat(clock: FrozenClock) -> None:
    heartbeat = Heartbeat(clock, INTERVAL, spread=1.0, rng=Rng(0.0, 0.9))  # due after 20 s, then after 2 s
    rec = Recorder(clock, clock.monotonic())
    heartbeat.add(rec.beat("late"))
    await clock.sleeping(1, due_within=INTERVAL)
    heartbeat.add(rec.beat("soon"))
    await clock.sleeping(1, due_within=2)
    assert clock.pending() == [pytest.approx(2.0)]
    clock.advance(2)
    await settle()
    assert rec.times == {"soon": [2.0]}
    await advance(clock, 18)
    assert rec.times == {"soon": [2.0], "late": [20.0]}
    heartbeat.stop()


async def test_the_next_beat_comes_an_interval_after_the_follow_up_ended(clock: FrozenClock) -> None:
    """As the per-socket loop did: a slow session check delays that socket's next ping."""
    heartbeat = Heartbeat(clock, INTERVAL, spread=0)
    rec = Recorder(clock, clock.monotonic())
    release = asyncio.Event()

    async def slow_check() -> None:
        await release.wait()

    heartbeat.add(rec.beat("slow", slow_check))
    heartbeat.add(rec.beat("quick"))
    await advance(clock, 20)
    assert heartbeat.waiting() == 1  # the slow one waits for its check
    await advance(clock, 20)
    await advance(clock, 5)  # t=45: quick beat at 40; slow still checking
    assert rec.times == {"slow": [20.0], "quick": [20.0, 40.0]}
    release.set()
    await settle()
    assert heartbeat.waiting() == 2
    await advance(clock, 20)  # t=65: slow's next is 45 + 20
    assert rec.times["slow"] == [20.0, 65.0]
    heartbeat.stop()


async def test_cancel_stops_a_socket_and_its_follow_up(clock: FrozenClock) -> None:
    heartbeat = Heartbeat(clock, INTERVAL, spread=0)
    rec = Recorder(clock, clock.monotonic())
    cancelled = asyncio.Event()

    async def check() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    beat = heartbeat.add(rec.beat("s", check))
    await advance(clock, 20)
    beat.cancel()
    await asyncio.wait_for(cancelled.wait(), 5)
    await settle()
    assert heartbeat.waiting() == 0
    clock.advance(100)
    await settle()
    assert rec.times == {"s": [20.0]}
    heartbeat.stop()


async def test_a_failing_beat_is_logged_and_dropped_the_others_go_on(clock: FrozenClock, caplog: pytest.LogCaptureFixture) -> None:
    heartbeat = Heartbeat(clock, INTERVAL, spread=0)
    rec = Recorder(clock, clock.monotonic())

    def broken() -> None:
        raise RuntimeError("boom")

    heartbeat.add(broken)
    heartbeat.add(rec.beat("ok"))
    await advance(clock, 20)
    await advance(clock, 20)
    assert rec.times == {"ok": [20.0, 40.0]}
    assert "heartbeat of a socket failed" in caplog.text
    assert heartbeat.waiting() == 1
    heartbeat.stop()


async def test_stop_cancels_the_task_and_the_follow_ups(clock: FrozenClock) -> None:
    heartbeat = Heartbeat(clock, INTERVAL, spread=0)
    rec = Recorder(clock, clock.monotonic())

    async def forever() -> None:
        await asyncio.Event().wait()

    beat = heartbeat.add(rec.beat("s", forever))
    await advance(clock, 20)
    check = beat.check
    assert check is not None
    heartbeat.stop()
    beat.cancel()  # the socket's own finally, as in the endpoint
    await settle()
    assert check.cancelled()
    assert [t for t in asyncio.all_tasks() if t.get_name() == "ws-heartbeat"] == []


async def test_the_sockets_of_a_process_share_one_heartbeat_task(people: People, app: Any) -> None:
    async with ws_open(people.alice), ws_open(people.bob), ws_open(people.carol):
        await heartbeats_waiting(app, 3)
        assert len([t for t in asyncio.all_tasks() if t.get_name() == "ws-heartbeat"]) == 1
        assert app.extensions["medchat_ws"].heartbeat.waiting() == 3
    await settle()
    assert app.extensions["medchat_ws"].heartbeat.waiting() == 0
