"""Rate limits shared by every process through Redis (app/realtime/ratelimit.py).

Two apps on one database and the real Redis of MEDCHAT_TEST_REDIS_URL stand for two
processes; each test has its own key prefix and broker channel, so parallel runs never meet.
Without Redis (and when it is unreachable) a limit is the process's own ``TokenBuckets``.
"""

from __future__ import annotations

import logging

import pytest
from quart import Quart

from app.actions import conversations, messages
from app.actions.accounts import StaffFields, create_user_with_password
from app.actions.errors import RateLimited
from app.lib.clock import FrozenClock
from app.realtime.ratelimit import SharedLimits, moving_windows
from app.services import Services
from tests.helpers import actor_for, new_id
from tests.realtime.conftest import needs_redis, quiet_login_store
from tests.support import PASSWORD


def services(app: Quart) -> Services:
    svc: Services = app.extensions["medchat"]
    return svc


@needs_redis
@quiet_login_store
async def test_the_11th_message_is_refused_on_the_other_process(two_processes: tuple[Quart, Quart]) -> None:
    first, second = services(two_processes[0]), services(two_processes[1])
    assert first.message_buckets.shared and second.message_buckets.shared
    alice = await create_user_with_password(first, StaffFields("alice", "Alice", "Cardiology", "Nurse", "member"), PASSWORD)
    await create_user_with_password(first, StaffFields("bob", "Bob", "Cardiology", "Nurse", "member"), PASSWORD)
    carol = await create_user_with_password(first, StaffFields("carol", "Carol", "Cardiology", "Nurse", "member"), PASSWORD)
    chat = await conversations.do_open_direct(first, actor_for(alice), "bob")
    for n in range(10):  # MESSAGE_BURST, all through the first process
        await messages.do_send_message(first, actor_for(alice), chat, f"m{n}", new_id())
    with pytest.raises(RateLimited) as refused:
        await messages.do_send_message(second, actor_for(alice), chat, "one too many", new_id())
    # The burst window of the defaults (10 in any 3 s) frees its oldest go within 3 s.
    assert 0 < refused.value.retry_after <= 3
    # The limit is per user: someone else sends on either process.
    other = await conversations.do_open_direct(second, actor_for(carol), "bob")
    await messages.do_send_message(second, actor_for(carol), other, "mine", new_id())


@needs_redis
@quiet_login_store
async def test_handshakes_are_counted_across_processes(two_processes: tuple[Quart, Quart]) -> None:
    first, second = (app.extensions["medchat_ws"].handshakes for app in two_processes)
    assert first is services(two_processes[0]).handshake_buckets
    for _ in range(3):  # WS_HANDSHAKES_PER_MINUTE
        assert await first.take(("user", 41)) == 0
    wait = await second.take(("user", 41))
    assert 0 < wait <= 60
    assert await second.take(("ip", "192.0.2.9")) == 0  # another key, its own limit


def test_the_token_bucket_becomes_two_moving_windows() -> None:
    windows = moving_windows(30, 10, 10)  # the message defaults
    assert [(w.amount, w.get_expiry()) for w in windows] == [(10, 3), (30, 10)]
    handshakes = moving_windows(30, 60, 30)
    assert [(w.amount, w.get_expiry()) for w in handshakes] == [(30, 60)]


async def test_without_redis_the_limit_is_the_process_own_on_the_app_clock(clock: FrozenClock) -> None:
    limits = SharedLimits("messages", 30, 10, 10, clock.monotonic)
    assert not limits.shared
    assert [await limits.take(1) for _ in range(10)] == [0.0] * 10
    assert await limits.take(1) == pytest.approx(1 / 3)
    clock.advance(0.34)
    assert await limits.take(1) == 0.0


async def test_an_unreachable_redis_falls_back_to_the_process_limit_and_logs_once(
    clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    # Nothing listens on port 1: every connection is refused at once.
    limits = SharedLimits("messages", 30, 10, 10, clock.monotonic, "redis://127.0.0.1:1/0", "medchat:test:down")
    try:
        with caplog.at_level(logging.WARNING, logger="medchat.ratelimit"):
            assert [await limits.take(1) for _ in range(10)] == [0.0] * 10  # sends do not fail
            assert await limits.take(1) > 0  # and the burst still holds, in this process
            clock.advance(limits.retry_seconds)  # Redis is tried again, and is still down
            assert await limits.take(2) == 0.0
        warnings = [r for r in caplog.records if r.name == "medchat.ratelimit"]
        assert len(warnings) == 1 and "unreachable" in warnings[0].getMessage()
    finally:
        await limits.close()

