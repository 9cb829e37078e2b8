"""Sockets close when their session ends (4401), when silent (4000), when not reading (4408),
and on a server error (1011); everyone else carries on."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

import app.ws.endpoint as endpoint
from app.actions import conversations, messages
from app.actions.accounts import get_staff
from app.lib.clock import FrozenClock
from app.services import Services
from app.store import sessions as store_sessions
from tests.helpers import actor_for, all_messages, new_id
from tests.ws.conftest import People, heartbeats_waiting
from tests.ws.wsclient import Sock, ws_open

pytestmark = pytest.mark.usefixtures("database_kind")

PROMPT = 2.0  # the protocol promises 2 s (in one process it is immediate)


async def still_works(sock: Sock, conversation_id: int) -> None:
    cid = new_id()
    await sock.send({"type": "send", "client_msg_id": cid, "conversation_id": conversation_id, "body": "still here"})
    assert (await sock.expect("ack"))["client_msg_id"] == cid


async def open_session_ids(svc: Services, user_id: int) -> set[str]:
    async with svc.db.reading() as s:
        return {info.id for info in await store_sessions.open_sessions(s, user_id)}


# Session end


async def test_logout_closes_that_sessions_sockets_with_4401(people: People, login_as: Any) -> None:
    other_browser = await login_as("alice")
    async with (
        ws_open(people.alice) as tab1, ws_open(people.alice) as tab2,
        ws_open(other_browser) as elsewhere, ws_open(people.bob) as bob,
    ):
        response = await people.alice.submit("/logout")
        assert response.status_code == 303
        assert await tab1.closed(PROMPT) == 4401
        assert await tab2.closed(PROMPT) == 4401
        # alice's other session and bob are not affected.
        await still_works(elsewhere, people.ab)
        await still_works(bob, people.ab)


async def test_sign_out_everywhere_closes_the_other_sessions(people: People, login_as: Any) -> None:
    other_browser = await login_as("alice")
    async with ws_open(people.alice) as old, ws_open(other_browser) as here:
        response = await other_browser.submit("/account/sessions/end-others", page="/account/sessions")
        assert response.status_code == 303
        assert await old.closed(PROMPT) == 4401
        await still_works(here, people.ab)


async def test_ending_one_session_from_the_list_closes_its_sockets(people: People, login_as: Any, svc: Services) -> None:
    [first] = await open_session_ids(svc, people.ids["alice"])
    other_browser = await login_as("alice")
    async with ws_open(people.alice) as old, ws_open(other_browser) as here:
        response = await other_browser.submit(f"/account/sessions/{first}/end", page="/account/sessions")
        assert response.status_code == 303
        assert await old.closed(PROMPT) == 4401
        await still_works(here, people.ab)


@pytest.mark.parametrize("change", ["deactivate", "reset"])
async def test_admin_deactivation_or_password_reset_closes_every_socket(people: People, login_as: Any, change: str) -> None:
    root = await login_as("root", admin=True)
    second = await login_as("bob")
    async with ws_open(people.bob) as b1, ws_open(second) as b2, ws_open(people.alice) as alice:
        response = await root.submit(f"/admin/staff/{people.ids['bob']}/{change}", page="/admin/staff")
        assert response.status_code in (200, 303)
        assert await b1.closed(PROMPT) == 4401
        assert await b2.closed(PROMPT) == 4401
        await still_works(alice, people.ab)


@pytest.mark.app_config(WS_HEARTBEAT_SECONDS=3600)
async def test_idle_timeout_closes_with_4401_at_the_next_heartbeat(people: People, clock: FrozenClock, app: Any) -> None:
    async with ws_open(people.alice) as alice, ws_open(people.bob) as bob:
        await heartbeats_waiting(app, 2)  # both heartbeats wait
        clock.advance(30 * 60 + 1)  # idle past the limit: nothing checks until the heartbeat
        quiet = [f["type"] for s in (alice, bob) for f in await s.quiet()]  # and still open
        assert "ping" not in [f["type"] for s in (alice, bob) for f in s.seen]
        assert set(quiet) <= {"presence", "presence_snapshot"}
        clock.advance(3600 - (30 * 60 + 1))  # the heartbeat: a ping, then the session check
        assert await alice.closed(PROMPT) == 4401
        assert await bob.closed(PROMPT) == 4401
        assert len(alice.taken("ping")) == len(bob.taken("ping")) == 1
    assert await open_session_ids(people.svc, people.ids["alice"]) == set()


@pytest.mark.app_config(WS_HEARTBEAT_SECONDS=3600)
async def test_a_frame_after_the_session_ended_does_nothing(people: People, clock: FrozenClock, svc: Services) -> None:
    """The session is checked on activity; a send that finds it ended is not stored."""
    async with ws_open(people.alice) as alice:
        await still_works(alice, people.ab)
        # Idle past the limit (and past SESSION_TOUCH_SECONDS, so the next frame re-checks the
        # session); the hourly heartbeat has not come yet.
        clock.advance(30 * 60 + 1)
        await alice.send({"type": "send", "client_msg_id": new_id(), "conversation_id": people.ab, "body": "too late"})
        assert await alice.closed(PROMPT) == 4401
        assert alice.taken("ack")[1:] == []
    assert [m.body for m in await all_messages(svc)] == ["still here"]


# Heartbeat


async def answer_pings(sock: Sock, reply: dict[str, Any]) -> None:
    with contextlib.suppress(Exception):
        while True:
            await sock.expect("ping", timeout=5)
            await sock.send(reply)


async def test_the_server_pings_and_a_silent_client_is_closed_with_4000(people: People, clock: FrozenClock, app: Any) -> None:
    interval = 20  # WS_HEARTBEAT_SECONDS
    async with ws_open(people.bob) as answering, ws_open(people.carol) as chatty, ws_open(people.alice) as silent:
        assert silent.hello["heartbeat"] == interval
        for _ in range(3):  # silent for 1, 2, 3 intervals: not more than three, so pinged
            await heartbeats_waiting(app, 3)  # the three heartbeats wait
            clock.advance(interval)
            for sock in (answering, chatty, silent):
                await sock.expect("ping")
            await answering.send({"type": "pong"})
            # Any frame counts as a sign of life, even one the server cannot use.
            await chatty.send({"type": "not-a-pong"})
            await chatty.error("unknown_type")  # read by the server
        await heartbeats_waiting(app, 3)
        clock.advance(interval)  # silent for four intervals: more than three
        assert await silent.closed(PROMPT) == 4000
        assert len(silent.taken("ping")) == 3  # pinged before giving up
        # The other two answered and are still open.
        for sock in (answering, chatty):
            await sock.expect("ping")
            assert len(sock.taken("ping")) == 4
            await sock.send({"type": "still-there?"})
            await sock.error("unknown_type")


# Backpressure


@pytest.mark.app_config(WS_SEND_QUEUE=4)
async def test_a_client_that_does_not_read_is_closed_with_4408_and_nobody_else_waits(people: People, svc: Services) -> None:
    alice_staff = await get_staff(svc, people.ids["alice"])
    assert alice_staff is not None
    group = await conversations.do_create_group(svc, actor_for(alice_staff), "Ward 7", ["bob", "carol"])
    async with ws_open(people.alice) as alice, ws_open(people.carol) as carol, ws_open(people.bob, stall=True) as bob:
        acked = []
        for n in range(8):
            cid = new_id()
            await alice.send({"type": "send", "client_msg_id": cid, "conversation_id": group, "body": f"m{n}"})
            acked.append((await alice.expect("ack"))["message"]["id"])
        assert await bob.closed(PROMPT) == 4408
        for sock in (alice, carol):
            got = []
            while len(got) < len(acked):
                got.append((await sock.expect("message"))["message"]["id"])
            assert got == acked
        await still_works(carol, group)


@pytest.mark.app_config(WS_SEND_QUEUE=2, WS_RESUME_PAGE=1, MESSAGE_BURST=100)
async def test_a_client_that_stops_reading_during_a_resume_is_closed_too(people: People, svc: Services) -> None:
    bob_staff = await get_staff(svc, people.ids["bob"])
    assert bob_staff is not None
    for n in range(6):
        await messages.do_send_message(svc, actor_for(bob_staff), people.ab, f"missed {n}", new_id())
    async with ws_open(people.alice, "?after=0", stall=True) as alice, ws_open(people.bob) as bob:
        for n in range(4):  # live events pile up behind the stuck resume
            await bob.send({"type": "send", "client_msg_id": new_id(), "conversation_id": people.ab, "body": f"live {n}"})
            await bob.expect("ack")
        assert await alice.closed(PROMPT) == 4408


@pytest.mark.app_config(WS_SEND_QUEUE=6, WS_RESUME_PAGE=1, MESSAGE_BURST=100)
async def test_a_silent_client_stuck_in_a_resume_is_closed_by_the_heartbeat(
    people: People, svc: Services, clock: FrozenClock, app: Any,
) -> None:
    """The pages fill the queue; the held frames (snapshot, pings) do not overflow it."""
    bob_staff = await get_staff(svc, people.ids["bob"])
    assert bob_staff is not None
    for n in range(15):
        await messages.do_send_message(svc, actor_for(bob_staff), people.ab, f"missed {n}", new_id())
    async with ws_open(people.alice, "?after=0", stall=True) as alice:
        for _ in range(4):  # four heartbeats (20 s): more than three intervals silent
            await heartbeats_waiting(app, 1)
            clock.advance(20)
        assert await alice.closed(PROMPT) == 4000


# Server errors


async def test_an_unexpected_error_closes_with_1011(people: People, monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(endpoint, "do_send_message", broken)
    async with ws_open(people.alice) as alice, ws_open(people.bob) as bob:
        await alice.send({"type": "send", "client_msg_id": new_id(), "conversation_id": people.ab, "body": "x"})
        assert await alice.closed(PROMPT) == 1011
        await bob.send({"type": "sync", "after_id": 0})  # bob's socket is not affected
        assert (await bob.expect("sync"))["done"] is True


@pytest.mark.app_config(WS_HEARTBEAT_SECONDS=600, WS_SESSION_CHECK_BATCH_SECONDS=0.05)
async def test_the_heartbeats_session_checks_share_one_query(people: People, clock: FrozenClock, app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """1000 sockets re-check their sessions every interval: the checks of a moment are one
    read (app/lib/batch.py), and live sessions stay open (an expired one closing at the
    next check: test_idle_timeout_closes_with_4401_at_the_next_heartbeat)."""
    reads: list[int] = []
    original = store_sessions.sessions_with_users

    async def counted(s: Any, hashes: list[str]) -> Any:
        reads.append(len(hashes))
        return await original(s, hashes)

    monkeypatch.setattr(store_sessions, "sessions_with_users", counted)
    async with ws_open(people.alice) as alice, ws_open(people.bob) as bob, ws_open(people.carol) as carol:
        await heartbeats_waiting(app, 3)
        assert sum(reads) == 3  # the handshakes' own reads (batched when they come together)
        reads.clear()
        for rounds in (1, 2):
            await heartbeats_waiting(app, 3)
            clock.advance(600)  # every heartbeat due at once: a ping each, then the checks
            for sock in (alice, bob, carol):
                await sock.expect("ping")
            await heartbeats_waiting(app, 3)
            assert reads == [3] * rounds
        for sock in (alice, bob, carol):
            assert "ping" not in [f["type"] for f in await sock.quiet()]  # open, nothing more


@pytest.mark.app_config(WS_HEARTBEAT_SECONDS=3600, WS_SESSION_CHECK_BATCH_SECONDS=0.05)
async def test_activity_keeps_the_session_alive_with_batched_touches_and_no_reads(people: People, clock: FrozenClock, svc: Services, app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A frame past SESSION_TOUCH_SECONDS touches a session known to be live without
    reading it: the touches of a moment are one UPDATE (1000 sockets that connected
    together touch together), the person's activity holds off the idle limit, and once
    the socket's own idea of the limit has passed the session is read again and ends."""
    reads: list[str] = []
    original = store_sessions.session_with_user

    async def counted(s: Any, session_hash: str) -> Any:
        reads.append(session_hash)
        return await original(s, session_hash)

    monkeypatch.setattr(store_sessions, "session_with_user", counted)

    async def last_seen(user: str) -> set[Any]:
        async with svc.db.reading() as s:
            return {info.last_seen_at for info in await store_sessions.open_sessions(s, people.ids[user])}

    async with ws_open(people.alice) as alice, ws_open(people.bob) as bob:
        for _ in range(3):  # 3 x 20 min: twice the 30-minute idle limit, busy all along
            clock.advance(20 * 60)
            await still_works(alice, people.ab)
            await still_works(bob, people.ab)
            now = clock.now()
            async with asyncio.timeout(5):
                while await last_seen("alice") != {now} or await last_seen("bob") != {now}:
                    await asyncio.sleep(0.02)  # the batch's window, then its commit
        assert reads == []  # no socket read its session to touch it
        assert 3 <= app.extensions["medchat_ws"].session_touches.calls <= 6  # one UPDATE a batch
        # Quiet past the idle limit: the next frame reads the session, finds it ran out, ends it.
        clock.advance(30 * 60 + 1)
        await alice.send({"type": "send", "client_msg_id": new_id(), "conversation_id": people.ab, "body": "too late"})
        assert await alice.closed(PROMPT) == 4401
        assert len(reads) == 1
    assert await open_session_ids(svc, people.ids["alice"]) == set()


@pytest.mark.app_config(WS_HEARTBEAT_SECONDS=3600)
async def test_a_heartbeat_check_cancelled_before_it_starts_leaves_no_coroutine_unawaited(people: People, app: Any) -> None:
    """The heartbeat runs a socket's session check as a task; the socket closing first
    cancels it before it starts. Nothing of it may be left never awaited (the bench's
    server log showed ``coroutine 'SocketHandler._check_session' was never awaited``)."""
    import gc
    import warnings

    async with ws_open(people.alice):
        await heartbeats_waiting(app, 1)
        [handler] = {beat.callback.__self__ for _, _, beat in app.extensions["medchat_ws"].heartbeat._due}
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            follow_up = handler._beat()
            assert follow_up is not None
            task = asyncio.get_running_loop().create_task(follow_up)
            task.cancel()  # before it ever ran
            with contextlib.suppress(asyncio.CancelledError):
                await task
            del follow_up, task
            gc.collect()
        assert [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)] == []
