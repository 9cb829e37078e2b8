"""Shrink asyncio's per-connection TLS read buffer.

Python 3.11's ``asyncio.sslproto.SSLProtocol`` gives every TLS connection a
``bytearray(256 KiB)`` read buffer (``max_size``), idle or not. With a thousand open sockets
that is most of the server's memory: measured here (docs/performance.md), an idle TLS
socket cost 341 KiB with it and about 120 KiB with 32 KiB. A smaller buffer only means
more, smaller reads from the TLS object; a 64 KiB frame still arrives whole (the
protocol loops until the TLS object is drained). ``max_size`` is a class attribute read
per connection, so setting it before Hypercorn accepts connections is enough.
"""

from __future__ import annotations

import asyncio.sslproto


def shrink_tls_read_buffer(size: int) -> bool:
    """Set the TLS read buffer of new asyncio connections to ``size`` bytes (min 16 KiB,
    one TLS record); False when this Python's asyncio has no such setting."""
    protocol = getattr(asyncio.sslproto, "SSLProtocol", None)
    if protocol is None or not isinstance(getattr(protocol, "max_size", None), int):
        return False
    protocol.max_size = max(16 * 1024, int(size))
    return True
