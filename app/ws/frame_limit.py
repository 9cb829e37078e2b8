"""Refuse an oversized WebSocket message from its frame header, before its payload arrives.

Hypercorn 0.18 feeds every received chunk to wsproto, and ``WebsocketBuffer.extend`` writes
each payload chunk into its buffer *before* comparing the running length with
``websocket_max_message_size``. Its 1009 close is sent, but the stream goes on receiving:
every further chunk of the same frame is written into the buffer again (each write raises,
after the write), so a 200 MiB frame grows the process by about 200 MiB, and the socket
stays open until the client has sent the whole frame and answered the close.

Here the bytes are looked at where they arrive (``WSStream.handle``), before wsproto or the
buffer see them. ``FrameSizeGuard`` follows the RFC 6455 frame headers (at most 14 bytes
each) and skips payloads without keeping them; a data frame whose *declared* length takes
its message over the limit (fragments are summed) gets a 1009 close at once, the stream is
ended, and nothing more of it is parsed or kept. The buffer's own check is also made to
count before it writes, for the one case the headers cannot show: permessage-deflate
(switched off by app/ws/deflate.py unless ``WS_PERMESSAGE_DEFLATE``), where a small frame
can inflate past the limit.

tests/e2e/test_hypercorn_hardening.py sends a 16 MiB frame to a real Hypercorn and checks
the close and the worker's memory; tests/ws/test_hypercorn_patches.py fails when a Hypercorn
upgrade changes the patched methods.
"""

from __future__ import annotations

from typing import Any

_PATCHED = "_medchat_frame_limit"
_REFUSED = "_medchat_refused"
_GUARD = "_medchat_guard"
MESSAGE_TOO_BIG = 1009
_limit: list[int] = [64 * 1024]  # the app's limit; the smaller of it and Hypercorn's applies


class FrameSizeGuard:
    """Follow the frame headers of one client byte stream and spot an oversized message.

    ``feed`` takes the bytes as they arrive, in any split, and returns True once a data
    frame's declared payload length takes its message (a frame and its continuations)
    over ``limit``. Payload bytes are counted and skipped, never stored.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.header = bytearray()
        self.skip = 0  # payload bytes of the current frame still to come
        self.message = 0  # declared bytes of the current message so far

    def feed(self, data: bytes) -> bool:
        i, n = 0, len(data)
        while i < n:
            if self.skip:
                step = min(self.skip, n - i)
                self.skip -= step
                i += step
                continue
            self.header.append(data[i])
            i += 1
            if len(self.header) < _header_size(self.header):
                continue
            opcode, length = _parse_header(self.header)
            self.header.clear()
            self.skip = length
            if opcode in (0x1, 0x2):  # text, binary: a new message
                self.message = length
            elif opcode == 0x0:  # continuation
                self.message += length
            else:  # control frames are at most 125 bytes (wsproto enforces it)
                continue
            if self.message > self.limit:
                return True
        return False


def _header_size(header: bytearray) -> int:
    if len(header) < 2:
        return 2
    short = header[1] & 0x7F
    return 2 + (2 if short == 126 else 8 if short == 127 else 0) + (4 if header[1] & 0x80 else 0)


def _parse_header(header: bytearray) -> tuple[int, int]:
    opcode = header[0] & 0x0F
    short = header[1] & 0x7F
    if short == 126:
        return opcode, int.from_bytes(header[2:4], "big")
    if short == 127:
        return opcode, int.from_bytes(header[2:10], "big")
    return opcode, short


def refuse_oversized_frames(limit: int) -> bool:
    """Patch Hypercorn's WebSocket stream (idempotent); False if Hypercorn is absent.

    ``limit`` is the app's largest message in bytes; Hypercorn's own
    ``websocket_max_message_size`` still applies when it is smaller.
    """
    try:
        from hypercorn.protocol import ws_stream
        from hypercorn.protocol.events import Body, Data, EndData, StreamClosed
        from wsproto.events import CloseConnection
    except ImportError:  # pragma: no cover - Hypercorn is a dependency
        return False
    _limit[0] = int(limit)
    stream_class = ws_stream.WSStream
    if getattr(stream_class, _PATCHED, False):
        return True
    buffer_class = ws_stream.WebsocketBuffer
    original_handle = stream_class.handle
    original_extend = buffer_class.extend

    def extend(self: Any, event: Any) -> None:
        # Count before writing: the original writes first, so an oversized chunk is kept.
        if self.length + len(event.data) > self.max_length:
            self.length += len(event.data)
            raise ws_stream.FrameTooLargeError()
        original_extend(self, event)

    async def refuse(self: Any) -> None:
        setattr(self, _REFUSED, True)
        # A second close (Hypercorn's own 1009 went first) is a LocalProtocolError that
        # _send_wsproto_event swallows.
        await self._send_wsproto_event(CloseConnection(code=MESSAGE_TOO_BIG, reason="message too big"))
        await self.send(EndData(stream_id=self.stream_id))
        await self.send(StreamClosed(stream_id=self.stream_id))

    async def handle(self: Any, event: Any) -> None:
        accepted = isinstance(event, (Body, Data)) and getattr(getattr(self, "handshake", None), "accepted", False)
        if not accepted:
            await original_handle(self, event)
            return
        if getattr(self, _REFUSED, False) or self.closed:
            return  # refused: the rest of the frame is dropped unparsed
        guard = getattr(self, _GUARD, None)
        if guard is None:
            guard = FrameSizeGuard(min(_limit[0], self.config.websocket_max_message_size))
            setattr(self, _GUARD, guard)
        if guard.feed(event.data):
            await refuse(self)
            return
        await original_handle(self, event)
        if self.buffer.length > self.buffer.max_length and not getattr(self, _REFUSED, False):
            await refuse(self)  # inflated past the limit (permessage-deflate)

    buffer_class.extend = extend  # type: ignore[method-assign]
    stream_class.handle = handle  # type: ignore[method-assign]
    setattr(stream_class, _PATCHED, True)
    return True
