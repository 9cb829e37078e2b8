"""A small /ws client for the end-to-end tests: the real ``websockets`` library over TLS.

``open_socket`` makes the handshake a browser would (session cookie, the server's own
``Origin``), accepting the self-signed test certificate. A ``Socket`` reads in the
background and keeps every frame with the time it arrived, so a test can wait for a frame
with a deadline (``expect``) and still look at everything that came before it. The HTTP
helpers post the no-JavaScript forms (with their CSRF token) through an ``httpx`` client
from ``harness.login_client``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import ssl
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.e2e.harness import ServerProcess

Frame = dict[str, Any]

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
CONVERSATION = re.compile(r"/chats/(\d+)")


def insecure_ssl() -> ssl.SSLContext:
    """TLS that accepts the instance's self-signed certificate."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def cookie_header(client: httpx.AsyncClient) -> str:
    """The ``Cookie`` header a browser would send with this client's cookies."""
    return "; ".join(f"{cookie.name}={cookie.value}" for cookie in client.cookies.jar)


def new_id() -> str:
    return str(uuid.uuid4())


@dataclass
class Socket:
    """One open /ws connection and what it received (``frames``, with ``times``)."""

    ws: ClientConnection
    frames: list[Frame] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    close_code: int | None = None
    close_reason: str = ""
    closed_at: float | None = None
    answer_pings: bool = True
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)
    _reader: asyncio.Task[None] | None = None

    def start_reading(self) -> None:
        if self._reader is None:
            self._reader = asyncio.create_task(self._read(), name="ws-test-reader")

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                frame = json.loads(raw)
                self.frames.append(frame)
                self.times.append(time.monotonic())
                self.counts[str(frame.get("type"))] += 1
                self._arrived.set()
                if frame.get("type") == "ping" and self.answer_pings:
                    with contextlib.suppress(ConnectionClosed):
                        await self.ws.send('{"type":"pong"}')
        except ConnectionClosed:
            pass
        finally:
            rcvd = self.ws.protocol.close_rcvd
            self.close_code = rcvd.code if rcvd is not None else 1006
            self.close_reason = rcvd.reason if rcvd is not None else ""
            self.closed_at = time.monotonic()
            self._arrived.set()

    @property
    def closed(self) -> bool:
        return self.closed_at is not None

    async def send(self, frame: Frame) -> None:
        await self.ws.send(json.dumps(frame, ensure_ascii=False))

    async def send_message(self, conversation_id: int, body: str, client_msg_id: str | None = None) -> str:
        cid = client_msg_id or new_id()
        await self.send({"type": "send", "client_msg_id": cid, "conversation_id": conversation_id, "body": body})
        return cid

    def of_type(self, kind: str, start: int = 0) -> list[Frame]:
        return [f for f in self.frames[start:] if f.get("type") == kind]

    async def expect(self, match: Callable[[Frame], bool], timeout: float = 5.0, start: int = 0, what: str = "a frame") -> Frame:
        """The first frame from index ``start`` on that ``match``es, waiting up to ``timeout``."""
        deadline = time.monotonic() + timeout
        index = start
        while True:
            while index < len(self.frames):
                if match(self.frames[index]):
                    return self.frames[index]
                index += 1
            if self.closed:
                raise AssertionError(f"socket closed ({self.close_code} {self.close_reason!r}) before {what}; got {self._summary(start)}")
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {what} within {timeout} s; got {self._summary(start)}")
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await self._arrived.wait()

    async def expect_type(self, kind: str, timeout: float = 5.0, start: int = 0, **fields: Any) -> Frame:
        def match(frame: Frame) -> bool:
            return frame.get("type") == kind and all(frame.get(k) == v for k, v in fields.items())

        return await self.expect(match, timeout, start, what=f"{kind} {fields or ''}".strip())

    async def expect_message(self, message_id: int, timeout: float = 5.0, start: int = 0) -> Frame:
        return await self.expect(
            lambda f: f.get("type") == "message" and f["message"]["id"] == message_id, timeout, start, what=f"message {message_id}"
        )

    async def wait_closed(self, timeout: float) -> int:
        """The close code, waiting at most ``timeout`` seconds for the server to close."""
        deadline = time.monotonic() + timeout
        while not self.closed:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"the socket was still open after {timeout} s")
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await self._arrived.wait()
        assert self.close_code is not None
        return self.close_code

    async def sync_all(self, after_id: int, timeout: float = 20.0) -> list[Frame]:
        """Send ``sync`` and collect every page until ``done``; messages oldest first."""
        start = len(self.frames)
        await self.send({"type": "sync", "after_id": after_id})
        messages: list[Frame] = []
        index = start
        while True:
            page = await self.expect(lambda f: f.get("type") in ("sync", "resync"), timeout, index, what="a sync page")
            assert page["type"] == "sync", f"the server asked for a reload instead of syncing: {page}"
            index = self.frames.index(page, index) + 1
            messages.extend(page["messages"])
            if page["done"]:
                return messages

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        with contextlib.suppress(Exception):
            async with asyncio.timeout(3):
                await self.ws.close()
        self.ws.transport.abort()

    def _summary(self, start: int) -> str:
        kinds = [f.get("type") for f in self.frames[start:]]
        return f"{len(kinds)} frames {kinds[-15:]}"


async def open_socket(
    server: ServerProcess,
    cookies: str | None,
    *,
    after: int | None = None,
    since: int | None = None,
    origin: str | None = "own",
    read: bool = True,
    receive_buffer: int | None = None,
    **options: Any,
) -> Socket:
    """Open /ws as a browser would; ``origin="own"`` sends the server's https origin.

    ``read=False`` leaves the socket unread (a slow consumer); ``receive_buffer`` shrinks
    the kernel's receive buffer (SO_RCVBUF) so TCP stops absorbing frames early.
    """
    # ``since``: resume from a stream position (v2); ``after``: from a message id (legacy).
    url = server.ws_url + (f"?since={since}" if since is not None else f"?after={after}" if after is not None else "")
    headers: dict[str, str] = {}
    if cookies:
        headers["Cookie"] = cookies
    if origin == "own":
        headers["Origin"] = server.base_url
    elif origin is not None:
        headers["Origin"] = origin
    if receive_buffer is not None:
        parts = urlsplit(server.ws_url)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (parts.hostname, parts.port))
        options["sock"] = sock
    options.setdefault("open_timeout", 10)
    options.setdefault("close_timeout", 3)
    options.setdefault("ping_interval", None)  # the server pings at the application level
    options.setdefault("max_size", 2**20)
    ws = await connect(url, ssl=insecure_ssl(), additional_headers=headers, **options)
    sock_obj = Socket(ws)
    if read:
        sock_obj.start_reading()
    return sock_obj


async def csrf_token(client: httpx.AsyncClient, path: str = "/chats") -> str:
    page = await client.get(path)
    assert page.status_code == 200, f"GET {path}: {page.status_code}"
    found = CSRF.search(page.text)
    assert found, f"no csrf_token on {path}"
    return found.group(1)


async def post_form(client: httpx.AsyncClient, path: str, data: dict[str, Any], *, page: str = "/chats") -> httpx.Response:
    """POST a no-JS form with the CSRF token a page of the same session carries."""
    form = dict(data)
    form["csrf_token"] = await csrf_token(client, page)
    return await client.post(path, data=form)


async def open_group(client: httpx.AsyncClient, title: str, members: Iterable[str]) -> int:
    """Create a group through the form; its conversation id."""
    done = await post_form(client, "/chats/group", {"title": title, "members": list(members)}, page="/chats/new-group")
    assert done.status_code == 303, f"create group: {done.status_code} {done.text[:300]}"
    found = CONVERSATION.search(done.headers["location"])
    assert found
    return int(found.group(1))


async def log_out(client: httpx.AsyncClient) -> None:
    done = await post_form(client, "/logout", {})
    assert done.status_code == 303, f"logout: {done.status_code} {done.text[:300]}"
