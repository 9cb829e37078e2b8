"""What outside testers broke in Hypercorn's layer (issue 7), against a real Hypercorn.

One server for the module, started with short timeouts on the command line (they win over
hypercorn.toml): ``--keep-alive 2`` (the header timeout, see hypercorn.toml) and a TLS
shutdown wait of 1 s, so no test waits for the production values.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import ssl
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.e2e.harness import ServerProcess, login_client, start_server
from tests.e2e.wsclient import cookie_header, insecure_ssl, new_id, open_socket

pytestmark = pytest.mark.e2e

PASSWORD = "granite meadow lantern 5521"
KEEP_ALIVE = 2.0


@pytest.fixture(scope="module")
def hard_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    running = start_server(
        tmp_path_factory.mktemp("instance-hardening"), name="test_hypercorn_hardening",
        env={"MEDCHAT_TLS_SHUTDOWN_SECONDS": "1", "MEDCHAT_WS_HANDSHAKES_PER_MINUTE": "1000"},
        hypercorn_args=["--keep-alive", str(int(KEEP_ALIVE))],
    )
    try:
        running.create_user("hard.alice", PASSWORD)
        yield running
    finally:
        running.stop()


async def _cookies(server: ServerProcess) -> str:
    client = await login_client(server, "hard.alice", PASSWORD)
    try:
        return cookie_header(client)
    finally:
        await client.aclose()


class RssWatch:
    """Sample the worker's VmRSS every 10 ms in a thread; ``peak`` is the largest seen."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.baseline = server.worker_rss_kib()
        self.peak = self.baseline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.server.worker_rss_kib())
            time.sleep(0.01)

    def __enter__(self) -> RssWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


# --- item 2: oversized frames ----------------------------------------------------------------


async def test_a_16_mib_frame_is_refused_with_1009_at_once_and_not_buffered(hard_server: ServerProcess) -> None:
    cookies = await _cookies(hard_server)
    sock = await open_socket(hard_server, cookies)
    try:
        await sock.expect_type("hello")
        payload = json.dumps({"type": "send", "client_msg_id": new_id(), "conversation_id": 1, "body": "x" * (16 * 1024 * 1024)})
        with RssWatch(hard_server) as rss:
            started = time.monotonic()
            sending = asyncio.create_task(sock.ws.send(payload))
            while sock.ws.protocol.close_rcvd is None and time.monotonic() - started < 10:
                await asyncio.sleep(0.005)
            arrived = time.monotonic() - started
            close = sock.ws.protocol.close_rcvd
            # The server ends the connection too (the client cannot finish its frame).
            code = await sock.wait_closed(10)
            await asyncio.sleep(0.3)  # whatever the server still reads shows up in RSS
        sending.cancel()
        await asyncio.gather(sending, return_exceptions=True)
        assert close is not None, f"no close frame within 10 s (socket closed: {sock.close_code})"
        assert close.code == 1009 and code == 1009
        assert arrived < 1.0, f"the 1009 close took {arrived:.2f} s"
        grown = rss.peak - rss.baseline
        assert grown < 8 * 1024, f"the worker grew by {grown} KiB for one refused frame"
    finally:
        await sock.close()


async def test_a_frame_within_the_limit_still_works_after_the_guard(hard_server: ServerProcess) -> None:
    cookies = await _cookies(hard_server)
    sock = await open_socket(hard_server, cookies)
    try:
        await sock.expect_type("hello")
        # 60 KiB of JSON in one frame: under 64 KiB, answered (an error frame: no such chat).
        await sock.send({"type": "send", "client_msg_id": new_id(), "conversation_id": 999999, "body": "y" * 60000})
        error = await sock.expect_type("error")
        assert error["code"] != "too_big"
        assert not sock.closed
    finally:
        await sock.close()


# --- item 4: tokens in the access log --------------------------------------------------------


async def test_setup_and_invite_tokens_never_reach_the_access_log(hard_server: ServerProcess) -> None:
    secret_setup = "SeTuPtOkEn1234567890abcdefgh"
    secret_invite = "InViTeToKeN1234567890abcdefg"
    async with httpx.AsyncClient(base_url=hard_server.base_url, http2=True, verify=False, timeout=10.0) as client:  # noqa: S501
        answers = [
            await client.get(f"/setup/{secret_setup}"),
            await client.get(f"/invite/{secret_invite}", headers={"Referer": f"{hard_server.base_url}/invite/{secret_invite}"}),
            await client.get(f"/invite/{secret_invite}?x=1"),
        ]
    async with httpx.AsyncClient(timeout=10.0) as plain:
        answers.append(await plain.get(f"{hard_server.http_url}/invite/{secret_invite}"))
    assert [a.status_code for a in answers] == [404, 404, 404, 308]
    await asyncio.sleep(0.3)  # the access log line is written after the response
    log = hard_server.log_text()
    assert "/invite/[redacted]" in log and "/setup/[redacted]" in log
    for secret in (secret_setup, secret_invite, secret_setup.lower(), secret_invite.lower()):
        assert secret not in log


# --- item 7: the plain-HTTP port, the Server header, TLS drops, slowloris --------------------


async def test_websocket_is_refused_on_the_plain_http_port(hard_server: ServerProcess) -> None:
    cookies = await _cookies(hard_server)
    url = f"ws://127.0.0.1:{hard_server.http_port}/ws"
    origin = hard_server.http_url
    with pytest.raises(InvalidStatus) as refused:
        ws = await connect(url, additional_headers={"Cookie": cookies, "Origin": origin}, open_timeout=5)
        await ws.close()
    assert refused.value.response.status_code == 403
    # The same cookie opens the socket over TLS.
    ok = await connect(hard_server.ws_url, ssl=insecure_ssl(), additional_headers={"Cookie": cookies, "Origin": hard_server.base_url}, open_timeout=5)
    await ok.close()


def _plain_exchange(server: ServerProcess, request: bytes, timeout: float = 5.0) -> bytes:
    """Send ``request`` to the plain-HTTP port; everything the server sends until it closes
    (or ``timeout`` passes)."""
    with socket.create_connection(("127.0.0.1", server.http_port), timeout=timeout) as sock:
        sock.sendall(request)
        received = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            received += chunk
        return received


def test_h2c_upgrade_is_ignored_on_the_plain_http_port(hard_server: ServerProcess) -> None:
    upgrade = (
        b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n"
    )
    chats = _plain_exchange(hard_server, b"GET /chats HTTP/1.1\r\nHost: 127.0.0.1\r\n" + upgrade + b"Connection: close\r\n\r\n")
    health = _plain_exchange(hard_server, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n" + upgrade + b"\r\n", timeout=1.0)
    assert chats.startswith(b"HTTP/1.1 308 "), chats[:200]
    assert b"\r\nlocation: https://127.0.0.1:" in chats.lower()
    assert health.startswith(b"HTTP/1.1 200 "), health[:200]
    assert b"101" not in chats.split(b"\r\n", 1)[0] and b"upgrade: h2c" not in (chats + health).lower()


def test_http2_prior_knowledge_is_refused_on_the_plain_http_port(hard_server: ServerProcess) -> None:
    preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"  # + empty SETTINGS
    started = time.monotonic()
    answer = _plain_exchange(hard_server, preface)
    assert answer.startswith(b"HTTP/1.1 505 "), answer[:200]
    assert time.monotonic() - started < 2.0, "the connection was not closed after the refusal"


async def test_no_server_header_on_either_port(hard_server: ServerProcess) -> None:
    async with httpx.AsyncClient(http2=True, verify=False, timeout=10.0) as client:  # noqa: S501
        secure = await client.get(f"{hard_server.base_url}/healthz")
        login = await client.get(f"{hard_server.base_url}/login")
    async with httpx.AsyncClient(timeout=10.0) as plain:
        health = await plain.get(f"{hard_server.http_url}/healthz")
        redirect = await plain.get(f"{hard_server.http_url}/chats")
    assert secure.http_version == "HTTP/2"
    assert redirect.status_code == 308
    for response in (secure, login, health, redirect):
        assert "server" not in response.headers, response.headers


def _half_request(sock: socket.socket, trickle: bool) -> float:
    """Send half a request line (then a byte every 0.5 s if ``trickle``); seconds until the
    server closed the connection."""
    started = time.monotonic()
    sock.sendall(b"GET /chats HT")
    sock.settimeout(0.5)
    while time.monotonic() - started < 10:
        try:
            if sock.recv(1024) == b"":
                return time.monotonic() - started
        except TimeoutError:
            if trickle:
                try:
                    sock.sendall(b"T")
                except OSError:
                    return time.monotonic() - started
        except (ConnectionResetError, ssl.SSLError):
            return time.monotonic() - started
    raise AssertionError("the server kept a half-sent request open for 10 s")


@pytest.mark.parametrize("trickle", [False, True], ids=["silent", "trickling"])
def test_an_unfinished_request_line_is_closed_within_the_keep_alive_timeout(hard_server: ServerProcess, trickle: bool) -> None:
    with socket.create_connection(("127.0.0.1", hard_server.http_port), timeout=5) as plain:
        plain_seconds = _half_request(plain, trickle)
    context = insecure_ssl()
    context.set_alpn_protocols(["http/1.1"])
    with context.wrap_socket(socket.create_connection(("127.0.0.1", hard_server.https_port), timeout=5)) as tls:
        tls_seconds = _half_request(tls, trickle)
    for seconds in (plain_seconds, tls_seconds):
        assert KEEP_ALIVE - 0.5 < seconds < KEEP_ALIVE + 1.5, (plain_seconds, tls_seconds)


def test_a_tls_client_that_goes_silent_leaves_one_log_line_and_no_traceback(hard_server: ServerProcess) -> None:
    context = insecure_ssl()
    context.set_alpn_protocols(["http/1.1"])
    raw = socket.create_connection(("127.0.0.1", hard_server.https_port), timeout=5)
    tls = context.wrap_socket(raw)
    try:
        tls.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert tls.recv(65536).startswith(b"HTTP/1.1 200")
        port = tls.getsockname()[1]
        # Now the client is gone without a word: it neither reads nor closes. The server's
        # keep-alive timeout closes the connection and waits 1 s for a close_notify.
        deadline = time.monotonic() + KEEP_ALIVE + 8
        line = re.compile(rf"connection from 127\.0\.0\.1:{port} closed uncleanly: TimeoutError: SSL shutdown timed out")
        while not line.search(hard_server.log_text()) and time.monotonic() < deadline:
            time.sleep(0.1)
        log = hard_server.log_text()
        assert line.search(log), log[-3000:]
    finally:
        tls.close()
    assert "Traceback" not in log, log[-5000:]
    assert "SSL shutdown timed out" in log and log.count("SSL shutdown timed out") == 1
