"""The per-connection TLS read buffer is shrunk when the app is created (memory per socket)."""

from __future__ import annotations

import asyncio.sslproto
from typing import Any

from app.ws.tls_buffer import shrink_tls_read_buffer


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
