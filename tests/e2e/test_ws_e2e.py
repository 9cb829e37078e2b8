"""/ws against a real Hypercorn (HTTPS, hypercorn.toml) with the ``websockets`` client.

One server for the module on its instance folder's SQLite. The message rate limit and the
handshake limit are raised for this server: the tests pipeline hundreds of sends and open
many sockets from one address, and the limits have their own tests (tests/ws, tests/web).
Users log in once (``people``); each test makes its own conversation.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import pytest
from websockets.exceptions import InvalidStatus

from tests.e2e.harness import ServerProcess, login_client, start_server
from tests.e2e.wsclient import Socket, cookie_header, csrf_token, log_out, new_id, open_group, open_socket

pytestmark = pytest.mark.e2e

PASSWORD = "harbour kettle violet 3317"
SERVER_ENV = {
    "MEDCHAT_MESSAGE_RATE": "100000",
    "MEDCHAT_MESSAGE_BURST": "100000",
    "MEDCHAT_WS_HANDSHAKES_PER_MINUTE": "100000",
}


@dataclass
class Person:
    username: str
    cookies: httpx.Cookies

    @property
    def cookie(self) -> str:
        return "; ".join(f"{c.name}={c.value}" for c in self.cookies.jar)

    def http(self, server: ServerProcess) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=server.base_url, http2=True, verify=False, timeout=10.0, cookies=self.cookies)  # noqa: S501


@dataclass
class People:
    alice: Person
    bob: Person
    carol: Person
    erin: Person
    ada: Person  # administrator


@pytest.fixture(scope="module")
def ws_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    running = start_server(tmp_path_factory.mktemp("instance-ws-e2e"), env=SERVER_ENV, name="test_ws_e2e")
    try:
        yield running
    finally:
        running.stop()


async def _login(server: ServerProcess, username: str) -> Person:
    client = await login_client(server, username, PASSWORD)
    try:
        return Person(username, httpx.Cookies(client.cookies))
    finally:
        await client.aclose()


@pytest.fixture(scope="module")
def people(ws_server: ServerProcess) -> People:
    with ThreadPoolExecutor(5) as pool:
        made = [pool.submit(ws_server.create_user, name, PASSWORD) for name in ("alice", "bob", "carol", "erin")]
        made.append(pool.submit(ws_server.create_user, "ada", PASSWORD, admin=True))
        for done in made:
            done.result()

    async def login_all() -> People:
        return People(*[await _login(ws_server, n) for n in ("alice", "bob", "carol", "erin", "ada")])

    return asyncio.run(login_all())


def _title(what: str) -> str:
    return f"{what} {uuid.uuid4().hex[:8]}"


async def _group(server: ServerProcess, owner: Person, what: str, *members: Person) -> int:
    async with owner.http(server) as client:
        return await open_group(client, _title(what), [m.username for m in members])


async def _ack(sock: Socket, cid: str, timeout: float = 5.0) -> dict[str, object]:
    return await sock.expect_type("ack", timeout, client_msg_id=cid)


# --- handshake -----------------------------------------------------------------------------


async def test_permessage_deflate_is_not_negotiated(ws_server: ServerProcess, people: People) -> None:
    sock = await open_socket(ws_server, people.alice.cookie)  # websockets offers compression by default
    try:
        offered = sock.ws.request.headers.get("Sec-WebSocket-Extensions") if sock.ws.request else None
        assert offered and "permessage-deflate" in offered
        assert sock.ws.response is not None
        assert sock.ws.response.headers.get("Sec-WebSocket-Extensions") is None
        hello = await sock.expect_type("hello")
        assert hello["max_frame"] == 65536
    finally:
        await sock.close()


async def _refused(server: ServerProcess, cookies: str | None, origin: str | None = "own") -> int:
    with pytest.raises(InvalidStatus) as info:
        sock = await open_socket(server, cookies, origin=origin)
        await sock.close()
    return int(info.value.response.status_code)


async def test_foreign_origin_is_refused_with_403(ws_server: ServerProcess, people: People) -> None:
    assert await _refused(ws_server, people.alice.cookie, origin="https://evil.example") == 403
    # Same host, other port: another origin.
    assert await _refused(ws_server, people.alice.cookie, origin=f"https://127.0.0.1:{ws_server.http_port}") == 403


async def test_no_cookie_is_refused_with_401(ws_server: ServerProcess) -> None:
    assert await _refused(ws_server, None) == 401
    assert await _refused(ws_server, "__Host-medchat_session=forged.value") == 401


async def test_ended_session_is_refused_with_401(ws_server: ServerProcess, people: People) -> None:
    client = await login_client(ws_server, "alice", PASSWORD)  # a second session of alice's
    try:
        cookies = cookie_header(client)
        sock = await open_socket(ws_server, cookies)
        await sock.expect_type("hello")
        await sock.close()
        await log_out(client)
    finally:
        await client.aclose()
    assert await _refused(ws_server, cookies) == 401
    # Alice's other session is untouched.
    sock = await open_socket(ws_server, people.alice.cookie)
    await sock.expect_type("hello")
    await sock.close()


# --- frames --------------------------------------------------------------------------------


async def test_oversized_frame_closes_with_1009(ws_server: ServerProcess, people: People) -> None:
    conv = await _group(ws_server, people.alice, "big", people.bob)
    sock = await open_socket(ws_server, people.alice.cookie)
    try:
        await sock.expect_type("hello")
        cid = await sock.send_message(conv, "fits")
        await _ack(sock, cid)
        oversized = json.dumps({"type": "send", "client_msg_id": new_id(), "conversation_id": conv, "body": "x" * 65536})
        assert len(oversized.encode()) > 65536
        await sock.ws.send(oversized)
        assert await sock.wait_closed(5) == 1009
    finally:
        await sock.close()


async def test_a_lone_surrogate_gets_an_error_frame_not_1011(ws_server: ServerProcess, people: People) -> None:
    """JSON "\\ud800" in client_msg_id: echoed as the error's ref it could not be encoded."""
    conv = await _group(ws_server, people.alice, "surrogates", people.bob)
    sock = await open_socket(ws_server, people.alice.cookie)
    try:
        await sock.expect_type("hello")
        await sock.ws.send(json.dumps({"type": "send", "client_msg_id": "\ud800", "conversation_id": conv, "body": "x"}))
        error = await sock.expect_type("error", code="bad_client_msg_id")
        assert "ref" not in error
        await sock.ws.send(json.dumps({"type": "send", "client_msg_id": new_id(), "conversation_id": conv, "body": "a\udfffb"}))
        await sock.expect_type("error", code="bad_body")
        cid = await sock.send_message(conv, "still open")
        await _ack(sock, cid)
        assert not sock.closed
    finally:
        await sock.close()


# --- send, resume, idempotency -------------------------------------------------------------


async def test_send_ack_resume_after_reconnect_and_idempotent_resend(ws_server: ServerProcess, people: People) -> None:
    conv = await _group(ws_server, people.alice, "resume", people.bob)
    alice = await open_socket(ws_server, people.alice.cookie)
    bob = await open_socket(ws_server, people.bob.cookie)
    try:
        await alice.expect_type("hello")
        await bob.expect_type("hello")
        first_cid = await alice.send_message(conv, "K+ < 3.5 & BP > 140")
        first_ack = await _ack(alice, first_cid)
        first, first_position = first_ack["message"], first_ack["position"]
        assert isinstance(first, dict) and isinstance(first_position, int)
        assert first["body"] == "K+ < 3.5 & BP > 140" and first["client_msg_id"] == first_cid
        await bob.expect_message(first["id"])
        await alice.close()

        # Alice is away; Bob writes three messages.
        missed = []
        for n in range(3):
            cid = await bob.send_message(conv, f"while you were away {n}")
            missed.append((await _ack(bob, cid))["message"])
        missed_ids = [m["id"] for m in missed]  # type: ignore[index]
        assert missed_ids == sorted(missed_ids)

        alice = await open_socket(ws_server, people.alice.cookie, after=first["id"])
        page = await alice.expect_type("sync", timeout=5)
        assert page["done"] is True
        assert [m["id"] for m in page["messages"]] == missed_ids
        assert [m["body"] for m in page["messages"]] == [f"while you were away {n}" for n in range(3)]
        assert page["last_id"] == missed_ids[-1]
        # The v2 way, from the position the first ack gave: the same messages as changes.
        since = await open_socket(ws_server, people.alice.cookie, since=first_position)
        try:
            v2 = await since.expect_type("sync", timeout=5)
        finally:
            await since.close()
        assert v2["done"] is True and "messages" not in v2 and "last_id" not in v2
        assert [c["message"]["id"] for c in v2["changes"] if c["type"] == "message"] == missed_ids
        assert v2["position"] == page["position"] == max(c["position"] for c in v2["changes"])

        # The same client_msg_id again, on the new socket: the stored message, nothing new.
        bob_mark = len(bob.frames)
        await alice.send_message(conv, "K+ < 3.5 & BP > 140", client_msg_id=first_cid)
        again = await _ack(alice, first_cid)
        assert again["duplicate"] is True
        assert again["message"]["id"] == first["id"]  # type: ignore[index]
        # A live message after it shows that Bob's socket would have had the duplicate by now.
        probe_cid = await alice.send_message(conv, "probe")
        probe = (await _ack(alice, probe_cid))["message"]
        await bob.expect_message(probe["id"], start=bob_mark)  # type: ignore[index]
        assert [f["message"]["id"] for f in bob.of_type("message", bob_mark)] == [probe["id"]]  # type: ignore[index]
        # No message was delivered twice on the resumed socket either.
        seen = [m["id"] for f in alice.of_type("sync") for m in f["messages"]] + [f["message"]["id"] for f in alice.of_type("message")]
        assert len(seen) == len(set(seen))

        # One row per client_msg_id: a fresh socket's sync of the whole conversation.
        fresh = await open_socket(ws_server, people.bob.cookie)
        try:
            everything = [m for m in await fresh.sync_all(0) if m["conversation_id"] == conv]
        finally:
            await fresh.close()
        texts = [m for m in everything if m["kind"] == "text"]
        assert [m["client_msg_id"] for m in texts].count(first_cid) == 1
        assert [m["id"] for m in texts] == [first["id"], *missed_ids, probe["id"]]  # type: ignore[index]
    finally:
        await alice.close()
        await bob.close()


# --- SIGKILL durability --------------------------------------------------------------------


async def _count_in_conversation(server: ServerProcess, person: Person, conv: int) -> list[dict[str, object]]:
    sock = await open_socket(server, person.cookie)
    try:
        await sock.expect_type("hello")
        return [m for m in await sock.sync_all(0) if m["conversation_id"] == conv and m["kind"] == "text"]
    finally:
        await sock.close()


async def test_sigkill_mid_burst_loses_no_acked_message_and_resend_makes_no_duplicate(ws_server: ServerProcess, people: People) -> None:
    burst = 200
    conv = await _group(ws_server, people.alice, "crash", people.bob)
    alice = await open_socket(ws_server, people.alice.cookie)
    cids = [new_id() for _ in range(burst)]
    try:
        await alice.expect_type("hello")
        # Pipelined: every send goes out at once, acks come back as commits finish.
        await asyncio.gather(*(alice.send_message(conv, f"burst {n}", client_msg_id=cid) for n, cid in enumerate(cids)))
        await alice.expect(lambda f: alice.counts["ack"] >= 20, timeout=10, what="20 acks")
        ws_server.kill()
        await alice.wait_closed(5)
    finally:
        await alice.close()
    acked = {f["client_msg_id"]: f["message"]["id"] for f in alice.of_type("ack")}
    assert all(f["duplicate"] is False for f in alice.of_type("ack"))
    assert 20 <= len(acked) < burst, f"the kill was not mid-burst: {len(acked)} of {burst} acked"

    ws_server.start()  # same instance folder, same ports
    stored = await _count_in_conversation(ws_server, people.alice, conv)
    stored_cids = Counter(m["client_msg_id"] for m in stored)
    assert all(n == 1 for n in stored_cids.values()), "a client_msg_id stored twice"
    assert set(stored_cids) <= set(cids)
    for cid, message_id in acked.items():
        assert stored_cids[cid] == 1, f"acked {cid} (id {message_id}) is gone after the crash"
    assert {m["client_msg_id"]: m["id"] for m in stored if m["client_msg_id"] in acked} == acked
    committed_unacked = len(stored) - len(acked)

    # Resend everything, acked or not, with the same ids.
    alice = await open_socket(ws_server, people.alice.cookie)
    try:
        await alice.expect_type("hello")
        await asyncio.gather(*(alice.send_message(conv, f"burst {n}", client_msg_id=cid) for n, cid in enumerate(cids)))
        await alice.expect(lambda f: alice.counts["ack"] >= burst, timeout=30, what=f"{burst} acks")
    finally:
        await alice.close()
    resent = {f["client_msg_id"]: f for f in alice.of_type("ack")}
    assert set(resent) == set(cids)
    for cid, message_id in acked.items():
        assert resent[cid]["duplicate"] is True and resent[cid]["message"]["id"] == message_id
    assert sum(1 for f in resent.values() if f["duplicate"]) == len(stored)

    final = await _count_in_conversation(ws_server, people.alice, conv)
    assert len(final) == burst
    assert Counter(m["client_msg_id"] for m in final) == Counter(cids)
    print(f"\nSIGKILL: {len(acked)} of {burst} acked before the kill, {committed_unacked} more committed without an ack")


async def test_sigkill_while_many_sockets_send_at_once_loses_no_acked_message_of_a_batch(ws_server: ServerProcess, people: People) -> None:
    """Group commit (app/store/writer.py): concurrent senders' units share one transaction
    and are acked only after its commit (SQLite ``synchronous=FULL``). Twenty sockets of
    four people pipeline their sends at once, so units queue while a commit runs and form
    batches; the server is SIGKILLed mid-run. After the restart every acked client_msg_id
    is in the SQLite file, once, under the acked id."""
    per_socket, sockets_each = 30, 5
    senders = [people.alice, people.bob, people.carol, people.erin]
    conv = await _group(ws_server, people.alice, "crash batches", people.bob, people.carol, people.erin)
    socks = [await open_socket(ws_server, person.cookie) for person in senders for _ in range(sockets_each)]
    plan = [(sock, [new_id() for _ in range(per_socket)]) for sock in socks]
    total = per_socket * len(socks)
    try:
        await asyncio.gather(*(sock.expect_type("hello") for sock in socks))
        # Every socket pipelines all of its sends at once (a socket's sends run one after
        # another on the server; the sockets' run side by side, so the writer batches them).
        await asyncio.gather(*(
            sock.send_message(conv, f"batch {n}", client_msg_id=cid) for sock, cids in plan for n, cid in enumerate(cids)
        ))
        await socks[0].expect(lambda f: sum(s.counts["ack"] for s in socks) >= total // 4, timeout=30, what="a quarter acked")
        ws_server.kill()
        for sock in socks:
            await sock.wait_closed(5)
    finally:
        for sock in socks:
            await sock.close()
    acks = [(t, f) for sock in socks for f, t in zip(sock.frames, sock.times, strict=True) if f.get("type") == "ack"]
    acked = {f["client_msg_id"]: f["message"]["id"] for _, f in acks}
    assert len(acked) == len(acks) and all(f["duplicate"] is False for _, f in acks)
    assert total // 4 <= len(acked) < total, f"the kill was not mid-run: {len(acked)} of {total} acked"
    assert sum(1 for sock in socks if sock.counts["ack"]) >= len(socks) // 2, "the senders did not run side by side"

    ws_server.start()  # same instance folder, same ports
    with sqlite3.connect(ws_server.instance / "medchat.db") as db:
        stored = db.execute("SELECT client_msg_id, id FROM messages WHERE conversation_id = ? AND kind = 'text'", (conv,)).fetchall()
    stored_cids = Counter(cid for cid, _ in stored)
    assert all(n == 1 for n in stored_cids.values()), "a client_msg_id stored twice"
    assert set(stored_cids) <= {cid for _, cids in plan for cid in cids}
    lost = [cid for cid in acked if cid not in stored_cids]
    assert lost == [], f"{len(lost)} acked messages are gone after the crash"
    assert {cid: mid for cid, mid in stored if cid in acked} == acked
    # Acks of one batch leave together after its commit: how they clustered (for the report).
    times = sorted(t for t, _ in acks)
    clusters = [1]
    for before, after in zip(times, times[1:], strict=False):
        if after - before < 0.002:
            clusters[-1] += 1
        else:
            clusters.append(1)
    print(
        f"\nSIGKILL (batches): {len(socks)} sockets, {len(acked)} of {total} acked before the kill, all"
        f" {len(acked)} found after the restart, {len(stored) - len(acked)} more committed without an ack;"
        f" acks in {len(clusters)} clusters (< 2 ms apart), largest {max(clusters)}"
    )


# --- slow consumer -------------------------------------------------------------------------


async def test_slow_consumer_is_closed_4408_and_does_not_slow_a_reader(ws_server: ServerProcess, people: People) -> None:
    """Carol's socket is never read; Alice sends big messages to a group with Carol and Bob.

    Carol's client keeps at most 4 frames and an 8 KiB kernel receive buffer, so what the
    server cannot hand over piles up in its send buffer (at most 4 MiB here) and then in its
    256-frame queue, which overflows after about 500 messages of 16 KB: close 4408. The
    close frame comes after what was already in the pipe, so Carol sees it once she reads.
    """
    conv = await _group(ws_server, people.alice, "slow", people.bob, people.carol)
    # 3990 four-byte characters: a 16 KB frame, so the kernel's buffers fill after a few hundred.
    body = "\U0001fa7a" * 3990
    total, window = 800, 4
    stalled = await open_socket(ws_server, people.carol.cookie, read=False, receive_buffer=8192, max_queue=4)
    reader = await open_socket(ws_server, people.bob.cookie)
    sender = await open_socket(ws_server, people.alice.cookie)
    try:
        await reader.expect_type("hello")
        await sender.expect_type("hello")
        sent_at: dict[str, float] = {}
        started = time.monotonic()
        for n in range(total):
            if n - sender.counts["ack"] >= window:
                await sender.expect(lambda f, k=n - window: sender.counts["ack"] > k, timeout=10, start=len(sender.frames), what="an ack")
            cid = new_id()
            sent_at[cid] = time.monotonic()
            await sender.send_message(conv, f"{n} {body}", client_msg_id=cid)
        await sender.expect(lambda f: sender.counts["ack"] >= total, timeout=30, what="every ack")
        sending_took = time.monotonic() - started
        ack_ids = {f["message"]["id"]: f["client_msg_id"] for f in sender.of_type("ack")}
        ack_at = {f["client_msg_id"]: at for f, at in zip(sender.frames, sender.times, strict=True) if f.get("type") == "ack"}
        last_id = max(ack_ids)
        await reader.expect_message(last_id, timeout=10)
        latency, lag = [], []
        for frame, at in zip(reader.frames, reader.times, strict=True):
            if frame.get("type") == "message" and frame["message"]["id"] in ack_ids:
                cid = ack_ids[frame["message"]["id"]]
                latency.append(at - sent_at[cid])
                lag.append(at - ack_at[cid])
        got = [f["message"]["id"] for f in reader.of_type("message") if f["message"]["id"] in ack_ids]
        assert got == sorted(ack_ids), "the reader missed or reordered messages"
        assert not reader.closed

        # Now the stalled client reads what was buffered for it: the server gave up on it.
        stalled.start_reading()
        code = await stalled.wait_closed(10)
        received = len(stalled.of_type("message"))
        latency.sort()
        lag.sort()

        def pct(values: list[float], q: float) -> float:
            return values[min(len(values) - 1, int(len(values) * q))]

        print(
            f"\nslow consumer: closed {code} after {received} of {total} messages; {total} sends took {sending_took:.1f} s; "
            f"reader latency from send p50 {pct(latency, .5) * 1000:.1f} ms p99 {pct(latency, .99) * 1000:.1f} ms max {latency[-1] * 1000:.1f} ms; "
            f"reader behind the sender's ack p50 {pct(lag, .5) * 1000:.1f} ms p99 {pct(lag, .99) * 1000:.1f} ms max {lag[-1] * 1000:.1f} ms"
        )
        assert code == 4408, f"closed with {code} {stalled.close_reason!r} after {received} messages"
        assert received < total
        assert [f["message"]["id"] for f in stalled.of_type("message")] == sorted(ack_ids)[:received], "not a gap-free prefix"
        # The reader gets each message with the sender's ack (the same publish), however
        # stuck the third socket is; and end to end it stays well under a second.
        assert pct(lag, 0.99) < 0.1 and lag[-1] < 0.5, "the reader got messages later than the sender's acks"
        assert pct(latency, 0.99) < 1.0 and latency[-1] < 3.0, "the reader was slowed down"
    finally:
        await stalled.close()
        await reader.close()
        await sender.close()


# --- sessions ended elsewhere --------------------------------------------------------------


async def test_logout_elsewhere_closes_that_sessions_socket_with_4401(ws_server: ServerProcess, people: People) -> None:
    second = await login_client(ws_server, "alice", PASSWORD)
    other = await open_socket(ws_server, people.alice.cookie)  # alice's first session
    doomed = await open_socket(ws_server, cookie_header(second))
    try:
        await other.expect_type("hello")
        await doomed.expect_type("hello")
        token = await csrf_token(second)
        started = time.monotonic()
        done = await second.post("/logout", data={"csrf_token": token})
        assert done.status_code == 303
        assert await doomed.wait_closed(2.0 - (time.monotonic() - started)) == 4401
        took = doomed.closed_at - started  # type: ignore[operator]
        print(f"\nlogout -> 4401 in {took * 1000:.0f} ms")
        # The other session's socket stays open and works.
        conv = await _group(ws_server, people.alice, "still here", people.bob)
        cid = await other.send_message(conv, "still here")
        await _ack(other, cid)
        assert not other.closed
    finally:
        await second.aclose()
        await other.close()
        await doomed.close()


async def test_deactivation_closes_the_users_sockets_with_4401(ws_server: ServerProcess, people: People) -> None:
    victim = await open_socket(ws_server, people.erin.cookie)
    try:
        hello = await victim.expect_type("hello")
        async with people.ada.http(ws_server) as admin:
            path = f"/admin/staff/{hello['user_id']}"
            token = await csrf_token(admin, path)
            started = time.monotonic()
            done = await admin.post(f"{path}/deactivate", data={"csrf_token": token})
            assert done.status_code == 303, done.text[:300]
        assert await victim.wait_closed(2.0 - (time.monotonic() - started)) == 4401
        print(f"\ndeactivate -> 4401 in {(victim.closed_at - started) * 1000:.0f} ms")  # type: ignore[operator]
    finally:
        await victim.close()
    assert await _refused(ws_server, people.erin.cookie) == 401

