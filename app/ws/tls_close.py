"""Close TLS connections of vanished peers quickly and log them in one line.

When Hypercorn closes a TLS connection (keep-alive or read timeout, a closed socket), asyncio
sends the TLS close_notify and waits for the peer's. A peer that dropped off the network
(a laptop lid, a lost Wi-Fi) never answers: after ``SSL_SHUTDOWN_TIMEOUT`` (30 s by default,
holding the connection's buffers meanwhile) asyncio aborts the transport with
``TimeoutError('SSL shutdown timed out')``. Hypercorn 0.18's ``TCPServer._close`` awaits
``writer.wait_closed()`` and does not catch that error (nor an ``ssl.SSLError`` from a peer
that sent garbage on its way out), so it escapes the connection task and asyncio logs a
full traceback ("Unhandled exception in client_connected_cb") for an everyday event.

``quiet_tls_close`` shortens the wait (asyncio reads the default per connection, so setting
it before connections arrive is enough) and turns those errors into one warning line.
tests/e2e/test_hypercorn_hardening.py checks the log of a real Hypercorn after a TLS client
went silent; tests/ws/test_hypercorn_patches.py fails when a Hypercorn upgrade changes
``TCPServer._close``.
"""

from __future__ import annotations

import asyncio.constants
import ssl
from typing import Any

_PATCHED = "_medchat_quiet_close"


def quiet_tls_close(shutdown_seconds: float) -> bool:
    """Wait at most ``shutdown_seconds`` for a TLS peer's close_notify and log an unclean
    close as one line (idempotent); False if Hypercorn is absent."""
    if shutdown_seconds > 0:
        asyncio.constants.SSL_SHUTDOWN_TIMEOUT = float(shutdown_seconds)
    try:
        from hypercorn.asyncio.tcp_server import TCPServer
    except ImportError:  # pragma: no cover - Hypercorn is a dependency
        return False
    if getattr(TCPServer, _PATCHED, False):
        return True
    original = TCPServer._close

    async def _close(self: Any) -> None:
        # Hypercorn's ProtocolWrapper keeps the peer address (the transport may be gone).
        peer = getattr(getattr(self, "protocol", None), "client", None)
        try:
            await original(self)
        except (TimeoutError, ssl.SSLError, OSError) as exc:
            where = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else "a peer"
            await self.config.log.warning(f"connection from {where} closed uncleanly: {type(exc).__name__}: {exc}")

    TCPServer._close = _close  # type: ignore[method-assign]
    setattr(TCPServer, _PATCHED, True)
    return True
