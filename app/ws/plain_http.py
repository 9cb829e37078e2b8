"""Speak only HTTP/1.1 on the plain-HTTP listener: no h2c upgrade, no HTTP/2 prior knowledge.

Hypercorn 0.18 switches any cleartext HTTP/1.1 connection to HTTP/2 when a request carries
``Upgrade: h2c`` (answering 101) or starts with the HTTP/2 preface ``PRI * HTTP/2.0``
(``H11Protocol._check_protocol``). On MedChat's insecure bind that is a second,
unencrypted protocol stack that does nothing useful: the port exists only to redirect to
HTTPS (and to answer ``/healthz``). ``H11Protocol`` knows whether its connection is TLS
(``self.ssl``); for cleartext connections:

- ``Upgrade: h2c`` is ignored (RFC 9110 7.8: a server may ignore Upgrade) and the request is
  answered in HTTP/1.1, i.e. by the app's redirect;
- the HTTP/2 preface gets ``505 HTTP Version Not Supported`` and the connection is closed.

TLS connections keep Hypercorn's behaviour (HTTP/2 comes through ALPN there).
tests/e2e/test_hypercorn_hardening.py checks both against a real Hypercorn;
tests/ws/test_hypercorn_patches.py fails when a Hypercorn upgrade changes the patched methods.
"""

from __future__ import annotations

from typing import Any

_PATCHED = "_medchat_plain_http1"


class _Refused:
    """Stands in for the h11 connection once the peer was refused (like Hypercorn's own
    ``H11WSConnection``): everything further is ignored until the socket is closed."""

    our_state = None
    their_state = None
    they_are_waiting_for_100_continue = False
    trailing_data = (b"", False)

    def receive_data(self, data: bytes) -> None:
        pass

    def next_event(self) -> Any:
        import h11

        return h11.ConnectionClosed()

    def send(self, event: Any) -> bytes:
        return b""

    def start_next_cycle(self) -> None:
        pass


def _is_h2_preface(request: Any) -> bool:
    return bool(request.method == b"PRI" and request.target == b"*" and request.http_version == b"2.0")


def http1_only_on_plain_http() -> bool:
    """Patch Hypercorn's HTTP/1.1 protocol (idempotent); False if Hypercorn is absent."""
    try:
        from hypercorn.events import Closed
        from hypercorn.protocol.h11 import H11Protocol
    except ImportError:  # pragma: no cover - Hypercorn is a dependency
        return False
    if getattr(H11Protocol, _PATCHED, False):
        return True
    original_check = H11Protocol._check_protocol
    original_create = H11Protocol._create_stream

    async def _check_protocol(self: Any, event: Any) -> None:
        if self.ssl:
            await original_check(self, event)
        # Cleartext: never switch to HTTP/2 (the preface is refused in _create_stream).

    async def _create_stream(self: Any, request: Any) -> None:
        if not self.ssl and _is_h2_preface(request):
            await self._send_error_response(505)
            self.connection = _Refused()
            await self.send(Closed())
            return
        await original_create(self, request)

    H11Protocol._check_protocol = _check_protocol  # type: ignore[method-assign]
    H11Protocol._create_stream = _create_stream  # type: ignore[method-assign]
    setattr(H11Protocol, _PATCHED, True)
    return True
