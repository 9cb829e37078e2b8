"""The /ws handshake: session cookie, Origin allowlist, handshake rate, hello, ``?after``."""

from __future__ import annotations

from typing import Any

import pytest
from quart import Quart

from app.lib.clock import FrozenClock
from tests.helpers import BAD_IDS
from tests.support import Client
from tests.ws.conftest import People
from tests.ws.wsclient import OWN_ORIGIN, refused, ws_open

pytestmark = pytest.mark.usefixtures("database_kind")


def cookie_header(client: Client) -> str:
    jar = client.raw.cookie_jar
    assert jar is not None
    return "; ".join(f"{c.name}={c.value}" for c in jar)


@pytest.mark.app_config(HTTPS_REDIRECT=True)
async def test_a_cleartext_socket_is_403_when_https_is_required(people: People) -> None:
    """The plain-HTTP port only redirects; a socket there is refused before the cookie is read."""
    assert await refused(people.alice, scheme="ws") == 403
    assert await refused(people.alice, scheme="ws", headers={"Origin": "http://localhost"}) == 403
    async with ws_open(people.alice) as sock:  # wss: accepted
        assert sock.hello["type"] == "hello"


async def test_anonymous_is_401(client: Client) -> None:
    assert await refused(client) == 401
    assert await refused(client, "?after=0") == 401


async def test_a_cookie_replayed_after_logout_is_401(app: Quart, people: People) -> None:
    stolen = cookie_header(people.alice)
    replay = Client(app)
    async with ws_open(replay, headers={"cookie": stolen}) as sock:
        assert sock.hello["user_id"] == people.ids["alice"]
    response = await people.alice.submit("/logout")
    assert response.status_code == 303
    assert await refused(replay, headers={"cookie": stolen}) == 401
    assert await refused(people.alice) == 401  # the cookie is gone from the browser too


async def test_sessions_ended_elsewhere_idle_or_deactivated_are_401(app: Quart, people: People, login_as: Any, clock: FrozenClock) -> None:
    # "Sign out everywhere" from a second browser ends alice's first session.
    second = await login_as("alice")
    response = await second.submit("/account/sessions/end-others", page="/account/sessions")
    assert response.status_code == 303
    assert await refused(people.alice) == 401
    async with ws_open(second) as sock:
        assert sock.hello["user_id"] == people.ids["alice"]
    # Idle for longer than SESSION_IDLE_SECONDS (30 min).
    clock.advance(30 * 60 + 1)
    assert await refused(second) == 401
    assert await refused(people.bob) == 401
    # Deactivated by an administrator.
    carol = await login_as("carol")
    root = await login_as("root", admin=True)
    response = await root.submit(f"/admin/staff/{people.ids['carol']}/deactivate", page="/admin/staff")
    assert response.status_code == 303
    assert await refused(carol) == 401


async def test_past_the_absolute_lifetime_is_401(login_as: Any, clock: FrozenClock, app: Quart) -> None:
    alice = await login_as("alice")
    for _ in range(24):  # active every 29 min: never idle, 11.6 h in all
        clock.advance(29 * 60)
        assert (await alice.get("/chats")).status_code == 200
    async with ws_open(alice) as sock:
        assert sock.hello["type"] == "hello"
    clock.advance(29 * 60)  # past the 12 h lifetime
    assert await refused(alice) == 401


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example",
        "http://localhost",  # the right host over the wrong scheme
        "https://localhost:8443",  # another port is another origin
        "https://localhost.evil.example",
        "https://evil.example/https://localhost",
        "null",
        "",
    ],
)
async def test_a_foreign_origin_is_403(people: People, origin: str) -> None:
    assert await refused(people.alice, headers={"Origin": origin}) == 403


async def test_a_foreign_origin_is_403_before_anything_else(client: Client) -> None:
    assert await refused(client, headers={"Origin": "https://evil.example"}) == 403


@pytest.mark.app_config(ALLOWED_ORIGINS=["https://chat.hospital.example"])
async def test_own_and_allowed_origins_are_accepted(people: People) -> None:
    for headers in ({"Origin": OWN_ORIGIN}, {"Origin": "https://chat.hospital.example"}, None):
        async with ws_open(people.alice, headers=headers) as sock:
            assert sock.hello["user_id"] == people.ids["alice"]
    assert await refused(people.alice, headers={"Origin": "https://other.hospital.example"}) == 403


@pytest.mark.app_config(WS_HANDSHAKES_PER_MINUTE=3)
async def test_handshakes_per_user_are_limited(people: People) -> None:
    # From three different addresses: the limit is the user's.
    for n in range(3):
        async with ws_open(people.alice, address=f"198.51.100.{n}") as sock:
            assert sock.hello["user_id"] == people.ids["alice"]
    assert await refused(people.alice, address="198.51.100.7") == 429
    # Nobody else is affected.
    async with ws_open(people.bob, address="198.51.100.7") as sock:
        assert sock.hello["user_id"] == people.ids["bob"]


@pytest.mark.app_config(WS_HANDSHAKES_PER_MINUTE=3)
async def test_handshakes_per_address_are_limited(people: People, login_as: Any) -> None:
    for client in (people.alice, people.bob, people.carol):
        async with ws_open(client, address="203.0.113.5"):
            pass
    dave = await login_as("dave")
    assert await refused(dave, address="203.0.113.5") == 429
    async with ws_open(dave, address="203.0.113.6") as sock:
        assert sock.hello["type"] == "hello"


async def test_hello_then_presence_snapshot(people: People) -> None:
    async with ws_open(people.alice) as one, ws_open(people.alice) as two:
        hello = one.hello
        assert hello == {
            "type": "hello", "user_id": people.ids["alice"], "socket_id": hello["socket_id"],
            "heartbeat": 20, "max_frame": 64 * 1024,
        }
        assert two.hello["socket_id"] != hello["socket_id"]
        assert (await one.only("presence_snapshot"))["users"]
        # Nothing else arrives unasked (no sync without ?after=).
        assert [f["type"] for f in await one.quiet()] == []


@pytest.mark.parametrize("query", ["?after=", "?after=abc", "?after=-1", "?after=1.5", "?after=%C2%B2", "?after=0x10"])
async def test_a_malformed_after_is_ignored(people: People, query: str) -> None:
    """Not a plain decimal number: no resume, and the socket works as usual."""
    async with ws_open(people.alice, query) as sock:
        await sock.only("presence_snapshot")
        assert [f["type"] for f in await sock.quiet()] == []
        await sock.send({"type": "sync", "after_id": 0})
        page = await sock.only("sync")
        assert page["done"] is True


async def test_every_bad_id_as_after_is_ignored_or_means_the_end(people: People) -> None:
    """The shared table of bad ids (tests/helpers.py): plain digits beyond every id mean
    "nothing missed"; anything else is ignored. Never a 500 at the handshake, never a 1011."""
    for label, encoded in BAD_IDS:
        async with ws_open(people.alice, "?after=" + encoded) as sock:  # hello came
            if encoded.isascii() and encoded.isdigit():  # the test's own check: 20+ ASCII digits
                page = await sock.expect("sync")
                assert page["messages"] == [] and page["done"] is True, label
            else:
                await sock.only("presence_snapshot")
                assert [f["type"] for f in await sock.quiet()] == [], label


@pytest.mark.parametrize("after", ["99999999999999999999999", "9" * 5000, "9223372036854775807"])
async def test_a_huge_after_means_nothing_missed(people: People, after: str) -> None:
    async with ws_open(people.alice, "?after=" + after) as sock:
        page = await sock.expect("sync")
        assert page["messages"] == [] and page["done"] is True
        await sock.send({"type": "sync", "after_id": 2**63 - 1})
        assert (await sock.expect("sync"))["messages"] == []
    async with ws_open(people.alice, "?after=000000000000000000000000") as sock:
        page = await sock.expect("sync")  # zero with leading zeros: everything
        assert page["done"] is True and len(page["messages"]) == 0  # nothing was sent yet
