"""Sockets close when their session ends (4401), when silent (4000), when not reading (4408),
and on a server error (1011); everyone else carries on."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import pytest

import app.ws.endpoint as endpoint
from app.actions import conversations, messages
from app.actions.accounts import get_staff
from app.lib.clock import FrozenClock
from app.services import Services
from app.store import sessions as store_sessions
from tests.helpers import actor_for, all_messages, new_id
from tests.ws.conftest import People
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


@pytest.mark.app_config(WS_HEARTBEAT_SECONDS=0.2)
async def test_idle_timeout_closes_with_4401_at_the_next_heartbeat(people: People, clock: FrozenClock) -> None:
    async with ws_open(people.alice) as alice, ws_open(people.bob) as bob:
        clock.advance(30 * 60 + 1)
        assert await alice.closed(PROMPT) == 4401
        assert await bob.closed(PROMPT) == 4401
    assert await open_session_ids(people.svc, people.ids["alice"]) == set()


async def test_a_frame_after_the_session_ended_does_nothing(people: People, clock: FrozenClock, svc: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    """The session is checked on activity; a send that finds it ended is not stored."""
    monkeypatch.setattr(endpoint, "TOUCH_INTERVAL", 0.0)
    async with ws_open(people.alice) as alice:
        await still_works(alice, people.ab)
        clock.advance(30 * 60 + 1)  # idle past the limit; the 20 s heartbeat has not noticed yet
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


@pytest.mark.app_config(WS_HEARTBEAT_SECONDS=0.2)
async def test_the_server_pings_and_a_silent_client_is_closed_with_4000(people: People) -> None:
    async with ws_open(people.bob) as answering, ws_open(people.carol) as chatty:
        pongs = asyncio.create_task(answer_pings(answering, {"type": "pong"}))
        # Any frame counts as a sign of life, even one the server cannot use.
        other = asyncio.create_task(answer_pings(chatty, {"type": "not-a-pong"}))
        try:
            started = time.monotonic()  # before the silent socket starts its clock
            async with ws_open(people.alice) as silent:
                assert silent.hello["heartbeat"] == 0.2
                assert await silent.closed(2.0) == 4000
                waited = time.monotonic() - started
                assert 0.6 <= waited <= 1.8, waited  # three intervals of 0.2 s, checked every 0.2 s
                assert silent.taken("ping") != []  # pinged before giving up
            await asyncio.sleep(0.2)
        finally:
            pongs.cancel()
            other.cancel()
            await asyncio.gather(pongs, other, return_exceptions=True)
        # The other two outlived several intervals and are still open (answered at once, no
        # database work: on a busy machine a slow answer could outlast 3 intervals).
        assert len(answering.taken("ping")) >= 3
        assert chatty.taken("error") != []  # its frames were read, each a sign of life
        for sock in (answering, chatty):
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


@pytest.mark.app_config(WS_SEND_QUEUE=6, WS_RESUME_PAGE=1, WS_HEARTBEAT_SECONDS=0.1, MESSAGE_BURST=100)
async def test_a_silent_client_stuck_in_a_resume_is_closed_by_the_heartbeat(people: People, svc: Services) -> None:
    """The pages fill the queue; the held frames (snapshot, pings) do not overflow it."""
    bob_staff = await get_staff(svc, people.ids["bob"])
    assert bob_staff is not None
    for n in range(15):
        await messages.do_send_message(svc, actor_for(bob_staff), people.ab, f"missed {n}", new_id())
    async with ws_open(people.alice, "?after=0", stall=True) as alice:
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
