"""Two Hypercorn processes on one PostgreSQL database and one Redis: /ws across instances.

Needs MEDCHAT_TEST_DATABASE_URL and MEDCHAT_TEST_REDIS_URL (scripts/test-services.sh; CI
exports both). The module makes its own database on that PostgreSQL server and runs its
own redis-server (same settings as scripts/test-services.sh, on a free port): the outage
test shuts Redis down, and the shared one may be serving other test runs, whose events
on the same channel would otherwise reach these servers' sockets. Both instances share one
secret key, so a session cookie from one is good on the other.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import socket
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.e2e.harness import ARTIFACTS, ServerProcess, free_port, login_client, start_server
from tests.e2e.wsclient import Socket, cookie_header, csrf_token, open_group, open_socket, post_form

DATABASE_URL = os.environ.get("MEDCHAT_TEST_DATABASE_URL", "")
REDIS_URL = os.environ.get("MEDCHAT_TEST_REDIS_URL", "")

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not (DATABASE_URL.startswith("postgresql") and REDIS_URL),
        reason="multi-instance test needs MEDCHAT_TEST_DATABASE_URL (PostgreSQL) and MEDCHAT_TEST_REDIS_URL: run scripts/test-services.sh",
    ),
]

PASSWORD = "copper meadow lantern 5180"
LIMITS = {"MEDCHAT_MESSAGE_RATE": "100000", "MEDCHAT_MESSAGE_BURST": "100000", "MEDCHAT_WS_HANDSHAKES_PER_MINUTE": "100000"}


class RedisServer:
    """A redis-server of our own, started as scripts/test-services.sh starts the shared one."""

    def __init__(self, port: int, workdir: Path) -> None:
        self.port = port
        self.workdir = workdir
        self.log = ARTIFACTS / "redis-test_ws_multi.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert self.process is None
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir), "--logfile", str(self.log)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not self.answers():
            assert self.process.poll() is None, f"redis-server exited: see {self.log}"
            assert time.monotonic() < deadline, "redis-server did not answer PING within 10 s"
            time.sleep(0.05)

    def shutdown(self) -> None:
        """``redis-cli shutdown nosave``, as an operator would; then make sure it is gone."""
        proc, self.process = self.process, None
        if proc is None:
            return
        subprocess.run(["redis-cli", "-p", str(self.port), "shutdown", "nosave"], capture_output=True, timeout=10, check=False)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    assert shutil.which("redis-server") and shutil.which("redis-cli"), "MEDCHAT_TEST_REDIS_URL is set but redis-server/redis-cli are not installed"
    server = RedisServer(free_port(), tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.shutdown()


def _asyncpg_dsn(url: str, database: str | None = None) -> str:
    parts = urlsplit(url.replace("postgresql+asyncpg://", "postgresql://", 1))
    path = f"/{database}" if database else parts.path
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment))


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    """A fresh PostgreSQL database on the test server, dropped afterwards."""
    import asyncpg

    name = f"medchat_e2e_{uuid.uuid4().hex[:12]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(_asyncpg_dsn(DATABASE_URL), timeout=10)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        parts = urlsplit(DATABASE_URL)
        yield urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@dataclass
class Cluster:
    a: ServerProcess
    b: ServerProcess
    redis: RedisServer


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, database_url: str, redis_server: RedisServer) -> Iterator[Cluster]:
    env = {"MEDCHAT_DATABASE_URL": database_url, "MEDCHAT_REDIS_URL": redis_server.url, **LIMITS}
    # Two instance folders with one secret key (what an operator copies to every instance).
    key = secrets.token_urlsafe(64)
    folders = [tmp_path_factory.mktemp(f"instance-multi-{x}") for x in "ab"]
    for folder in folders:
        (folder / "secret_key").write_text(key)
        (folder / "secret_key").chmod(0o600)
    # A first: its prepare-instance makes the schema. Then B and the accounts side by side.
    a = start_server(folders[0], env=env, name="test_ws_multi-a")
    running = [a]
    try:
        with ThreadPoolExecutor(5) as pool:
            b_started = pool.submit(start_server, folders[1], env=env, name="test_ws_multi-b")
            made = [pool.submit(a.create_user, name, PASSWORD) for name in ("alice", "bob", "carol", "dave")]
            b = b_started.result()
            running.append(b)
            for done in made:
                done.result()
        yield Cluster(a, b, redis_server)
    finally:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(ServerProcess.stop, running))


async def _cookies(server: ServerProcess, username: str) -> str:
    client = await login_client(server, username, PASSWORD)
    try:
        return cookie_header(client)
    finally:
        await client.aclose()


async def _group(server: ServerProcess, username: str, *members: str) -> int:
    client = await login_client(server, username, PASSWORD)
    try:
        return await open_group(client, f"multi {uuid.uuid4().hex[:8]}", members)
    finally:
        await client.aclose()


async def _hello(*socks: Socket) -> None:
    for sock in socks:
        await sock.expect_type("hello")


async def test_users_on_different_instances_chat(cluster: Cluster) -> None:
    conv = await _group(cluster.a, "alice", "bob")
    alice_cookie = await _cookies(cluster.a, "alice")
    alice = await open_socket(cluster.a, alice_cookie)
    alice_other_tab = await open_socket(cluster.b, alice_cookie)  # the same session, on the other instance
    bob = await open_socket(cluster.b, await _cookies(cluster.b, "bob"))
    try:
        await _hello(alice, alice_other_tab, bob)
        cid = await alice.send_message(conv, "from A")
        ack = await alice.expect_type("ack", client_msg_id=cid)
        message_id = ack["message"]["id"]
        got = await bob.expect_message(message_id)
        assert got["message"]["body"] == "from A"
        await alice_other_tab.expect_message(message_id)

        cid = await bob.send_message(conv, "from B")
        reply = (await bob.expect_type("ack", client_msg_id=cid))["message"]
        assert (await alice.expect_message(reply["id"]))["message"]["body"] == "from B"

        # The no-JS form on instance B wakes the socket on instance A too.
        logged = await login_client(cluster.b, "bob", PASSWORD)
        try:
            form_cid = str(uuid.uuid4())
            done = await post_form(logged, f"/chats/{conv}/messages", {"body": "by form on B", "client_msg_id": form_cid}, page=f"/chats/{conv}")
            assert done.status_code == 303
        finally:
            await logged.aclose()
        await alice.expect(lambda f: f.get("type") == "message" and f["message"]["client_msg_id"] == form_cid, what="the form's message")
    finally:
        for sock in (alice, alice_other_tab, bob):
            await sock.close()


async def test_receipts_typing_and_presence_cross_instances(cluster: Cluster) -> None:
    conv = await _group(cluster.a, "carol", "dave")
    dave = await open_socket(cluster.b, await _cookies(cluster.b, "dave"))
    carol_cookie = await _cookies(cluster.a, "carol")
    carol: Socket | None = None
    try:
        hello = await dave.expect_type("hello")
        snapshot = await dave.expect_type("presence_snapshot")
        carol_id = next(u["user_id"] for u in snapshot["users"] if u["user_id"] != hello["user_id"])
        assert next(u for u in snapshot["users"] if u["user_id"] == carol_id)["online"] is False

        carol = await open_socket(cluster.a, carol_cookie)
        await carol.expect_type("hello")
        await dave.expect_type("presence", user_id=carol_id, online=True)

        await carol.send({"type": "typing", "conversation_id": conv, "typing": True})
        typing = await dave.expect_type("typing", user_id=carol_id, conversation_id=conv)
        assert typing["typing"] is True and typing["ttl"] > 0

        cid = await carol.send_message(conv, "are you there?")
        message_id = (await carol.expect_type("ack", client_msg_id=cid))["message"]["id"]
        await dave.expect_message(message_id)
        dave_id = hello["user_id"]
        await dave.send({"type": "delivered", "conversation_id": conv, "up_to_id": message_id})
        delivered = await carol.expect_type("receipt", user_id=dave_id, delivered_id=message_id)
        assert delivered["read_id"] < message_id
        await dave.send({"type": "read", "conversation_id": conv, "up_to_id": message_id})
        await carol.expect_type("receipt", user_id=dave_id, read_id=message_id, delivered_id=message_id)

        await carol.close()
        offline = await dave.expect_type("presence", timeout=10, user_id=carol_id, online=False)
        assert offline["last_seen"]
    finally:
        if carol is not None:
            await carol.close()
        await dave.close()


async def test_logout_on_one_instance_closes_the_socket_on_the_other_with_4401(cluster: Cluster) -> None:
    session = await login_client(cluster.a, "alice", PASSWORD)
    try:
        on_b = await open_socket(cluster.b, cookie_header(session))
        try:
            await on_b.expect_type("hello")
            token = await csrf_token(session)
            started = time.monotonic()
            done = await session.post("/logout", data={"csrf_token": token})
            assert done.status_code == 303
            assert await on_b.wait_closed(2.0 - (time.monotonic() - started)) == 4401
            print(f"\nlogout on A -> 4401 on B in {(on_b.closed_at - started) * 1000:.0f} ms")  # type: ignore[operator]
        finally:
            await on_b.close()
    finally:
        await session.aclose()


class FollowingClient:
    """A client that does what docs/protocol.md asks: ``sync_needed`` -> ``sync`` from its last id.

    One ``sync`` at a time: a ``sync_needed`` that comes while a sync runs is answered after
    its last page, from the new last id (two overlapping syncs from one id would fetch the
    same messages twice).
    """

    def __init__(self, sock: Socket) -> None:
        self.sock = sock
        self.syncs = 0
        self._task = asyncio.create_task(self._follow())

    def seen(self) -> list[int]:
        ids: list[int] = []
        for frame in self.sock.frames:
            if frame.get("type") == "message":
                ids.append(frame["message"]["id"])
            elif frame.get("type") == "sync":
                ids.extend(m["id"] for m in frame["messages"])
        return ids

    async def _follow(self) -> None:
        cursor = 0
        while True:
            await self.sock.expect(lambda f: f.get("type") == "sync_needed", timeout=3600, start=cursor, what="sync_needed")
            # Every sync_needed up to now is answered by this one sync.
            cursor = len(self.sock.frames)
            mark = len(self.sock.frames)
            await self.sock.send({"type": "sync", "after_id": max(self.seen(), default=0)})
            self.syncs += 1
            await self.sock.expect(lambda f: f.get("type") == "sync" and f["done"], timeout=30, start=mark, what="the last sync page")

    async def stop(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


async def test_redis_outage_loses_no_message(cluster: Cluster) -> None:
    """Messages sent while Redis is down, and while it comes back, all reach the other instance once.

    Each broker reconnects on its own back-off (up to 5 s), so for a while one instance is
    subscribed again and the other is not; sending all through that window covers both orders.
    """
    conv = await _group(cluster.a, "alice", "bob")
    alice = await open_socket(cluster.a, await _cookies(cluster.a, "alice"))
    bob_sock = await open_socket(cluster.b, await _cookies(cluster.b, "bob"))
    bob = FollowingClient(bob_sock)

    async def send(body: str) -> int:
        cid = await alice.send_message(conv, body)
        return int((await alice.expect_type("ack", timeout=15, client_msg_id=cid))["message"]["id"])

    try:
        await _hello(alice, bob_sock)
        first = await send("before the outage")
        await bob_sock.expect_message(first)

        cluster.redis.shutdown()
        assert not cluster.redis.answers()
        sent = [await send(f"while Redis is down {n}") for n in range(10)]
        await asyncio.sleep(1.0)  # both brokers are retrying by now
        cluster.redis.start()
        back = time.monotonic()
        # Keep sending until both instances are subscribed again (each tells its sockets
        # sync_needed when it is), and a little longer.
        n = 0
        while time.monotonic() - back < 15 and not (alice.counts["sync_needed"] and bob_sock.counts["sync_needed"]):
            sent.append(await send(f"while Redis comes back {n}"))
            n += 1
            await asyncio.sleep(0.1)
        assert alice.counts["sync_needed"] and bob_sock.counts["sync_needed"], "an instance did not say sync_needed within 15 s of Redis coming back"
        for _ in range(5):
            sent.append(await send(f"after the outage {n}"))
            n += 1

        deadline = time.monotonic() + 10
        while not set(sent) <= set(bob.seen()):
            missing = sorted(set(sent) - set(bob.seen()))
            assert time.monotonic() < deadline, f"bob lacks {missing} of {len(sent)} messages 10 s after the last send"
            await asyncio.sleep(0.05)
        caught_up = time.monotonic() - back

        # Both subscribed again: a new message goes live, as a message frame.
        live = await send("live again")
        await bob_sock.expect_message(live, timeout=2)
        await asyncio.sleep(0.5)  # anything delivered twice would have arrived by now

        counts = Counter(bob.seen())
        for message_id in [first, *sent, live]:
            assert counts[message_id] == 1, f"message {message_id} reached bob {counts[message_id]} times"
        assert all(c == 1 for c in counts.values()), f"duplicates: {[i for i, c in counts.items() if c > 1]}"
        assert not bob_sock.closed and not alice.closed
        print(
            f"\nRedis outage: {len(sent)} messages sent while Redis was down or coming back; bob had all of them "
            f"{caught_up:.1f} s after Redis restarted ({bob_sock.counts['sync_needed']} sync_needed, {bob.syncs} syncs)"
        )
    finally:
        await bob.stop()
        await alice.close()
        await bob_sock.close()
        if cluster.redis.process is None:
            cluster.redis.start()
