"""Shrink, and share, asyncio's per-connection TLS read buffer.

Python 3.11's ``asyncio.sslproto.SSLProtocol`` gives every TLS connection a
``bytearray(256 KiB)`` read buffer (``max_size``), idle or not. With a thousand open sockets
that is most of the server's memory: measured here (docs/performance.md), an idle TLS
socket cost 341 KiB with it and about 120 KiB with 32 KiB. A smaller buffer only means
more, smaller reads from the TLS object; a 64 KiB frame still arrives whole (the
protocol loops until the TLS object is drained). ``max_size`` is a class attribute read
per connection, so setting it before Hypercorn accepts connections is enough.

``share_tls_read_buffer`` goes further: every TLS connection of a selector event loop reads
into one buffer per thread instead of its own (32 KiB less per socket, issue 10). That is
safe because the buffer only carries bytes from the socket to the connection's TLS object
within one synchronous callback: the selector transport calls ``get_buffer``, then
``recv_into`` it, then ``buffer_updated``, whose first statement copies the bytes into the
connection's ``ssl.MemoryBIO``; nothing else reads the buffer, and nothing can run in
between on that thread. A proactor loop (Windows) hands the buffer to the kernel for an
overlapped read, so its connections keep their own (only selector transports are switched).
tests/ws/test_tls_buffer.py fails when an asyncio upgrade changes the code this relies on.
"""

from __future__ import annotations

import asyncio.selector_events
import asyncio.sslproto
import threading
from typing import Any

_PATCHED = "_medchat_shared_read_buffer"
_local = threading.local()


def shrink_tls_read_buffer(size: int) -> bool:
    """Set the TLS read buffer of new asyncio connections to ``size`` bytes (min 16 KiB,
    one TLS record); False when this Python's asyncio has no such setting."""
    protocol = getattr(asyncio.sslproto, "SSLProtocol", None)
    if protocol is None or not isinstance(getattr(protocol, "max_size", None), int):
        return False
    protocol.max_size = max(16 * 1024, int(size))
    return True


def thread_read_buffer(size: int) -> bytearray:
    """This thread's shared TLS read buffer of at least ``size`` bytes."""
    buffer: bytearray | None = getattr(_local, "buffer", None)
    if buffer is None or len(buffer) < size:
        buffer = _local.buffer = bytearray(size)
    return buffer


def share_tls_read_buffer() -> bool:
    """Let the TLS connections of selector event loops read into one buffer per thread
    (idempotent); False when this Python's asyncio is not the one this was written for."""
    protocol: Any = getattr(asyncio.sslproto, "SSLProtocol", None)
    selector_transport = getattr(asyncio.selector_events, "_SelectorSocketTransport", None)
    if protocol is None or selector_transport is None:
        return False
    if getattr(protocol, _PATCHED, False):
        return True
    if not all(hasattr(protocol, name) for name in ("connection_made", "get_buffer", "buffer_updated", "max_size")):
        return False
    original = protocol.connection_made

    def connection_made(self: Any, transport: asyncio.BaseTransport) -> None:
        if isinstance(transport, selector_transport) and hasattr(self, "_ssl_buffer"):
            # The buffer of __init__ is dropped here: only the shared one stays referenced.
            shared = thread_read_buffer(max(len(self._ssl_buffer), self.max_size))
            self._ssl_buffer = shared
            self._ssl_buffer_view = memoryview(shared)
        original(self, transport)

    protocol.connection_made = connection_made
    setattr(protocol, _PATCHED, True)
    return True
