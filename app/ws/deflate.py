"""Switch off permessage-deflate in Hypercorn.

Hypercorn 0.18 always accepts permessage-deflate when a client offers it (browsers always
do) and has no setting for it. Measured here, an idle compressed socket costs about
130 KiB against about 34 KiB without, and decompression happens before Hypercorn's
message-size check. The handshake object parses the client's offer in ``__init__``;
forgetting the offer there makes Hypercorn answer without the extension, so the socket
runs uncompressed (RFC 6455/7692: the server may decline any extension).
tests/e2e/test_ws_e2e.py checks this against a real Hypercorn with a compression-offering
client; if a Hypercorn upgrade changes the class, that test fails.
"""

from __future__ import annotations

from typing import Any

_PATCHED = "_medchat_no_deflate"


def disable_permessage_deflate() -> bool:
    """Patch Hypercorn's WebSocket handshake (idempotent); False if Hypercorn is absent."""
    try:
        from hypercorn.protocol import ws_stream
    except ImportError:  # pragma: no cover - Hypercorn is a dependency
        return False
    handshake = ws_stream.Handshake
    if getattr(handshake, _PATCHED, False):
        return True
    original = handshake.__init__

    def __init__(self: Any, headers: list[tuple[bytes, bytes]], http_version: str) -> None:
        original(self, headers, http_version)
        self.extensions = None  # decline every extension the client offered

    handshake.__init__ = __init__  # type: ignore[method-assign]
    setattr(handshake, _PATCHED, True)
    return True
