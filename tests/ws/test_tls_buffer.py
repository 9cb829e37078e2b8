"""The per-connection TLS read buffer is shrunk, and shared by the connections of a thread,
when the app is created (memory per socket, issue 10)."""

from __future__ import annotations

import ast
import asyncio
import asyncio.selector_events
import asyncio.sslproto
import hashlib
import inspect
import os
import ssl
import textwrap
from pathlib import Path
from typing import Any

from app.lib.devcert import ensure_dev_certificate
from app.ws.tls_buffer import share_tls_read_buffer, shrink_tls_read_buffer, thread_read_buffer


def test_the_app_sets_a_32_kib_tls_read_buffer(app: Any) -> None:
    assert app.config["TLS_READ_BUFFER_BYTES"] == 32 * 1024
    assert asyncio.sslproto.SSLProtocol.max_size == 32 * 1024


def test_never_below_one_tls_record() -> None:
    before = asyncio.sslproto.SSLProtocol.max_size
    try:
        assert shrink_tls_read_buffer(1000)
        assert asyncio.sslproto.SSLProtocol.max_size == 16 * 1024
    finally:
        asyncio.sslproto.SSLProtocol.max_size = before


def test_the_app_shares_the_tls_read_buffer(app: Any) -> None:
    assert app.config["TLS_SHARED_READ_BUFFER"] is True
    assert getattr(asyncio.sslproto.SSLProtocol, "_medchat_shared_read_buffer", False)
    assert share_tls_read_buffer()  # idempotent


def _first_statement(function: Any) -> str:
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    return ast.unparse(body[0])


def test_the_asyncio_code_the_sharing_relies_on() -> None:
    """The bytes leave the buffer before anything else runs: buffer_updated copies them into
    the TLS object first, and the selector transport reads into it and hands it over in one
    callback (no await in between). An asyncio upgrade that changes this fails here."""
    assert _first_statement(asyncio.sslproto.SSLProtocol.buffer_updated) == "self._incoming.write(self._ssl_buffer_view[:nbytes])"
    reader = inspect.getsource(asyncio.selector_events._SelectorSocketTransport._read_ready__get_buffer)
    assert "await" not in reader
    assert reader.index("get_buffer(-1)") < reader.index("recv_into(buf)") < reader.index("buffer_updated(nbytes)")
    get_buffer = inspect.getsource(asyncio.sslproto.SSLProtocol.get_buffer)
    assert "return self._ssl_buffer_view" in get_buffer


async def test_tls_connections_share_one_read_buffer_and_every_byte_arrives(tmp_path: Path) -> None:
    """Three clients send 300 KiB each at once over TLS; the server reads them all through
    the thread's one buffer and gets every byte, in order, on the right connection."""
    assert share_tls_read_buffer()
    cert = ensure_dev_certificate(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert.cert, cert.key)
    client_ctx = ssl.create_default_context()
    client_ctx.check_hostname = False
    client_ctx.verify_mode = ssl.CERT_NONE
    size = 300 * 1024
    buffers: list[Any] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        buffers.append(writer.transport._ssl_protocol._ssl_buffer)  # type: ignore[attr-defined]
        data = await reader.readexactly(size)
        writer.write(hashlib.sha256(data).digest())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]

    async def client() -> tuple[bytes, bytes]:
        payload = os.urandom(size)
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client_ctx)
        for start in range(0, size, 7000):  # odd-sized writes: records and reads interleave
            writer.write(payload[start:start + 7000])
            await asyncio.sleep(0)
        await writer.drain()
        digest = await reader.readexactly(32)
        writer.close()
        return hashlib.sha256(payload).digest(), digest

    try:
        async with asyncio.timeout(20):
            results = await asyncio.gather(*(client() for _ in range(3)))
    finally:
        server.close()
        await server.wait_closed()
    assert all(sent == received for sent, received in results)
    assert len(buffers) == 3
    assert all(b is thread_read_buffer(0) for b in buffers)
    assert len(thread_read_buffer(0)) >= asyncio.sslproto.SSLProtocol.max_size
