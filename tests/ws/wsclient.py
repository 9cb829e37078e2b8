"""A small client for /ws over Quart's test client: typed receives, close codes, a stalled reader.

Quart's test client hands server frames over an unbounded in-memory queue, so a test that
"does not read" creates no backpressure by itself. ``ws_open(..., stall=True)`` makes the
transport hold every server frame after ``hello`` (as a full TCP window would): the
server's send loop blocks in ``websocket.send``, exactly what a client that stopped
reading does to a real server.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from quart.testing import WebsocketResponseError
from quart.testing.connections import WebsocketDisconnectError

from tests.support import Client

OWN_ORIGIN = "https://localhost"  # the test client's host is "localhost"; wss -> https


class Closed(Exception):
    """The server closed the socket; ``code`` is the close code."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


@dataclass
class Sock:
    """One open test socket.

    ``seen`` keeps every frame received, in order. ``expect(kind)`` takes the first frame of
    that type, leaving frames of other types in ``inbox`` for later ``expect`` calls, so a
    test can wait for the ack and then for the message event that came before it.
    """

    raw: Any
    seen: list[dict[str, Any]] = field(default_factory=list)
    inbox: list[dict[str, Any]] = field(default_factory=list)
    hello: dict[str, Any] = field(default_factory=dict)

    async def send(self, frame: dict[str, Any] | str | bytes) -> None:
        await self.raw.send(json.dumps(frame) if isinstance(frame, dict) else frame)

    async def _receive(self, timeout: float) -> dict[str, Any]:
        try:
            async with asyncio.timeout(timeout):
                data = await self.raw.receive()
        except WebsocketDisconnectError as exc:
            raise Closed(int(exc.args[0])) from None
        frame = json.loads(data)
        assert isinstance(frame, dict), data
        self.seen.append(frame)
        return frame

    async def next(self, timeout: float = 2.0) -> dict[str, Any]:
        """The oldest frame not taken yet, of any type; ``Closed`` when the server closed."""
        if self.inbox:
            return self.inbox.pop(0)
        return await self._receive(timeout)

    async def expect(self, kind: str, timeout: float = 2.0, **fields: Any) -> dict[str, Any]:
        """The oldest frame of type ``kind`` not taken yet, checking ``fields`` if given."""
        frame = next((f for f in self.inbox if f["type"] == kind), None)
        if frame is not None:
            self.inbox.remove(frame)
        else:
            async with asyncio.timeout(timeout):
                while (frame := await self._receive(timeout))["type"] != kind:
                    self.inbox.append(frame)
        for key, value in fields.items():
            assert frame.get(key) == value, (key, frame)
        return frame

    async def only(self, kind: str, timeout: float = 2.0) -> dict[str, Any]:
        """The next frame that is not a ping must be of type ``kind``."""
        while True:
            frame = await self.next(timeout)
            if frame["type"] != "ping":
                assert frame["type"] == kind, frame
                return frame

    async def error(self, code: str, timeout: float = 2.0) -> dict[str, Any]:
        frame = await self.expect("error", timeout)
        assert frame["code"] == code, frame
        assert isinstance(frame["message"], str) and frame["message"]
        return frame

    async def quiet(self, within: float = 0.15) -> list[dict[str, Any]]:
        """Every frame not taken yet plus those arriving within ``within`` s (no pings)."""
        got = [f for f in self.inbox if f["type"] != "ping"]
        self.inbox.clear()
        loop = asyncio.get_running_loop()
        end = loop.time() + within
        while (left := end - loop.time()) > 0:
            try:
                frame = await self._receive(left)
            except TimeoutError:
                break
            if frame["type"] != "ping":
                got.append(frame)
        return got

    def taken(self, kind: str) -> list[dict[str, Any]]:
        """Every frame of type ``kind`` received so far, in order."""
        return [f for f in self.seen if f["type"] == kind]

    async def closed(self, timeout: float = 2.0) -> int:
        """Wait until the server closes the socket (other frames are kept); the close code."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    self.inbox.append(await self._receive(timeout))
        except Closed as exc:
            return exc.code


@asynccontextmanager
async def ws_open(
    client: Client,
    query: str = "",
    *,
    headers: dict[str, str] | None = None,
    address: str | None = None,
    stall: bool = False,
    hello: bool = True,
    scheme: str = "wss",
) -> AsyncIterator[Sock]:
    """Open /ws for ``client`` (its cookies), wait for ``hello`` and yield the socket."""
    conn = client.raw.websocket(
        "/ws" + query, scheme=scheme, headers=headers,
        scope_base={"client": (address, 50000)} if address else None,
    )
    sock = Sock(conn)
    if stall:
        _stall_after_hello(conn)
    async with conn:
        if hello:
            sock.hello = await sock.expect("hello")
        yield sock


def _stall_after_hello(conn: Any) -> None:
    """Deliver ``hello``, then hold every later frame forever (the close frame passes)."""
    deliver = conn._asgi_send
    forever = asyncio.Event()
    sent = 0

    async def send(message: dict[str, Any]) -> None:
        nonlocal sent
        if message["type"] == "websocket.send":
            sent += 1
            if sent > 1:
                await forever.wait()
        await deliver(message)

    conn._asgi_send = send


async def refused(
    client: Client, query: str = "", *, headers: dict[str, str] | None = None, address: str | None = None, scheme: str = "wss",
) -> int:
    """Try a handshake that must be refused before accept; the HTTP status."""
    try:
        async with ws_open(client, query, headers=headers, address=address, hello=False, scheme=scheme) as sock:
            frame = await sock.next()
    except WebsocketResponseError as exc:
        assert not sock.raw.accepted
        return int(exc.response.status_code)
    raise AssertionError(f"handshake accepted: {frame}")


def message_ids(frames: list[dict[str, Any]]) -> list[int]:
    return [f["message"]["id"] for f in frames if f["type"] == "message"]


STREAM_FRAMES = ("message", "receipt", "conversation")  # the frames that carry a position


def position_of(frame: dict[str, Any]) -> int:
    """A stream frame's ``position``: an int >= 1 (docs/protocol.md, "Positions")."""
    position = frame.get("position")
    assert isinstance(position, int) and not isinstance(position, bool) and position >= 1, frame
    return position


def unpositioned(frame: dict[str, Any]) -> dict[str, Any]:
    """The frame without its ``position`` (checked), to compare the rest exactly."""
    position_of(frame)
    return {k: v for k, v in frame.items() if k != "position"}


def live_positions(sock: Sock) -> list[int]:
    """The positions of every live stream frame the socket received, in arrival order."""
    return [position_of(f) for f in sock.seen if f["type"] in STREAM_FRAMES]


def increasing(positions: list[int]) -> bool:
    return all(a < b for a, b in zip(positions, positions[1:], strict=False))
